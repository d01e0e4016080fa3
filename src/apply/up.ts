// Build a lab on the host: ledger first, one root `ip -batch`, then one batch per namespace in parallel.
// Any failure (or Ctrl-C) rolls back everything this call created.
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { ApplyError, LabStateError, MissingFeatureError, TestbedError } from "../errors.ts";
import type { HostFeatures, Plan } from "../plan/operations.ts";
import { planLab } from "../plan/plan.ts";
import { inNamespace, renderPlan, stepContent, type Batch, type Step } from "../render/batch.ts";
import type { Lab } from "../resolve/lab.ts";
import { detectFeatures } from "./features.ts";
import { readLedger, removeLedger, writeLedger, type Ledger } from "./ledger.ts";
import { lockLab } from "./lock.ts";
import { netnsInode } from "./namespaces.ts";
import { stateDir } from "./paths.ts";
import { requireRoot, requireTools } from "./preflight.ts";
import { diesWithParent, parallel, run } from "./run.ts";
import { teardownLedger } from "./teardown.ts";

export interface UpOptions {
	/** Replace a lab of the same name that is already up. */
	force?: boolean;
	/** Override detected features (tests of fallbacks). */
	features?: HostFeatures;
	signal?: AbortSignal;
	/** How long to wait for another testbed process working on the same lab (default 15 s). */
	lockWaitMs?: number;
	/** Called as namespaces are configured: `done` of `total`. */
	onProgress?: (done: number, total: number) => void;
}

export interface UpResult {
	lab: Lab;
	plan: Plan;
	ledger: Ledger;
	timings: { rootMs: number; namespacesMs: number; totalMs: number };
}

export async function upLab(lab: Lab, options: UpOptions = {}): Promise<UpResult> {
	const started = performance.now();
	requireRoot("up");
	const features = options.features ?? (await detectFeatures()).features;
	const plan = planLab(lab, features);
	if (plan.unmet.length > 0) {
		// Every position that asks for what the host lacks, one per line; the fix for the first.
		const first = plan.unmet[0];
		const keys = first.keys?.join(", ") ?? "the impairment";
		throw new MissingFeatureError(
			plan.unmet.map((unmet) => `${lab.file}:${unmet.pos.line}:${unmet.pos.col}: this kernel has no ${unmet.feature}, needed for ${unmet.why}`).join("\n"),
			first.feature,
			first.feature === "netem"
				? `remove ${keys}, or run on a kernel with sch_netem (\`modprobe sch_netem\`); without it loss, loss-burst, rate and limit still work; \`testbed doctor\` shows what this host has`
				: `remove ${keys}, or load sch_tbf (\`modprobe sch_tbf\`); \`testbed doctor\` shows what this host has`,
		);
	}
	requireTools(plan);
	const lock = await lockLab(lab.name, options.lockWaitMs);
	try {
		const existing = readLedger(lab.name);
		if (existing && !options.force)
			throw new LabStateError(`lab "${lab.name}" is already ${existing.state === "up" ? "up" : `in state "${existing.state}"`} (since ${existing.createdAt}); use \`testbed down ${lab.name}\` or \`up --force\` to replace it`, "LAB_EXISTS");
		if (existing) {
			await teardownLedger(existing);
			removeLedger(lab.name);
		}
		const taken = plan.root.flatMap((op) => (op.op === "netns-add" && netnsInode(op.netns) !== null ? [op.netns] : []));
		if (taken.length > 0)
			throw new LabStateError(`namespace${taken.length > 1 ? "s" : ""} ${taken.join(", ")} already exist${taken.length > 1 ? "" : "s"} and testbed did not create ${taken.length > 1 ? "them" : "it"}; rename the lab or set \`prefix:\``, "NAMESPACE_EXISTS");

		const ledger: Ledger = {
			format: 1,
			lab: lab.name,
			file: lab.file,
			state: "creating",
			pid: process.pid,
			createdAt: new Date().toISOString(),
			namespaces: lab.nodes.map((node) => ({ name: node.netns, node: node.name, inode: null })),
			resolved: lab,
		};
		writeLedger(ledger);
		try {
			return await build(lab, plan, ledger, options.signal, started, options.onProgress);
		} catch (error) {
			try {
				await teardownLedger(ledger);
			} catch (teardown) {
				// Keep the ledger: it is the only record of what is left.
				throw new LabStateError(`${(error as Error).message}\nrolling back failed too: ${(teardown as Error).message}\nthe ledger is kept; run \`testbed down ${lab.name}\``, "ROLLBACK_FAILED");
			}
			removeLedger(lab.name);
			if (error instanceof TestbedError) throw error;
			if (options.signal?.aborted) throw new ApplyError("interrupted: everything `up` had created was removed", { command: "up", stderr: "", rolledBack: true });
			throw error;
		}
	} finally {
		lock.release();
	}
}

async function build(lab: Lab, plan: Plan, ledger: Ledger, signal: AbortSignal | undefined, started: number, onProgress?: (done: number, total: number) => void): Promise<UpResult> {
	const dir = stateDir(lab.name);
	mkdirSync(dir, { recursive: true, mode: 0o700 });
	const rendered = renderPlan(plan, dir);
	for (const batch of rendered.namespaces) for (const step of batch.steps) if (step.file) writeFileSync(step.file, stepContent(step), { mode: 0o600 });
	await runSteps(lab, rendered.root, signal);
	for (const entry of ledger.namespaces) entry.inode = netnsInode(entry.name);
	writeLedger(ledger);
	const rootDone = performance.now();
	const limit = Math.max(4, availableParallelism() * 4);
	let configured = 0;
	onProgress?.(0, rendered.namespaces.length);
	await parallel(rendered.namespaces, limit, async (batch) => {
		await runSteps(lab, batch, signal);
		onProgress?.(++configured, rendered.namespaces.length);
	});
	ledger.state = "up";
	writeLedger(ledger);
	const done = performance.now();
	return { lab, plan, ledger, timings: { rootMs: rootDone - started, namespacesMs: done - rootDone, totalMs: done - started } };
}

/**
 * The fixed script that runs a namespace's steps in one process tree. No user text is part of it:
 * the ip lines come on stdin, file paths and sysctl settings as positional arguments. A failing
 * step exits with 11 (ip), 13 (nft), 12 (sysctl) or 14 (tc); sysctl runs after nft, which loads
 * conntrack and so creates the net.netfilter settings.
 */
const stepScript = `nft_file=$1; tc_file=$2; shift 2
ip -batch - || exit 11
[ -z "$nft_file" ] || nft -f "$nft_file" || exit 13
[ $# -eq 0 ] || sysctl -q -w "$@" || exit 12
[ -z "$tc_file" ] || tc -batch "$tc_file" || exit 14`;

const stepExit: Record<number, Step["tool"]> = { 11: "ip", 12: "sysctl", 13: "nft", 14: "tc" };

/** Run a batch: the root one directly; a namespace's steps in one `nsenter --net` process tree. */
async function runSteps(lab: Lab, batch: Batch, signal: AbortSignal | undefined): Promise<void> {
	const ip = batch.steps[0];
	const find = (tool: Step["tool"]) => batch.steps.find((step) => step.tool === tool);
	const argv = diesWithParent(
		batch.netns ? inNamespace(batch.netns, ["sh", "-c", stepScript, "testbed-steps", find("nft")?.file ?? "", find("tc")?.file ?? "", ...(find("sysctl")?.argv.slice(3) ?? [])]) : ip.argv,
	);
	if (signal?.aborted) throw interrupted(argv);
	const result = await run(argv, { signal, input: stepContent(ip) });
	if (result.exitCode === 0) return;
	if (signal?.aborted) throw interrupted(argv);
	const step = batch.netns ? find(stepExit[result.exitCode]) : ip;
	throw stepError(lab, batch, step ?? ip, result.stderr, result.exitCode);
}

function interrupted(argv: string[]): ApplyError {
	return new ApplyError("interrupted: everything `up` had created was removed", { command: argv.join(" "), stderr: "", rolledBack: true });
}

/** Name the operation, the kernel's words and the YAML line. */
function stepError(lab: Lab, batch: Batch, step: Step, stderr: string, exitCode: number): ApplyError {
	const line = failedLine(step, stderr);
	const kernel = stderr
		.split("\n")
		.filter((text) => text.trim() && !text.startsWith("Command failed"))
		.join("\n");
	const where = batch.netns ? `in namespace ${batch.netns}` : "in the root namespace";
	const ns = batch.netns;
	const command = !line
		? (ns ? inNamespace(ns, step.argv) : step.argv).join(" ")
		: step.tool === "ip"
			? `ip ${ns ? `-n ${ns} ` : ""}${line.text}`
			: step.tool === "tc"
				? `ip netns exec ${ns} tc ${line.text}`
				: step.tool === "sysctl"
					? `ip netns exec ${ns} sysctl -w ${line.text.replace(" = ", "=")}`
					: `ip netns exec ${ns} nft -f ${step.file} (line: ${line.text.trim()})`;
	const source = line ? `${lab.file}:${line.op.pos.line}:${line.op.pos.col}` : undefined;
	const node = line?.op.node ?? batch.node;
	return new ApplyError(`${source ? `${source}: ` : ""}building ${node ? `node "${node}"` : `lab "${lab.name}"`} failed ${where}\n  command: ${command}\n  kernel:  ${kernel || `exit code ${exitCode}`}\n  everything \`up\` had created was removed`, {
		command,
		namespace: ns ?? undefined,
		stderr: kernel,
		source,
		rolledBack: true,
	});
}

/** The file line a tool complained about: "Command failed FILE:N" (ip, tc), "FILE:N:C" (nft), the key (sysctl). */
function failedLine(step: Step, stderr: string): Step["lines"][number] | undefined {
	const number = /Command failed \S+:(\d+)/.exec(stderr)?.[1] ?? (step.file ? new RegExp(`${step.file.replaceAll(".", "\\.")}:(\\d+):`).exec(stderr)?.[1] : undefined);
	if (number) return step.lines[Number(number) - 1];
	if (step.tool === "sysctl") return step.lines.find((line) => stderr.includes(line.text.split(" = ")[0].replaceAll(".", "/"))) ?? step.lines[0];
	return step.lines.length === 1 ? step.lines[0] : undefined;
}
