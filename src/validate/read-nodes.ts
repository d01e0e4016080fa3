// Reading `nodes:`: each node's kind, namespace, interfaces, routes, NAT and programs.
import { isMap, isScalar, isSeq, type Node as YamlNode, type Pair } from "yaml";
import { natBehaviours, natTypes, nodeKinds, unsolicitedTcpAnswers, type UnsolicitedTcp, type InterfaceDecl, type Located, type NatBehaviour, type NatDecl, type NodeDecl, type PortMappingDecl, type RouteDecl } from "../parse/topology.ts";
import { netnsNamePattern, nodeNamePattern } from "../vocabulary/names.ts";
import { parseDuration } from "./units.ts";
import { portMappingProtocols, type PortMappingProtocol } from "../vocabulary/port-mapping.ts";
import { isCidr, isIpv4 } from "./addresses.ts";
import { isCidr6, isIpv6 } from "./addresses6.ts";
import { topologyKeys } from "./topology-keys.ts";
import type { YamlReader } from "./yaml-reader.ts";
import { readPrograms } from "./read-programs.ts";
import { readContainer } from "./read-container.ts";

export function readNode(r: YamlReader, pair: Pair, nodes: NodeDecl[]): void {
	const keyNode = pair.key as YamlNode;
	const name = isScalar(keyNode) ? String(keyNode.value) : "";
	const pos = r.pos(keyNode);
	if (!nodeNamePattern.test(name)) {
		r.problem("BAD_NODE_NAME", pos, `node name "${name}" is not valid`, "use 1-32 characters: letters, digits, _ and -, starting with a letter");
	}
	const valueNode = r.resolve(pair.value as YamlNode | null);
	const node: NodeDecl = { name, pos, kind: "host", kindPos: pos, interfaces: [], routes: [], programs: [] };
	if (valueNode && !(isScalar(valueNode) && valueNode.value === null)) {
		if (!isMap(valueNode)) {
			r.report("WRONG_TYPE", valueNode, `node "${name}" must be a map`, `write \`${name}: {}\` or \`${name}: { kind: router }\``);
			nodes.push(node);
			return;
		}
		const entries = r.entries(valueNode, topologyKeys.node, `node "${name}"`);
		const kind = r.choice(entries.get("kind"), "kind", nodeKinds);
		if (kind) [node.kind, node.kindPos] = [kind.value, kind.pos];
		const netns = r.string(entries.get("netns"), "netns");
		if (netns) {
			if (!netnsNamePattern.test(netns.value) || netns.value === "." || netns.value === "..")
				r.problem("BAD_VALUE", netns.pos, `namespace name "${netns.value}" is not valid`, "use letters, digits, _ . and -");
			else node.netns = netns;
		}
		for (const item of r.list(entries.get("interfaces"), "interfaces")) node.interfaces.push(...readInterface(r, item));
		for (const item of r.list(entries.get("routes"), "routes")) node.routes.push(...readRoute(r, item));
		const defaultRoute = r.boolean(entries.get("default-route"), "default-route");
		if (defaultRoute) node.defaultRoute = defaultRoute;
		const nat = entries.get("nat");
		if (nat) node.nat = readNat(r, nat);
		const ipv6 = entries.get("ipv6");
		if (ipv6) {
			const map = r.map(r.resolve(ipv6.value as YamlNode), "ipv6", "write `ipv6: { filtering: address-and-port-dependent }`");
			node.ipv6 = { pos: r.pos(ipv6.key as YamlNode) };
			if (map) {
				const keys = r.entries(map, topologyKeys.ipv6, "ipv6");
				node.ipv6.filtering = r.choice(keys.get("filtering"), "filtering", natBehaviours) as Located<NatBehaviour> | undefined;
				node.ipv6.nat = r.choice(keys.get("nat"), "nat", ["npt", "masquerade"] as const);
				const prefix = r.string(keys.get("prefix"), "prefix");
				if (prefix && isCidr6(prefix.value)) node.ipv6.prefix = prefix;
				else if (prefix) r.problem("BAD_CIDR", prefix.pos, `"${prefix.value}" is not an IPv6 prefix`, "write NPTv6's outside prefix, e.g. `prefix: 2001:db8:101:1::/64`");
			}
		}
		const programs = entries.get("programs");
		if (programs) node.programs = readPrograms(r, programs, name);
		readContainer(r, node, entries);
	}
	nodes.push(node);
}

function readInterface(r: YamlReader, item: YamlNode): InterfaceDecl[] {
	const map = r.map(item, "interface", "write `- { name: alt0, type: dummy, address: 203.0.113.11/24 }`");
	if (!map) return [];
	const entries = r.entries(map, topologyKeys.iface, "interface");
	const name = r.string(entries.get("name"), "name");
	if (!name) {
		r.report("MISSING_KEY", map, "interface has no `name:`", "add `name: alt0`");
		return [];
	}
	r.checkInterfaceName(name);
	const type = r.choice(entries.get("type"), "type", ["dummy"] as const);
	if (!entries.get("type")) r.report("MISSING_KEY", map, "interface has no `type:`", "add `type: dummy` (link interfaces are declared by `links:`)");
	const addresses: Located<string>[] = [];
	const one = r.string(entries.get("address"), "address");
	if (one) addresses.push(one);
	for (const entry of r.list(entries.get("addresses"), "addresses")) {
		const address = r.string(r.pairOf(entry), "addresses");
		if (address) addresses.push(address);
	}
	for (const address of addresses) r.checkAnyCidr(address);
	return type ? [{ name, type: type.value, addresses, pos: r.pos(map) }] : [];
}

function readRoute(r: YamlReader, item: YamlNode): RouteDecl[] {
	const map = r.map(item, "route", "write `- { to: default, via: 10.0.1.1 }`");
	if (!map) return [];
	const entries = r.entries(map, topologyKeys.route, "route");
	const to = r.string(entries.get("to"), "to");
	const via = r.string(entries.get("via"), "via");
	const dev = r.string(entries.get("dev"), "dev");
	if (!to) r.report("MISSING_KEY", map, "route has no `to:`", "add `to: default` or `to: 10.0.0.0/8`");
	if (!via && !dev) r.report("MISSING_KEY", map, "route has neither `via:` nor `dev:`", "add `via:` with the gateway's address, or `dev:` with the interface");
	// The family: of the destination, else (`default`) of the gateway; `::/0` is IPv6's default.
	const toFamily = !to || to.value === "default" ? undefined : isCidr(to.value) || isIpv4(to.value) ? 4 : to.value === "::/0" || isCidr6(to.value) || isIpv6(to.value) ? 6 : "bad";
	if (toFamily === "bad")
		r.problem("BAD_CIDR", to!.pos, `route destination "${to!.value}" is not default, an address or a CIDR`, "write `default`, `10.0.0.0/8`, `10.0.0.1`, `::/0` (IPv6's default) or `2001:db8::/32`");
	const viaFamily = !via ? undefined : isIpv4(via.value) ? 4 : isIpv6(via.value) ? 6 : "bad";
	if (viaFamily === "bad")
		r.problem("BAD_ROUTE", via!.pos, `gateway "${via!.value}" is not an IPv4 or IPv6 address${/^fe[89ab]/i.test(via!.value) ? " (a link-local gateway is not supported: give the neighbour's address on the link's `subnet6:`)" : ""}`, "write the gateway's address, e.g. `via: 10.0.1.1` or `via: 2001:db8:1:1::1`");
	else if (typeof toFamily === "number" && viaFamily && toFamily !== viaFamily)
		r.problem("BAD_ROUTE", via!.pos, `gateway ${via!.value} is IPv${viaFamily} but the destination ${to!.value} is IPv${toFamily}`, `give an IPv${toFamily} gateway, or write the route's IPv${viaFamily} destination`);
	if (dev) r.checkInterfaceName(dev);
	const family = toFamily === 6 || (toFamily === undefined && viaFamily === 6) ? 6 : undefined;
	return to && (via || dev) && toFamily !== "bad" && viaFamily !== "bad" && (!viaFamily || !toFamily || toFamily === viaFamily) ? [{ to, via, dev, ...(family ? { family } : {}), pos: r.pos(map) }] : [];
}

/** The longest timeouts a NAT may declare (conntrack's own defaults: 5 days for TCP). */
const maxUdpTimeoutS = 86_400;
const maxTcpTimeoutS = 432_000;

/** A whole number of seconds from 1 s to `maxS`, e.g. `30s`, `2h`. */
function readTimeout(r: YamlReader, pair: Pair | undefined, key: string, example: string, maxS: number): Located<number> | undefined {
	if (!pair) return undefined;
	const node = r.resolve(pair.value as YamlNode);
	const value = isScalar(node) ? parseDuration(node.value, "s") : undefined;
	if (value === undefined || value < 1000 || value % 1000 !== 0 || value > maxS * 1000) {
		r.problem("BAD_VALUE", r.pos(node ?? pair.key), `${key} must be a whole number of seconds from 1s to ${maxS / 3600}h`, `write e.g. \`${key}: ${example}\``);
		return undefined;
	}
	return { value: value / 1000, pos: r.pos(node!) };
}

function readNat(r: YamlReader, pair: Pair): NatDecl | undefined {
	const map = r.map(r.resolve(pair.value as YamlNode), "nat", "write `nat: { type: port-restricted }`");
	if (!map) return { pos: r.pos(pair.key as YamlNode) };
	const entries = r.entries(map, topologyKeys.nat, "nat");
	const nat: NatDecl = { pos: r.pos(pair.key as YamlNode) };
	nat.type = r.choice(entries.get("type"), "type", natTypes);
	nat.mapping = r.choice(entries.get("mapping"), "mapping", natBehaviours) as Located<NatBehaviour> | undefined;
	nat.filtering = r.choice(entries.get("filtering"), "filtering", natBehaviours) as Located<NatBehaviour> | undefined;
	nat.hairpin = r.boolean(entries.get("hairpin"), "hairpin");
	nat.portPreservation = r.boolean(entries.get("port-preservation"), "port-preservation");
	nat.outside = r.string(entries.get("outside"), "outside");
	nat.udpTimeout = readTimeout(r, entries.get("udp-timeout"), "udp-timeout", "30s", maxUdpTimeoutS);
	nat.tcpTimeout = readTimeout(r, entries.get("tcp-timeout"), "tcp-timeout", "2h", maxTcpTimeoutS);
	nat.unsolicitedTcp = r.choice(entries.get("unsolicited-tcp"), "unsolicited-tcp", unsolicitedTcpAnswers) as Located<UnsolicitedTcp> | undefined;
	const portMapping = entries.get("port-mapping");
	if (portMapping) nat.portMapping = readPortMapping(r, portMapping);
	return nat;
}

/** The longest lease a port-mapping client may be given (miniupnpd takes any; a week is more than any client asks). */
export const maxLeaseS = 604_800;

/**
 * `port-mapping:` — `true`, `false`, a list of protocols, or `{ protocols, lease: { min, max }, ports, secure }`.
 * `false` (or an empty list) is the same as leaving it out.
 */
function readPortMapping(r: YamlReader, pair: Pair): PortMappingDecl | undefined {
	const node = r.resolve(pair.value as YamlNode);
	const pos = r.pos(pair.key as YamlNode);
	const example = "write `port-mapping: [upnp, nat-pmp, pcp]`, `port-mapping: true` or `port-mapping: { protocols: [pcp], lease: { min: 2m, max: 24h }, ports: 1024-65535 }`";
	if (isScalar(node) && typeof node.value === "boolean") return node.value ? { pos } : undefined;
	if (isSeq(node)) {
		const protocols = readProtocols(r, pair);
		return protocols.length ? { pos, protocols } : undefined;
	}
	if (!isMap(node)) {
		r.report("WRONG_TYPE", node ?? (pair.key as YamlNode), "`port-mapping:` must be true, a list of protocols or a map", example);
		return undefined;
	}
	const entries = r.entries(node, topologyKeys.portMapping, "port-mapping");
	const decl: PortMappingDecl = { pos };
	if (entries.has("protocols")) {
		const protocols = readProtocols(r, entries.get("protocols")!);
		if (protocols.length === 0) return undefined;
		decl.protocols = protocols;
	}
	const lease = entries.get("lease");
	if (lease) {
		const map = r.map(r.resolve(lease.value as YamlNode), "lease", "write `lease: { min: 2m, max: 24h }`");
		if (map) {
			const times = r.entries(map, topologyKeys.lease, "lease");
			decl.leaseMin = readTimeout(r, times.get("min"), "min", "2m", maxLeaseS);
			decl.leaseMax = readTimeout(r, times.get("max"), "max", "24h", maxLeaseS);
			if (decl.leaseMin && decl.leaseMax && decl.leaseMin.value > decl.leaseMax.value)
				r.problem("BAD_VALUE", decl.leaseMax.pos, `the longest lease (${decl.leaseMax.value} s) is shorter than the shortest (${decl.leaseMin.value} s)`, "make `max:` at least `min:`");
		}
	}
	const ports = entries.get("ports");
	if (ports) decl.ports = readPortRange(r, ports);
	decl.secure = r.boolean(entries.get("secure"), "secure");
	return decl;
}

function readProtocols(r: YamlReader, pair: Pair): Located<PortMappingProtocol>[] {
	const protocols: Located<PortMappingProtocol>[] = [];
	for (const item of r.list(pair, "protocols")) {
		const protocol = r.choice(r.pairOf(item), "port-mapping protocol", portMappingProtocols);
		if (!protocol) continue;
		if (protocols.some((seen) => seen.value === protocol.value)) r.problem("BAD_VALUE", protocol.pos, `port-mapping protocol "${protocol.value}" is listed twice`, "list each protocol once");
		else protocols.push(protocol);
	}
	return protocols;
}

/** `1024-65535` or one port: the public ports a client may be given. */
function readPortRange(r: YamlReader, pair: Pair): Located<[number, number]> | undefined {
	const node = r.resolve(pair.value as YamlNode);
	const text = isScalar(node) ? String(node.value) : "";
	const match = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(text);
	const low = match ? Number(match[1]) : NaN;
	const high = match ? Number(match[2] ?? match[1]) : NaN;
	if (!match || low < 1 || high > 65535 || low > high) {
		r.problem("BAD_VALUE", r.pos(node ?? pair.key), `ports "${text}" is not a range of ports from 1 to 65535`, "write e.g. `ports: 1024-65535`");
		return undefined;
	}
	return { value: [low, high], pos: r.pos(node) };
}
