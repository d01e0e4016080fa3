// Where the rendezvous runs: a public host of the lab (preferably one named like "stun" or
// "rendezvous"), or, when there is none, a temporary host attached to the public router most hosts reach.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { defaultPath, publicNodes } from "../resolve/routing.ts";

/** The node to run the rendezvous on: a public host, preferably one named like "stun" or "rendezvous". */
export function rendezvousHost(lab: Lab): { node: LabNode; address: string } | undefined {
	const hosts = publicNodes(lab)
		.filter((node) => node.kind === "host")
		.map((node) => ({ node, address: primaryAddress(node) }))
		.filter((host): host is { node: LabNode; address: string } => host.address !== undefined);
	return hosts.find((host) => /stun|rendezvous|rdv|server/i.test(host.node.name)) ?? hosts[0];
}

/** A host's IPv6 address on a link (what IPv6 peers reach the rendezvous at), if it has one. */
export function primaryAddress6(node: LabNode): string | undefined {
	return node.interfaces.filter((iface) => iface.type === "veth").flatMap((iface) => (iface.addresses6 ?? []).map((address) => address.ip))[0];
}

/** The address a host is routed by: the first one on a link (not on a dummy). */
function primaryAddress(node: LabNode): string | undefined {
	const ordered = [...node.interfaces].sort((a, b) => Number(a.type !== "veth") - Number(b.type !== "veth"));
	return ordered.flatMap((iface) => iface.addresses.map((address) => address.ip))[0];
}

/** Where to attach a temporary rendezvous host: the router most hosts' default paths end at. */
export function publicRouter(lab: Lab): LabNode | undefined {
	const counts = new Map<string, number>();
	for (const node of lab.nodes.filter((candidate) => candidate.kind === "host")) {
		const end = defaultPath(lab, node).end;
		counts.set(end, (counts.get(end) ?? 0) + 1);
	}
	const routers = new Set(publicNodes(lab).filter((node) => node.kind === "router").map((node) => node.name));
	const best = [...counts].filter(([name]) => routers.has(name)).sort((a, b) => b[1] - a[1])[0]?.[0];
	return lab.nodes.find((node) => node.name === best) ?? lab.nodes.find((node) => routers.has(node.name));
}
