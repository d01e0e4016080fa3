// Resolve a declared topology into a Lab: namespaces, L2 segments, addresses, routes, NAT sides.
// Problems that need the whole picture (unknown nodes, address clashes, routes) are found here.
import { resolve as resolvePath } from "node:path";
import type { ImpairDecl, LinkDecl, Located, NodeDecl, TopologyDecl } from "../parse/topology.ts";
import { resolveChecks, resolvePrograms } from "./commands.ts";
import { contains, hostAddresses, interfaceAddress, isCidr, isReserved, range } from "../validate/addresses.ts";
import type { Pos, Problem } from "../vocabulary/problems.ts";
import { maxNamespaceLength } from "../vocabulary/names.ts";
import { closest } from "../validate/units.ts";
import type { Lab, LabInterface, LabLink, LabNode, LabRoute } from "./lab.ts";
import { natBehaviour } from "./nat-behaviour.ts";
import { resolveSteps } from "./event-targets.ts";
import { gatewayFor, isGateway } from "./routing.ts";

interface Segment {
	id: number;
	links: number[];
	subnet?: { cidr: string; pos: Pos };
	/** Non-switch interfaces on the segment. */
	members: { node: LabNode; iface: LabInterface }[];
}

export function resolveTopology(decl: TopologyDecl, problems: Problem[]): Lab {
	const problem = (code: Problem["code"], pos: Pos, message: string, fix?: string) => problems.push({ code, pos, message, fix });
	const prefix = decl.prefix?.value ?? `${decl.name.value}-`;
	// "Did you mean" for the first few unknown names only: a file with thousands of them stays fast.
	let suggestions = 0;
	const suggest = (word: string, candidates: string[]) => (suggestions++ < 20 ? closest(word, candidates) : undefined);
	const nodes = new Map<string, LabNode>();
	const namespaces = new Map<string, string>();

	for (const node of decl.nodes) {
		if (nodes.has(node.name)) {
			problem("DUPLICATE_NODE", node.pos, `node "${node.name}" is declared twice`, "rename or remove one of them");
			continue;
		}
		const netns = node.netns?.value ?? `${prefix}${node.name}`;
		const netnsPos = node.netns?.pos ?? node.pos;
		if (netns.length > maxNamespaceLength)
			problem("NAMESPACE_TOO_LONG", node.netns ? netnsPos : decl.name.pos, `namespace name "${netns}" is ${netns.length} characters; the limit is ${maxNamespaceLength}`, node.netns ? "use a shorter `netns:`" : "use a shorter lab name or `prefix:`");
		else if (namespaces.has(netns))
			problem("DUPLICATE_NAMESPACE", netnsPos, `nodes "${namespaces.get(netns)}" and "${node.name}" both use namespace "${netns}"`, "give one of them another `netns:`");
		namespaces.set(netns, node.name);
		if (node.kind === "switch" && node.name.length > 15)
			problem("BAD_NODE_NAME", node.pos, `switch name "${node.name}" is longer than 15 characters; it names the bridge device`, "use a shorter switch name");
		nodes.set(node.name, {
			name: node.name,
			kind: node.kind,
			netns,
			forwarding: node.kind === "router" || node.kind === "nat",
			interfaces: node.kind === "switch" ? [{ name: node.name, type: "bridge", addresses: [], pos: node.pos }] : [],
			routes: [],
			pos: node.pos,
		});
		if (node.nat && node.kind !== "nat") problem("NAT_ON_NON_NAT", node.nat.pos, `node "${node.name}" has a \`nat:\` block but is a ${node.kind}`, "add `kind: nat` to the node, or remove `nat:`");
	}
	const declOf = new Map(decl.nodes.map((node) => [node.name, node]));

	// Dummy interfaces declared on nodes.
	for (const node of decl.nodes) {
		const labNode = nodes.get(node.name);
		if (!labNode) continue;
		for (const iface of node.interfaces) {
			if (labNode.kind === "switch") {
				problem("ADDRESS_ON_SWITCH", iface.pos, `switch "${node.name}" cannot hold interfaces with addresses`, "put the dummy interface on a host, router or nat");
				continue;
			}
			if (addInterface(labNode, { name: iface.name.value, type: "dummy", addresses: [], pos: iface.name.pos }, problem))
				labNode.interfaces.at(-1)!.addresses = iface.addresses.filter((address) => isCidr(address.value)).map((address) => interfaceAddress(address.value));
		}
	}

	// Links: veth pairs; switches join links into segments.
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

	// Segments and addresses.
	const segments = new Map<number, Segment>();
	links.forEach((link, index) => {
		const id = find(index);
		link.segment = id;
		if (!segments.has(id)) segments.set(id, { id, links: [], members: [] });
		segments.get(id)!.links.push(index);
	});
	for (const node of nodes.values()) {
		if (node.kind === "switch") continue;
		for (const iface of node.interfaces) {
			if (iface.link === undefined) continue;
			iface.segment = links[iface.link].segment;
			segments.get(iface.segment)!.members.push({ node, iface });
		}
	}
	const linkDecls = links.map((_, index) => decl.links[declIndex[index]]);
	for (const segment of segments.values()) assignAddresses(segment, linkDecls, links, nodes, problem);

	// Per node: overlapping subnets, duplicate addresses, routes, NAT sides.
	for (const node of nodes.values()) {
		checkNodeAddresses(node, problem);
		const nodeDecl = declOf.get(node.name)!;
		for (const route of nodeDecl.routes) {
			const to = route.to.value === "default" ? "default" : route.to.value.includes("/") ? route.to.value : `${route.to.value}/32`;
			let dev: LabInterface | undefined;
			if (route.dev) {
				dev = node.interfaces.find((iface) => iface.name === route.dev!.value);
				if (!dev) {
					problem("BAD_ROUTE", route.dev.pos, `node "${node.name}" has no interface "${route.dev.value}"`, `use one of: ${node.interfaces.map((iface) => iface.name).join(", ") || "(none)"}`);
					continue;
				}
			}
			if (route.via) {
				const via = route.via.value;
				const connected = node.interfaces.filter((iface) => iface.type === "veth" && iface.addresses.some((address) => contains(address.network, via)));
				if (connected.length === 0 || (dev && !connected.includes(dev))) {
					problem("GATEWAY_NOT_CONNECTED", route.via.pos, `gateway ${via} of node "${node.name}" is on none of its connected subnets${dev ? ` on "${dev.name}"` : ""}`, `use an address on one of: ${connectedSubnets(node).join(", ") || "(no links with addresses)"}`);
					continue;
				}
				dev ??= connected.find((iface) => !iface.down) ?? connected[0];
			}
			if (dev?.down) {
				problem("BAD_ROUTE", (route.via ?? route.dev)!.pos, `route to ${route.to.value} goes through "${dev.name}", whose link starts down (\`state: down\`)`, "route through a link that is up; a `move` step re-routes when the link is plugged in");
				continue;
			}
			node.routes.push({ to, via: route.via?.value, dev: dev!.name, auto: false, pos: (route.via ?? route.dev)!.pos });
		}
	}
	for (const node of nodes.values()) if (node.kind === "nat") resolveNat(node, declOf.get(node.name)!, segments, problem);
	for (const node of nodes.values()) addDefaultRoute(node, segments);
	const lab: Lab = { name: decl.name.value, file: decl.file.startsWith("<") ? decl.file : resolvePath(decl.file), nodes: [...nodes.values()], links };
	for (const [name, programs] of resolvePrograms(lab, decl, problem)) nodes.get(name)!.programs = programs;
	if (decl.expect) {
		const checkKinds = new Map<Located<string>, string>();
		for (const check of decl.expect) for (const name of check.kind === "punch" ? [check.a, check.b] : check.kind === "reach" ? [check.from, check.to] : check.kind === "probe" ? [check.nat] : []) checkKinds.set(name, check.kind);
		const named = (name: Located<string>) => {
			const node = nodes.get(name.value);
			const kind = checkKinds.get(name);
			if (!node) {
				const guess = suggest(name.value, [...nodes.keys()]);
				problem("UNKNOWN_NODE", name.pos, `check names no node "${name.value}"${guess ? `; did you mean "${guess}"?` : ""}`, guess ? `write \`${guess}\`` : "use a node declared under `nodes:`");
			} else if (kind === "probe" && node.kind !== "nat") problem("BAD_EXPECT", name.pos, `probe: "${name.value}" is a ${node.kind}, not a nat`, "name a node with `kind: nat`");
			else if (kind !== "probe" && node.kind === "switch") problem("BAD_EXPECT", name.pos, `"${name.value}" is a switch; checks run between hosts, routers and NATs`, "name a host");
		};
		for (const name of checkKinds.keys()) named(name);
		lab.expect = resolveChecks(lab, decl.expect, problem, named);
	}
	if (decl.steps) lab.steps = resolveSteps(lab, decl.steps, problem);
	return lab;
}

/** What one end of a link sends with: the link's impairment for both directions, overridden by its `from:` entry. */
function egressImpairment(link: LinkDecl, node: string): ImpairDecl | undefined {
	const own = link.impairFrom?.find((from) => from.node.value === node)?.impair;
	if (!own) return link.impair;
	return link.impair ? { ...link.impair, ...own } : own;
}

const interfaceNames = new WeakMap<LabNode, Set<string>>();

function addInterface(node: LabNode, iface: LabInterface, problem: (code: Problem["code"], pos: Pos, message: string, fix?: string) => void): boolean {
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

type Report = (code: Problem["code"], pos: Pos, message: string, fix?: string) => void;

function assignAddresses(segment: Segment, declLinks: LinkDecl[], links: LabLink[], nodes: Map<string, LabNode>, problem: Report): void {
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


function connectedSubnets(node: LabNode): string[] {
	return node.interfaces.filter((iface) => iface.type === "veth").flatMap((iface) => iface.addresses.map((address) => address.network));
}

function checkNodeAddresses(node: LabNode, problem: Report): void {
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

function resolveNat(node: LabNode, decl: NodeDecl, segments: Map<number, Segment>, problem: Report): void {
	const { spec, conflicts } = natBehaviour(decl.nat);
	for (const conflict of conflicts) problem("BAD_NAT", decl.nat?.type?.pos ?? decl.pos, `nat "${node.name}": ${conflict}`, "give either `type:` or `mapping:`/`filtering:`, not both disagreeing");
	const links = node.interfaces.filter((iface) => iface.type === "veth");
	let outside: LabInterface | undefined;
	if (decl.nat?.outside) {
		outside = links.find((iface) => iface.name === decl.nat!.outside!.value);
		if (!outside) {
			problem("NAT_WITHOUT_OUTSIDE", decl.nat.outside.pos, `nat "${node.name}" has no link interface "${decl.nat.outside.value}"`, `use one of: ${links.map((iface) => iface.name).join(", ") || "(none: add a link)"}`);
			return;
		}
	} else {
		const byRoute = node.routes.find((route) => route.to === "default");
		const towardsRouter = links.filter((iface) => segments.get(iface.segment!)?.members.some((member) => member.node.kind === "router"));
		outside =
			(byRoute && links.find((iface) => iface.name === byRoute.dev)) ||
			(towardsRouter.length === 1 ? towardsRouter[0] : undefined) ||
			links.find((iface) => iface.name === "wan" || iface.name === "outside" || iface.name === "uplink");
	}
	if (!outside || links.length < 2) {
		problem(
			"NAT_WITHOUT_OUTSIDE",
			decl.nat?.pos ?? decl.kindPos,
			links.length < 2 ? `nat "${node.name}" needs an inside and an outside link; it has ${links.length}` : `nat "${node.name}": cannot tell which interface is the outside one`,
			links.length < 2 ? "link the nat to a router (outside) and to its hosts (inside)" : "set `nat: { outside: wan }`, add a default route, or name the outside interface `wan`",
		);
		return;
	}
	const pos = decl.nat?.pos ?? decl.kindPos;
	if (outside.addresses.length === 0) {
		problem("NAT_WITHOUT_OUTSIDE", pos, `nat "${node.name}": its outside interface "${outside.name}" has no address to translate to`, "give the outside link a `subnet:` or `addresses:`");
		return;
	}
	const inside = links.filter((iface) => iface !== outside);
	let oneToOneHost: string | undefined;
	if (spec.oneToOne) {
		const hosts = inside.flatMap((iface) => segments.get(iface.segment!)!.members.filter((member) => member.node !== node && member.iface.addresses.length > 0));
		if (hosts.length !== 1) problem("BAD_NAT", decl.nat?.type?.pos ?? pos, `nat "${node.name}" is one-to-one but has ${hosts.length} hosts inside; it translates one address`, "put exactly one host behind a one-to-one NAT, or use another type");
		else oneToOneHost = hosts[0].iface.addresses[0].ip;
	}
	node.nat = {
		outside: outside.name,
		inside: inside.map((iface) => iface.name),
		publicAddress: outside.addresses[0].ip,
		oneToOneHost,
		behaviour: spec,
		declared: decl.nat,
		pos,
	};
}

function addDefaultRoute(node: LabNode, segments: Map<number, Segment>): void {
	if (node.kind === "switch" || node.kind === "router" || node.routes.some((route) => route.to === "default")) return;
	let uplink: LabInterface | undefined;
	if (node.kind === "nat") uplink = node.interfaces.find((iface) => iface.name === node.nat?.outside);
	else {
		const links = node.interfaces.filter((iface) => iface.type === "veth" && iface.addresses.length > 0 && !iface.down);
		uplink = links.length === 1 ? links[0] : undefined;
	}
	if (!uplink || uplink.segment === undefined || uplink.addresses.length === 0) return;
	const via = gatewayFor(segments.get(uplink.segment)!.members, node, uplink);
	if (!via) return;
	const route: LabRoute = { to: "default", via, dev: uplink.name, auto: true, pos: node.pos };
	node.routes.push(route);
}
