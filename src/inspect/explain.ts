// "Why did the punch fail?": one timeline joining the punch outcome, the NATs' mapping changes and
// their drop counters, sampled while the punch runs, ending in a verdict in plain words.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { defaultPath } from "../resolve/routing.ts";
import { inNamespace } from "../render/batch.ts";
import { run } from "../apply/run.ts";
import { readNatTable, type NatFlow } from "./nat-table.ts";
import type { PunchResult } from "../drivers/punch.ts";
import { rendezvousPort } from "../vocabulary/punch.ts";

/** A flow to or from the rendezvous agent (its remote ends in the rendezvous port). */
const rendezvousSuffix = `:${rendezvousPort}`;

export interface TimelineEvent {
	atMs: number;
	where: string;
	what: string;
}

export interface Explanation {
	a: string;
	b: string;
	outcome: string;
	timeline: TimelineEvent[];
	verdict: string;
}

interface Side {
	peer: string;
	nat?: LabNode;
}

/** Unsolicited UDP the NAT dropped (the counter on its input chain's drop rule). */
async function droppedCount(nat: LabNode): Promise<number> {
	const result = await run(inNamespace(nat.netns, ["nft", "-j", "list", "chain", "ip", "testbed", "input"]));
	try {
		const parsed = JSON.parse(result.stdout) as { nftables: { rule?: { expr: Record<string, { packets?: number }>[] } }[] };
		for (const item of parsed.nftables) for (const expr of item.rule?.expr ?? []) if (expr.counter?.packets !== undefined) return expr.counter.packets;
	} catch {}
	return 0;
}

const flowKey = (flow: NatFlow) => `${flow.proto} ${flow.inside} ${flow.public} ${flow.remote}`;

/** Sample the NATs in front of `a` and `b` while `punch` runs; then explain. */
export async function explainPunch(lab: Lab, a: string, b: string, punch: () => Promise<PunchResult>): Promise<{ result: PunchResult; explanation: Explanation }> {
	const sides: Side[] = [a, b].map((peer) => {
		const node = lab.nodes.find((candidate) => candidate.name === peer)!;
		const nat = defaultPath(lab, node).nats[0];
		return { peer, nat: lab.nodes.find((candidate) => candidate.name === nat) };
	});
	const nats = [...new Set(sides.map((side) => side.nat).filter((nat): nat is LabNode => Boolean(nat)))];
	const timeline: TimelineEvent[] = [];
	const seen = new Map<string, Set<string>>(nats.map((nat) => [nat.name, new Set<string>()]));
	const drops = new Map<string, number>();
	const flows = new Map<string, NatFlow[]>();
	const dropRuns = new Map<string, { first: number; last: number; packets: number }>();
	for (const nat of nats) {
		drops.set(nat.name, await droppedCount(nat));
		const table = await readNatTable(lab, nat.name);
		for (const flow of table.flows) seen.get(nat.name)!.add(flowKey(flow));
	}
	const started = performance.now();
	const sample = async () => {
		for (const nat of nats) {
			const table = await readNatTable(lab, nat.name);
			flows.set(nat.name, table.flows);
			for (const flow of table.flows) {
				if (seen.get(nat.name)!.has(flowKey(flow))) continue;
				seen.get(nat.name)!.add(flowKey(flow));
				const who = sides.find((side) => side.nat === nat)?.peer ?? "inside";
				timeline.push({
					atMs: Math.round(performance.now() - started),
					where: `nat ${nat.name}`,
					what: flow.direction === "outbound" ? `new mapping: ${who} ${flow.inside} → ${flow.public} ↔ ${flow.remote}` : `let in: ${flow.remote} → ${flow.public} → ${flow.inside}`,
				});
			}
			const count = await droppedCount(nat);
			if (count > drops.get(nat.name)!) {
				const at = Math.round(performance.now() - started);
				const run = dropRuns.get(nat.name) ?? { first: at, last: at, packets: 0 };
				run.last = at;
				run.packets += count - drops.get(nat.name)!;
				dropRuns.set(nat.name, run);
				drops.set(nat.name, count);
			}
		}
	};
	let done = false;
	const sampler = (async () => {
		while (!done) {
			await sample();
			await new Promise((resolve) => setTimeout(resolve, 30));
		}
	})();
	let result: PunchResult;
	try {
		result = await punch();
	} finally {
		done = true;
		await sampler;
	}
	await sample();
	for (const [name, drop] of dropRuns) {
		const nat = nats.find((candidate) => candidate.name === name)!;
		const span = drop.first === drop.last ? "" : ` until +${drop.last} ms`;
		timeline.push({ atMs: drop.first, where: `nat ${name}`, what: `dropped ${drop.packets} unsolicited packet${drop.packets === 1 ? "" : "s"}${span} (${nat.nat!.behaviour.filtering} filtering)` });
	}
	timeline.push({ atMs: Math.round(performance.now() - started), where: "agents", what: result.outcome === "failed" ? `failed${result.error ? `: ${result.error}` : ""}` : `connected (${result.outcome}) after ${result.timeToConnectMs?.toFixed(1)} ms from the start signal` });
	timeline.sort((x, y) => x.atMs - y.atMs);
	return { result, explanation: { a, b, outcome: result.outcome, timeline, verdict: verdict(lab, sides, result, flows, timeline) } };
}

function verdict(lab: Lab, sides: Side[], result: PunchResult, flows: Map<string, NatFlow[]>, timeline: TimelineEvent[]): string {
	const [sa, sb] = sides;
	if (result.outcome === "lan") return `${sa.peer} and ${sb.peer} share a LAN: their host candidates answered, no NAT in between.`;
	if (result.outcome === "hairpin") return `${sa.peer} and ${sb.peer} sit behind the same NAT and reached each other through its public address (hairpinning).`;
	const describe = (side: Side) => (side.nat ? `${side.peer}'s NAT ${side.nat.name} (${side.nat.nat!.behaviour.label}: ${side.nat.nat!.behaviour.mapping} mapping, ${side.nat.nat!.behaviour.filtering} filtering)` : `${side.peer} (no NAT)`);
	if (result.outcome === "direct") return `${sa.peer} and ${sb.peer} connected directly through ${describe(sa)} and ${describe(sb)}: each side's packets reached a mapping the other side had opened.`;
	// Relayed or failed: find the NAT that dropped the other side's packets, and why.
	const reasons: string[] = [];
	for (const [self, other] of [
		[sa, sb],
		[sb, sa],
	] as const) {
		if (!self.nat) continue;
		const dropped = timeline.some((event) => event.where === `nat ${self.nat!.name}` && event.what.startsWith("dropped"));
		if (!dropped) continue;
		const mine = (flows.get(self.nat.name) ?? []).filter((flow) => flow.direction === "outbound");
		const theirs = other.nat ? (flows.get(other.nat.name) ?? []).filter((flow) => flow.direction === "outbound") : [];
		const theyCameFrom = [...new Set(theirs.filter((flow) => !flow.remote.endsWith(rendezvousSuffix)).map((flow) => flow.public))];
		const rendezvousSaw = theirs.find((flow) => flow.remote.endsWith(rendezvousSuffix))?.public;
		// The other side aims at the public endpoint the rendezvous saw for us; what has that mapping sent to?
		const target = mine.find((flow) => flow.remote.endsWith(rendezvousSuffix))?.public;
		const allowed = [...new Set(mine.filter((flow) => flow.public === target).map((flow) => (flow.remote.endsWith(rendezvousSuffix) ? `the rendezvous (${flow.remote})` : flow.remote)))];
		const b = self.nat.nat!.behaviour;
		let why = `${other.peer}'s packets${target ? ` to ${target}` : ""} were dropped at nat ${self.nat.name} (${b.filtering} filtering)`;
		if (allowed.length > 0) why += `: that mapping had sent only to ${allowed.join(" and ")}`;
		if (other.nat && other.nat.nat!.behaviour.mapping !== "endpoint-independent" && theyCameFrom.length > 0)
			why += `, but ${other.peer}'s NAT ${other.nat.name} maps ${other.nat.nat!.behaviour.mapping === "address-dependent" ? "per remote address" : "per remote address and port"} (a new public port per destination): ${other.peer}'s packets came from ${theyCameFrom.join(", ")}, not from ${rendezvousSaw ?? "the endpoint the rendezvous saw"}`;
		reasons.push(`${why}.`);
	}
	const fallback = result.outcome === "relayed" ? "The pair fell back to the rendezvous relay." : "No relay was allowed, so the punch failed.";
	if (reasons.length === 0) return `${describe(sa)} and ${describe(sb)}: no direct path was confirmed before the deadline. ${fallback}`;
	return `${reasons.join(" ")} ${fallback}`;
}

export function renderExplanation(explanation: Explanation): string {
	const lines = [`why ${explanation.a} ↔ ${explanation.b} ended ${explanation.outcome}:`, ""];
	for (const event of explanation.timeline) lines.push(`  +${String(event.atMs).padStart(5)} ms  ${event.where.padEnd(14)} ${event.what}`);
	lines.push("", `verdict: ${explanation.verdict}`);
	return `${lines.join("\n")}\n`;
}
