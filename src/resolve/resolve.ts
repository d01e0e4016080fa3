// Resolve a declared topology into a Lab: namespaces, L2 segments, addresses, routes, NAT sides.
// Problems that need the whole picture (unknown nodes, address clashes, routes) are found here, in
// phases: nodes and their namespaces; interfaces and links (links.ts); segments and their addresses
// (addressing.ts); routes; NAT sides and default routes (nat-sides.ts); programs, checks and steps.
import { resolve as resolvePath } from "node:path";
import type { ExpectDecl, Located, NodeDecl, TopologyDecl } from "../parse/topology.ts";
import { resolveChecks, resolvePrograms } from "./commands.ts";
import { resolveContainers } from "./container.ts";
import { contains, interfaceAddress } from "../validate/addresses.ts";
import { canonical6, contains6, interfaceAddress6 } from "../validate/addresses6.ts";
import type { Pos, Problem } from "../vocabulary/problems.ts";
import { maxNamespaceLength } from "../vocabulary/names.ts";
import { closest } from "../validate/units.ts";
import type { Lab, LabInterface, LabNode } from "./lab.ts";
import { resolveSteps } from "./event-targets.ts";
import { addDeclaredInterfaces, connectLinks } from "./links.ts";
import { assignAddresses, checkNodeAddresses, connectedSubnets, segmentsOf } from "./addressing.ts";
import { addDefaultRoute, resolveNat } from "./nat-sides.ts";
import { addRoutes6, assignAddresses6, checkNodeAddresses6, checkNptPrefixes, resolveFirewall6 } from "./ipv6.ts";

/** How a phase reports a problem, and suggests a name ("did you mean") for the first few unknown ones. */
export interface Resolving {
	problem: (code: Problem["code"], pos: Pos, message: string, fix?: string) => void;
	suggest: (word: string, candidates: string[]) => string | undefined;
}

export function resolveTopology(decl: TopologyDecl, problems: Problem[]): Lab {
	// "Did you mean" for the first few unknown names only: a file with thousands of them stays fast.
	let suggestions = 0;
	const context: Resolving = {
		problem: (code, pos, message, fix) => problems.push({ code, pos, message, fix }),
		suggest: (word, candidates) => (suggestions++ < 20 ? closest(word, candidates) : undefined),
	};
	const { problem } = context;
	const nodes = declareNodes(decl, context);
	const declOf = new Map(decl.nodes.map((node) => [node.name, node]));
	addDeclaredInterfaces(decl, nodes, context);
	const { links, declIndex } = connectLinks(decl, nodes, context);
	const segments = segmentsOf(links, nodes);
	const linkDecls = links.map((_, index) => decl.links[declIndex[index]]);
	for (const segment of segments.values()) {
		assignAddresses(segment, linkDecls, links, nodes, problem);
		assignAddresses6(segment, linkDecls, links, nodes, problem);
	}
	for (const node of nodes.values()) {
		checkNodeAddresses(node, problem);
		checkNodeAddresses6(node, problem);
		resolveRoutes(node, declOf.get(node.name)!, context);
	}
	for (const node of nodes.values()) if (node.kind === "nat") resolveNat(node, declOf.get(node.name)!, segments, problem);
	for (const node of nodes.values()) resolveFirewall6(node, declOf.get(node.name)!, problem);
	for (const node of nodes.values()) if (declOf.get(node.name)!.defaultRoute?.value !== false) addDefaultRoute(node, segments);
	checkNptPrefixes([...nodes.values()], problem);
	addRoutes6([...nodes.values()], segments, (node) => declOf.get(node.name)!.defaultRoute?.value !== false);
	const lab: Lab = { name: decl.name.value, file: decl.file.startsWith("<") ? decl.file : resolvePath(decl.file), nodes: [...nodes.values()], links };
	for (const [name, programs] of resolvePrograms(lab, decl, problem)) nodes.get(name)!.programs = programs;
	resolveContainers(lab, decl, problem);
	if (decl.expect) lab.expect = checksOf(lab, decl.expect, nodes, context);
	if (decl.steps) lab.steps = resolveSteps(lab, decl.steps, problem);
	return lab;
}

/** Every node with its namespace (prefix + name, or its own `netns:`), checked for clashes and length. */
function declareNodes(decl: TopologyDecl, { problem }: Resolving): Map<string, LabNode> {
	const prefix = decl.prefix?.value ?? `${decl.name.value}-`;
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
	return nodes;
}

/**
 * A node's declared routes, IPv4 and IPv6: through an interface, a connected gateway, or both; never
 * through a link that starts down, and one per destination (the kernel keeps one; a second is an
 * error when the lab is built, so it is one here).
 */
function resolveRoutes(node: LabNode, nodeDecl: NodeDecl, { problem }: Resolving): void {
	const seen = new Set<string>();
	for (const route of nodeDecl.routes) {
		const family = route.family;
		const to = destination(route.to.value, family);
		if (to.hostBits) {
			problem("BAD_CIDR", route.to.pos, `route destination ${route.to.value} has host bits set: the kernel takes only a prefix's first address`, `write \`to: ${to.value}\``);
			continue;
		}
		const key = `${family ?? 4} ${to.value}`;
		if (seen.has(key)) {
			problem("BAD_ROUTE", route.to.pos, `node "${node.name}" has a second ${family === 6 ? "IPv6 " : ""}route to ${to.value}`, "keep one of them: the kernel holds one route per destination");
			continue;
		}
		seen.add(key);
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
			const onLink = (iface: LabInterface) => (family === 6 ? (iface.addresses6 ?? []).some((address) => contains6(address.network, via)) : iface.addresses.some((address) => contains(address.network, via)));
			const connected = node.interfaces.filter((iface) => iface.type === "veth" && onLink(iface));
			if (connected.length === 0 || (dev && !connected.includes(dev))) {
				const subnets = connectedSubnets(node, family);
				problem("GATEWAY_NOT_CONNECTED", route.via.pos, `gateway ${via} of node "${node.name}" is on none of its connected ${family === 6 ? "IPv6 prefixes" : "subnets"}${dev ? ` on "${dev.name}"` : ""}`, `use an address on one of: ${subnets.join(", ") || (family === 6 ? "(no links with `subnet6:`)" : "(no links with addresses)")}`);
				continue;
			}
			dev ??= connected.find((iface) => !iface.down) ?? connected[0];
		}
		if (dev?.down) {
			problem("BAD_ROUTE", (route.via ?? route.dev)!.pos, `route to ${route.to.value} goes through "${dev.name}", whose link starts down (\`state: down\`)`, "route through a link that is up; a `move` step re-routes when the link is plugged in");
			continue;
		}
		node.routes.push({ to: to.value, via: route.via && family === 6 ? canonical6(route.via.value) : route.via?.value, dev: dev!.name, ...(family ? { family } : {}), auto: false, pos: (route.via ?? route.dev)!.pos });
	}
}

/**
 * A route's destination as the kernel lists it: `default` (IPv6's `::/0` too), a prefix in its
 * canonical text, a single address as /32 or /128; `hostBits`: the text had host bits set (a
 * problem whose fix is `value`, the prefix it was probably meant to be).
 */
function destination(text: string, family: 6 | undefined): { value: string; hostBits: boolean } {
	if (text === "default" || text === "::/0") return { value: "default", hostBits: false };
	const cidr = text.includes("/") ? text : `${text}/${family === 6 ? 128 : 32}`;
	const { cidr: written, network } = family === 6 ? interfaceAddress6(cidr) : interfaceAddress(cidr);
	return { value: network, hostBits: network !== written };
}

/** The file's checks, with every node they name found (and of a kind the check can use). */
function checksOf(lab: Lab, expect: ExpectDecl[], nodes: Map<string, LabNode>, { problem, suggest }: Resolving): NonNullable<Lab["expect"]> {
	const checkKinds = new Map<Located<string>, string>();
	for (const check of expect) for (const name of check.kind === "punch" ? [check.a, check.b] : check.kind === "reach" ? [check.from, check.to] : check.kind === "probe" ? [check.nat] : []) checkKinds.set(name, check.kind);
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
	return resolveChecks(lab, expect, problem, named);
}
