// Reachability over UDP: a reach agent in every node, every node probes every other node's addresses.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { reachPort } from "../../agents/protocol.ts";
import { AgentProcess } from "./agent-process.ts";

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

export interface ReachMatrix {
	lab: string;
	proto: "udp";
	nodes: string[];
	cells: ReachCell[];
}

export interface ReachOptions {
	/** Nodes to include (default: every node that is not a switch). */
	nodes?: string[];
	timeoutMs?: number;
}

export async function reachMatrix(lab: Lab, options: ReachOptions = {}): Promise<ReachMatrix> {
	const nodes = lab.nodes.filter((node) => node.kind !== "switch" && (!options.nodes || options.nodes.includes(node.name)));
	const agents = nodes.map((node) => new AgentProcess(node.netns, node.name, "reach", ["--port", String(reachPort)]));
	try {
		await Promise.all(agents.map((agent) => agent.started()));
		const replies = await Promise.all(
			agents.map((agent, index) =>
				agent.request({ cmd: "probe", targets: targetsFor(nodes[index], nodes), timeoutMs: options.timeoutMs ?? 1000, intervalMs: 150 }),
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
		return { lab: lab.name, proto: "udp", nodes: nodes.map((node) => node.name), cells };
	} finally {
		await Promise.all(agents.map((agent) => agent.stop().catch(() => undefined)));
	}
}

function targetsFor(source: LabNode, nodes: LabNode[]) {
	return nodes
		.filter((node) => node !== source)
		.flatMap((node) => node.interfaces.flatMap((iface) => iface.addresses.map((address) => ({ key: `${node.name}@${address.ip}`, address: address.ip, port: reachPort }))));
}
