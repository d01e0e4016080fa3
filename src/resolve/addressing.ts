// Addresses of a lab being resolved: links grouped into L2 segments, each segment's subnet, explicit
// addresses checked, automatic ones handed out (gateways first), and each node's addresses checked
// against each other (duplicates, overlapping subnets).
import type { LinkDecl } from "../parse/topology.ts";
import { contains, hostAddresses, interfaceAddress, isCidr, isReserved, range } from "../validate/addresses.ts";
import type { Pos } from "../vocabulary/problems.ts";
import type { LabInterface, LabLink, LabNode } from "./lab.ts";
import type { Resolving } from "./resolve.ts";
import { isGateway } from "./routing.ts";

/** An L2 segment: links joined by switches (or one link), the subnet declared on them, the non-switch interfaces on it. */
export interface Segment {
	id: number;
	links: number[];
	subnet?: { cidr: string; pos: Pos };
	/** Non-switch interfaces on the segment. */
	members: { node: LabNode; iface: LabInterface }[];
}

type Report = Resolving["problem"];

/** The segments of the links (by their `segment`), with every non-switch interface on each. */
export function segmentsOf(links: LabLink[], nodes: Map<string, LabNode>): Map<number, Segment> {
	const segments = new Map<number, Segment>();
	links.forEach((link, index) => {
		if (!segments.has(link.segment)) segments.set(link.segment, { id: link.segment, links: [], members: [] });
		segments.get(link.segment)!.links.push(index);
	});
	for (const node of nodes.values()) {
		if (node.kind === "switch") continue;
		for (const iface of node.interfaces) {
			if (iface.link === undefined) continue;
			iface.segment = links[iface.link].segment;
			segments.get(iface.segment)!.members.push({ node, iface });
		}
	}
	return segments;
}

export function assignAddresses(segment: Segment, declLinks: LinkDecl[], links: LabLink[], nodes: Map<string, LabNode>, problem: Report): void {
	// The subnet: at most one across the segment's links.
	for (const index of segment.links) {
		const subnet = declLinks[index]?.subnet;
		if (!subnet || !isCidr(subnet.value)) continue;
		const network = interfaceAddress(subnet.value).network;
		if (!segment.subnet) segment.subnet = { cidr: network, pos: subnet.pos };
		else if (segment.subnet.cidr !== network)
			problem("SUBNET_CONFLICT", subnet.pos, `this link joins a segment that already has subnet ${segment.subnet.cidr} (line ${segment.subnet.pos.line})`, "declare one subnet per switch or link");
	}
	// Explicit addresses.
	const taken = new Map<string, Pos>();
	for (const index of segment.links) {
		const decl = declLinks[index];
		if (!decl?.addresses) continue;
		if (decl.addresses.length !== 2) {
			problem("ADDRESS_COUNT", decl.addressesPos ?? decl.pos, `\`addresses:\` has ${decl.addresses.length} entries; a link has 2 endpoints`, "give one address per endpoint, `~` for none");
			continue;
		}
		decl.addresses.forEach((address, side) => {
			if (!address || !isCidr(address.value)) return;
			const endpoint = links[index].endpoints[side];
			const node = nodes.get(endpoint.node)!;
			if (node.kind === "switch") {
				problem("ADDRESS_ON_SWITCH", address.pos, `"${endpoint.node}:${endpoint.iface}" is a switch port and cannot have an address`, "write `~` for the switch side, and give the address to a host");
				return;
			}
			const parsed = interfaceAddress(address.value);
			if (segment.subnet && (!contains(segment.subnet.cidr, parsed.ip) || parsed.network !== segment.subnet.cidr)) {
				problem("ADDRESS_OUTSIDE_SUBNET", address.pos, `${address.value} is not in this segment's subnet ${segment.subnet.cidr}`, `use an address in ${segment.subnet.cidr} with the same prefix length`);
				return;
			}
			if (isReserved(address.value)) {
				problem("BAD_CIDR", address.pos, `${address.value} is the network or broadcast address of ${parsed.network}`, "use a host address");
				return;
			}
			if (taken.has(parsed.ip)) {
				problem("DUPLICATE_ADDRESS", address.pos, `${parsed.ip} is already used on this segment (line ${taken.get(parsed.ip)!.line})`, "give every interface its own address");
				return;
			}
			taken.set(parsed.ip, address.pos);
			node.interfaces.find((iface) => iface.name === endpoint.iface && iface.link === index)?.addresses.push(parsed);
		});
	}
	// Automatic addresses: routers and NATs first (they are the gateways), then the rest in file order.
	if (!segment.subnet) return;
	// Addresses that members hold on dummy interfaces inside this subnet are taken too.
	for (const member of segment.members)
		for (const iface of member.node.interfaces)
			if (iface.type === "dummy") for (const address of iface.addresses) if (contains(segment.subnet.cidr, address.ip)) taken.set(address.ip, iface.pos);
	const pool = hostAddresses(segment.subnet.cidr);
	const prefix = Number(segment.subnet.cidr.split("/")[1]);
	const order = [...segment.members].sort((a, b) => Number(isGateway(b.node)) - Number(isGateway(a.node)));
	for (const member of order) {
		if (member.iface.addresses.length > 0) continue;
		let next = pool.next();
		while (!next.done && taken.has(next.value)) next = pool.next();
		if (next.done) {
			problem("SUBNET_FULL", segment.subnet.pos, `subnet ${segment.subnet.cidr} has no address left for "${member.node.name}:${member.iface.name}"`, "use a larger subnet");
			return;
		}
		taken.set(next.value, segment.subnet.pos);
		member.iface.addresses.push(interfaceAddress(`${next.value}/${prefix}`));
	}
}


/** The subnets (IPv6: prefixes) of a node's links, where a gateway can be. */
export function connectedSubnets(node: LabNode, family: 4 | 6 = 4): string[] {
	return node.interfaces.filter((iface) => iface.type === "veth").flatMap((iface) => (family === 6 ? (iface.addresses6 ?? []) : iface.addresses).map((address) => address.network));
}

export function checkNodeAddresses(node: LabNode, problem: Report): void {
	const seen = new Map<string, LabInterface>();
	const linkSubnets: { network: string; iface: LabInterface; start: number; end: number }[] = [];
	for (const iface of node.interfaces) {
		for (const address of iface.addresses) {
			const other = seen.get(address.ip);
			if (other) problem("DUPLICATE_ADDRESS", iface.pos, `${address.ip} is on both "${other.name}" and "${iface.name}" of node "${node.name}"`, "give every interface its own address");
			seen.set(address.ip, iface);
			if (iface.type === "veth") linkSubnets.push({ network: address.network, iface, ...toRange(address.network) });
		}
	}
	// Sorted by start, a subnet can only overlap ones that start before it ends: O(n log n) for big routers.
	const sorted = [...linkSubnets].sort((a, b) => a.start - b.start || a.end - b.end);
	const reported = new Set<LabInterface>();
	let widest = sorted[0];
	for (const entry of sorted.slice(1)) {
		if (entry.start <= widest.end && entry.iface !== widest.iface && !reported.has(entry.iface)) {
			const [first, second] = [entry, widest].sort((a, b) => node.interfaces.indexOf(a.iface) - node.interfaces.indexOf(b.iface));
			problem("OVERLAPPING_SUBNETS", second.iface.pos, `node "${node.name}" has ${second.network} on "${second.iface.name}" and ${first.network} on "${first.iface.name}"; they overlap`, "use a separate subnet per link (a dummy address holder may overlap)");
			reported.add(second.iface);
		}
		if (entry.end > widest.end) widest = entry;
	}
}

function toRange(network: string): { start: number; end: number } {
	const [start, end] = range(network);
	return { start, end };
}
