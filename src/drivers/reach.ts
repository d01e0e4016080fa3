// Reachability (UDP, TCP or ICMP): a reach agent in every node, every node probes every other node's addresses.
// ICMP answers come from the kernel, so for ICMP any answer from the address counts.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { reachPort } from "../../agents/reach/protocol.ts";
import { AgentProcess, agentPlace } from "./agent-process.ts";

export interface ReachCell {
	from: string;
	to: string;
	/** Reached at least one address of `to`, and `to` itself answered. */
	ok: boolean;
	/** The address that answered first, and the round trip. */
	via?: string;
	rttMs?: number;
	/** Per address of `to`: reached or not. */
	addresses: { address: string; ok: boolean }[];
}

export type ReachProto = "udp" | "tcp" | "icmp";

export interface ReachMatrix {
	lab: string;
	proto: ReachProto;
	family: 4 | 6;
	nodes: string[];
	cells: ReachCell[];
}

export interface ReachOptions {
	/** Nodes to include (default: every node that is not a switch). */
	nodes?: string[];
	timeoutMs?: number;
	proto?: ReachProto;
	/** IPv4 (default), or IPv6: between the nodes that have IPv6 addresses. */
	family?: 4 | 6;
}

export async function reachMatrix(lab: Lab, options: ReachOptions = {}): Promise<ReachMatrix> {
	const family = options.family ?? 4;
	const nodes = lab.nodes.filter((node) => node.kind !== "switch" && (family === 4 || node.ipv6) && (!options.nodes || options.nodes.includes(node.name)));
	const agents = nodes.map((node) => new AgentProcess(agentPlace(lab.name, node), node.name, "reach", ["--port", String(reachPort)]));
	try {
		await Promise.all(agents.map((agent) => agent.started()));
		const replies = await Promise.all(
			agents.map((agent, index) =>
				agent.request({ cmd: "probe", proto: options.proto ?? "udp", targets: targetsFor(nodes[index], nodes, options.proto === "icmp", family), timeoutMs: options.timeoutMs ?? 1000, intervalMs: 150 }),
			),
		);
		const cells: ReachCell[] = [];
		replies.forEach((reply, index) => {
			const results = reply.results as { key: string; ok: boolean; rttMs?: number; responder?: string }[];
			for (const target of nodes) {
				if (target === nodes[index]) continue;
				const mine = results.filter((result) => result.key.startsWith(`${target.name}@`));
				const addresses = mine.map((result) => ({ address: result.key.split("@")[1], ok: result.ok && result.responder === target.name }));
				const first = mine.filter((result) => result.ok && result.responder === target.name).sort((a, b) => (a.rttMs ?? 0) - (b.rttMs ?? 0))[0];
				cells.push({ from: nodes[index].name, to: target.name, ok: Boolean(first), via: first?.key.split("@")[1], rttMs: first?.rttMs, addresses });
			}
		});
		return { lab: lab.name, proto: options.proto ?? "udp", family, nodes: nodes.map((node) => node.name), cells };
	} finally {
		await Promise.all(agents.map((agent) => agent.stop().catch(() => undefined)));
	}
}

/**
 * Every address of every other node. ICMP echo replies do not say who answered, so for ICMP an
 * address several nodes hold (private addresses repeat behind different NATs) is left out.
 */
function targetsFor(source: LabNode, nodes: LabNode[], uniqueOnly: boolean, family: 4 | 6) {
	const addressesOf = (iface: LabNode["interfaces"][number]) => (family === 6 ? (iface.addresses6 ?? []) : iface.addresses);
	const holders = new Map<string, number>();
	for (const node of nodes) for (const iface of node.interfaces) for (const address of addressesOf(iface)) holders.set(address.ip, (holders.get(address.ip) ?? 0) + 1);
	return nodes
		.filter((node) => node !== source)
		.flatMap((node) =>
			node.interfaces.flatMap((iface) =>
				addressesOf(iface).filter((address) => !uniqueOnly || holders.get(address.ip) === 1).map((address) => ({ key: `${node.name}@${address.ip}`, address: address.ip, port: reachPort })),
			),
		);
}
