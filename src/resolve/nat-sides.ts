// NAT sides and default routes of a lab being resolved: which interface of a NAT is its outside (by
// `outside:`, its default route, the one towards a router, or its name), its public address and
// behaviour; then a default route for every node with one way out.
import type { NodeDecl } from "../parse/topology.ts";
import type { LabInterface, LabNode, LabRoute } from "./lab.ts";
import { natBehaviour } from "./nat-behaviour.ts";
import { resolvePortMapping } from "./port-mapping.ts";
import type { Segment } from "./addressing.ts";
import type { Resolving } from "./resolve.ts";
import { gatewayFor } from "./routing.ts";

type Report = Resolving["problem"];

export function resolveNat(node: LabNode, decl: NodeDecl, segments: Map<number, Segment>, problem: Report): void {
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
		const byRoute = node.routes.find((route) => route.to === "default" && route.family !== 6);
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
	if (decl.nat?.portMapping) {
		const portMapping = resolvePortMapping(node.name, node.nat, [...new Set(inside.flatMap((iface) => iface.addresses.map((address) => address.network)))], decl.nat.portMapping, problem);
		if (portMapping) node.nat.portMapping = portMapping;
	}
}

export function addDefaultRoute(node: LabNode, segments: Map<number, Segment>): void {
	if (node.kind === "switch" || node.kind === "router" || node.routes.some((route) => route.to === "default" && route.family !== 6)) return;
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
