// Run a lab's timed `steps:`: hold hole-punched sessions open, do events to the lab while they run,
// and judge what the sessions do (connected again within a time, or noticed the loss). The lab must
// be up; this starts and stops the agents it needs.
import { setTimeout as delay } from "node:timers/promises";
import { HeldSession, type HeldEvent } from "../drivers/held-session.ts";
import { PunchSession } from "../drivers/punch.ts";
import { applyEvent } from "../apply/apply-event.ts";
import type { PunchOutcome } from "../vocabulary/punch.ts";
import type { HostFeatures } from "../plan/operations.ts";
import { impairmentKinds, impairmentSupport, type ImpairmentSupport } from "../plan/plan.ts";
import type { Lab, LabEvent, LabStep } from "../resolve/lab.ts";
import { acceptedOutcomes, type CheckResult } from "./run.ts";

export interface StepOptions {
	features: HostFeatures;
	signal?: AbortSignal;
	onStep?: (result: CheckResult) => void;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
const pairKey = (a: string, b: string) => [a, b].sort().join("\u0000");

/** Why this host cannot do an event (it needs netem), or undefined. */
export function unsupportedEvent(event: LabEvent, features: HostFeatures): string | undefined {
	if (event.kind !== "impair") return undefined;
	for (const change of event.changes) {
		if (!change.impair) continue;
		const support = impairmentSupport(change.impair, features);
		if (!support.ok) return `${support.keys.join(", ")} need${support.keys.length === 1 ? "s" : ""} ${lacking(support)}`;
	}
	return undefined;
}

export async function runSteps(lab: Lab, steps: LabStep[], options: StepOptions): Promise<CheckResult[]> {
	const results: CheckResult[] = [];
	const sessions = new Map<string, HeldSession>();
	const startedAt = performance.now();
	/** The last event: when it began and when it was over (a flap or an outage takes a while). */
	let lastEvent: { label: string; at: number; endedAt: number } | undefined;
	const punch = await PunchSession.start(lab);
	const record = (step: LabStep, result: Omit<CheckResult, "kind" | "line" | "atMs">, at: number) => {
		const full: CheckResult = { kind: "step", line: step.pos.line || undefined, atMs: Math.round(at - startedAt), ...result };
		results.push(full);
		options.onStep?.(full);
	};
	// A wait ends early when the run is aborted (Ctrl-C): the steps loop then stops.
	const sleep = (ms: number) => (ms > 0 ? delay(ms, undefined, { signal: options.signal }).catch(() => undefined) : Promise.resolve());
	try {
		for (const step of steps) {
			if (options.signal?.aborted) break;
			if (step.atMs !== undefined) await sleep(startedAt + step.atMs - performance.now());
			const at = performance.now();
			switch (step.kind) {
				case "wait":
					await sleep(step.ms);
					break;
				case "connect": {
					const accepted = acceptedOutcomes(lab, step.a, step.b, step.result);
					const name = `connect ${step.a} ↔ ${step.b}`;
					try {
						const session = await withTimeout(HeldSession.open(punch, step.a, step.b, { ...(step.keepaliveMs ? { keepaliveMs: step.keepaliveMs } : {}), ...(step.lossAfterMs ? { lossAfterMs: step.lossAfterMs } : {}) }), step.withinMs + 10_000);
						sessions.set(pairKey(step.a, step.b), session);
						const connected = session.events.find((event) => event.kind === "connected");
						const path = session.path;
						const measured = session.state === "connected" && path ? `${path} in ${Math.round(connected!.at - at)} ms` : "failed";
						const ok = session.state === "connected" && path !== undefined && accepted.includes(path) && connected!.at - at <= step.withinMs;
						record(step, { name, expected: `${accepted.join(" or ")} within ${seconds(step.withinMs)}`, measured, ok, why: ok ? undefined : session.state !== "connected" ? "the pair did not connect" : !accepted.includes(path!) ? `the path is ${path}` : "it took longer" }, at);
					} catch (error) {
						record(step, { name, expected: accepted.join(" or "), measured: "failed", ok: false, why: String((error as Error)?.message ?? error) }, at);
					}
					break;
				}
				case "event": {
					const event = step.event;
					const unsupported = unsupportedEvent(event, options.features);
					if (unsupported) {
						record(step, { name: event.label, expected: "done", measured: "skipped", ok: true, skipped: `skipped: ${unsupported}` }, at);
						break;
					}
					try {
						if (event.kind === "restart") {
							const held = [...sessions.values()].filter((session) => session.a === event.node || session.b === event.node);
							await Promise.all(held.map((session) => session.restart(event.node)));
							lastEvent = { label: event.label, at, endedAt: performance.now() };
							record(step, { name: event.label, expected: "done", measured: held.length ? `its peer agent restarted (${Math.round(performance.now() - at)} ms)` : "no session runs there", ok: true }, at);
						} else {
							// The event counts from its start; a flap runs to its end before the next step.
							const result = await applyEvent(lab, event, options.features, { signal: options.signal });
							lastEvent = { label: event.label, at, endedAt: result.endedAt };
							record(step, { name: event.label, expected: "done", measured: `done in ${Math.round(result.endedAt - result.startedAt)} ms`, ok: true }, at);
						}
					} catch (error) {
						record(step, { name: event.label, expected: "done", measured: "failed", ok: false, why: String((error as Error)?.message ?? error) }, at);
					}
					break;
				}
				case "expect": {
					const session = sessions.get(pairKey(step.a, step.b));
					const name = `${step.a} ↔ ${step.b} ${step.state === "connected" ? "connected" : "notices the loss"}`;
					const expected = `within ${seconds(step.withinMs)}`;
					if (!session) {
						record(step, { name, expected, measured: "no session", ok: false, why: `the session ${step.a} ↔ ${step.b} never connected` }, at);
						break;
					}
					if (step.state === "lost") {
						const lost = await session.waitFor((event) => event.kind === "lost", step.withinMs, at);
						record(step, { name, expected, measured: lost ? `lost after ${seconds(lost.at - (lastEvent?.at ?? at))}` : "still connected", ok: Boolean(lost), why: lost ? undefined : `no side noticed a loss within ${seconds(step.withinMs)}` }, at);
						break;
					}
					const connectedAt = await session.waitConnected(at, step.withinMs);
					const path = session.path;
					const accepted = step.result ?? undefined;
					const pathOk = !accepted || (path !== undefined && accepted.includes(path));
					const lasted = lastEvent && lastEvent.endedAt - lastEvent.at > 250 ? ` (${seconds(connectedAt! - lastEvent.endedAt)} after it ended)` : "";
					const since = lastEvent ? ` after ${lastEvent.label} began${connectedAt !== undefined ? lasted : ""}` : "";
					const reconnectMs = connectedAt !== undefined && lastEvent ? connectedAt - lastEvent.at : undefined;
					const interruption = interruptionOf(session.events, lastEvent?.at ?? at);
					const measured =
						connectedAt === undefined
							? `not connected (${session.state})`
							: `${path}${reconnectMs !== undefined ? `, ${interruption ? "reconnected" : "working"} ${seconds(reconnectMs)}${since}` : ""}`;
					record(
						step,
						{
							name,
							expected: `${expected}${accepted ? ` (${accepted.join(" or ")})` : ""}`,
							measured,
							ok: connectedAt !== undefined && pathOk,
							why: connectedAt === undefined ? `no keepalive round trip within ${seconds(step.withinMs)} (events: ${session.events.map((event) => event.kind).join(", ")})` : pathOk ? undefined : `the path is ${path}`,
							...(reconnectMs !== undefined ? { reconnectMs: Math.round(reconnectMs) } : {}),
						},
						at,
					);
					break;
				}
			}
		}
	} finally {
		await Promise.all([...sessions.values()].map((session) => session.close().catch(() => undefined)));
		await punch.close();
	}
	return results;
}

/** Whether the session was lost (and came back) since `since`. */
function interruptionOf(events: HeldEvent[], since: number): boolean {
	return events.some((event) => event.at >= since && (event.kind === "lost" || event.kind === "reconnected"));
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	try {
		return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${seconds(ms)}`)), ms)))]);
	} finally {
		clearTimeout(timer);
	}
}

/**
 * The lab as this host can build it: impairment keys that need a feature the kernel lacks (delay
 * and friends without netem) are left out, each with a note. `up` refuses such a lab (exit 4);
 * `testbed test` runs what it can and says what it skipped.
 */
export function withinHostFeatures(lab: Lab, features: HostFeatures): { lab: Lab; notes: string[] } {
	const notes: string[] = [];
	const nodes = lab.nodes.map((node) => ({
		...node,
		interfaces: node.interfaces.map((iface) => {
			if (!iface.impair) return iface;
			const support = impairmentSupport(iface.impair, features);
			if (support.ok) return iface;
			const impair = { ...iface.impair };
			for (const kind of impairmentKinds) if (support.keys.includes(kind.key)) delete impair[kind.field];
			notes.push(`${node.name}:${iface.name} (line ${iface.impair.pos.line}): ${support.keys.join(", ")} skipped — needs ${lacking(support)}`);
			const rest = Object.keys(impair).some((key) => key !== "pos");
			const { impair: _dropped, ...without } = iface;
			return rest ? { ...iface, impair } : without;
		}),
	}));
	return notes.length ? { lab: { ...lab, nodes }, notes } : { lab, notes };
}

/** What the host lacks for an impairment, in words with the fix. */
function lacking(support: Extract<ImpairmentSupport, { ok: false }>): string {
	return support.needs === "netem" ? "sch_netem, which this kernel lacks (modprobe sch_netem)" : support.needs;
}
