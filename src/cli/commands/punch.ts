// `testbed punch LAB A B [--runs N]`: outcome, time to connect, packets sent, RTT; with runs, rates and percentiles.
// `--hold 10s`: punch once and hold the session open that long; its events (lost, rebound, migrated,
// reconnected…) with times from the connection, and how long each interruption lasted.
import { HeldSession, type HeldEvent } from "../../drivers/held-session.ts";
import { punch, PunchSession, type PunchOptions, type PunchResult } from "../../drivers/punch.ts";
import { askingOrder } from "../../vocabulary/port-mapping.ts";
import { punchProtoOf, punchProtos, type PunchOutcome } from "../../vocabulary/punch.ts";
import { explainPunch, renderExplanation, summarizeExplanations, type Explanation } from "../../inspect/explain.ts";
import { captureSides } from "../../inspect/nat-path.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { expectedOutcomes, expectedPunch } from "../../expect/theory.ts";
import { percentile } from "../../expect/run.ts";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startCapture, type Capture } from "../../inspect/capture.ts";
import { requireNode, type Lab, type LabEvent } from "../../resolve/lab.ts";
import { applyEvent } from "../../apply/apply-event.ts";
import { detectFeatures } from "../../apply/features.ts";
import { eventFromArguments } from "./event.ts";
import { parseDuration } from "../../validate/units.ts";
import { table } from "../../report/table.ts";
import { addressFamilyOf } from "../../vocabulary/family.ts";
import type { Io } from "../io.ts";

export async function punchCommand(labName: string, a: string, b: string, options: { json?: boolean; proto?: string; family?: string; deadline?: string; runs?: string; "no-relay"?: boolean; capture?: string; explain?: boolean; hold?: string; event?: string[]; keepalive?: string; "loss-after"?: string; "port-mapping"?: boolean }, io: Io): Promise<number> {
	requireRoot("punch");
	const runs = options.runs === undefined ? 1 : Number(options.runs);
	if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new UsageError(`--runs must be a whole number from 1 to 1000, not "${options.runs}"`);
	const proto = options.proto === undefined ? "udp" : punchProtoOf(options.proto);
	if (!proto) throw new UsageError(`--proto takes ${punchProtos.join(" or ")}, not "${options.proto}"`);
	const family = options.family === undefined ? 4 : addressFamilyOf(options.family);
	if (!family) throw new UsageError(`--family takes 4 or 6, not "${options.family}"`);
	if (family === 6 && options.explain) throw new UsageError("--explain reads the NATs' IPv4 tables: not with --family 6");
	const holdMs = options.hold === undefined ? undefined : parseHold(options.hold);
	// How long direct attempts go on before the relay (and the relay before failing); default 3 s.
	const deadlineMs = options.deadline === undefined ? undefined : parseDuration(options.deadline, "s");
	if (deadlineMs !== undefined && !(deadlineMs >= 100 && deadlineMs <= 600_000)) throw new UsageError(`--deadline takes a duration from 100ms to 10m, such as 1s, not "${options.deadline}"`);
	const pacing = deadlineMs === undefined ? {} : { deadlineMs: Math.round(deadlineMs) };
	if (holdMs !== undefined && proto === "tcp") throw new UsageError("--hold holds a UDP session; TCP punching (--proto tcp) punches and reports, it does not hold yet");
	if (holdMs !== undefined && (options.runs !== undefined || options.explain)) throw new UsageError("--hold punches once and holds the session: it does not go with --runs or --explain");
	if (options.event?.length && holdMs === undefined) throw new UsageError("--event needs --hold: the session must be held open while the event happens");
	// --port-mapping: both peers ask their gateway (PCP, NAT-PMP, UPnP, in that order) and offer what it grants.
	const portMapping = options["port-mapping"] ? askingOrder : undefined;
	if (portMapping && family === 6) throw new UsageError("--port-mapping asks the nodes' IPv4 gateways: not with --family 6");
	const mapping = portMapping ? { portMapping } : {};
	const timing = (key: "keepalive" | "loss-after", low: number, high: number): number | undefined => {
		if (options[key] === undefined) return undefined;
		const ms = parseDuration(options[key], "ms");
		if (holdMs === undefined) throw new UsageError(`--${key} goes with --hold`);
		if (ms === undefined || ms < low || ms > high) throw new UsageError(`--${key} takes a duration from ${low} ms to ${high / 1000} s, such as 250ms, not "${options[key]}"`);
		return Math.round(ms);
	};
	const keepaliveMs = timing("keepalive", 10, 60_000);
	const lossAfterMs = timing("loss-after", 100, 600_000);
	const lab = requireLedger(labName).resolved;
	requireNode(lab, a);
	requireNode(lab, b);
	const scheduled = (options.event ?? []).map((text, index) => scheduledEvent(lab, text, index === 0 ? Math.round(holdMs! / 3) : undefined));
	const captures: Capture[] = [];
	if (options.capture) {
		mkdirSync(options.capture, { recursive: true });
		// Every NAT between the pair, carrier NATs included: one pcap per NAT side.
		for (const side of captureSides(lab, a, b)) captures.push(await startCapture(side.node, side.iface, { file: join(options.capture, `${side.node.name}-${side.iface}.pcap`) }));
	}
	let results: PunchResult[];
	let explanations: Explanation[] | undefined;
	try {
		if (holdMs !== undefined) {
			const features = scheduled.length ? (await detectFeatures()).features : undefined;
			const during = async (held: HeldSession) => {
				const origin = performance.now();
				let previous = 0;
				for (const entry of scheduled) {
					const at = entry.atMs ?? previous;
					await new Promise((resolve) => setTimeout(resolve, Math.max(0, origin + at - performance.now())));
					held.mark(entry.event.label);
					previous = (await applyEvent(lab, entry.event, features!)).endedAt - origin;
				}
			};
			return await holdAndReport(lab, a, b, { holdMs, relay: !options["no-relay"], json: options.json, labName, keepaliveMs, lossAfterMs, family, ...mapping, ...(scheduled.length ? { during } : {}) }, io);
		}
		if (options.explain) {
			// Each run sampled: the tables and drop counters of every NAT between the pair while it happens.
			const session = await PunchSession.start(lab);
			results = [];
			explanations = [];
			try {
				for (let index = 0; index < runs; index++) {
					const explained = await explainPunch(lab, a, b, () => session.punch(a, b, { relay: !options["no-relay"], proto, family, ...pacing, ...mapping }));
					results.push(explained.result);
					explanations.push(explained.explanation);
				}
			} finally {
				await session.close();
			}
		} else results = await punch(lab, a, b, { runs, relay: !options["no-relay"], proto, family, ...pacing, ...mapping });
	} finally {
		await new Promise((resolve) => setTimeout(resolve, captures.length ? 200 : 0));
		for (const capture of captures) {
			const { packets } = await capture.stop();
			io.err(`${capture.file}: ${packets} packets (${capture.node}:${capture.iface})`);
		}
	}
	const connected = results.filter((result) => result.outcome !== "failed");
	const times = connected.map((result) => result.timeToConnectMs!).filter((value) => value !== null);
	const summary = {
		lab: labName,
		a,
		b,
		proto,
		family,
		...(portMapping ? { portMapping } : {}),
		expected: expectedPunch(lab, a, b, proto, family, portMapping),
		runs: results.length,
		successRate: results.length ? connected.length / results.length : 0,
		outcomes: Object.fromEntries([...new Set(results.map((result) => result.outcome))].map((outcome) => [outcome, results.filter((result) => result.outcome === outcome).length])),
		timeToConnectMs: { p50: percentile(times, 50), p95: percentile(times, 95) },
		rttMs: percentile(connected.map((result) => result.rttMs!).filter((value) => value !== null), 50),
		results,
	};
	// --explain: each run's explanation, and what they add up to; `explanation` is the only run's, as before runs could be explained.
	const explained = explanations && { explanations, explained: summarizeExplanations(explanations), ...(runs === 1 ? { explanation: explanations[0] } : {}) };
	if (options.json) io.json(explained ? { ...summary, ...explained } : summary);
	else {
		const mark = (result: PunchResult, side: "a" | "b") => (result.candidates?.[side] === "mapped" ? ` (${side === "a" ? b : a}'s port mapping)` : "");
		const rows = results.map((result, index) => [String(index + 1), result.outcome, result.timeToConnectMs === null ? "-" : `${result.timeToConnectMs < 10 ? result.timeToConnectMs.toFixed(1) : Math.round(result.timeToConnectMs)} ms`, String(result.packetsSent), result.rttMs === null ? "-" : `${result.rttMs.toFixed(2)} ms`, result.remote ? `${a} → ${result.remote.a}${mark(result, "a")}, ${b} → ${result.remote.b}${mark(result, "b")}` : result.error ?? ""]);
		const over = [...(proto === "tcp" ? ["TCP"] : []), ...(family === 6 ? ["IPv6"] : [])].join("/");
		io.out(`punch ${a} ↔ ${b}${over ? ` over ${over}` : ""} in lab "${labName}" (theory for their ${family === 6 ? "firewalls" : "NATs"}${portMapping ? " with port mapping" : ""}: ${expectedOutcomes(lab, a, b, proto, family, portMapping).join(" or ")})\n`);
		io.out(table([["run", "outcome", "time to connect", "packets", "rtt", "path (who sends where)"], ...rows]));
		if (runs > 1)
			io.out(`\nsuccess ${Math.round(summary.successRate * 100)}% (${Object.entries(summary.outcomes).map(([outcome, count]) => `${count} ${outcome}`).join(", ")}); time to connect p50 ${summary.timeToConnectMs.p50 ?? "-"} ms, p95 ${summary.timeToConnectMs.p95 ?? "-"} ms; rtt p50 ${summary.rttMs?.toFixed(2) ?? "-"} ms`);
		if (portMapping) io.out(`\n${portMappingLines(results, a, b).join("\n")}`);
	}
	if (explanations && !options.json) io.out(renderExplanations(explanations));
	return connected.length === results.length ? ExitCode.ok : ExitCode.failure;
}

/**
 * What port mapping did in the punches: which runs went through whose mapping ("direct via alice's
 * port mapping (pcp) 11.0.0.2:40001"), and each peer that asked but got none, with every method's
 * reason, or whose grant the path did not need.
 */
export function portMappingLines(results: readonly PunchResult[], a: string, b: string): string[] {
	const lines: string[] = [];
	const prefix = (index: number) => (results.length > 1 ? `run ${index + 1}: ` : "");
	results.forEach((result, index) => {
		if (result.outcome === "failed" || !result.mappedVia?.length) return;
		lines.push(`${prefix(index)}${result.outcome} via ${result.mappedVia.map((via) => `${via.node}'s port mapping (${via.method}) ${via.external}`).join(" and ")}`);
	});
	const said = new Set<string>();
	for (const result of results)
		for (const [side, node] of [["a", a], ["b", b]] as const) {
			const report = result.portMapping?.[side];
			let line: string;
			if (report === undefined) continue;
			if (report === null) line = `${node} did not get to ask for a port mapping`;
			else if (!report.granted) line = `${node} asked for a port mapping but got none: ${report.failures.map((failure) => `${failure.method}: ${failure.reason}`).join("; ") || "no method to ask with"}`;
			else if (result.outcome !== "failed" && !result.mappedVia?.some((via) => via.node === node)) line = `${node}'s gateway granted ${report.granted.external} (${report.granted.method}); the path did not go through it`;
			else continue;
			if (!said.has(line)) lines.push(line);
			said.add(line);
		}
	if (lines.length === 0) lines.push("port mapping: no path went through a mapping");
	return lines;
}

/** Each run's timeline and verdict; with several runs, a summary: which verdicts, in which runs, and where packets were dropped. */
function renderExplanations(explanations: Explanation[]): string {
	if (explanations.length === 1) return `\n${renderExplanation(explanations[0])}`;
	const runs = (list: number[]) => (list.length === explanations.length ? `every run` : `run${list.length === 1 ? "" : "s"} ${list.join(", ")}`);
	const parts = explanations.map((explanation, index) => `\n${renderExplanation(explanation, `run ${index + 1} of ${explanations.length}: why ${explanation.a} ↔ ${explanation.b} ended ${explanation.outcome}:`)}`);
	const { verdicts, drops } = summarizeExplanations(explanations);
	const lines = ["", `over ${explanations.length} runs:`];
	for (const entry of verdicts) lines.push(`  ${runs(entry.runs)}: ${entry.verdict}`);
	if (drops.length === 0) lines.push("  no NAT between them dropped a packet");
	for (const drop of drops) lines.push(`  nat ${drop.nat} dropped ${drop.why === "filtering" ? "unsolicited packets (its filter)" : "packets from its inside to its own public address (no hairpin)"} in ${runs(drop.runs)}`);
	return `${parts.join("")}${lines.join("\n")}\n`;
}

/**
 * `--event '@2s nat-reboot home1 --outage 1s'`: when (from the first connection; the first event
 * defaults to a third of the hold, later ones follow the one before) and what, checked like
 * `testbed event`'s arguments.
 */
function scheduledEvent(lab: Lab, text: string, defaultAtMs: number | undefined): { atMs?: number; event: LabEvent } {
	const words = text.trim().split(/\s+/);
	let atMs = defaultAtMs;
	if (words[0]?.startsWith("@")) {
		const ms = parseDuration(words.shift()!.slice(1), "s");
		if (ms === undefined) throw new UsageError(`--event "${text}": @TIME must be a duration such as @2s`);
		atMs = ms;
	}
	if (words.filter((word) => !word.startsWith("--")).length < 2) throw new UsageError(`--event "${text}": write the event as for testbed event, e.g. '@2s nat-reboot home1 --outage 1s'`);
	return { ...(atMs === undefined ? {} : { atMs }), event: eventFromArguments(lab, words) };
}

/** "10s", "1.5m", "500ms" or seconds → ms, for --hold. */
function parseHold(text: string): number {
	const ms = parseDuration(text, "s");
	if (ms === undefined || ms < 1 || ms > 3_600_000) throw new UsageError(`--hold takes a duration from 1ms to 1h, such as 10s or 2m, not "${text}"`);
	return Math.round(ms);
}

export interface HoldAndReportOptions {
	/** How long to hold the session after it first connected. */
	holdMs: number;
	/** Runs alongside the hold (from the first connection): inject faults here; session.mark(label) times them for the report. */
	during?: (session: HeldSession) => Promise<void>;
	relay?: boolean;
	json?: boolean;
	/** The lab's name as the user wrote it, for the report. */
	labName?: string;
	keepaliveMs?: number;
	lossAfterMs?: number;
	/** Both endpoints ask their gateway for a port mapping first. */
	portMapping?: PunchOptions["portMapping"];
	/** The address family the pair talks over (default 4). */
	family?: 4 | 6;
}

export interface HoldReport {
	lab: string;
	a: string;
	b: string;
	holdMs: number;
	keepaliveMs: number;
	lossAfterMs: number;
	/** The pair's path at first and at the end (null: not connected). */
	path: PunchOutcome | null;
	finalPath: PunchOutcome | null;
	state: string;
	/** Every event, `atMs` from the first connection. */
	events: (Omit<HeldEvent, "at"> & { atMs: number })[];
	/** Each interruption: from the first side losing the path until both are connected again (reconnectMs). */
	outages: { downAtMs: number; upAtMs: number | null; reconnectMs: number | null; cause: string }[];
	/** Each marked moment (an injected fault): the interruption that began after it (and before the next mark), if any, ended reconnectMs after it. */
	marks: { label: string; atMs: number; interrupted: boolean; reconnectMs: number | null }[];
	error?: string;
}

const formatAt = (ms: number) => (Math.abs(ms) < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(3)} s`);

/** The report of a held session, times from `origin` (its first connection). */
export function holdReport(session: HeldSession, origin: number, options: { holdMs: number; labName: string; path: PunchOutcome | null; error?: string }): HoldReport {
	const at = (ms: number) => Math.round((ms - origin) * 10) / 10;
	return {
		lab: options.labName,
		a: session.a,
		b: session.b,
		holdMs: options.holdMs,
		keepaliveMs: session.timing.keepaliveMs,
		lossAfterMs: session.timing.lossAfterMs,
		path: options.path,
		finalPath: session.path ?? null,
		state: session.state,
		events: session.events.map(({ at: time, ...event }) => ({ atMs: at(time), ...event })),
		outages: session.outages.map((outage) => ({ downAtMs: at(outage.downAt), upAtMs: outage.upAt === undefined ? null : at(outage.upAt), reconnectMs: outage.ms ?? null, cause: outage.cause })),
		marks: session.marks.map((mark, index) => {
			const next = session.marks[index + 1]?.at ?? Infinity;
			const outage = session.outages.find((candidate) => candidate.downAt >= mark.at && candidate.downAt < next);
			return { label: mark.label, atMs: at(mark.at), interrupted: Boolean(outage), reconnectMs: outage?.upAt === undefined ? null : Math.round((outage.upAt - mark.at) * 10) / 10 };
		}),
		...(options.error ? { error: options.error } : {}),
	};
}

export function renderHoldReport(report: HoldReport): string {
	const lines = [
		`held ${report.a} ↔ ${report.b} in lab "${report.lab}" for ${formatAt(report.holdMs)}: ${report.path ?? "not connected"}; keepalive ${report.keepaliveMs} ms, loss after ${report.lossAfterMs} ms`,
		"",
		table([["time", "side", "event", "path", "detail"], ...report.events.map((event) => [formatAt(event.atMs), event.side ?? "both", event.kind, event.path ?? "", [event.remote && event.kind !== "rebound" && event.kind !== "migrated" ? `→ ${event.remote}` : "", event.detail ?? ""].filter(Boolean).join("  ")])]),
		"",
	];
	if (report.outages.length === 0) lines.push("no interruption");
	for (const outage of report.outages)
		lines.push(`interruption noticed at ${formatAt(outage.downAtMs)} (${outage.cause}): ${outage.reconnectMs === null ? "not connected again" : `connected again ${formatAt(outage.reconnectMs)} later`}`);
	for (const mark of report.marks)
		lines.push(`${mark.label} at ${formatAt(mark.atMs)}: ${!mark.interrupted ? "no interruption noticed" : mark.reconnectMs === null ? "not connected again" : `reconnected ${formatAt(mark.reconnectMs)} after it`}`);
	lines.push(`at the end: ${report.state}${report.finalPath ? ` (${report.finalPath})` : ""}`);
	if (report.error) lines.push(`error: ${report.error}`);
	return lines.join("\n");
}

/**
 * Punch a ↔ b once, hold the session for holdMs (running `during` alongside, e.g. fault injection),
 * and print its events and interruptions (JSON with `json`). Exit code: ok when the pair is
 * connected at the end.
 */
export async function holdAndReport(lab: Lab, a: string, b: string, options: HoldAndReportOptions, io: Io): Promise<number> {
	const session = await PunchSession.start(lab);
	let held: HeldSession | undefined;
	let report: HoldReport;
	try {
		held = await HeldSession.open(session, a, b, { relay: options.relay ?? true, keepaliveMs: options.keepaliveMs, lossAfterMs: options.lossAfterMs, portMapping: options.portMapping, family: options.family });
		const connected = held.events.find((event) => event.kind === "connected");
		const origin = connected?.at ?? performance.now();
		const path = held.state === "connected" ? (held.path ?? null) : null;
		let error: string | undefined;
		if (connected) {
			const sleep = new Promise((resolve) => setTimeout(resolve, Math.max(0, origin + options.holdMs - performance.now())));
			const during = options.during?.(held).catch((problem: unknown) => {
				error = String((problem as Error)?.message ?? problem);
			});
			await Promise.all([sleep, during]);
		} else error = held.events.find((event) => event.kind === "failed")?.detail ?? "the pair did not connect";
		report = holdReport(held, origin, { holdMs: options.holdMs, labName: options.labName ?? lab.name, path, error });
	} finally {
		await held?.close().catch(() => undefined);
		await session.close();
	}
	if (options.json) io.json(report);
	else io.out(renderHoldReport(report));
	return report.state === "connected" && !report.error ? ExitCode.ok : ExitCode.failure;
}
