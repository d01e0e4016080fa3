// Interfaces and links of a lab being resolved: dummy interfaces declared on nodes, and every link as
// a veth pair whose ends become interfaces (with their impairments); switches join links into segments.
import type { ImpairDecl, LinkDecl, TopologyDecl } from "../parse/topology.ts";
import { interfaceAddress, isCidr } from "../validate/addresses.ts";
import { interfaceAddress6, isCidr6 } from "../validate/addresses6.ts";
import type { LabInterface, LabLink, LabNode } from "./lab.ts";
import type { Resolving } from "./resolve.ts";

/** Interfaces declared on nodes (`interfaces:`, dummy address holders). */
export function addDeclaredInterfaces(decl: TopologyDecl, nodes: Map<string, LabNode>, { problem }: Resolving): void {
for (const node of decl.nodes) {
	const labNode = nodes.get(node.name);
	if (!labNode) continue;
	for (const iface of node.interfaces) {
		if (labNode.kind === "switch") {
			problem("ADDRESS_ON_SWITCH", iface.pos, `switch "${node.name}" cannot hold interfaces with addresses`, "put the dummy interface on a host, router or nat");
			continue;
		}
		if (addInterface(labNode, { name: iface.name.value, type: "dummy", addresses: [], pos: iface.name.pos }, problem)) {
			const added = labNode.interfaces.at(-1)!;
			added.addresses = iface.addresses.filter((address) => isCidr(address.value)).map((address) => interfaceAddress(address.value));
			const v6 = iface.addresses.filter((address) => isCidr6(address.value)).map((address) => interfaceAddress6(address.value));
			if (v6.length) added.addresses6 = v6;
		}
	}
}

}

/**
 * Every link whose ends name nodes, as a LabLink and an interface at each end; `segment` is the
 * link's segment (links joined by a switch share one). `declIndex[i]` is link i's place in the file.
 */
export function connectLinks(decl: TopologyDecl, nodes: Map<string, LabNode>, { problem, suggest }: Resolving): { links: LabLink[]; declIndex: number[] } {
const links: LabLink[] = [];
const parent: number[] = [];
const find = (index: number): number => (parent[index] === index ? index : (parent[index] = find(parent[index])));
const switchLinks = new Map<string, number[]>();
const declIndex: number[] = [];
for (const [position, link] of decl.links.entries()) {
	let ok = true;
	for (const endpoint of link.endpoints) {
		if (!nodes.has(endpoint.node)) {
			const guess = suggest(endpoint.node, [...nodes.keys()]);
			problem("UNKNOWN_NODE", endpoint.pos, `endpoint "${endpoint.node}:${endpoint.iface}" names no node${guess ? `; did you mean "${guess}"?` : ""}`, guess ? `write \`${guess}:${endpoint.iface}\`` : `declare "${endpoint.node}" under \`nodes:\``);
			ok = false;
		}
	}
	if (!ok) continue;
	const index = links.length;
	const [a, b] = link.endpoints;
	const down = link.down?.value ? { down: true } : {};
	links.push({ endpoints: [{ node: a.node, iface: a.iface }, { node: b.node, iface: b.iface }], segment: index, impair: link.impair, ...down, pos: link.pos });
	declIndex.push(position);
	parent.push(index);
	for (const from of link.impairFrom ?? [])
		if (from.node.value !== a.node && from.node.value !== b.node)
			problem("BAD_IMPAIRMENT", from.node.pos, `impair from "${from.node.value}": that node is not an end of this link`, `name one of its ends: ${a.node} or ${b.node}`);
		else if (a.node === b.node) problem("BAD_IMPAIRMENT", from.node.pos, "impair from: both ends of this link are the same node", "give the impairment for both directions instead");
	for (const [self, other] of [[a, b], [b, a]] as const) {
		const node = nodes.get(self.node)!;
		const impair = egressImpairment(link, self.node);
		addInterface(node, { name: self.iface, type: "veth", addresses: [], link: index, peer: { node: other.node, iface: other.iface }, mtu: link.mtu?.value, ...(impair ? { impair } : {}), ...down, pos: self.pos, master: node.kind === "switch" ? node.interfaces[0].name : undefined }, problem);
		if (node.kind === "switch") switchLinks.set(node.name, [...(switchLinks.get(node.name) ?? []), index]);
	}
}
for (const group of switchLinks.values()) for (const index of group.slice(1)) parent[find(index)] = find(group[0]);

	links.forEach((link, index) => (link.segment = find(index)));
	return { links, declIndex };
}

/** What one end of a link sends with: the link's impairment for both directions, overridden by its `from:` entry. */
function egressImpairment(link: LinkDecl, node: string): ImpairDecl | undefined {
	const own = link.impairFrom?.find((from) => from.node.value === node)?.impair;
	if (!own) return link.impair;
	return link.impair ? { ...link.impair, ...own } : own;
}

const interfaceNames = new WeakMap<LabNode, Set<string>>();

export function addInterface(node: LabNode, iface: LabInterface, problem: Resolving["problem"]): boolean {
	let names = interfaceNames.get(node);
	if (!names) interfaceNames.set(node, (names = new Set(node.interfaces.map((existing) => existing.name))));
	if (names.has(iface.name)) {
		problem("DUPLICATE_INTERFACE", iface.pos, `node "${node.name}" already has an interface "${iface.name}"`, "give each interface of a node its own name");
		return false;
	}
	names.add(iface.name);
	node.interfaces.push(iface);
	return true;
}
