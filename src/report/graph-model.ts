// A picture of a lab as a model: its sides (the public one, and behind each NAT, nested), nodes and
// links with the words drawn on them; graph-dot.ts and graph-mermaid.ts write it as text, with the
// colours and shapes of graph-style.ts. Pure and deterministic: the same lab gives the same picture.
//
// What the picture shows:
// - the public side as one blue cluster; everything behind a NAT as an orange cluster named after
//   that NAT, nested when NATs chain (a home NAT behind a carrier NAT);
// - a NAT sits on the side of its outside interface, so each orange cluster hangs below its NAT;
// - without a NAT, a node its neighbour has no route to (while it reaches the neighbour) is drawn
//   as unreachable from that neighbour, below it: the lecture's "unreachable peers" in namespace
//   unr, whose dummy 172.20.0.2 the host cannot route to;
// - shapes by kind: host box, router ellipse, NAT hexagon (with its type), switch parallelogram;
// - on every link, each end's interface and addresses (the end nearer the public side first),
//   and its impairments and MTU, with impaired links drawn in red.
import type { Lab, LabLink, LabNode } from "../resolve/lab.ts";
import { describeImpairment, formatSize } from "../validate/units.ts";
import { contains } from "../validate/addresses.ts";
import { short } from "../resolve/nat-behaviour.ts";
/** A side of the lab: the public one, the inside of one NAT, or what a node cannot route to. */
export interface GraphRegion {
	/** "public", the NAT's name prefixed "behind:", or the name of the node that cannot reach it prefixed "unreachable:". */
	id: string;
	/** The NAT whose inside this is; absent for the public side and for an unreachable side. */
	nat?: string;
	/** For an unreachable side: the neighbour that has no route to it. */
	from?: string;
	label: string;
	/** The region this one is nested in (a NAT behind a NAT); absent at the top level. */
	parent?: string;
	/** 0 for the public side and for the inside of a NAT on the public side, +1 per NAT nested. */
	depth: number;
	/** Node names placed directly in this region, in file order. */
	nodes: string[];
}

export interface GraphNode {
	name: string;
	kind: LabNode["kind"];
	/** Lines of the label: name, kind (NATs with their type), addresses on dummy interfaces. */
	lines: string[];
	region: string;
}

export interface GraphEdge {
	/** The end nearer the public side (drawn above), then the other one. */
	ends: [GraphEnd, GraphEnd];
	/** "delay 20ms jitter 2ms loss 1% rate 10mbit", "mtu 1400", or "" */
	impairment: string;
	impaired: boolean;
}

export interface GraphEnd {
	node: string;
	iface: string;
	/** CIDRs on that interface, e.g. ["192.168.1.2/24"]. */
	addresses: string[];
}

export interface LabGraph {
	name: string;
	regions: GraphRegion[];
	nodes: GraphNode[];
	edges: GraphEdge[];
}

const kindRank: Record<LabNode["kind"], number> = { router: 0, nat: 1, switch: 2, host: 3 };

/** The lab as regions, nodes and edges: what both renderers draw. */
export function labGraph(lab: Lab): LabGraph {
	const byName = new Map(lab.nodes.map((node) => [node.name, node]));
	const isNat = (name: string) => Boolean(byName.get(name)?.nat);
	const insideOf = (name: string, iface: string) => Boolean(byName.get(name)?.nat?.inside.includes(iface));

	// Non-NAT nodes joined by links that touch no NAT form components; NATs cut the graph.
	const component = new Map<string, string>();
	const find = (name: string): string => {
		let root = name;
		for (let next = component.get(root); next !== undefined && next !== root; next = component.get(root)) root = next;
		return root;
	};
	for (const node of lab.nodes) if (!node.nat) component.set(node.name, node.name);
	for (const link of lab.links) {
		const [a, b] = link.endpoints;
		if (isNat(a.node) || isNat(b.node) || !component.has(a.node) || !component.has(b.node)) continue;
		const [rootA, rootB] = [find(a.node), find(b.node)];
		if (rootA !== rootB) component.set(rootB, rootA);
	}

	// A component is behind the first NAT (in file order) whose inside interface links to it by a plugged-in link.
	const behind = new Map<string, string>();
	for (const nat of lab.nodes.filter((node) => node.nat))
		for (const link of lab.links) {
			if (link.down) continue;
			const [self, other] = link.endpoints[0].node === nat.name ? link.endpoints : link.endpoints[1].node === nat.name ? [link.endpoints[1], link.endpoints[0]] : [];
			if (!self || !other || !nat.nat?.inside.includes(self.iface) || !component.has(other.node)) continue;
			if (!behind.has(find(other.node))) behind.set(find(other.node), nat.name);
		}

	// A NAT sits in the region on its outside interface's side.
	const natPlace = new Map<string, string>();
	for (const nat of lab.nodes.filter((node) => node.nat)) {
		const link = lab.links.find((candidate) => candidate.endpoints.some((end) => end.node === nat.name && end.iface === nat.nat?.outside));
		const peer = link?.endpoints.find((end) => !(end.node === nat.name && end.iface === nat.nat?.outside));
		let place = "public";
		if (peer && component.has(peer.node)) place = regionId(behind.get(find(peer.node)));
		else if (peer && isNat(peer.node) && insideOf(peer.node, peer.iface)) place = regionId(peer.node);
		natPlace.set(nat.name, place);
	}
	// Nesting must be a tree: a NAT whose chain of outside sides loops is put on the public side.
	const parentOf = (nat: string) => natPlace.get(nat) ?? "public";
	for (const nat of natPlace.keys()) {
		const seen = new Set<string>([nat]);
		for (let region = parentOf(nat); region !== "public"; region = parentOf(region.slice("behind:".length))) {
			const owner = region.slice("behind:".length);
			if (seen.has(owner)) {
				natPlace.set(nat, "public");
				break;
			}
			seen.add(owner);
		}
	}

	const hidden = unreachableFrom(lab, (name) => component.has(name));
	const regionOf = (node: LabNode): string => (node.nat ? parentOf(node.name) : hidden.has(node.name) ? `unreachable:${hidden.get(node.name)}` : regionId(behind.get(find(node.name))));
	const regions = new Map<string, GraphRegion>();
	const region = (id: string): GraphRegion => {
		let found = regions.get(id);
		if (found) return found;
		if (id === "public") found = { id, label: "public side", depth: 0, nodes: [] };
		else if (id.startsWith("unreachable:")) {
			const from = id.slice("unreachable:".length);
			const parent = regionOf(byName.get(from)!);
			const outer = parent === "public" ? undefined : region(parent);
			found = { id, from, label: `unreachable from ${from}`, parent: outer?.id, depth: outer ? outer.depth + 1 : 0, nodes: [] };
		} else {
			const nat = id.slice("behind:".length);
			const parent = parentOf(nat);
			const outer = parent === "public" ? undefined : region(parent);
			found = { id, nat, label: `behind ${nat}`, parent: outer?.id, depth: outer ? outer.depth + 1 : 0, nodes: [] };
		}
		regions.set(id, found);
		return found;
	};
	const nodes: GraphNode[] = lab.nodes.map((node) => {
		const id = regionOf(node);
		region(id).nodes.push(node.name);
		return { name: node.name, kind: node.kind, lines: nodeLines(node), region: id };
	});

	const depth = (name: string) => {
		const id = nodes.find((node) => node.name === name)?.region ?? "public";
		return id === "public" ? 0 : (regions.get(id)?.depth ?? 0) + 1;
	};
	const order = (name: string) => [depth(name), kindRank[byName.get(name)?.kind ?? "host"], lab.nodes.findIndex((node) => node.name === name)];
	const edges = lab.links.map((link): GraphEdge => {
		const ends = link.endpoints.map((end) => ({ node: end.node, iface: end.iface, addresses: ((iface) => [...(iface?.addresses ?? []), ...(iface?.addresses6 ?? [])].map((address) => address.cidr))(byName.get(end.node)?.interfaces.find((iface) => iface.name === end.iface)) }));
		const [a, b] = [order(ends[0].node), order(ends[1].node)];
		const swap = a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
		const impairment = linkSummary(lab, link);
		return { ends: swap > 0 ? [ends[1], ends[0]] : [ends[0], ends[1]], impairment, impaired: link.endpoints.some((end) => egress(lab, end)) };
	});

	// Regions in a stable order: public first, then by their NAT's place in the file.
	const sorted = [...regions.values()].sort((x, y) => rank(x) - rank(y));
	function rank(r: GraphRegion): number {
		const owner = r.nat ?? r.from;
		return owner === undefined ? -1 : lab.nodes.findIndex((node) => node.name === owner);
	}
	return { name: lab.name, regions: sorted, nodes, edges };
}

/** Whether `node` has a route to `ip`: a subnet of one of its interfaces, a declared route, or a default route. */
function routesTo(node: LabNode, ip: string): boolean {
	return node.interfaces.some((iface) => iface.addresses.some((address) => contains(address.network, ip))) || node.routes.some((route) => route.family !== 6 && (route.to === "default" || contains(route.to.includes("/") ? route.to : `${route.to}/32`, ip)));
}

/**
 * Nodes, joined by a link that no NAT or switch is on, where one reaches every address of the other
 * but the other has no route to some address of the first: the first is unreachable from the
 * other (node → that neighbour). Nodes reachable from nowhere are left where they are, and a node
 * is hidden behind one neighbour that is not hidden itself.
 */
function unreachableFrom(lab: Lab, plain: (name: string) => boolean): Map<string, string> {
	const byName = new Map(lab.nodes.map((node) => [node.name, node]));
	const addresses = (node: LabNode) => node.interfaces.flatMap((iface) => iface.addresses.map((address) => address.ip));
	const misses = (from: LabNode, to: LabNode) => addresses(to).some((ip) => !routesTo(from, ip));
	const hidden = new Map<string, string>();
	for (const link of lab.links) {
		const [x, y] = link.endpoints.map((end) => byName.get(end.node));
		if (!x || !y || !plain(x.name) || !plain(y.name) || x.kind === "switch" || y.kind === "switch") continue;
		for (const [inner, outer] of [
			[x, y],
			[y, x],
		])
			if (misses(outer, inner) && !misses(inner, outer) && !hidden.has(inner.name)) hidden.set(inner.name, outer.name);
	}
	for (const [inner, outer] of hidden) if (hidden.has(outer)) hidden.delete(inner);
	return hidden;
}

export function regionId(nat: string | undefined): string {
	return nat === undefined ? "public" : `behind:${nat}`;
}

export function nodeLines(node: LabNode): string[] {
	const kind = node.nat ? `NAT ${node.nat.behaviour.label}` : node.kind;
	const firewall6 = node.nat?.firewall6 ? [`IPv6 firewall ${short(node.nat.firewall6.filtering)}F${node.nat.firewall6.npt ? ` · NPTv6 ${node.nat.firewall6.npt.outside}` : node.nat.firewall6.masquerade ? " · NAT66 masquerade" : ""}`] : [];
	const portMapping = node.nat?.portMapping ? [`port mapping: ${node.nat.portMapping.protocols.join(", ")}`] : [];
	// A dummy's addresses, a line per family (IPv6 ones are long).
	const dummies = node.interfaces
		.filter((iface) => iface.type === "dummy")
		.flatMap((iface) => [iface.addresses, iface.addresses6 ?? []].filter((list) => list.length > 0).map((list) => `${iface.name} ${list.map((address) => address.cidr).join(", ")}`));
	return [node.name, kind, ...firewall6, ...portMapping, ...dummies, ...containerLines(node)];
}

/** A node's limits and private directories, one line each: "0.25 cpu · 128M · 64 pids", "private /etc /tmp". */
export function containerLines(node: LabNode): string[] {
	const limits = node.limits ? [node.limits.cpu === undefined ? "" : `${node.limits.cpu} cpu`, node.limits.memoryBytes === undefined ? "" : formatSize(node.limits.memoryBytes), node.limits.pids === undefined ? "" : `${node.limits.pids} pids`].filter(Boolean).join(" · ") : "";
	const dirs = node.private ? `private ${node.private.dirs.map((dir) => dir.path).join(" ")}` : "";
	return [limits, dirs].filter(Boolean);
}

/** The link label's words for an impairment (the same as `testbed event` labels). */
export const impairSummary = describeImpairment;

/** What one end of a link sends with, as impairSummary words ("" for nothing). */
export function egress(lab: Lab, end: { node: string; iface: string }): string {
	const impair = lab.nodes.find((node) => node.name === end.node)?.interfaces.find((iface) => iface.name === end.iface)?.impair;
	return impair ? impairSummary(impair) : "";
}

/** Impairments (per direction when the two differ: "alice→ rate 1mbit"), MTU, and "unplugged" for a link that starts down. */
export function linkSummary(lab: Lab, link: LabLink): string {
	const mtu = lab.nodes.find((node) => node.name === link.endpoints[0].node)?.interfaces.find((iface) => iface.name === link.endpoints[0].iface)?.mtu;
	const [a, b] = link.endpoints.map((end) => egress(lab, end));
	const impairment = a === b ? a : link.endpoints.map((end, index) => ([a, b][index] ? `${end.node}→ ${[a, b][index]}` : "")).filter(Boolean).join(" ");
	return [link.down ? "unplugged" : "", impairment, mtu ? `mtu ${mtu}` : ""].filter(Boolean).join(" ");
}

/** Split a long impairment summary into lines of about `width` characters, between "key value" pairs. */
export function wrap(text: string, width = 32): string[] {
	const lines: string[] = [];
	for (const word of text.match(/\S+ \S+|\S+/g) ?? []) {
		const last = lines.length - 1;
		if (last >= 0 && lines[last].length + 1 + word.length <= width) lines[last] += ` ${word}`;
		else lines.push(word);
	}
	return lines;
}

export function endText(end: GraphEnd): string {
	return [end.iface, ...end.addresses].join(" ");
}
