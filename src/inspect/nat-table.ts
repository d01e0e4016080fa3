// A node's live address translations, from the kernel: conntrack flows through it that something
// translated, and, for a NAT testbed built, its own mapping maps. Any node: a router where students
// added `iptables -t nat -A POSTROUTING -o eth1 -j MASQUERADE` by hand shows its translations too.
import { requireNode, type Lab, type LabNat, type LabNode } from "../resolve/lab.ts";
import { translation6 } from "../render/firewall6.ts";
import { NodeNotFoundError } from "../errors.ts";
import { inNamespace } from "../render/batch.ts";
import { parseNatState } from "../render/nat-state.ts";
import { run } from "../apply/run.ts";
import { readLeases } from "../apply/port-mapping.ts";
import { contains6 } from "../validate/addresses6.ts";

export interface NatFlow {
	proto: string;
	/** The inside endpoint, the public endpoint it is translated to, and the remote endpoint. */
	inside: string;
	public: string;
	remote: string;
	/** Who started the flow: the inside host (outbound) or the outside (let in by a filter, or hairpin). */
	direction: "outbound" | "inbound";
	state: string;
	secondsLeft: number;
}

export interface NatMapping {
	/** From testbed's maps: protocol and public port → inside endpoint, with seconds to live. */
	proto: string;
	publicPort: number;
	inside: string;
	secondsLeft: number;
}

export interface NatTable {
	lab: string;
	/** The node's name (a NAT, or any node whose own rules translate). */
	nat: string;
	/** The NAT's public address; for a node testbed did not build as a NAT, the addresses its translations use ("" when none). */
	publicAddress: string;
	behaviour: string;
	flows: NatFlow[];
	mappings: NatMapping[];
	/** A NAT that offers port mapping: its protocols and the mappings its daemon has granted now. */
	portMapping?: { protocols: string[]; granted: GrantedMapping[] };
	/** A gateway with IPv6: its firewall's filtering, what it translates (NPTv6, NAT66; absent: routed) and the flows it lets through now. */
	firewall6?: { filtering: string; translation?: string; flows: NatFlow[] };
	at: string;
	/** Whether the node is a NAT of the lab's file (false: translations by rules added by hand, or none). */
	declared: boolean;
}

/** A port mapping a client was granted (UPnP-IGD, NAT-PMP or PCP), from the daemon's lease file. */
export interface GrantedMapping {
	/** The protocol the client asked with. */
	via: string;
	proto: string;
	public: string;
	inside: string;
	/** null: no end (a UPnP mapping asked with lease 0). */
	secondsLeft: number | null;
	description: string;
}

/** What a NAT's daemon has granted, as nat-table shows it. */
export function grantedMappings(lab: string, node: LabNode, nowS = Math.floor(Date.now() / 1000)): GrantedMapping[] {
	return readLeases(lab, node.name)
		.filter((lease) => lease.expires === 0 || lease.expires > nowS)
		.map((lease) => ({ via: lease.protocol, proto: lease.proto, public: `${node.nat?.publicAddress}:${lease.publicPort}`, inside: `${lease.insideAddress}:${lease.insidePort}`, secondsLeft: lease.expires === 0 ? null : lease.expires - nowS, description: lease.description }))
		.sort((a, b) => a.public.localeCompare(b.public, undefined, { numeric: true }) || a.proto.localeCompare(b.proto));
}

/** A flow nothing translated, sent to the node's own address and never answered: what a NAT without hairpin does with a packet from its inside to its public address. */
export interface UnansweredFlow {
	proto: string;
	from: string;
	to: string;
	secondsLeft: number;
}

/** The NAT named `name`: an unknown node or a node that is not a NAT is a usage mistake, with the NATs there are. */
export function natNode(lab: Lab, name: string): LabNode {
	const nats = lab.nodes.filter((candidate) => candidate.nat).map((candidate) => candidate.name);
	const node = lab.nodes.find((candidate) => candidate.name === name);
	if (!node) throw new NodeNotFoundError(`lab "${lab.name}" has no node "${name}"; NATs: ${nats.join(", ") || "none"}`);
	if (!node.nat) throw new NodeNotFoundError(`"${name}" in lab "${lab.name}" is a ${node.kind}, not a NAT; NATs: ${nats.join(", ") || "none"}`);
	return node;
}

interface ConntrackLine {
	proto: string;
	secondsLeft: number;
	state: string;
	original: { src: string; dst: string; sport?: string; dport?: string };
	reply: { src: string; dst: string; sport?: string; dport?: string };
}

const endpoint = (ip: string, port?: string) => (port ? `${ip}:${port}` : ip);

/** Each line of `conntrack -L`: its original tuple first, its reply tuple second. */
function conntrackLines(text: string): ConntrackLine[] {
	const lines: ConntrackLine[] = [];
	for (const line of text.split("\n")) {
		const proto = /^(\w+)\s+\d+\s+(\d+)\s/.exec(line);
		if (!proto) continue;
		const fields = (name: string) => [...line.matchAll(new RegExp(`\\b${name}=(\\S+)`, "g"))].map((match) => match[1]);
		const [src, replySrc] = fields("src");
		const [dst, replyDst] = fields("dst");
		const [sport, replySport] = fields("sport");
		const [dport, replyDport] = fields("dport");
		if (!src || !dst || !replySrc || !replyDst) continue;
		const state = /\[(ASSURED|UNREPLIED)\]/.exec(line)?.[1] ?? (/\s(ESTABLISHED|SYN_SENT|TIME_WAIT|CLOSE)\s/.exec(line)?.[1] ?? "seen both ways");
		lines.push({ proto: proto[1], secondsLeft: Number(proto[2]), state, original: { src, dst, sport, dport }, reply: { src: replySrc, dst: replyDst, sport: replySport, dport: replyDport } });
	}
	return lines;
}

/**
 * The translated flows of `conntrack -L`: a reply addressed elsewhere than the original source is
 * source NAT (the inside started it: outbound), a reply from elsewhere than the original destination
 * is destination NAT (the outside started it, let in by a filter or a port forward: inbound).
 * Untranslated flows — the node's own traffic, or traffic it only routes — are left out; with
 * `publicAddress`, so is everything the NAT box itself sent from it.
 */
export function parseConntrack(text: string, publicAddress?: string): NatFlow[] {
	const flows: NatFlow[] = [];
	for (const { proto, secondsLeft, state, original: o, reply: r } of conntrackLines(text)) {
		if (publicAddress && o.src === publicAddress) continue; // the NAT box's own traffic
		const sourceNat = r.dst !== o.src || r.dport !== o.sport;
		const destinationNat = r.src !== o.dst || r.sport !== o.dport;
		if (sourceNat) flows.push({ proto, inside: endpoint(o.src, o.sport), public: endpoint(r.dst, r.dport), remote: endpoint(o.dst, o.dport), direction: "outbound", state, secondsLeft });
		else if (destinationNat) flows.push({ proto, inside: endpoint(r.src, r.sport), public: endpoint(o.dst, o.dport), remote: endpoint(o.src, o.sport), direction: "inbound", state, secondsLeft });
	}
	return flows.sort((a, b) => a.public.localeCompare(b.public) || a.remote.localeCompare(b.remote));
}

/**
 * The flows an IPv6 firewall lets through, from `conntrack -L -f ipv6`: those with an inside address
 * at one end (`inside` holds the gateway's inside prefixes' test). Nothing is translated, so the
 * public endpoint is the inside one.
 */
export function parseFirewallFlows(text: string, isInside: (ip: string) => boolean): NatFlow[] {
	const flows: NatFlow[] = [];
	for (const { proto, secondsLeft, state, original: o, reply: r } of conntrackLines(text)) {
		const v6 = (ip: string, port?: string) => (port ? `[${ip}]:${port}` : ip);
		// The public endpoint is the inside one, unless NPTv6 rewrote the prefix (the reply tuple says).
		if (isInside(o.src) && !isInside(o.dst)) flows.push({ proto, inside: v6(o.src, o.sport), public: v6(r.dst, r.dport), remote: v6(o.dst, o.dport), direction: "outbound", state, secondsLeft });
		else if (isInside(r.src) && !isInside(o.src)) flows.push({ proto, inside: v6(r.src, r.sport), public: v6(o.dst, o.dport), remote: v6(o.src, o.sport), direction: "inbound", state, secondsLeft });
	}
	return flows.sort((a, b) => a.inside.localeCompare(b.inside) || a.remote.localeCompare(b.remote));
}

/** Untranslated, unanswered flows to `address` from elsewhere: packets a NAT without hairpin took for itself (and no program wanted). */
export function parseUnanswered(text: string, address: string): UnansweredFlow[] {
	return conntrackLines(text)
		.filter(({ state, original: o, reply: r }) => state === "UNREPLIED" && o.dst === address && o.src !== address && r.src === o.dst && r.dst === o.src && r.dport === o.sport)
		.map(({ proto, secondsLeft, original: o }) => ({ proto, from: endpoint(o.src, o.sport), to: endpoint(o.dst, o.dport), secondsLeft }));
}

/**
 * A node's translations from its `conntrack -L` and the public address they use: a NAT of the file
 * has its own (its own traffic from it left out); any other node, the addresses its flows were
 * translated to ("" when none).
 */
export function nodeTranslations(node: LabNode, conntrack: string): { flows: NatFlow[]; publicAddress: string } {
	const flows = parseConntrack(conntrack, node.nat?.publicAddress);
	const publicAddress = node.nat ? (node.nat.publicAddress ?? "") : [...new Set(flows.map((flow) => flow.public.replace(/:\d+$/, "")))].join(", ");
	return { flows, publicAddress };
}

/** The `translation` field of an IPv6 gateway's table: present only where it translates. */
function withTranslation(firewall6: NonNullable<LabNat["firewall6"]>): { translation?: string } {
	const translation = translation6(firewall6);
	return translation ? { translation } : {};
}

/** The node's table and, from the same read of conntrack, the unanswered flows to its public address (for `punch --explain`). */
export async function readNatState(lab: Lab, node: LabNode, options: { mappings?: boolean } = {}): Promise<{ table: NatTable; unanswered: UnansweredFlow[] }> {
	const maps = node.nat && options.mappings !== false ? run(inNamespace(node.netns, ["nft", "-j", "list", "map", "ip", "testbed", "public"])) : undefined;
	const firewall6 = node.nat?.firewall6 ? run(inNamespace(node.netns, ["conntrack", "-L", "-f", "ipv6"])) : undefined;
	const conntrack = (await run(inNamespace(node.netns, ["conntrack", "-L"]))).stdout;
	const insidePrefixes = node.interfaces.filter((iface) => node.nat?.inside.includes(iface.name)).flatMap((iface) => (iface.addresses6 ?? []).map((address) => address.network));
	const mappings: NatMapping[] = maps ? (parseNatState((await maps).stdout, ["public"]).get("public") ?? []).map((element) => ({ proto: String(element.key[0]), publicPort: Number(element.key[1]), inside: `${element.value![0]}:${element.value![1]}`, secondsLeft: element.secondsLeft ?? 0 })) : [];
	const { flows, publicAddress } = nodeTranslations(node, conntrack);
	return {
		table: {
			lab: lab.name,
			nat: node.name,
			publicAddress,
			behaviour: node.nat ? node.nat.behaviour.label : `a ${node.kind} with no NAT in the lab's file: translations by its own rules`,
			flows,
			mappings: mappings.sort((a, b) => a.publicPort - b.publicPort),
			...(node.nat?.portMapping ? { portMapping: { protocols: node.nat.portMapping.protocols, granted: grantedMappings(lab.name, node) } } : {}),
			...(firewall6 ? { firewall6: { filtering: node.nat!.firewall6!.filtering, ...withTranslation(node.nat!.firewall6!), flows: parseFirewallFlows((await firewall6).stdout, (ip) => insidePrefixes.some((prefix) => ip.includes(":") && contains6(prefix, ip))) } } : {}),
			at: new Date().toISOString(),
			declared: Boolean(node.nat),
		},
		unanswered: node.nat?.publicAddress ? parseUnanswered(conntrack, node.nat.publicAddress) : [],
	};
}

/** The live table of any node of the lab (an unknown node is a usage mistake naming the nodes). */
export async function readNatTable(lab: Lab, name: string): Promise<NatTable> {
	return (await readNatState(lab, requireNode(lab, name))).table;
}
