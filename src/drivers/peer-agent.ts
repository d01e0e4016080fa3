// The peer agent of one node, as the driver talks to it: endpoints opened on demand, a connect
// through the rendezvous, status, events as they come, counters. Requests give up after a while.
import type { LabNode, Lab } from "../resolve/lab.ts";
import { LabStateError } from "../errors.ts";
import { AgentProcess, agentPlace, type AgentEvent } from "./agent-process.ts";
import type { Pacing } from "./punch.ts";
import type { PunchProto } from "../vocabulary/punch.ts";
import type { PortMappingProtocol } from "../vocabulary/port-mapping.ts";

/** What an endpoint's gateway said when it asked for a port mapping: the grant, or none; why each method before it failed. */
export interface PortMappingReport {
	granted: { method: PortMappingProtocol; external: string; internal: string; lifetimeS: number } | null;
	failures: { method: PortMappingProtocol; reason: string }[];
}

/** A connect's pacing and deadlines, and for a held session its keepalive and loss timeout. */
export type ConnectOptions = Pacing & { keepaliveMs?: number; lossAfterMs?: number };

const requestTimeoutMs = 10_000;

/** The lab node named `name`, or a clear error listing the nodes there are. */
export function peerNode(lab: Lab, name: string): LabNode {
	const node = lab.nodes.find((candidate) => candidate.name === name);
	const peers = lab.nodes.filter((candidate) => candidate.kind !== "switch").map((candidate) => candidate.name);
	if (!node) throw new LabStateError(`lab "${lab.name}" has no node "${name}"; nodes: ${peers.join(", ") || "none"}`, "NODE_NOT_FOUND");
	if (node.kind === "switch") throw new LabStateError(`node "${name}" of lab "${lab.name}" is a switch, which has no address to punch from; nodes: ${peers.join(", ")}`, "NODE_NOT_FOUND");
	return node;
}

/** A request that gives up (as an error event) when the agent does not answer in time. */
export async function ask(agent: AgentProcess, command: Record<string, unknown>, timeoutMs = requestTimeoutMs): Promise<AgentEvent> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<AgentEvent>((resolve) => (timer = setTimeout(() => resolve({ event: "error", error: `agent on ${agent.node} did not answer ${String(command.cmd)} within ${timeoutMs} ms` }), timeoutMs)));
	try {
		return await Promise.race([agent.request(command), timeout]);
	} finally {
		clearTimeout(timer);
	}
}


/** A handle on the peer agent of one node: endpoints on demand. */
export class PeerAgent {
	private constructor(readonly agent: AgentProcess) {}

	static async start(node: LabNode, rendezvous: string, lab?: string, proto: PunchProto = "udp"): Promise<PeerAgent> {
		const agent = new AgentProcess(lab === undefined ? node.netns : agentPlace(lab, node), node.name, "peer", ["--rendezvous", rendezvous, ...(proto === "udp" ? [] : ["--proto", proto])]);
		await agent.started();
		return new PeerAgent(agent);
	}

	get node(): string {
		return this.agent.node;
	}

	/**
	 * A fresh socket registered as `endpoint`: its local, reflexive and host candidate endpoints.
	 * With `claim` (32 hex digits), another process may later open the same endpoint with the same
	 * claim and take it over (a restart); `keepaliveMs` paces its re-registration while idle;
	 * `portMapping` (methods in order) asks the node's gateway for a mapping of the endpoint's port
	 * first, and registers what it granted as a candidate (`portMapping` in the answer says what came of it).
	 */
	async open(endpoint: string, options: { claim?: string; keepaliveMs?: number; portMapping?: readonly PortMappingProtocol[] } = {}): Promise<{ local: string; reflexive: string; host: string[]; portMapping?: PortMappingReport }> {
		const { portMapping, ...rest } = options;
		const reply = await ask(this.agent, { cmd: "open", endpoint, ...rest, ...(portMapping?.length ? { portMapping } : {}) });
		if (reply.event !== "registered") throw new Error(`${this.node}: open ${endpoint}: ${String(reply.error)}`);
		return { local: reply.local as string, reflexive: reply.reflexive as string, host: reply.host as string[], ...(reply.portMapping ? { portMapping: reply.portMapping as PortMappingReport } : {}) };
	}

	/** Ask the rendezvous for a session with `target`; the reply is "started" or "error". */
	connect(endpoint: string, target: string, options: ConnectOptions): Promise<AgentEvent> {
		return ask(this.agent, {
			cmd: "connect",
			endpoint,
			target,
			intervalMs: options.intervalMs,
			deadlineMs: options.deadlineMs,
			relay: options.relay,
			...(options.keepaliveMs !== undefined ? { keepaliveMs: options.keepaliveMs } : {}),
			...(options.lossAfterMs !== undefined ? { lossAfterMs: options.lossAfterMs } : {}),
		});
	}

	/** Where an endpoint's session stands; `since` (wall ms): when the peer was first heard after it. */
	status(endpoint: string, since?: number): Promise<AgentEvent> {
		return ask(this.agent, { cmd: "status", endpoint, ...(since !== undefined ? { since } : {}) }, 3000);
	}

	/** Events without a request id, oldest first (the latest ones only: see AgentProcess.received). */
	events(): readonly AgentEvent[] {
		return this.agent.received();
	}

	/** Call `listener` with each event without a request id as it comes; returns the unsubscribe. */
	on(listener: (event: AgentEvent) => void): () => void {
		return this.agent.on(listener);
	}

	/** The endpoint's "connected" or "failed" event; undefined when none came in time. */
	outcome(endpoint: string, timeoutMs: number): Promise<AgentEvent | undefined> {
		return this.agent.waitFor((event) => (event.event === "connected" || event.event === "failed") && event.endpoint === endpoint, timeoutMs);
	}

	async close(endpoint: string): Promise<void> {
		await ask(this.agent, { cmd: "close", endpoint }, 3000);
	}

	/** Datagrams received, and dropped by reason. */
	stats(): Promise<AgentEvent> {
		return ask(this.agent, { cmd: "stats" });
	}

	stop(): Promise<void> {
		return this.agent.stop();
	}
}
