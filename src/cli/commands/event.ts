// `testbed event LAB KIND TARGET [key=value…] [options]`: do something to a running lab — a link
// down/up or flapping, a live impairment change, a NAT reboot, rebinding or mapping expiry, a host
// moving to another network, a node's processes restarting. `--dry-run` prints the commands instead.
import { stringify } from "yaml";
import { applyEvent, describeEvent } from "../../apply/events.ts";
import { detectFeatures } from "../../apply/features.ts";
import { readLedger, requireLedger, writeLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { UsageError } from "../../errors.ts";
import { eventKinds } from "../../parse/topology.ts";
import { parseSource } from "../../parse/source.ts";
import type { Lab, LabEvent } from "../../resolve/lab.ts";
import { labAfter, resolveEvent } from "../../resolve/events.ts";
import type { Problem } from "../../validate/problem.ts";
import { readStep } from "../../validate/read.ts";
import { closest } from "../../validate/units.ts";
import type { Io } from "../io.ts";

export interface EventOptions {
	json?: boolean;
	"dry-run"?: boolean;
	period?: string;
	"down-for"?: string;
	count?: string;
	from?: string;
	outage?: string;
	host?: string;
	via?: string;
}

/** What an event takes besides its target (and, for impair, the impairment keys). */
export const eventSettings = ["period", "down-for", "count", "from", "outage", "host", "via"] as const;

/**
 * An event written as a step would be — `{ "nat-reboot": "home1", outage: "1s" }` — read and
 * checked against the lab exactly as a step in a file is; problems become one usage error.
 */
export function eventFromStep(lab: Lab, kind: string, step: Record<string, string | number>): LabEvent {
	if (!(eventKinds as readonly string[]).includes(kind)) {
		const guess = closest(kind, eventKinds);
		throw new UsageError(`unknown event "${kind}"${guess ? ` (did you mean "${guess}"?)` : ""}; events: ${eventKinds.join(", ")}`);
	}
	const problems: Problem[] = [];
	const decl = readStep(parseSource("<command line>", stringify(step)), problems);
	const event = decl?.kind === "event" && problems.length === 0 ? resolveEvent(lab, decl.event, (code, pos, message, fix) => problems.push({ code, pos, message, fix })) : undefined;
	if (!event || problems.length) throw new UsageError(problems.map((problem) => `${problem.message.replace(/^(\S+ step|step)/, kind)}${problem.fix ? ` (${problem.fix.replaceAll("`", "")})` : ""}`).join("\n") || `cannot read the ${kind} event`);
	return event;
}

/**
 * The command line's words — `EVENT TARGET [key=value…|clear] [--setting value|--setting=value]…` —
 * with `options` holding settings parsed already (testbed event's own options).
 */
export function eventFromArguments(lab: Lab, words: string[], options: EventOptions = {}): LabEvent {
	const settings: Record<string, string> = {};
	const positional: string[] = [];
	for (let index = 0; index < words.length; index++) {
		const flag = /^--([a-z-]+)(?:=(.*))?$/.exec(words[index]);
		if (flag) settings[flag[1]] = flag[2] ?? words[++index] ?? "";
		else positional.push(words[index]);
	}
	const [kind, target, ...pairs] = positional;
	const step: Record<string, string | number> = { [kind]: target };
	for (const key of eventSettings) if ((settings[key] ?? options[key]) !== undefined) step[key] = settings[key] ?? options[key]!;
	for (const key of Object.keys(settings)) if (!(eventSettings as readonly string[]).includes(key)) throw new UsageError(`unknown setting --${key}; settings: ${eventSettings.map((setting) => `--${setting}`).join(", ")}`);
	for (const pair of pairs) {
		if (kind === "impair" && pair === "clear") continue;
		const match = /^([a-z-]+)=(.+)$/.exec(pair);
		if (!match || kind !== "impair") throw new UsageError(kind === "impair" ? `"${pair}" is not key=value; write e.g. loss=5% delay=20ms (or clear)` : `unexpected argument "${pair}" for ${kind}`);
		step[match[1]] = match[2];
	}
	if (kind === "impair" && pairs.length === 0) throw new UsageError("impair: say what the link does now, e.g. `loss=5% delay=20ms`, or `clear` to remove its impairment");
	return eventFromStep(lab, kind, step);
}

export async function eventCommand(labName: string, args: string[], options: EventOptions, io: Io, signal: AbortSignal): Promise<number> {
	const ledger = requireLedger(labName);
	const lab = ledger.resolved;
	const event = eventFromArguments(lab, args, options);
	if (options["dry-run"]) {
		const features = (await detectFeatures()).features;
		io.out(await describeEvent(lab, event, features));
		return 0;
	}
	requireRoot("event");
	const features = (await detectFeatures()).features;
	const result = await applyEvent(lab, event, features, { signal });
	// The ledger holds the lab as it is now (graph, punch and nat-table of the running lab read it).
	const after = labAfter(lab, event);
	if (after !== lab) writeLedger({ ...(readLedger(labName) ?? ledger), resolved: after });
	const ms = Math.round(result.endedAt - result.startedAt);
	if (options.json) io.json({ lab: labName, event: event.kind, label: event.label, ms, ...(result.restarted ? { restarted: result.restarted } : {}) });
	else {
		io.out(`${event.label}: done in ${ms} ms`);
		if (result.restarted) io.out(result.restarted.length ? result.restarted.map((proc) => `  restarted ${proc.command} (was pid ${proc.pid})`).join("\n") : "  no processes were running there");
	}
	return 0;
}
