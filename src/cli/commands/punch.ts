// `testbed punch LAB A B [--runs N]`: outcome, time to connect, packets sent, RTT; with runs, rates and percentiles.
import { punch } from "../../agents/punch.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { expectedPunch } from "../../expect/theory.ts";
import { percentile } from "../../expect/run.ts";
import { table, type Io } from "../io.ts";

export async function punchCommand(labName: string, a: string, b: string, options: { json?: boolean; runs?: string; "no-relay"?: boolean }, io: Io): Promise<number> {
	requireRoot("punch");
	const runs = options.runs === undefined ? 1 : Number(options.runs);
	if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new UsageError(`--runs must be a whole number from 1 to 1000, not "${options.runs}"`);
	const lab = requireLedger(labName).resolved;
	const results = await punch(lab, a, b, { runs, relay: !options["no-relay"] });
	const connected = results.filter((result) => result.outcome !== "failed");
	const times = connected.map((result) => result.timeToConnectMs!).filter((value) => value !== null);
	const summary = {
		lab: labName,
		a,
		b,
		expected: expectedPunch(lab, a, b),
		runs: results.length,
		successRate: results.length ? connected.length / results.length : 0,
		outcomes: Object.fromEntries([...new Set(results.map((result) => result.outcome))].map((outcome) => [outcome, results.filter((result) => result.outcome === outcome).length])),
		timeToConnectMs: { p50: percentile(times, 50), p95: percentile(times, 95) },
		rttMs: percentile(connected.map((result) => result.rttMs!).filter((value) => value !== null), 50),
		results,
	};
	if (options.json) io.json(summary);
	else {
		const rows = results.map((result, index) => [String(index + 1), result.outcome, result.timeToConnectMs === null ? "-" : `${result.timeToConnectMs < 10 ? result.timeToConnectMs.toFixed(1) : Math.round(result.timeToConnectMs)} ms`, String(result.packetsSent), result.rttMs === null ? "-" : `${result.rttMs.toFixed(2)} ms`, result.remote ? `${a} → ${result.remote.a}, ${b} → ${result.remote.b}` : result.error ?? ""]);
		io.out(`punch ${a} ↔ ${b} in lab "${labName}" (theory for their NATs: ${summary.expected})\n`);
		io.out(table([["run", "outcome", "time to connect", "packets", "rtt", "path (who sends where)"], ...rows]));
		if (runs > 1)
			io.out(`\nsuccess ${Math.round(summary.successRate * 100)}% (${Object.entries(summary.outcomes).map(([outcome, count]) => `${count} ${outcome}`).join(", ")}); time to connect p50 ${summary.timeToConnectMs.p50 ?? "-"} ms, p95 ${summary.timeToConnectMs.p95 ?? "-"} ms; rtt p50 ${summary.rttMs?.toFixed(2) ?? "-"} ms`);
	}
	return connected.length === results.length ? ExitCode.ok : ExitCode.failure;
}
