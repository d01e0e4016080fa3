// Where traffic goes: following default routes from a node to the public side, and which NATs it
// crosses on the way. Pure functions of a resolved lab.
import { contains } from "../validate/addresses.ts";
import type { Lab, LabInterface, LabNode } from "./lab.ts";

/** The node that owns an address on a given L2 segment (private addresses repeat behind different NATs). */
export function ownerOf(lab: Lab, ip: string, segment?: number): { node: LabNode; iface: string } | undefined {
	for (const node of lab.nodes)
		for (const iface of node.interfaces)
			if ((segment === undefined || iface.segment === segment) && iface.addresses.some((address) => address.ip === ip)) return { node, iface: iface.name };
	return undefined;
}

export interface Path {
	/** Nodes visited, starting with the node itself. */
	hops: string[];
	/** NATs crossed from their inside, innermost first. */
	nats: string[];
	/** The last node: the one without a default route (usually a router on the public side). */
	end: string;
}

/** Follow default routes from `start` until a node has none (or a loop). */
export function defaultPath(lab: Lab, start: LabNode): Path {
	const hops = [start.name];
	const nats: string[] = [];
	let node = start;
	for (let guard = 0; guard < lab.nodes.length; guard++) {
		const route = node.routes.find((candidate) => candidate.to === "default" && candidate.family !== 6);
		const segment = node.interfaces.find((iface) => iface.name === route?.dev)?.segment;
		const next = route?.via ? ownerOf(lab, route.via, segment) : undefined;
		if (!next || hops.includes(next.node.name)) break;
		if (next.node.nat && next.node.nat.inside.includes(next.iface)) nats.push(next.node.name);
		hops.push(next.node.name);
		node = next.node;
	}
	return { hops, nats, end: node.name };
}

/** Hosts and routers that no NAT stands in front of: the public side. */
export function publicNodes(lab: Lab): LabNode[] {
	return lab.nodes.filter((node) => node.kind !== "switch" && node.kind !== "nat" && defaultPath(lab, node).nats.length === 0 && !behindNat(lab, node));
}

/** Whether the node sits on an inside segment of some NAT. */
export function behindNat(lab: Lab, node: LabNode): boolean {
	return lab.nodes.some((nat) => nat.nat && nat !== node && nat.nat.inside.some((name) => {
		const segment = nat.interfaces.find((iface) => iface.name === name)?.segment;
		return node.interfaces.some((iface) => iface.type === "veth" && iface.segment === segment);
	}));
}

/** A node to probe NAT `nat` from: a host right behind it, else a NAT box right behind it (its own traffic). */
export function probeNodeFor(lab: Lab, nat: LabNode): LabNode | undefined {
	const first = (candidates: LabNode[]) => candidates.find((node) => defaultPath(lab, node).nats[0] === nat.name);
	return first(lab.nodes.filter((node) => node.kind === "host")) ?? first(lab.nodes.filter((node) => node.kind === "nat" && node !== nat));
}

/** Routers and NATs route for others. */
export function isGateway(node: LabNode): boolean {
	return node.kind === "router" || node.kind === "nat";
}

/** Whether `node` acts as a gateway for hosts on `segment` (a NAT only on its inside): its interface there. */
function gatewayOn(node: LabNode, segment: number): LabInterface | undefined {
	if (!isGateway(node)) return undefined;
	const iface = node.interfaces.find((candidate) => candidate.segment === segment && candidate.addresses.length > 0);
	if (!iface) return undefined;
	if (node.kind === "nat" && node.nat?.outside === iface.name) return undefined;
	return iface;
}

/**
 * Where `node` routes through from `uplink`: the address, in the uplink's subnet, of the one router
 * or NAT among the segment's `members` (the interfaces on it); undefined when there is not exactly one.
 */
export function gatewayFor(members: readonly { node: LabNode; iface: LabInterface }[], node: LabNode, uplink: LabInterface): string | undefined {
	const network = uplink.addresses[0]?.network;
	const gateways = members.filter((member) => member.node !== node && gatewayOn(member.node, uplink.segment!) === member.iface);
	if (gateways.length !== 1 || !network) return undefined;
	return gateways[0].iface.addresses.find((address) => contains(network, address.ip))?.ip;
}
