// Run the checks of a lab (its `expect:` list, or theory for every pair of peers) and compare
// measured with expected. The lab must be up; this starts and stops the agents it needs.
import type { PunchOutcome, PunchProto } from "../vocabulary/punch.ts";
import type { LabCheck, UserCheck } from "../resolve/commands.ts";
import { runUserChecks, type ProgramRun } from "./user-checks.ts";
import type { Lab } from "../resolve/lab.ts";
import { PunchSession, type PunchOptions, type PunchResult } from "../drivers/punch.ts";
import { probeLab, type NatVerdict } from "../drivers/probe.ts";
import { reachMatrix, type ReachMatrix, type ReachProto } from "../drivers/reach.ts";
import { expectedOutcomes, labPeers, labPeers6, peerModel } from "./theory.ts";

/** What a punch check's name says of its transport, family and port mapping: "", " (tcp)", " (ipv6)", " (tcp, port mapping)". */
export const punchVariant = (proto?: PunchProto, family?: 4 | 6, portMapping?: readonly PortMappingProtocol[]): string => {
	const words = [...(proto && proto !== "udp" ? [proto] : []), ...(family === 6 ? ["ipv6"] : []), ...(portMapping?.length ? [portMappingWords(portMapping)] : [])];
	return words.length ? ` (${words.join(", ")})` : "";
};
import { explainPunch, type Explanation } from "../inspect/explain.ts";
import { askingOrder, type PortMappingProtocol } from "../vocabulary/port-mapping.ts";

/** "port mapping" (every protocol, in the usual order), or "port mapping: upnp". */
const portMappingWords = (protocols: readonly PortMappingProtocol[]) => (protocols.join() === askingOrder.join() ? "port mapping" : `port mapping: ${protocols.join(", ")}`);

export interface CheckResult {
	/** e.g. "punch alice ↔ bob". */
	name: string;
	kind: "punch" | "reach" | "probe" | "step" | "run" | "pair" | "matrix";
	expected: string;
	measured: string;
	ok: boolean;
	/** Where the check is written (absent for checks from theory). */
	line?: number;
	/** Punch checks: the transport (absent: UDP) and the address family (absent: IPv4). */
	proto?: PunchProto;
	family?: 6;
	/** Punch checks whose peers asked their NATs for a port mapping first: the protocols. */
	portMapping?: PortMappingProtocol[];
	/** Extra facts: per-run punch results, probe verdict. */
	runs?: PunchResult[];
	stats?: { successRate: number; p50Ms: number | null; p95Ms: number | null; rttMs: number | null };
	probe?: NatVerdict;
	/** Why it failed, in words. */
	why?: string;
	/** For a failed punch: a timeline of the NATs during one more run, and a verdict. */
	explanation?: Explanation;
	/** Steps: when the step began, ms after the first step. */
	atMs?: number;
	/** Steps: why this host could not do it (it counts as passed, and says so). */
	skipped?: string;
	/** Steps: from the last event to the pair's first keepalive round trip after it. */
	reconnectMs?: number;
	/** The user's programs as they ran (run, pair and matrix checks): command, exit, duration, last output. */
	programs?: ProgramRun[];
	/** Pair and matrix checks: who dialed whom. */
	pair?: { dialer: string; listener: string };
	/** Pair and matrix checks: what theory says a hole punch between the two gives. */
	theory?: string;
	/** The last JSON line the dialer printed (e.g. {"rtt_ms": 12, "path": "direct"}). */
	result?: Record<string, unknown>;
}

export interface TestReport {
	lab: string;
	file: string;
	checks: CheckResult[];
	passed: number;
	failed: number;
	durationMs: number;
	fromTheory: boolean;
	/** What `test` changed or left out on this host (impairments it cannot do), in words. */
	notes?: string[];
}

export interface RunOptions {
	/** Runs per punch check (a check's own `runs:` wins). */
	runs?: number;
	punch?: PunchOptions;
	/** Explain failed punches (one extra sampled run each); default true. */
	explain?: boolean;
	onCheck?: (check: CheckResult) => void;
}

/**
 * Checks for a lab without `expect:`: every pair of peers, expecting what theory says, for each
 * protocol asked (UDP by default) — over IPv4, and over IPv6 too between the peers that have it. In a
 * lab where some NAT offers port mapping, the IPv4 pairs once more with the peers asking for one
 * first: the matrix with and without port mapping, side by side.
 */
export function theoryChecks(lab: Lab, protos: readonly PunchProto[] = ["udp"]): LabCheck[] {
	const checks: LabCheck[] = [];
	const at = { line: 0, col: 0 };
	const mapping = lab.nodes.some((node) => node.nat?.portMapping);
	const variants = [[4, labPeers(lab), undefined], [6, labPeers6(lab), undefined], ...(mapping ? [[4, labPeers(lab), [...askingOrder]] as const] : [])] as const;
	for (const [family, peers, portMapping] of variants)
		for (const proto of protos)
			for (let i = 0; i < peers.length; i++)
				for (let j = i + 1; j < peers.length; j++)
					checks.push({ kind: "punch", pos: at, a: { value: peers[i], pos: at }, b: { value: peers[j], pos: at }, ...(proto === "udp" ? {} : { proto }), ...(family === 6 ? { family } : {}), ...(portMapping ? { portMapping: [...portMapping] } : {}) });
	return checks;
}

export function percentile(values: number[], p: number): number | null {
	if (values.length === 0) return null;
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Which outcomes pass a punch between a and b: the written ones, else theory's (lan and hairpin
 * count as each other; where theory says it is a race — plain MASQUERADE against another NAT — either).
 */
export function acceptedOutcomes(lab: Lab, a: string, b: string, written?: PunchOutcome[], proto: PunchProto = "udp", family: 4 | 6 = 4, portMapping: readonly PortMappingProtocol[] = []): PunchOutcome[] {
	if (written) return written;
	const predicted = expectedOutcomes(lab, a, b, proto, family, portMapping);
	return predicted.includes("lan") || predicted.includes("hairpin") ? ["lan", "hairpin"] : predicted;
}

/**
 * How long a UDP pair that theory (or the file) says can only end relayed punches before the relay:
 * where a UDP path exists, the first rounds find it (tens of ms; a loaded machine, a few hundred), so
 * waiting out the default 3 s only delays the verdict; a pair that does connect is caught in those rounds.
 */
export const relayedDeadlineMs = 1500;

export async function runChecks(lab: Lab, checks: LabCheck[], options: RunOptions = {}): Promise<CheckResult[]> {
	// Results in the order of the checks; a matrix check gives one result per pair.
	const results: CheckResult[][] = checks.map(() => []);
	const record = (index: number, result: CheckResult) => {
		results[index].push(result);
		options.onCheck?.(result);
	};
	const user = checks.map((check, index) => ({ check, index })).filter((entry): entry is { check: UserCheck; index: number } => entry.check.kind === "run" || entry.check.kind === "pair" || entry.check.kind === "matrix");
	if (user.length > 0) await runUserChecks(lab, user.map(({ check }) => check), (result, k) => record(user[k].index, result));
	const punches = checks.map((check, index) => ({ check, index })).filter((entry): entry is PunchEntry => entry.check.kind === "punch");
	if (punches.length > 0) {
		const session = await PunchSession.start(lab);
		try {
			const maxRuns = Math.max(...punches.map(({ check }) => check.runs?.value ?? options.runs ?? 1));
			const perCheck = new Map<number, PunchResult[]>();
			for (let run = 0; run < maxRuns; run++) {
				const due = punches.filter(({ check }) => run < (check.runs?.value ?? options.runs ?? 1));
				for (const batch of punchBatches(lab, due, options.punch)) {
					const outcomes = await session.punchMany(batch.entries.map(({ check }) => [check.a.value, check.b.value] as [string, string]), batch.options);
					batch.entries.forEach(({ index }, k) => perCheck.set(index, [...(perCheck.get(index) ?? []), { ...outcomes[k], run }]));
				}
			}
			for (const { check, index } of punches) {
				const result = judgePunch(lab, check, perCheck.get(index) ?? []);
				// A failed punch gets one more run, sampled, to say why.
				if (!result.ok && options.explain !== false)
					result.explanation = (await explainPunch(lab, check.a.value, check.b.value, () => session.punch(check.a.value, check.b.value, { ...options.punch, proto: check.proto ?? "udp", family: check.family ?? 4, ...(check.portMapping ? { portMapping: check.portMapping } : {}) }))).explanation;
				record(index, result);
			}
		} finally {
			await session.close();
		}
	}
	const reachChecks = checks.map((check, index) => ({ check, index })).filter((entry): entry is { check: Extract<LabCheck, { kind: "reach" }>; index: number } => entry.check.kind === "reach");
	const matrices = new Map<ReachProto, ReachMatrix>();
	for (const proto of new Set(reachChecks.map(({ check }) => check.proto))) matrices.set(proto, await reachMatrix(lab, { proto }));
	for (const { check, index } of reachChecks) {
		const cell = matrices.get(check.proto)!.cells.find((entry) => entry.from === check.from.value && entry.to === check.to.value);
		const measured = !cell || cell.addresses.length === 0 ? "unknown" : cell.ok ? "reaches" : "does not reach";
		const expected = check.result ? "reaches" : "does not reach";
		record(index, {
			name: `reach ${check.from.value} → ${check.to.value} (${check.proto})`,
			kind: "reach",
			expected,
			measured,
			ok: measured === expected,
			line: check.pos.line || undefined,
			why: measured === expected ? undefined : measured === "unknown" ? "the target has no address only it holds (ICMP cannot tell who answered)" : `${check.from.value} ${measured} ${check.to.value} over ${check.proto}`,
		});
	}
	const probeChecks = checks.map((check, index) => ({ check, index })).filter((entry): entry is { check: Extract<LabCheck, { kind: "probe" }>; index: number } => entry.check.kind === "probe");
	if (probeChecks.length > 0) {
		const report = await probeLab(lab, { nats: [...new Set(probeChecks.map(({ check }) => check.nat.value))] });
		for (const { check, index } of probeChecks) record(index, judgeProbe(check, report.nats.find((verdict) => verdict.nat === check.nat.value)!));
	}
	return results.flat();
}

type PunchEntry = { check: Extract<LabCheck, { kind: "punch" }>; index: number };

/**
 * The punches of one run in batches that punch at once: those of one transport, family and port
 * mapping share peer agents. UDP pairs that can only end relayed form batches of their own with
 * relayedDeadlineMs (a UDP path that exists connects in the first rounds) — not behind plain
 * MASQUERADE, whose kept packets make the outcome depend on the rounds played, nor with a deadline or
 * max-time of the caller's.
 */
function punchBatches(lab: Lab, due: PunchEntry[], punch: PunchOptions = {}): { entries: PunchEntry[]; options: PunchOptions }[] {
	const racy = (peer: string) => Boolean(peerModel(lab, lab.nodes.find((node) => node.name === peer)!).nat?.keepsUnsolicited);
	const batches = new Map<string, { entries: PunchEntry[]; options: PunchOptions }>();
	for (const entry of due) {
		const { check } = entry;
		const [proto, family] = [check.proto ?? "udp", check.family ?? 4] as const;
		const relayedOnly =
			proto === "udp" && punch.deadlineMs === undefined && !check.maxTimeMs && !racy(check.a.value) && !racy(check.b.value) && acceptedOutcomes(lab, check.a.value, check.b.value, check.result?.value, proto, family, check.portMapping).join() === "relayed";
		const key = `${check.portMapping?.join() ?? ""} ${family} ${proto} ${relayedOnly}`;
		if (!batches.has(key)) batches.set(key, { entries: [], options: { ...punch, proto, family, ...(relayedOnly ? { deadlineMs: relayedDeadlineMs } : {}), ...(check.portMapping ? { portMapping: check.portMapping } : {}) } });
		batches.get(key)!.entries.push(entry);
	}
	return [...batches.values()];
}

function judgePunch(lab: Lab, check: Extract<LabCheck, { kind: "punch" }>, runs: PunchResult[]): CheckResult {
	const accepted = acceptedOutcomes(lab, check.a.value, check.b.value, check.result?.value, check.proto, check.family, check.portMapping);
	const times = runs.filter((run) => run.timeToConnectMs !== null && run.outcome !== "failed").map((run) => run.timeToConnectMs!);
	const rtts = runs.filter((run) => run.rttMs !== null).map((run) => run.rttMs!);
	const outcomes = [...new Set(runs.map((run) => run.outcome))];
	const slow = check.maxTimeMs ? runs.filter((run) => run.timeToConnectMs !== null && run.timeToConnectMs > check.maxTimeMs!.value) : [];
	const wrong = runs.filter((run) => !accepted.includes(run.outcome));
	const ok = runs.length > 0 && wrong.length === 0 && slow.length === 0;
	const why = !ok
		? wrong.length > 0
			? `${wrong.length} of ${runs.length} runs ended ${[...new Set(wrong.map((run) => run.outcome))].join("/")}${wrong.find((run) => run.error) ? ` (${wrong.find((run) => run.error)!.error})` : ""}`
			: slow.length > 0
				? `${slow.length} of ${runs.length} runs took longer than ${check.maxTimeMs!.value} ms`
				: "no run completed"
		: undefined;
	return {
		name: `punch ${check.a.value} ↔ ${check.b.value}${punchVariant(check.proto, check.family, check.portMapping)}`,
		kind: "punch",
		...(check.proto && check.proto !== "udp" ? { proto: check.proto } : {}),
		...(check.family === 6 ? { family: 6 as const } : {}),
		...(check.portMapping ? { portMapping: check.portMapping } : {}),
		expected: accepted.join(" or ") + (check.maxTimeMs ? ` within ${check.maxTimeMs.value} ms` : ""),
		measured: outcomes.join("/") || "nothing",
		ok,
		line: check.pos.line || undefined,
		runs,
		stats: { successRate: runs.length ? (runs.length - wrong.length) / runs.length : 0, p50Ms: percentile(times, 50), p95Ms: percentile(times, 95), rttMs: percentile(rtts, 50) },
		why,
	};
}

function judgeProbe(check: Extract<LabCheck, { kind: "probe" }>, verdict: NatVerdict): CheckResult {
	const measured = verdict.measured;
	const wanted: [string, string | boolean | undefined, string | boolean | null | undefined][] = [
		["mapping", check.mapping, measured?.mapping],
		["filtering", check.filtering, measured?.filtering],
		["hairpin", check.hairpin, measured?.hairpin],
		["port-preservation", check.portPreservation, measured?.portPreservation],
	];
	const asked = wanted.filter(([, expected]) => expected !== undefined);
	// Without explicit expectations the declared behaviour is the expectation.
	const differences = asked.length > 0 ? asked.filter(([, expected, got]) => expected !== got).map(([name, expected, got]) => `${name}: expected ${expected}, measured ${got}`) : verdict.mismatches;
	const show = (values: [string, unknown][]) => values.map(([name, value]) => `${name}=${String(value)}`).join(" ");
	return {
		name: `probe ${check.nat.value}`,
		kind: "probe",
		expected: asked.length > 0 ? show(asked.map(([name, expected]) => [name, expected])) : `as declared (${verdict.declared})`,
		measured: measured ? show([["mapping", measured.mapping], ["filtering", measured.filtering], ["hairpin", measured.hairpin], ["port-preservation", measured.portPreservation]]) : verdict.note ?? "not measured",
		ok: Boolean(measured) && !measured?.error && differences.length === 0,
		line: check.pos.line || undefined,
		probe: verdict,
		why: differences.join("; ") || measured?.error || (measured ? undefined : verdict.note),
	};
}
