// The IPv6 side of a lab being resolved: each segment's `subnet6:` and addresses (explicit ones
// checked, automatic ones handed out, gateways first), a NAT's IPv6 firewall, and the routes. IPv6 is
// routed, not translated: a host behind a home gateway has a public address, the gateway forwards
// behind a stateful firewall, and the routers upstream need a route to every prefix behind it.
// A lab without IPv6 gets nothing from here: its plan is the same as before IPv6 existed.
import type { LinkDecl, NodeDecl } from "../parse/topology.ts";
import { contains6, flipBit6, hostAddresses6, interfaceAddress6, isCidr6, range6 } from "../validate/addresses6.ts";
import type { Pos } from "../vocabulary/problems.ts";
import type { Segment } from "./addressing.ts";
import type { LabInterface, LabLink, LabNode, LabRoute } from "./lab.ts";
import type { Resolving } from "./resolve.ts";
import { isGateway } from "./routing.ts";

type Report = Resolving["problem"];

/** RFC 6092's recommended filtering for a home gateway's IPv6 firewall: only replies to what went out. */
export const defaultFiltering6 = "address-and-port-dependent" as const;

/** The segment's prefix and addresses: explicit ones, then automatic ones from `subnet6:`. */
export function assignAddresses6(segment: Segment, declLinks: LinkDecl[], links: LabLink[], nodes: Map<string, LabNode>, problem: Report): void {
	let subnet6: { cidr: string; pos: Pos } | undefined;
	for (const index of segment.links) {
		const declared = declLinks[index]?.subnet6;
		if (!declared || !isCidr6(declared.value)) continue;
		const network = interfaceAddress6(declared.value).network;
		if (!subnet6) subnet6 = { cidr: network, pos: declared.pos };
		else if (subnet6.cidr !== network) problem("SUBNET_CONFLICT", declared.pos, `this link joins a segment that already has subnet6 ${subnet6.cidr} (line ${subnet6.pos.line})`, "declare one subnet6 per switch or link");
	}
	const taken = new Map<string, Pos>();
	for (const index of segment.links) {
		const decl = declLinks[index];
		decl?.addresses6?.forEach((address, side) => {
			if (!address) return;
			const endpoint = links[index].endpoints[side];
			const node = nodes.get(endpoint.node)!;
			if (node.kind === "switch") return problem("ADDRESS_ON_SWITCH", address.pos, `"${endpoint.node}:${endpoint.iface}" is a switch port and cannot have an address`, "write `~` for the switch side, and give the address to a host");
			const parsed = interfaceAddress6(address.value);
			if (subnet6 && parsed.network !== subnet6.cidr) return problem("ADDRESS_OUTSIDE_SUBNET", address.pos, `${address.value} is not in this segment's subnet6 ${subnet6.cidr}`, `use an address in ${subnet6.cidr} with the same prefix length`);
			if (taken.has(parsed.ip)) return problem("DUPLICATE_ADDRESS", address.pos, `${parsed.ip} is already used on this segment (line ${taken.get(parsed.ip)!.line})`, "give every interface its own address");
			taken.set(parsed.ip, address.pos);
			const iface = node.interfaces.find((candidate) => candidate.name === endpoint.iface && candidate.link === index);
			if (iface) iface.addresses6 = [parsed];
		});
	}
	if (!subnet6) return;
	for (const member of segment.members) for (const iface of member.node.interfaces) if (iface.type === "dummy") for (const address of iface.addresses6 ?? []) if (contains6(subnet6.cidr, address.ip)) taken.set(address.ip, iface.pos);
	const pool = hostAddresses6(subnet6.cidr);
	const prefix = Number(subnet6.cidr.split("/")[1]);
	const order = [...segment.members].sort((a, b) => Number(isGateway(b.node)) - Number(isGateway(a.node)));
	for (const member of order) {
		if (member.iface.addresses6?.length) continue;
		let next = pool.next();
		while (!next.done && taken.has(next.value)) next = pool.next();
		if (next.done) return problem("SUBNET_FULL", subnet6.pos, `subnet6 ${subnet6.cidr} has no address left for "${member.node.name}:${member.iface.name}"`, "use a larger prefix, e.g. a /64");
		taken.set(next.value, subnet6.pos);
		member.iface.addresses6 = [interfaceAddress6(`${next.value}/${prefix}`)];
	}
}

/** Two IPv6 prefixes on one node's links overlap, or an address repeats. */
export function checkNodeAddresses6(node: LabNode, problem: Report): void {
	const seen = new Map<string, LabInterface>();
	const prefixes: { network: string; iface: LabInterface; range: [bigint, bigint] }[] = [];
	for (const iface of node.interfaces)
		for (const address of iface.addresses6 ?? []) {
			const other = seen.get(address.ip);
			if (other) problem("DUPLICATE_ADDRESS", iface.pos, `${address.ip} is on both "${other.name}" and "${iface.name}" of node "${node.name}"`, "give every interface its own address");
			seen.set(address.ip, iface);
			if (iface.type !== "veth") continue;
			const range = range6(address.network);
			const clash = prefixes.find((entry) => entry.iface !== iface && entry.range[0] <= range[1] && range[0] <= entry.range[1]);
			if (clash) problem("OVERLAPPING_SUBNETS", iface.pos, `node "${node.name}" has ${address.network} on "${iface.name}" and ${clash.network} on "${clash.iface.name}"; they overlap`, "use a separate subnet6 per link");
			prefixes.push({ network: address.network, iface, range });
		}
}

/** `ipv6:` only on a NAT with IPv6 inside and outside; the firewall's filtering (RFC 6092's default when not written). */
export function resolveFirewall6(node: LabNode, decl: NodeDecl, problem: Report): void {
	const has6 = (name: string) => Boolean(node.interfaces.find((iface) => iface.name === name)?.addresses6?.length);
	if (decl.ipv6 && node.kind !== "nat")
		return problem("BAD_NAT", decl.ipv6.pos, `"${node.name}" is a ${node.kind}: only a nat (a home gateway) has an IPv6 firewall`, node.kind === "router" ? "routers forward IPv6 unfiltered; make the gateway `kind: nat`" : "remove `ipv6:`");
	if (!node.nat) return;
	const dualInside = node.nat.inside.some(has6);
	if (decl.ipv6 && !(has6(node.nat.outside) && dualInside))
		return problem("BAD_NAT", decl.ipv6.pos, `nat "${node.name}" declares IPv6 filtering but has no IPv6 ${has6(node.nat.outside) ? "inside" : "outside"}`, "give its links `subnet6:` (inside and outside), or remove `ipv6:`");
	if (!(has6(node.nat.outside) && dualInside)) return;
	node.nat.firewall6 = { filtering: decl.ipv6?.filtering?.value ?? defaultFiltering6 };
	if (decl.ipv6?.prefix && decl.ipv6.nat?.value !== "npt") problem("BAD_NAT", decl.ipv6.prefix.pos, `nat "${node.name}": \`prefix:\` is the outside prefix of NPTv6`, "add `nat: npt`, or remove `prefix:`");
	if (!decl.ipv6?.nat) return;
	const inside = [...new Set(node.interfaces.filter((iface) => node.nat!.inside.includes(iface.name)).flatMap((iface) => (iface.addresses6 ?? []).map((address) => address.network)))];
	if (decl.ipv6.nat.value === "masquerade") {
		// NAT66 as the kernel's masquerade does it: a mapping per flow, the port kept where it is free,
		// and only replies let in (conntrack's own filtering). Other filtering would need the
		// mapping tables the IPv4 side builds; it is a problem, not a silent difference.
		const declared = decl.ipv6.filtering;
		if (declared && declared.value !== "address-and-port-dependent")
			return problem("BAD_NAT", declared.pos, `nat "${node.name}": NAT66 masquerade lets only replies in (address-and-port-dependent), not ${declared.value}`, "remove `filtering:`, or route IPv6 (no `nat:`) or translate it with `nat: npt` to filter otherwise");
		node.nat.firewall6.masquerade = { inside, outside: node.interfaces.find((iface) => iface.name === node.nat!.outside)!.addresses6![0].ip };
		return;
	}
	// NPTv6 (RFC 6296): the one inside prefix is rewritten to an outside prefix of the same length.
	if (inside.length !== 1) return problem("BAD_NAT", decl.ipv6.nat.pos, `nat "${node.name}" has ${inside.length} inside IPv6 prefixes; NPTv6 translates one`, "give NPTv6 gateways one inside link with `subnet6:`");
	const outside = decl.ipv6.prefix ? interfaceAddress6(decl.ipv6.prefix.value).network : nptPrefix(inside[0]);
	if (outside.split("/")[1] !== inside[0].split("/")[1])
		return problem("BAD_NAT", decl.ipv6.prefix!.pos, `NPTv6 maps ${inside[0]} onto a prefix of the same length, not ${outside}`, `write a /${inside[0].split("/")[1]}`);
	node.nat.firewall6.npt = { inside: inside[0], outside };
}

/** The default outside prefix of NPTv6 for an inside one: the same, with the top bit of its fourth group set (2001:db8:1:1::/64 → 2001:db8:1:8001::/64). */
export const nptPrefix = (inside: string): string => flipBit6(inside, 48);

/** Every IPv6 prefix of the lab's links, and NPTv6 prefixes that clash with one: a problem each. */
export function checkNptPrefixes(nodes: LabNode[], problem: Report): void {
	const links = nodes.flatMap((node) => node.interfaces.flatMap((iface) => (iface.addresses6 ?? []).map((address) => address.network)));
	for (const node of nodes) {
		const npt = node.nat?.firewall6?.npt;
		if (!npt) continue;
		const [first, last] = range6(npt.outside);
		const clash = links.find((prefix) => {
			const [a, b] = range6(prefix);
			return a <= last && first <= b;
		});
		if (clash) problem("BAD_NAT", node.nat!.pos, `nat "${node.name}": its NPTv6 outside prefix ${npt.outside} overlaps ${clash}, a prefix of the lab's links`, "write another with `ipv6: { nat: npt, prefix: … }`");
	}
}

/**
 * IPv6 routes: a default route for each single-homed host and each NAT that declares none (through
 * the one gateway on its uplink, as for IPv4), and on every node upstream of a NAT a route to each
 * prefix behind it (following declared default routes as well as the added ones).
 */
export function addRoutes6(nodes: LabNode[], segments: Map<number, Segment>, defaultRoute: (node: LabNode) => boolean): void {
	const address6 = (iface: LabInterface | undefined) => iface?.addresses6?.[0]?.ip;
	const gatewayOn = (node: LabNode, iface: LabInterface): { node: LabNode; iface: LabInterface } | undefined => {
		const members = segments.get(iface.segment!)?.members ?? [];
		const gateways = members.filter((member) => member.node !== node && isGateway(member.node) && address6(member.iface) && member.node.nat?.outside !== member.iface.name);
		return gateways.length === 1 ? gateways[0] : undefined;
	};
	const defaults = new Map<LabNode, { node: LabNode; via: string }>();
	for (const node of nodes) {
		if (node.interfaces.some((iface) => iface.addresses6?.length)) node.ipv6 = true;
		const declared = node.routes.find((route) => route.family === 6 && route.to === "default" && route.via);
		if (declared) {
			const dev = node.interfaces.find((iface) => iface.name === declared.dev);
			const gateway = segments.get(dev?.segment ?? -1)?.members.find((member) => member.node !== node && member.iface.addresses6?.some((address) => address.ip === declared.via));
			if (gateway) defaults.set(node, { node: gateway.node, via: declared.via! });
		}
		if (node.kind === "switch" || node.kind === "router" || !defaultRoute(node) || node.routes.some((route) => route.family === 6 && route.to === "default")) continue;
		const uplinks = node.kind === "nat" ? node.interfaces.filter((iface) => iface.name === node.nat?.outside) : node.interfaces.filter((iface) => iface.type === "veth" && iface.addresses6?.length && !iface.down);
		if (uplinks.length !== 1 || !address6(uplinks[0])) continue;
		const gateway = gatewayOn(node, uplinks[0]);
		const via = address6(gateway?.iface);
		if (!gateway || !via) continue;
		node.routes.push({ to: "default", via, dev: uplinks[0].name, family: 6, auto: true, pos: node.pos });
		defaults.set(node, { node: gateway.node, via });
	}
	// An IPv6 address held by a dummy interface inside a link's prefix: neighbour discovery (unlike ARP)
	// answers only for the receiving interface's own addresses, so the link's gateways route to it.
	for (const node of nodes)
		for (const link of node.interfaces.filter((iface) => iface.type === "veth" && iface.addresses6?.length))
			for (const held of node.interfaces.filter((iface) => iface.type === "dummy").flatMap((iface) => iface.addresses6 ?? []))
				if (contains6(link.addresses6![0].network, held.ip))
					for (const member of segments.get(link.segment!)?.members ?? [])
						if (member.node !== node && isGateway(member.node) && member.iface.addresses6?.length && !member.node.routes.some((route) => route.family === 6 && route.to === `${held.ip}/128`))
							member.node.routes.push({ to: `${held.ip}/128`, via: link.addresses6![0].ip, dev: member.iface.name, family: 6, auto: true, pos: node.pos });
	// Prefixes behind each NAT, routed by every node on its way up (a NAT behind a NAT: both levels).
	for (const nat of nodes) {
		// Upstream, a gateway's inside is reached by its own prefixes, or through NPTv6 by the outside
		// one; behind NAT66 masquerade by none (the outside address is on the gateway's uplink).
		if (!nat.nat?.firewall6 || nat.nat.firewall6.masquerade) continue;
		const npt = nat.nat.firewall6.npt;
		const prefixes = npt ? [npt.outside] : nat.interfaces.filter((iface) => nat.nat!.inside.includes(iface.name)).flatMap((iface) => (iface.addresses6 ?? []).map((address) => address.network));
		let hop = nat;
		for (let guard = 0; guard < nodes.length; guard++) {
			const up = defaults.get(hop);
			const outside = hop.interfaces.find((iface) => iface.name === (hop.nat?.outside ?? hop.routes.find((route) => route.family === 6 && route.to === "default")?.dev));
			const via = address6(outside);
			const next = up?.node ?? gatewayOn(hop, outside!)?.node;
			if (!next || !via) break;
			const dev = next.interfaces.find((iface) => iface.segment === outside!.segment)?.name;
			if (!dev) break;
			for (const prefix of prefixes) if (!next.routes.some((route) => route.to === prefix)) next.routes.push({ to: prefix, via, dev, family: 6, auto: true, pos: nat.pos } satisfies LabRoute);
			if (next.kind === "router") break;
			hop = next;
		}
	}
}
