// `testbed event LAB KIND TARGET [key=value…] [options]`: do something to a running lab — a link
// down/up or flapping, a live impairment change, a NAT reboot, rebinding or mapping expiry, a host
// moving to another network, a node's processes restarting. `--dry-run` prints the commands instead.
import { applyEvent, describeEvent } from "../../apply/apply-event.ts";
import { detectFeatures } from "../../apply/features.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { UsageError } from "../../errors.ts";
import type { Lab, LabEvent } from "../../resolve/lab.ts";
import { readEvent } from "../../resolve/event-targets.ts";
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
	return readEvent(lab, kind, step);
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
	const ms = Math.round(result.endedAt - result.startedAt);
	if (options.json) io.json({ lab: labName, event: event.kind, label: event.label, ms, ...(result.restarted ? { restarted: result.restarted } : {}) });
	else {
		io.out(`${event.label}: done in ${ms} ms`);
		if (result.restarted) io.out(result.restarted.length ? result.restarted.map((proc) => `  restarted ${proc.command} (was pid ${proc.pid})`).join("\n") : "  no processes were running there");
	}
	return 0;
}
