// `testbed punch LAB A B [--runs N]`: outcome, time to connect, packets sent, RTT; with runs, rates and percentiles.
import { punch, PunchSession, type PunchResult } from "../../agents/punch.ts";
import { explainPunch, renderExplanation, type Explanation } from "../../inspect/explain.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { expectedPunch } from "../../expect/theory.ts";
import { percentile } from "../../expect/run.ts";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startCapture, type Capture } from "../../inspect/capture.ts";
import type { Lab, LabNode } from "../../resolve/lab.ts";
import { defaultPath } from "../../resolve/paths.ts";
import { table, type Io } from "../io.ts";

/** Where to capture a peer's side: the outside of the first NAT in front of it, else its own link. */
function sideOf(lab: Lab, peer: string): { node: LabNode; iface: string } | undefined {
	const node = lab.nodes.find((candidate) => candidate.name === peer);
	if (!node) return undefined;
	const nat = defaultPath(lab, node).nats[0];
	const natNode = nat ? lab.nodes.find((candidate) => candidate.name === nat) : undefined;
	if (natNode?.nat) return { node: natNode, iface: natNode.nat.outside };
	const link = node.interfaces.find((iface) => iface.type === "veth");
	return link ? { node, iface: link.name } : undefined;
}

export async function punchCommand(labName: string, a: string, b: string, options: { json?: boolean; runs?: string; "no-relay"?: boolean; capture?: string; explain?: boolean }, io: Io): Promise<number> {
	requireRoot("punch");
	const runs = options.runs === undefined ? 1 : Number(options.runs);
	if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new UsageError(`--runs must be a whole number from 1 to 1000, not "${options.runs}"`);
	const lab = requireLedger(labName).resolved;
	const captures: Capture[] = [];
	if (options.capture) {
		mkdirSync(options.capture, { recursive: true });
		const sides = [sideOf(lab, a), sideOf(lab, b)].filter((side): side is { node: LabNode; iface: string } => Boolean(side));
		for (const side of sides.filter((side, index) => sides.findIndex((other) => other.node === side.node && other.iface === side.iface) === index))
			captures.push(await startCapture(side.node, side.iface, { file: join(options.capture, `${side.node.name}-${side.iface}.pcap`) }));
	}
	let results: PunchResult[];
	let explanation: Explanation | undefined;
	try {
		if (options.explain) {
			// One run, sampled: the NATs' tables and drop counters while it happens.
			const session = await PunchSession.start(lab);
			try {
				const explained = await explainPunch(lab, a, b, () => session.punch(a, b, { relay: !options["no-relay"] }));
				results = [explained.result];
				explanation = explained.explanation;
			} finally {
				await session.close();
			}
		} else results = await punch(lab, a, b, { runs, relay: !options["no-relay"] });
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
		expected: expectedPunch(lab, a, b),
		runs: results.length,
		successRate: results.length ? connected.length / results.length : 0,
		outcomes: Object.fromEntries([...new Set(results.map((result) => result.outcome))].map((outcome) => [outcome, results.filter((result) => result.outcome === outcome).length])),
		timeToConnectMs: { p50: percentile(times, 50), p95: percentile(times, 95) },
		rttMs: percentile(connected.map((result) => result.rttMs!).filter((value) => value !== null), 50),
		results,
	};
	if (options.json) io.json(explanation ? { ...summary, explanation } : summary);
	else {
		const rows = results.map((result, index) => [String(index + 1), result.outcome, result.timeToConnectMs === null ? "-" : `${result.timeToConnectMs < 10 ? result.timeToConnectMs.toFixed(1) : Math.round(result.timeToConnectMs)} ms`, String(result.packetsSent), result.rttMs === null ? "-" : `${result.rttMs.toFixed(2)} ms`, result.remote ? `${a} → ${result.remote.a}, ${b} → ${result.remote.b}` : result.error ?? ""]);
		io.out(`punch ${a} ↔ ${b} in lab "${labName}" (theory for their NATs: ${summary.expected})\n`);
		io.out(table([["run", "outcome", "time to connect", "packets", "rtt", "path (who sends where)"], ...rows]));
		if (runs > 1)
			io.out(`\nsuccess ${Math.round(summary.successRate * 100)}% (${Object.entries(summary.outcomes).map(([outcome, count]) => `${count} ${outcome}`).join(", ")}); time to connect p50 ${summary.timeToConnectMs.p50 ?? "-"} ms, p95 ${summary.timeToConnectMs.p95 ?? "-"} ms; rtt p50 ${summary.rttMs?.toFixed(2) ?? "-"} ms`);
	}
	if (explanation && !options.json) io.out(`\n${renderExplanation(explanation)}`);
	return connected.length === results.length ? ExitCode.ok : ExitCode.failure;
}
