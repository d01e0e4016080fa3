// Doing an event to a running lab: the rendered actions run in the lab's namespaces, in order.
// Nothing here touches the root namespace.
import { controlDaemon } from "./port-mapping.ts";
import { readFileSync, readlinkSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import type { HostFeatures } from "../plan/operations.ts";
import { findNode, type Lab, type LabEvent } from "../resolve/lab.ts";
import { inNamespace } from "../render/batch.ts";
import { describeActions, forwardAgain, renderEvent, type EventAction, type EventCommand, type EventContext } from "../render/event-actions.ts";
import { natStateSets, parseNatState } from "../render/nat-state.ts";
import { renderImpairmentCommands } from "../render/impairment.ts";
import { LabStateError } from "../errors.ts";
import { labAfter } from "../resolve/event-targets.ts";
import { appendJournal } from "./journal.ts";
import { readLedger, writeLedger } from "./ledger.ts";
import { killProcessesIn, netnsInode, pidsInNamespaces } from "./namespaces.ts";
import { run } from "./run.ts";
import { spawnDetached } from "./spawn.ts";

export interface EventResult {
	event: LabEvent;
	/** performance.now() when the first command ran and when the last one finished. */
	startedAt: number;
	endedAt: number;
	/** For restart from the command line: the processes started again. */
	restarted?: { pid: number; command: string }[];
}

/** The commands an event would run, as text (nothing runs). */
export async function describeEvent(lab: Lab, event: LabEvent, features: HostFeatures): Promise<string> {
	if (event.kind === "restart") return `# restart every process in ${event.netns}: SIGTERM, then the same command line again\nip netns pids ${event.netns}`;
	return describeActions(renderEvent(event, await context(lab, event, features, true)));
}

/**
 * Do an event to a running lab, and record in its ledger the lab as it is afterwards (links up or
 * down, impairments, a moved host's route), so that `graph`, `punch` and `nat-table` of the running
 * lab see it as it is now. The one way every caller — `testbed event`, `lab.event()`, timed steps and
 * `punch --event` — applies an event; `readEvent` (resolve/event-targets.ts) makes one from a request.
 */
export async function applyEvent(lab: Lab, event: LabEvent, features: HostFeatures, options: { signal?: AbortSignal } = {}): Promise<EventResult> {
	const result = await performEvent(lab, event, features, options);
	recordEvent(lab.name, event);
	appendJournal(lab.name, { kind: "event", event: event.kind, label: event.label });
	return result;
}

/** The lab's ledger, if it has one, holds the lab as the event left it. */
function recordEvent(name: string, event: LabEvent): void {
	const ledger = readLedger(name);
	if (!ledger) return;
	const after = labAfter(ledger.resolved, event);
	if (after !== ledger.resolved) writeLedger({ ...ledger, resolved: after });
}

async function performEvent(lab: Lab, event: LabEvent, features: HostFeatures, options: { signal?: AbortSignal }): Promise<EventResult> {
	const startedAt = performance.now();
	if (event.kind === "restart") {
		const restarted = await restartProcesses(event.netns);
		return { event, startedAt, endedAt: performance.now(), restarted };
	}
	// A mapping can expire between reading the NAT's maps and deleting it (nft then refuses the whole
	// transaction, changing nothing): read again and retry.
	const attempts = event.kind === "rebind" || event.kind === "expire" ? 3 : 1;
	for (let attempt = 1; ; attempt++) {
		const actions = renderEvent(event, await context(lab, event, features, true));
		try {
			for (const action of actions) {
				if (options.signal?.aborted) break;
				await perform(lab, action, options.signal);
			}
			break;
		} catch (error) {
			// Never leave a NAT that does not forward.
			if (event.kind === "nat-reboot" || event.kind === "rebind" || event.kind === "expire") await runCommand(forwardAgain(event.netns));
			if (attempt >= attempts) throw error;
		}
	}
	return { event, startedAt, endedAt: performance.now() };
}

async function context(lab: Lab, event: LabEvent, features: HostFeatures, live: boolean): Promise<EventContext> {
	const result: EventContext = { features, impairment: (end, change) => renderImpairmentCommands(end, change.impair, features) };
	if (event.kind === "nat-reboot" || event.kind === "rebind" || event.kind === "expire") {
		const node = findNode(lab, event.nat)!;
		result.nat = node.nat;
		if (event.kind !== "nat-reboot") {
			const sets = natStateSets(node.name, node.nat!).map((set) => set.name);
			// A masquerade NAT keeps no maps (its mappings are conntrack's alone): nothing to read.
			const listed = sets.length > 0 && live && process.getuid?.() === 0 ? await run(inNamespace(event.netns, ["nft", "-j", "list", "table", "ip", "testbed"])) : undefined;
			if (listed?.failed) throw new LabStateError(`cannot read the mappings of NAT "${node.name}": ${listed.stderr.trim()}`, "EVENT_FAILED");
			result.natState = parseNatState(listed?.stdout ?? "{}", sets);
		}
	}
	return result;
}

async function perform(lab: Lab, action: EventAction, signal?: AbortSignal): Promise<void> {
	if (action.kind === "sleep") return void (await delay(action.ms, undefined, { signal }).catch(() => undefined));
	if (action.kind === "daemon") return await controlDaemon(lab, action.node, action.action);
	const results = await Promise.all(action.commands.map((command) => runCommand(command)));
	const failed = results.find((entry) => entry.failed && !entry.command.mayFail);
	if (failed) throw new LabStateError(`${action.why}: \`${failed.command.argv.join(" ")}\` in ${failed.command.netns} failed: ${failed.stderr.trim() || `exit ${failed.exitCode}`}`, "EVENT_FAILED");
}

async function runCommand(command: EventCommand) {
	const result = await run(inNamespace(command.netns, command.argv), command.input === undefined ? {} : { input: command.input });
	return { ...result, command };
}

/**
 * Restart the processes of a namespace (its top-level ones: children go with their parents): each
 * gets SIGTERM (SIGKILL after 2 s) and is started again with the same command line, working
 * directory and environment, detached, its output discarded.
 */
async function restartProcesses(netns: string): Promise<{ pid: number; command: string }[]> {
	const inode = netnsInode(netns);
	if (inode === null) throw new LabStateError(`namespace ${netns} does not exist`, "EVENT_FAILED");
	const pids = new Set(pidsInNamespaces(new Set([inode])));
	const processes: { pid: number; argv: string[]; cwd: string; env: Record<string, string> }[] = [];
	for (const pid of pids) {
		try {
			const parent = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
			if (pids.has(parent)) continue;
			const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((part, index, all) => part !== "" || index < all.length - 1);
			const env = Object.fromEntries(
				readFileSync(`/proc/${pid}/environ`, "utf8")
					.split("\0")
					.filter(Boolean)
					.map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
			);
			if (argv.length) processes.push({ pid, argv, cwd: readlinkSync(`/proc/${pid}/cwd`), env });
		} catch {
			// gone meanwhile
		}
	}
	await killProcessesIn(new Set([inode]), 2000);
	for (const proc of processes) spawnDetached(inNamespace(netns, proc.argv), { cwd: proc.cwd, env: proc.env });
	return processes.map((proc) => ({ pid: proc.pid, command: proc.argv.join(" ") }));
}
