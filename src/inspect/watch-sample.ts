// What `testbed watch` shows of a running lab, read from the kernel in one sample: each NAT's live
// table (nat-table.ts), how many unsolicited packets its filter dropped, and every link's packet
// counters. Per namespace and sample: one `ip -s -j link`, and in a NAT also what `readNatTable` runs
// (conntrack -L, one nft) and one nft for the drop counter. Then, pure: what changed between two
// samples, as events (mappings created and expired, drops).
import type { Lab, LabNode } from "../resolve/lab.ts";
import { inNamespace } from "../render/batch.ts";
import { run } from "../apply/run.ts";
import type { JournalEntry } from "../apply/journal.ts";
import { readNatTable, type NatFlow, type NatMapping } from "./nat-table.ts";

export interface NatSample {
	name: string;
	/** "port-restricted cone", and the RFC 4787 words. */
	behaviour: string;
	filtering: string;
	publicAddress: string;
	flows: NatFlow[];
	mappings: NatMapping[];
	/** Packets its filter dropped since `up` (the counter on the input chain's drop rule). */
	dropped: number;
}

export interface Counters {
	packets: number;
	bytes: number;
}

/** One end of a link as the kernel sees it: what it sent into the link, and whether it is up. */
export interface LinkEndSample {
	node: string;
	iface: string;
	/** Undefined when the interface could not be read (its node's namespace is gone). */
	sent?: Counters;
	up?: boolean;
}

export interface LinkSample {
	ends: [LinkEndSample, LinkEndSample];
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
	sent: Counters;
	up: boolean;
}

/** `ip -s -j link` of one namespace → each interface's transmit counters and state. */
export function parseLinkStats(json: string): Map<string, LinkStats> {
	const stats = new Map<string, LinkStats>();
	let parsed: { ifname?: string; operstate?: string; flags?: string[]; stats64?: { tx?: { packets?: number; bytes?: number } } }[];
	try {
		parsed = JSON.parse(json);
	} catch {
		return stats;
	}
	for (const link of Array.isArray(parsed) ? parsed : []) {
		if (!link.ifname) continue;
		const up = link.operstate === "UP" || (link.operstate === "UNKNOWN" && (link.flags ?? []).includes("LOWER_UP"));
		stats.set(link.ifname, { sent: { packets: link.stats64?.tx?.packets ?? 0, bytes: link.stats64?.tx?.bytes ?? 0 }, up });
	}
	return stats;
}

/** The packets counted by the first rule with a counter in `nft -j list chain …` (the NAT's drop rule). */
export function parseDropCounter(json: string): number {
	try {
		const parsed = JSON.parse(json) as { nftables?: { rule?: { expr?: Record<string, { packets?: number }>[] } }[] };
		for (const item of parsed.nftables ?? []) for (const expr of item.rule?.expr ?? []) if (expr.counter?.packets !== undefined) return expr.counter.packets;
	} catch {}
	return 0;
}

/** The namespaces a sample reads interfaces in: every node at the end of a link. */
function linkedNodes(lab: Lab): LabNode[] {
	const names = new Set(lab.links.flatMap((link) => link.endpoints.map((end) => end.node)));
	return lab.nodes.filter((node) => names.has(node.name));
}

/** Read the lab once: every NAT's table and drops, every link's counters. Commands run in parallel, one per namespace and tool. */
export async function sampleLab(lab: Lab, signal?: AbortSignal): Promise<LabSample> {
	const nats = lab.nodes.filter((node) => node.nat);
	const [tables, drops, interfaces] = await Promise.all([
		Promise.all(nats.map((node) => readNatTable(lab, node.name))),
		Promise.all(nats.map((node) => run(inNamespace(node.netns, ["nft", "-j", "list", "chain", "ip", "testbed", "input"]), { signal }))),
		Promise.all(linkedNodes(lab).map(async (node) => [node.name, parseLinkStats((await run(inNamespace(node.netns, ["ip", "-s", "-j", "link", "show"]), { signal })).stdout)] as const)),
	]);
	const byNode = new Map(interfaces);
	return {
		at: Date.now(),
		nats: nats.map((node, index) => ({
			name: node.name,
			behaviour: tables[index].behaviour,
			filtering: node.nat!.behaviour.filtering,
			publicAddress: tables[index].publicAddress,
			flows: tables[index].flows,
			mappings: tables[index].mappings,
			dropped: parseDropCounter(drops[index].stdout),
		})),
		links: lab.links.map((link) => ({
			ends: link.endpoints.map((end) => {
				const stats = byNode.get(end.node)?.get(end.iface);
				return { node: end.node, iface: end.iface, ...(stats ? { sent: stats.sent, up: stats.up } : {}) };
			}) as [LinkEndSample, LinkEndSample],
		})),
	};
}

export const flowKey = (flow: NatFlow) => `${flow.proto} ${flow.inside} ${flow.public} ${flow.remote}`;

/** What happened between two samples: flows that appeared or went in each NAT, and packets its filter dropped. */
export function sampleChanges(before: LabSample, after: LabSample): WatchEvent[] {
	const events: WatchEvent[] = [];
	for (const nat of after.nats) {
		const old = before.nats.find((candidate) => candidate.name === nat.name);
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
