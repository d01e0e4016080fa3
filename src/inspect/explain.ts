// "Why did the punch fail?": one timeline joining the punch outcome, the mapping changes and drop
// counters of every NAT between the pair (carrier NATs included), sampled while the punch runs,
// ending in a verdict in plain words that names the NAT that dropped the packets.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { inNamespace } from "../render/batch.ts";
import { run } from "../apply/run.ts";
import { readNatState, type NatFlow, type UnansweredFlow } from "./nat-table.ts";
import { natPath, peerBehind, type NatPath } from "./nat-path.ts";
import { parseDropCounter } from "./watch-sample.ts";
import type { PunchResult } from "../drivers/punch.ts";
import { rendezvousPort } from "../vocabulary/punch.ts";

/** A flow to or from the rendezvous agent (its remote ends in the rendezvous port). */
const rendezvousSuffix = `:${rendezvousPort}`;
const toRendezvous = (flow: NatFlow) => flow.remote.endsWith(rendezvousSuffix);

export interface TimelineEvent {
	atMs: number;
	where: string;
	what: string;
}

/** Packets a NAT on the path dropped: unsolicited ones from its outside (its filter), or ones from its inside to its own public address (no hairpin). */
export interface NatDrop {
	nat: string;
	why: "filtering" | "hairpin";
	packets: number;
}

export interface Explanation {
	a: string;
	b: string;
	outcome: string;
	/** Every NAT between the pair, in the order a's packets meet them. */
	nats: string[];
	timeline: TimelineEvent[];
	drops: NatDrop[];
	verdict: string;
}

/** One look at a NAT: its translated flows, its unanswered flows to itself, and its two drop counters. */
interface NatSample {
	flows: NatFlow[];
	unanswered: UnansweredFlow[];
	filtered: number;
	noPorts: number;
}

/** Unsolicited UDP the NAT dropped (the counter on its input chain's drop rule). */
async function filteredCount(nat: LabNode): Promise<number> {
	return parseDropCounter((await run(inNamespace(nat.netns, ["nft", "-j", "list", "chain", "ip", "testbed", "input"]))).stdout);
}

/** UDP the node received for itself on a port no socket had (`Udp: NoPorts`): a NAT without hairpin takes its inside's packets to its public address for itself. */
async function noPortsCount(node: LabNode): Promise<number> {
	return parseNoPorts((await run(inNamespace(node.netns, ["cat", "/proc/net/snmp"]))).stdout);
}

/** The `NoPorts` counter of /proc/net/snmp's two `Udp:` lines (names, then values); 0 when absent. */
export function parseNoPorts(snmp: string): number {
	const [names, values] = snmp.split("\n").filter((line) => line.startsWith("Udp:")).map((line) => line.split(/\s+/));
	const index = names?.indexOf("NoPorts") ?? -1;
	return index > 0 && values ? Number(values[index]) || 0 : 0;
}

async function sampleNat(lab: Lab, nat: LabNode): Promise<NatSample> {
	const [state, filtered, noPorts] = await Promise.all([readNatState(lab, nat, { mappings: false }), filteredCount(nat), noPortsCount(nat)]);
	return { flows: state.table.flows, unanswered: state.unanswered, filtered, noPorts };
}

const flowKey = (flow: NatFlow) => `${flow.proto} ${flow.inside} ${flow.public} ${flow.remote}`;
const unansweredKey = (flow: UnansweredFlow) => `${flow.proto} ${flow.from} ${flow.to}`;
const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;

/** Sample every NAT between `a` and `b` while `punch` runs; then explain. */
export async function explainPunch(lab: Lab, a: string, b: string, punch: () => Promise<PunchResult>): Promise<{ result: PunchResult; explanation: Explanation }> {
	const path = natPath(lab, a, b);
	const who = (nat: LabNode, endpoint: string) => peerBehind(path, lab, nat, endpoint.replace(/:\d+$/, "")) ?? "inside";
	const timeline: TimelineEvent[] = [];
	const seen = new Map<string, Set<string>>(path.nats.map((nat) => [nat.name, new Set<string>()]));
	const last = new Map<string, NatSample>();
	const baseline = new Map<string, NatSample>();
	const runs = new Map<string, { first: number; last: number; packets: number }>();
	for (const [nat, sample] of await Promise.all(path.nats.map(async (nat) => [nat, await sampleNat(lab, nat)] as const))) {
		baseline.set(nat.name, sample);
		last.set(nat.name, sample);
		for (const flow of sample.flows) seen.get(nat.name)!.add(flowKey(flow));
		for (const flow of sample.unanswered) seen.get(nat.name)!.add(unansweredKey(flow));
	}
	const started = performance.now();
	const since = () => Math.round(performance.now() - started);
	const counted = (key: string, before: number, now: number) => {
		if (now <= before) return;
		const at = since();
		const entry = runs.get(key) ?? { first: at, last: at, packets: 0 };
		entry.last = at;
		entry.packets += now - before;
		runs.set(key, entry);
	};
	const sample = async () => {
		const samples = await Promise.all(path.nats.map(async (nat) => [nat, await sampleNat(lab, nat)] as const));
		for (const [nat, now] of samples) {
			const known = seen.get(nat.name)!;
			for (const flow of now.flows) {
				if (known.has(flowKey(flow))) continue;
				known.add(flowKey(flow));
				timeline.push({
					atMs: since(),
					where: `nat ${nat.name}`,
					what: flow.direction === "outbound" ? `new mapping: ${who(nat, flow.inside)} ${flow.inside} → ${flow.public} ↔ ${flow.remote}` : `let in: ${flow.remote} → ${flow.public} → ${flow.inside}`,
				});
			}
			for (const flow of now.unanswered) {
				if (known.has(unansweredKey(flow))) continue;
				known.add(unansweredKey(flow));
				timeline.push({ atMs: since(), where: `nat ${nat.name}`, what: `not turned round: ${who(nat, flow.from)} ${flow.from} → ${flow.to}, its own public address (hairpin ${nat.nat!.behaviour.hairpin ? "on" : "off"})` });
			}
			const before = last.get(nat.name)!;
			counted(`${nat.name} filtering`, before.filtered, now.filtered);
			counted(`${nat.name} hairpin`, before.noPorts, now.noPorts);
			last.set(nat.name, now);
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
	const drops: NatDrop[] = [];
	for (const nat of path.nats)
		for (const why of ["filtering", "hairpin"] as const) {
			const drop = runs.get(`${nat.name} ${why}`);
			if (!drop) continue;
			drops.push({ nat: nat.name, why, packets: drop.packets });
			const span = drop.first === drop.last ? "" : ` until +${drop.last} ms`;
			const b = nat.nat!.behaviour;
			const what = why === "filtering" ? `dropped ${plural(drop.packets, "unsolicited packet")}${span} (${b.filtering} filtering)` : `dropped ${plural(drop.packets, "packet")} from its inside to its own public address${span} (hairpin ${b.hairpin ? "on" : "off"})`;
			timeline.push({ atMs: drop.first, where: `nat ${nat.name}`, what });
		}
	timeline.push({ atMs: since(), where: "agents", what: result.outcome === "failed" ? `failed${result.error ? `: ${result.error}` : ""}` : `connected (${result.outcome}) after ${result.timeToConnectMs?.toFixed(1)} ms from the start signal` });
	timeline.sort((x, y) => x.atMs - y.atMs);
	const unanswered = new Map(path.nats.map((nat) => [nat.name, last.get(nat.name)!.unanswered.filter((flow) => !baseline.get(nat.name)!.unanswered.some((old) => unansweredKey(old) === unansweredKey(flow)))]));
	const flows = new Map(path.nats.map((nat) => [nat.name, last.get(nat.name)!.flows]));
	const explanation = { a, b, outcome: result.outcome, nats: path.nats.map((nat) => nat.name), timeline, drops, verdict: explainVerdict({ path, a, b, result, flows, unanswered, drops, who }) };
	return { result, explanation };
}

/** What a verdict is made from: the path, the outcome, and what the NATs on the path showed. */
export interface VerdictFacts {
	path: NatPath;
	a: string;
	b: string;
	result: PunchResult;
	/** Each NAT's translated flows at the end, and its unanswered flows to itself that the punch made. */
	flows: Map<string, NatFlow[]>;
	unanswered: Map<string, UnansweredFlow[]>;
	drops: NatDrop[];
	who: (nat: LabNode, endpoint: string) => string;
}

const natWords = (nat: LabNode) => `${nat.name} (${nat.nat!.behaviour.label}: ${nat.nat!.behaviour.mapping} mapping, ${nat.nat!.behaviour.filtering} filtering)`;
const and = (words: string[]) => (words.length <= 1 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`);

/** The verdict in plain words: how the pair connected, or which NAT on the path dropped whose packets, and why. */
export function explainVerdict(facts: VerdictFacts): string {
	const { path, a, b, result } = facts;
	const describe = (peer: string) => {
		const chain = path.chains[peer];
		if (chain.length === 0) return `${peer} (no NAT)`;
		return `${peer}'s NAT${chain.length === 1 ? "" : "s"} ${and(chain.map(natWords))}`;
	};
	if (result.outcome === "lan") return `${a} and ${b} share a LAN: their host candidates answered, no NAT in between.`;
	if (result.outcome === "hairpin") {
		const nat = path.hairpin;
		return `${a} and ${b} sit behind the same NAT${nat ? ` ${nat.name}` : ""} and reached each other through its public address${nat?.nat?.publicAddress ? ` ${nat.nat.publicAddress}` : ""} (hairpinning).`;
	}
	if (result.outcome === "direct") return `${a} and ${b} connected directly through ${describe(a)} and ${describe(b)}: each side's packets reached a mapping the other side had opened.`;
	// Relayed or failed: find the NATs that dropped the pair's packets, and why.
	const reasons = [...hairpinReasons(facts), ...filterReasons(facts)];
	const fallback = result.outcome === "relayed" ? "The pair fell back to the rendezvous relay." : "No relay was allowed, so the punch failed.";
	if (reasons.length > 0) return `${reasons.join(" ")} ${fallback}`;
	const turn = path.hairpin && !path.hairpin.nat!.behaviour.hairpin ? ` Both are behind ${path.hairpin.name}, which does not hairpin.` : "";
	return `${describe(a)} and ${describe(b)}: no direct path was confirmed before the deadline.${turn} ${fallback}`;
}

/** A NAT in front of both peers that took their packets to its public address for itself instead of turning them round. */
function hairpinReasons({ path, a, b, unanswered, drops, who }: VerdictFacts): string[] {
	const reasons: string[] = [];
	for (const nat of path.shared) {
		const flows = unanswered.get(nat.name) ?? [];
		const dropped = drops.find((drop) => drop.nat === nat.name && drop.why === "hairpin");
		if (flows.length === 0 && !dropped) continue;
		const behaviour = nat.nat!.behaviour;
		const why = behaviour.hairpin ? "which did not turn them round" : `which does not hairpin (${behaviour.label}: hairpin off)`;
		const senders = [...new Set(flows.map((flow) => who(nat, flow.from)))].sort((x, y) => Number(x !== a) - Number(y !== a));
		const targets = (sender: string) => [...new Set(flows.filter((flow) => who(nat, flow.from) === sender).map((flow) => flow.to))];
		const sent = senders.length
			? and(senders.map((sender) => `${sender}'s packets to ${and(targets(sender))}${sender === a || sender === b ? ` (the public endpoint the rendezvous saw for ${sender === a ? b : a})` : ""}`))
			: `${plural(dropped!.packets, "packet")} from its inside to its own public address ${nat.nat!.publicAddress}`;
		reasons.push(`${sent} reached nat ${nat.name} from its inside and were dropped there: ${a} and ${b} are both behind ${nat.name}, ${why}.`);
	}
	return reasons;
}

/** A NAT in front of one peer whose filter dropped the other peer's packets, and why the mapping did not let them in. */
function filterReasons({ path, a, b, flows, drops }: VerdictFacts): string[] {
	const reasons: string[] = [];
	const outbound = (nat: LabNode) => (flows.get(nat.name) ?? []).filter((flow) => flow.direction === "outbound");
	for (const [self, other] of [
		[a, b],
		[b, a],
	] as const) {
		for (const nat of path.chains[self].filter((candidate) => !path.shared.includes(candidate))) {
			if (!drops.some((drop) => drop.nat === nat.name && drop.why === "filtering")) continue;
			const mine = outbound(nat);
			// The other side aims at the public endpoint the rendezvous saw for us; what has that mapping sent to?
			const target = mine.find(toRendezvous)?.public;
			const allowed = [...new Set(mine.filter((flow) => flow.public === target).map((flow) => (toRendezvous(flow) ? `the rendezvous (${flow.remote})` : flow.remote)))];
			let why = `${other}'s packets${target ? ` to ${target}` : ""} were dropped at nat ${nat.name} (${nat.nat!.behaviour.filtering} filtering)`;
			if (allowed.length > 0) why += `: that mapping had sent only to ${allowed.join(" and ")}`;
			// A NAT on the other side that maps per destination sends the punch from another public port than the rendezvous saw.
			const mapper = path.chains[other].find((candidate) => !path.shared.includes(candidate) && candidate.nat!.behaviour.mapping !== "endpoint-independent");
			if (mapper) {
				const theirs = outbound(mapper);
				const cameFrom = [...new Set(theirs.filter((flow) => !toRendezvous(flow)).map((flow) => flow.public))];
				const rendezvousSaw = theirs.find(toRendezvous)?.public;
				if (cameFrom.length > 0)
					why += `, but ${other}'s NAT ${mapper.name} maps ${mapper.nat!.behaviour.mapping === "address-dependent" ? "per remote address" : "per remote address and port"} (a new public port per destination): ${other}'s packets came from ${cameFrom.join(", ")}, not from ${rendezvousSaw ?? "the endpoint the rendezvous saw"}`;
			}
			reasons.push(`${why}.`);
		}
	}
	return reasons;
}

export function renderExplanation(explanation: Explanation, heading = `why ${explanation.a} ↔ ${explanation.b} ended ${explanation.outcome}:`): string {
	const lines = [heading, ""];
	for (const event of explanation.timeline) lines.push(`  +${String(event.atMs).padStart(5)} ms  ${event.where.padEnd(14)} ${event.what}`);
	lines.push("", `verdict: ${explanation.verdict}`);
	return `${lines.join("\n")}\n`;
}

/** A verdict with its ports and counts masked, so runs that failed the same way read the same. */
export function verdictShape(verdict: string): string {
	return verdict.replace(/(\d+\.\d+\.\d+\.\d+):\d+/g, "$1:PORT").replace(/\b\d+ (packets?)\b/g, "N $1");
}

/** Several runs' explanations in a few lines: the verdicts, ports masked (each with the runs that reached it), and where packets were dropped. */
export function summarizeExplanations(explanations: Explanation[]): { verdicts: { verdict: string; runs: number[] }[]; drops: { nat: string; why: NatDrop["why"]; runs: number[] }[] } {
	const verdicts: { verdict: string; runs: number[] }[] = [];
	const drops: { nat: string; why: NatDrop["why"]; runs: number[] }[] = [];
	explanations.forEach((explanation, index) => {
		const shape = verdictShape(explanation.verdict);
		const found = verdicts.find((candidate) => candidate.verdict === shape);
		if (found) found.runs.push(index + 1);
		else verdicts.push({ verdict: shape, runs: [index + 1] });
		for (const drop of explanation.drops) {
			const entry = drops.find((candidate) => candidate.nat === drop.nat && candidate.why === drop.why);
			if (entry) entry.runs.push(index + 1);
			else drops.push({ nat: drop.nat, why: drop.why, runs: [index + 1] });
		}
	});
	return { verdicts, drops };
}
