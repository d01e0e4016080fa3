// Plan: a Lab becomes the exact list of operations `up` performs. Pure: same lab and features, same plan.
import type { Lab, LabInterface, LabNode } from "../resolve/lab.ts";
import { overlaps } from "../validate/addresses.ts";
import type { HostFeatures, NamespacePlan, Operation, Plan, Requirement } from "./operations.ts";

export function planLab(lab: Lab, features: HostFeatures): Plan {
	const root: Operation[] = [];
	const unmet: Requirement[] = [];
	const notes: string[] = [];
	const netnsOf = new Map(lab.nodes.map((node) => [node.name, node.netns]));

	for (const node of lab.nodes) root.push({ op: "netns-add", netns: node.netns, node: node.name, pos: node.pos });
	for (const link of lab.links) {
		const [a, b] = link.endpoints;
		root.push({ op: "veth-add", a: { netns: netnsOf.get(a.node)!, iface: a.iface }, b: { netns: netnsOf.get(b.node)!, iface: b.iface }, pos: link.pos });
	}

	const namespaces: NamespacePlan[] = lab.nodes.map((node) => {
		const operations = planNode(node, features, unmet);
		return { netns: node.netns, node: node.name, kind: node.kind, operations };
	});
	if (!features.dummy && lab.nodes.some((node) => node.interfaces.some((iface) => iface.type === "dummy")))
		notes.push("this kernel has no dummy link type: dummy interfaces are empty bridges, which hold addresses the same way");
	return { lab: lab.name, file: lab.file, features, root, namespaces, unmet, notes };
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
	for (const iface of node.interfaces) ops.push({ op: "link-up", netns: ns, iface: iface.name, pos: iface.pos, ...at });
	const linkNetworks = node.interfaces.filter((iface) => iface.type === "veth").flatMap((iface) => iface.addresses.map((address) => address.network));
	for (const iface of node.interfaces) {
		for (const address of iface.addresses) {
			// A dummy address inside a link's subnet only holds the address: no competing prefix route.
			const noPrefixRoute = iface.type === "dummy" && linkNetworks.some((network) => overlaps(network, address.network));
			ops.push({ op: "address-add", netns: ns, iface: iface.name, cidr: address.cidr, noPrefixRoute, pos: iface.pos, ...at });
		}
	}
	ops.push({ op: "sysctl", netns: ns, settings: sysctls(node), pos: node.pos, ...at });
	for (const route of node.routes) ops.push({ op: "route-add", netns: ns, to: route.to, via: route.via, dev: route.dev, auto: route.auto, pos: route.pos, ...at });
	if (node.nat) ops.push({ op: "nat", netns: ns, nat: node.nat, pos: node.nat.pos, ...at });
	for (const iface of node.interfaces) {
		if (!iface.impair) continue;
		const pos = iface.impair.pos;
		const netemKeys = ["delay", "jitter", "loss", "duplicate", "reorder", "corrupt", "limit"].filter((key) => key in iface.impair!);
		// Without netem, random loss is an nftables rule (numgen) and a rate is tbf; the rest needs netem.
		if (!features.netem && netemKeys.length > 0 && netemKeys.every((key) => key === "loss")) {
			ops.push({ op: "nft-loss", netns: ns, iface: iface.name, percent: iface.impair.loss!.value, pos, ...at });
			if (iface.impair.rate) {
				if (!features.tbf) unmet.push({ feature: "tbf", why: `rate limit on ${node.name}:${iface.name}`, pos });
				ops.push({ op: "qdisc", netns: ns, iface: iface.name, impair: { pos, rate: iface.impair.rate }, netem: false, pos, ...at });
			}
			continue;
		}
		// tbf does only a rate; everything else (a queue limit too) is netem's.
		const needsNetem = netemKeys.length > 0;
		if (needsNetem && !features.netem) unmet.push({ feature: "netem", why: `impairments on ${node.name}:${iface.name} (${netemKeys.filter((key) => key !== "loss").join(", ")})`, pos });
		else if (!needsNetem && !features.tbf && !features.netem) unmet.push({ feature: "tbf", why: `rate limit on ${node.name}:${iface.name}`, pos });
		ops.push({ op: "qdisc", netns: ns, iface: iface.name, impair: iface.impair, netem: needsNetem || !features.tbf, pos, ...at });
	}
	return ops;
}

/** ip_forward and rp_filter, set explicitly: new namespaces may inherit them from the host. */
function sysctls(node: LabNode): [string, string][] {
	const settings: [string, string][] = [
		["net.ipv4.ip_forward", node.forwarding ? "1" : "0"],
		["net.ipv4.conf.all.rp_filter", "0"],
		["net.ipv4.conf.default.rp_filter", "0"],
	];
	for (const iface of node.interfaces) settings.push([`net.ipv4.conf.${sysctlName(iface)}.rp_filter`, "0"]);
	if (node.nat) {
		// Conntrack forgets an idle UDP flow after the NAT's udp-timeout, like the mapping maps do.
		const timeout = String(node.nat.behaviour.udpTimeout);
		settings.push(["net.netfilter.nf_conntrack_udp_timeout", timeout], ["net.netfilter.nf_conntrack_udp_timeout_stream", timeout]);
	}
	return settings;
}

/** sysctl writes dots in interface names as slashes. */
function sysctlName(iface: LabInterface): string {
	return iface.name.replaceAll(".", "/");
}

export function operationCount(plan: Plan): number {
	return plan.root.length + plan.namespaces.reduce((sum, ns) => sum + ns.operations.length, 0);
}
