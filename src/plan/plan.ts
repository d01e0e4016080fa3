// Plan: a Lab becomes the exact list of operations `up` performs. Pure: same lab and features, same plan.
import type { Lab, LabInterface, LabNode } from "../resolve/lab.ts";
import { overlaps } from "../validate/addresses.ts";
import { contains6 } from "../validate/addresses6.ts";
import type { ImpairDecl } from "../parse/topology.ts";
import type { HostFeatures, NamespacePlan, Operation, Plan, QdiscKind, Requirement } from "./operations.ts";
import { planContainers } from "./container.ts";

export function planLab(lab: Lab, features: HostFeatures): Plan {
	const root: Operation[] = [];
	const unmet: Requirement[] = [];
	const notes: string[] = [];
	const netnsOf = new Map(lab.nodes.map((node) => [node.name, node.netns]));

	for (const node of lab.nodes) root.push({ op: "netns-add", netns: node.netns, node: node.name, pos: node.pos });
	// Before its links exist: no duplicate address detection in a namespace with IPv6, or each new
	// interface's link-local address stays tentative for a second or two, and until then neighbour
	// discovery (so the first packets) fails. Global addresses are added `nodad` as well.
	for (const node of lab.nodes)
		if (node.ipv6) root.push({ op: "sysctl", netns: node.netns, settings: [["net.ipv6.conf.default.accept_dad", "0"], ["net.ipv6.conf.all.accept_dad", "0"]], node: node.name, pos: node.pos });
	for (const link of lab.links) {
		const [a, b] = link.endpoints;
		root.push({ op: "veth-add", a: { netns: netnsOf.get(a.node)!, iface: a.iface }, b: { netns: netnsOf.get(b.node)!, iface: b.iface }, ...(link.down ? { down: true } : {}), pos: link.pos });
	}

	const namespaces: NamespacePlan[] = lab.nodes.map((node) => {
		const operations = planNode(node, features, unmet);
		return { netns: node.netns, node: node.name, kind: node.kind, operations };
	});
	if (!features.dummy && lab.nodes.some((node) => node.interfaces.some((iface) => iface.type === "dummy")))
		notes.push("this kernel has no dummy link type: dummy interfaces are empty bridges, which hold addresses the same way");
	const containers = planContainers(lab, features);
	unmet.push(...containers.unmet);
	const dual = lab.nodes.find((node) => node.ipv6);
	if (dual && features.ipv6 === false) unmet.push({ feature: "ipv6", why: `IPv6 addresses (node ${dual.name} and others with subnet6: or IPv6 addresses)`, pos: dual.pos });
	return { lab: lab.name, file: lab.file, features, root, namespaces, containers: containers.containers, unmet, notes };
}

/**
 * A host attached to a running lab (the temporary STUN server of `probe`): its namespace, a veth
 * pair from its `eth0` to a new interface of `router`, and both ends configured — the host as any
 * node, the router's end with the gateway address. The same operations as `up`, for one node.
 */
export function planAttachment(lab: Lab, host: LabNode, router: { node: LabNode; iface: string; gateway: string }, features: HostFeatures): Plan {
	const unmet: Requirement[] = [];
	const at = { node: router.node.name, pos: host.pos };
	const routerOps: Operation[] = [
		{ op: "address-add", netns: router.node.netns, iface: router.iface, cidr: router.gateway, noPrefixRoute: false, ...at },
		{ op: "link-up", netns: router.node.netns, iface: router.iface, ...at },
	];
	return {
		lab: lab.name,
		file: lab.file,
		features,
		root: [
			{ op: "netns-add", netns: host.netns, node: host.name, pos: host.pos },
			{ op: "veth-add", a: { netns: host.netns, iface: "eth0" }, b: { netns: router.node.netns, iface: router.iface }, pos: host.pos },
		],
		namespaces: [
			{ netns: host.netns, node: host.name, kind: host.kind, operations: planNode(host, features, unmet) },
			{ netns: router.node.netns, node: router.node.name, kind: router.node.kind, operations: routerOps },
		],
		containers: [],
		unmet,
		notes: [],
	};
}

function planNode(node: LabNode, features: HostFeatures, unmet: Requirement[]): Operation[] {
	const ns = node.netns;
	const at = { node: node.name };
	const ops: Operation[] = [];
	for (const iface of node.interfaces) {
		if (iface.type === "bridge") ops.push({ op: "bridge-add", netns: ns, iface: iface.name, why: "switch", pos: iface.pos, ...at });
		if (iface.type === "dummy")
			ops.push(features.dummy ? { op: "dummy-add", netns: ns, iface: iface.name, pos: iface.pos, ...at } : { op: "bridge-add", netns: ns, iface: iface.name, why: "dummy-fallback", pos: iface.pos, ...at });
	}
	ops.push({ op: "link-up", netns: ns, iface: "lo", pos: node.pos, ...at });
	for (const iface of node.interfaces) {
		if (iface.master) ops.push({ op: "link-master", netns: ns, iface: iface.name, master: iface.master, pos: iface.pos, ...at });
		if (iface.mtu) ops.push({ op: "link-mtu", netns: ns, iface: iface.name, mtu: iface.mtu, pos: iface.pos, ...at });
	}
	// An interface whose link starts unplugged (`state: down`) stays down until an event brings it up.
	for (const iface of node.interfaces) if (!iface.down) ops.push({ op: "link-up", netns: ns, iface: iface.name, pos: iface.pos, ...at });
	const linkNetworks = node.interfaces.filter((iface) => iface.type === "veth").flatMap((iface) => iface.addresses.map((address) => address.network));
	const linkPrefixes6 = node.interfaces.filter((iface) => iface.type === "veth").flatMap((iface) => (iface.addresses6 ?? []).map((address) => address.network));
	for (const iface of node.interfaces) {
		for (const address of iface.addresses) {
			// A dummy address inside a link's subnet only holds the address: no competing prefix route.
			const noPrefixRoute = iface.type === "dummy" && linkNetworks.some((network) => overlaps(network, address.network));
			ops.push({ op: "address-add", netns: ns, iface: iface.name, cidr: address.cidr, noPrefixRoute, pos: iface.pos, ...at });
		}
		for (const address of iface.addresses6 ?? []) {
			const noPrefixRoute = iface.type === "dummy" && linkPrefixes6.some((prefix) => contains6(prefix, address.ip));
			ops.push({ op: "address-add", netns: ns, iface: iface.name, cidr: address.cidr, noPrefixRoute, nodad: true, pos: iface.pos, ...at });
		}
	}
	ops.push({ op: "sysctl", netns: ns, settings: sysctls(node), pos: node.pos, ...at });
	for (const route of node.routes) ops.push({ op: "route-add", netns: ns, to: route.to, via: route.via, dev: route.dev, ...(route.family ? { family: route.family } : {}), auto: route.auto, pos: route.pos, ...at });
	if (node.nat?.behaviour.masquerade) ops.push(...masqueradeRules(node));
	else if (node.nat) ops.push({ op: "nat", netns: ns, nat: node.nat, pos: node.nat.pos, ...at });
	if (node.nat?.firewall6) ops.push({ op: "firewall6", netns: ns, nat: node.nat, pos: node.nat.pos, ...at });
	for (const iface of node.interfaces) {
		if (!iface.impair) continue;
		const impair = iface.impair;
		const support = impairmentSupport(impair, features);
		if (!support.ok) {
			const first = impairmentKinds.find((kind) => kind.key === support.keys[0])!;
			unmet.push({ feature: support.needs, why: `impairments on ${node.name}:${iface.name} (${support.keys.join(", ")})`, keys: support.keys, pos: impair[first.field]?.pos ?? impair.pos });
		}
		const built = planImpairment(impair, features);
		if (built.loss) ops.push({ op: "nft-loss", netns: ns, iface: iface.name, ...built.loss, pos: impair.loss?.pos ?? impair.pos, ...at });
		if (built.qdisc) ops.push({ op: "qdisc", netns: ns, iface: iface.name, impair: built.qdisc.impair, qdisc: built.qdisc.kind, pos: impair.pos, ...at });
	}
	return ops;
}

/**
 * The lecture's NAT, rule for rule: every inside subnet masqueraded out of the outside interface,
 * and forwarding opened wide (`iptables -A FORWARD -j ACCEPT`). An inside link without an address
 * masquerades whatever leaves by the outside interface.
 */
function masqueradeRules(node: LabNode): Operation[] {
	const nat = node.nat!;
	const at = { netns: node.netns, node: node.name, pos: nat.pos };
	const networks = new Set(nat.inside.flatMap((name) => node.interfaces.find((iface) => iface.name === name)?.addresses.map((address) => address.network) ?? []));
	const sources = networks.size > 0 ? [...networks].map((network) => `-s ${network} `) : [""];
	return [
		...sources.map((source): Operation => ({ op: "iptables", table: "nat", rule: `-A POSTROUTING ${source}-o ${nat.outside} -j MASQUERADE`, ...at })),
		{ op: "iptables", table: "filter", rule: "-A FORWARD -j ACCEPT", ...at },
	];
}

/** ip_forward and rp_filter, set explicitly: new namespaces may inherit them from the host. */
function sysctls(node: LabNode): [string, string][] {
	const settings: [string, string][] = [
		["net.ipv4.ip_forward", node.forwarding ? "1" : "0"],
		["net.ipv4.conf.all.rp_filter", "0"],
		["net.ipv4.conf.default.rp_filter", "0"],
	];
	for (const iface of node.interfaces) settings.push([`net.ipv4.conf.${sysctlName(iface.name)}.rp_filter`, "0"]);
	for (const iface of node.interfaces.filter((candidate) => candidate.impair?.loss)) settings.push(...lossyNeighbours(iface.name, iface.addresses6?.length ? ["ipv4", "ipv6"] : ["ipv4"]));
	// IPv6 only where the node has IPv6 addresses: a lab without IPv6 sets exactly what it did before.
	if (node.ipv6) settings.push(["net.ipv6.conf.all.forwarding", node.forwarding ? "1" : "0"]);
	if (node.nat) {
		// Conntrack forgets an idle flow after the NAT's timeouts, like the mapping maps do: UDP after
		// udp-timeout, an established TCP connection after tcp-timeout, one opening or closing sooner.
		const b = node.nat.behaviour;
		const timeout = String(b.udpTimeout);
		settings.push(["net.netfilter.nf_conntrack_udp_timeout", timeout], ["net.netfilter.nf_conntrack_udp_timeout_stream", timeout]);
		settings.push(["net.netfilter.nf_conntrack_tcp_timeout_established", String(b.tcpTimeout)]);
		for (const state of ["syn_sent", "syn_recv", "fin_wait", "close_wait", "last_ack"]) settings.push([`net.netfilter.nf_conntrack_tcp_timeout_${state}`, String(b.tcpTransitoryTimeout)]);
	}
	return settings;
}

/**
 * Neighbour discovery on an interface that loses packets. ARP and ND probes are lost like any packet,
 * and a loss burst advances per packet: on a quiet link it can eat the kernel's three probes a second
 * apart, and the neighbour is FAILED — the link looks dead for 3 s, not lossy (measured: 2 of 30
 * first punches over flaky-uplink.yml could not reach the rendezvous). Probing every 100 ms, ten
 * times, lets resolution ride out a burst as the traffic does.
 */
export function lossyNeighbours(iface: string, families: ("ipv4" | "ipv6")[]): [string, string][] {
	const name = sysctlName(iface);
	return families.flatMap((family) => [
		[`net.${family}.neigh.${name}.retrans_time_ms`, "100"],
		[`net.${family}.neigh.${name}.mcast_solicit`, "10"],
		[`net.${family}.neigh.${name}.ucast_solicit`, "10"],
	] as [string, string][]);
}

/** sysctl writes dots in interface names as slashes. */
function sysctlName(iface: string): string {
	return iface.replaceAll(".", "/");
}

export function operationCount(plan: Plan): number {
	return plan.root.length + plan.namespaces.reduce((sum, ns) => sum + ns.operations.length, 0);
}

/** Every impairment kind: its YAML key and its field in ImpairDecl. */
export const impairmentKinds = [
	{ key: "delay", field: "delay" },
	{ key: "jitter", field: "jitter" },
	{ key: "loss", field: "loss" },
	{ key: "loss-burst", field: "lossBurst" },
	{ key: "duplicate", field: "duplicate" },
	{ key: "reorder", field: "reorder" },
	{ key: "corrupt", field: "corrupt" },
	{ key: "rate", field: "rate" },
	{ key: "limit", field: "limit" },
] as const satisfies readonly { key: string; field: keyof ImpairDecl }[];

export type ImpairmentKind = (typeof impairmentKinds)[number]["key"];

/** How a host does one kind of impairment (declared alone). */
export type ImpairmentMethod = "netem" | "nftables numgen" | "nftables numgen + set (Gilbert model)" | "tbf" | "pfifo";

/** How this host does one kind of impairment when it is declared alone, or what it lacks for it. */
export function impairmentMethod(kind: ImpairmentKind, features: HostFeatures): { ok: true; how: ImpairmentMethod } | { ok: false; needs: "netem" | "tbf" } {
	const via = (how: ImpairmentMethod) => ({ ok: true, how }) as const;
	const [pfifo, nftEgress, nftBurst] = [features.pfifo !== false, features.nftEgress !== false, features.nftBurst !== false];
	const needs = (feature: "netem" | "tbf") => ({ ok: false, needs: feature }) as const;
	switch (kind) {
		case "loss":
			return features.netem ? via("netem") : nftEgress ? via("nftables numgen") : needs("netem");
		case "loss-burst":
			return features.netem ? via("netem") : nftEgress && nftBurst ? via("nftables numgen + set (Gilbert model)") : needs("netem");
		case "rate":
			return features.tbf ? via("tbf") : features.netem ? via("netem") : needs("tbf");
		case "limit":
			return pfifo ? via("pfifo") : features.netem ? via("netem") : needs("netem");
		default:
			return features.netem ? via("netem") : needs("netem");
	}
}

export type ImpairmentSupport = { ok: true } | { ok: false; needs: "netem" | "tbf"; keys: string[] };

/**
 * Whether this host can build an impairment, and if not, the feature it lacks and the YAML keys
 * that need it (netem first: it would do everything). A burst length counts only with a loss rate.
 */
export function impairmentSupport(impair: ImpairDecl, features: HostFeatures): ImpairmentSupport {
	const missing: { key: string; needs: "netem" | "tbf" }[] = [];
	for (const { key, field } of impairmentKinds) {
		if (impair[field] === undefined || (key === "loss-burst" && !impair.loss)) continue;
		const method = impairmentMethod(key, features);
		if (!method.ok) missing.push({ key, needs: method.needs });
	}
	if (missing.length === 0) return { ok: true };
	const needs = missing.some((entry) => entry.needs === "netem") ? "netem" : "tbf";
	return { ok: false, needs, keys: missing.filter((entry) => entry.needs === needs).map((entry) => entry.key) };
}

/** What builds one interface's impairment: a root qdisc, and/or (without netem) nftables loss rules. */
export interface ImpairmentPlan {
	qdisc?: { kind: QdiscKind; impair: ImpairDecl };
	/** Loss in the interface's netdev egress hook: `percent` of packets, in bursts of `burst` on average. */
	loss?: { percent: number; burst?: number };
}

/**
 * Netem does the whole impairment where it has something to do and the kernel has it; otherwise
 * loss is nftables rules, a rate tbf and a queue limit pfifo (tbf's child when there is a rate).
 * Where the host cannot, the plan is netem's (what a kernel with netem would run; `up` stops first).
 */
export function planImpairment(impair: ImpairDecl, features: HostFeatures): ImpairmentPlan {
	const support = impairmentSupport(impair, features);
	const netemWork = impair.delay || impair.jitter || impair.loss || impair.duplicate || impair.reorder || impair.corrupt;
	if ((features.netem && netemWork) || (!support.ok && support.needs === "netem")) return { qdisc: { kind: "netem", impair } };
	const plan: ImpairmentPlan = {};
	if (impair.loss) plan.loss = { percent: impair.loss.value, ...(impair.lossBurst ? { burst: impair.lossBurst.value } : {}) };
	const queue: ImpairDecl = { pos: impair.pos, ...(impair.rate ? { rate: impair.rate } : {}), ...(impair.limit ? { limit: impair.limit } : {}) };
	if (impair.rate) plan.qdisc = { kind: features.tbf || !features.netem ? "tbf" : "netem", impair: queue };
	else if (impair.limit) plan.qdisc = { kind: features.pfifo !== false || !features.netem ? "pfifo" : "netem", impair: queue };
	return plan;
}
