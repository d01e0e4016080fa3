// What `testbed watch` shows of a running lab, read from the kernel in one sample: each NAT's live
// flows (conntrack, read as nat-table.ts reads it), how many unsolicited packets its filter dropped,
// and every link's packet counters. One process per namespace read, and only as many namespaces as
// cover every link (the NATs, then the routers they hang on). Then, pure: what changed between two
// samples, as events (mappings created and expired, drops).
import type { Lab, LabNode } from "../resolve/lab.ts";
import { inNamespace } from "../render/batch.ts";
import { run } from "../apply/run.ts";
import type { JournalEntry } from "../apply/journal.ts";
import { nodeTranslations, type NatFlow } from "./nat-table.ts";

export interface NatSample {
	name: string;
	/** "port-restricted cone", and the RFC 4787 words. */
	behaviour: string;
	filtering: string;
	publicAddress: string;
	flows: NatFlow[];
	/** Packets its filter dropped since `up` (the counter on the input chain's drop rule). */
	dropped: number;
}

export interface Counters {
	packets: number;
	bytes: number;
}

export interface LinkSample {
	ends: [{ node: string; iface: string }, { node: string; iface: string }];
	/**
	 * Packets each end sent into the link, both read at one end (its transmit and receive counters:
	 * one namespace read covers the link); undefined when that end could not be read.
	 */
	packets?: [number, number];
	/** Whether the link carries traffic (the read end's state: a veth is down when either end is). */
	up?: boolean;
}

export interface LabSample {
	/** Date.now() when the sample was taken. */
	at: number;
	nats: NatSample[];
	links: LinkSample[];
}

/** Something that happened, as the page lists it: from the samples' difference or from the lab's journal. */
export type WatchEvent =
	| { kind: "mapping-created" | "mapping-expired"; at: number; nat: string; flow: NatFlow }
	| { kind: "dropped"; at: number; nat: string; packets: number; filtering: string }
	| JournalEntry;

/** Everything the page shows, as the server holds it (report/watch-page.ts draws it). */
export interface WatchView {
	lab: string;
	/** The lab's picture (`testbed graph`'s SVG). */
	svg: string;
	/** The latest sample, and the one before it (for packets per second); none before the first. */
	sample?: LabSample;
	previous?: LabSample;
	/** Oldest first; the page shows the newest on top. */
	events: WatchEvent[];
	/** Minutes east of UTC, for the clock times on the page (the server's local time). */
	utcOffsetMinutes: number;
	/** Why the last sample failed (the lab was taken down…), shown until one succeeds. */
	problem?: string;
}

interface LinkStats {
	sent: number;
	received: number;
	up: boolean;
}

/** `ip -s -j link` of one namespace → each interface's packet counters and state. */
export function parseLinkStats(json: string): Map<string, LinkStats> {
	const stats = new Map<string, LinkStats>();
	let parsed: { ifname?: string; operstate?: string; flags?: string[]; stats64?: { tx?: { packets?: number }; rx?: { packets?: number } } }[];
	try {
		parsed = JSON.parse(json);
	} catch {
		return stats;
	}
	for (const link of Array.isArray(parsed) ? parsed : []) {
		if (!link.ifname) continue;
		const up = link.operstate === "UP" || (link.operstate === "UNKNOWN" && (link.flags ?? []).includes("LOWER_UP"));
		stats.set(link.ifname, { sent: link.stats64?.tx?.packets ?? 0, received: link.stats64?.rx?.packets ?? 0, up });
	}
	return stats;
}

/** The packets counted by every rule with a counter in `nft -j list chain …` (the NAT's unsolicited drops, and resets where it answers with one). */
export function parseDropCounter(json: string): number {
	try {
		const parsed = JSON.parse(json) as { nftables?: { rule?: { expr?: Record<string, { packets?: number }>[] } }[] };
		let packets = 0;
		for (const item of parsed.nftables ?? []) for (const expr of item.rule?.expr ?? []) packets += expr.counter?.packets ?? 0;
		return packets;
	} catch {
		return 0;
	}
}

/**
 * Which nodes a sample reads, and at which end each link is read: every NAT and every router (their
 * conntrack is read anyway: a router may translate by rules a student typed), then, while a link is
 * left, the node at the end of the most links left (the first in file order on a tie). In a star of
 * homes around one router: the NATs and the router.
 */
export function readingPlan(lab: Lab): { nodes: LabNode[]; readAt: (0 | 1)[] } {
	const chosen = new Set(lab.nodes.filter((node) => node.nat || node.kind === "router").map((node) => node.name));
	const left = () => lab.links.filter((link) => !link.endpoints.some((end) => chosen.has(end.node)));
	for (let links = left(); links.length > 0; links = left()) {
		const count = new Map<string, number>();
		for (const link of links) for (const end of link.endpoints) count.set(end.node, (count.get(end.node) ?? 0) + 1);
		const best = lab.nodes.filter((node) => count.has(node.name)).reduce((a, b) => (count.get(b.name)! > count.get(a.name)! ? b : a));
		chosen.add(best.name);
	}
	return { nodes: lab.nodes.filter((node) => chosen.has(node.name)), readAt: lab.links.map((link) => (chosen.has(link.endpoints[0].node) ? 0 : 1)) };
}

/**
 * One process per namespace and sample (`nsenter` becomes `sh`): its interfaces' counters and, in a
 * NAT ($1 = nat) or a router ($1 = router), conntrack's table, and in a NAT the filter's drop rule,
 * each part after a line $2.
 */
const sampleScript = `ip -s -j link show
if [ "$1" = nat ] || [ "$1" = router ]; then printf '\n%s\n' "$2"; conntrack -L 2>/dev/null; fi
if [ "$1" = nat ]; then printf '\n%s\n' "$2"; nft -j list chain ip testbed input 2>/dev/null; fi
exit 0`;
const separator = "--testbed-watch--";

/** Read the lab once: every NAT's flows and drops, every link's counters; the namespaces in parallel. */
export async function sampleLab(lab: Lab, signal?: AbortSignal): Promise<LabSample> {
	const plan = readingPlan(lab);
	const role = (node: LabNode) => (node.nat ? "nat" : node.kind === "router" ? "router" : "");
	const outputs = await Promise.all(plan.nodes.map((node) => run(inNamespace(node.netns, ["sh", "-c", sampleScript, "sh", role(node), separator]), { signal })));
	const read = new Map(plan.nodes.map((node, index) => [node.name, outputs[index].stdout.split(`\n${separator}\n`)]));
	const interfaces = new Map([...read].map(([name, [ip]]) => [name, parseLinkStats(ip ?? "")]));
	return {
		at: Date.now(),
		nats: plan.nodes.flatMap((node) => {
			const [, conntrack = "", drops = ""] = read.get(node.name)!;
			const { flows, publicAddress } = nodeTranslations(node, conntrack);
			if (node.nat) return [{ name: node.name, behaviour: node.nat.behaviour.label, filtering: node.nat.behaviour.filtering, publicAddress, flows, dropped: parseDropCounter(drops) }];
			// A router shows as a NAT only while it translates: rules typed by hand (`iptables … -j MASQUERADE`).
			return flows.length ? [{ name: node.name, behaviour: "router translating by its own rules", filtering: "", publicAddress, flows, dropped: 0 }] : [];
		}),
		links: lab.links.map((link, index) => {
			const at = plan.readAt[index];
			const stats = interfaces.get(link.endpoints[at].node)?.get(link.endpoints[at].iface);
			const ends = link.endpoints.map(({ node, iface }) => ({ node, iface })) as LinkSample["ends"];
			if (!stats) return { ends };
			return { ends, packets: at === 0 ? [stats.sent, stats.received] : [stats.received, stats.sent], up: stats.up };
		}),
	};
}
export const flowKey = (flow: NatFlow) => `${flow.proto} ${flow.inside} ${flow.public} ${flow.remote}`;

/** What happened between two samples: flows that appeared or went in each NAT, and packets its filter dropped. */
export function sampleChanges(before: LabSample, after: LabSample): WatchEvent[] {
	const events: WatchEvent[] = [];
	for (const nat of after.nats) {
		// A NAT of the file not in the earlier sample (it failed): no changes yet. A router that starts
		// translating (a MASQUERADE typed by hand; no filtering of its own) had no table: its flows are new.
		const old = before.nats.find((candidate) => candidate.name === nat.name) ?? (nat.filtering ? undefined : { flows: [], dropped: 0 });
		if (!old) continue;
		const had = new Map(old.flows.map((flow) => [flowKey(flow), flow]));
		const has = new Map(nat.flows.map((flow) => [flowKey(flow), flow]));
		for (const [key, flow] of has) if (!had.has(key)) events.push({ kind: "mapping-created", at: after.at, nat: nat.name, flow });
		for (const [key, flow] of had) if (!has.has(key)) events.push({ kind: "mapping-expired", at: after.at, nat: nat.name, flow });
		// A counter that went down was reset (a NAT reboot reloads its rules): count from zero.
		const packets = nat.dropped >= old.dropped ? nat.dropped - old.dropped : nat.dropped;
		if (packets > 0) events.push({ kind: "dropped", at: after.at, nat: nat.name, packets, filtering: nat.filtering });
	}
	return events;
}
