// A handle on the UDP tool agent in one node: bind sockets, send, and see what arrives from where.
import type { LabNode } from "../resolve/lab.ts";
import { AgentProcess, agentPlace, type AgentEvent } from "./agent-process.ts";

export interface Received {
	sock: string;
	from: string;
	data: string;
}

/** What a counting socket received; times are milliseconds on the agent's clock. */
export interface SocketStats {
	datagrams: number;
	/** UDP payload bytes. */
	bytes: number;
	firstMs?: number;
	lastMs?: number;
	/** The flood sequence numbers received, in arrival order (when asked for). */
	seqs?: number[];
}

/** What a flood sent. */
export interface FloodResult {
	sent: number;
	/** UDP payload bytes. */
	bytes: number;
	/** Sends the kernel refused. */
	errors: number;
	ms: number;
}

/** Lengths of the runs of sequence numbers 0..sent-1 that never arrived, in order. */
export function missingRuns(received: Iterable<number>, sent: number): number[] {
	const seen = new Set(received);
	const runs: number[] = [];
	let run = 0;
	for (let seq = 0; seq < sent; seq++) {
		if (!seen.has(seq)) run++;
		else if (run > 0) {
			runs.push(run);
			run = 0;
		}
	}
	if (run > 0) runs.push(run);
	return runs;
}

export class UdpTool {
	private readonly agent: AgentProcess;

	private constructor(readonly node: LabNode, lab?: string) {
		this.agent = new AgentProcess(lab === undefined ? node.netns : agentPlace(lab, node), node.name, "udp-tool");
	}

	/** `lab`: the lab's name, so that a node with private directories or limits runs it as its programs run. */
	static async start(node: LabNode, lab?: string): Promise<UdpTool> {
		const tool = new UdpTool(node, lab);
		await tool.agent.started();
		return tool;
	}

	/**
	 * Bind a named socket; port 0 picks one. An echo socket tells every sender its source endpoint; a
	 * counting socket reports no datagrams, only `stats()` (for floods).
	 */
	async bind(sock: string, port = 0, options: { echo?: boolean; address?: string; count?: boolean } = {}): Promise<number> {
		const reply = await this.agent.request({ cmd: "bind", sock, port, echo: options.echo ?? false, address: options.address ?? "0.0.0.0", count: options.count ?? false });
		if (reply.event !== "bound") throw new Error(`${this.node.name}: bind ${sock}:${port}: ${String(reply.error)}`);
		return reply.port as number;
	}

	async send(sock: string, to: string, data: string): Promise<void> {
		const reply = await this.agent.request({ cmd: "send", sock, to, data });
		if (reply.event !== "sent") throw new Error(`${this.node.name}: send ${sock} → ${to}: ${String(reply.error)}`);
	}

	/**
	 * Send numbered datagrams of `size` payload bytes to `to`: `count` of them, or for `durationMs`,
	 * paced at `pps` datagrams a second (back to back without). Resolves when the last is sent.
	 */
	async flood(sock: string, to: string, options: { size?: number; count?: number; durationMs?: number; pps?: number }): Promise<FloodResult> {
		const reply = await this.agent.request({ cmd: "flood", sock, to, ...options });
		if (reply.event !== "flooded") throw new Error(`${this.node.name}: flood ${sock} → ${to}: ${String(reply.error)}`);
		return { sent: reply.sent as number, bytes: reply.bytes as number, errors: reply.errors as number, ms: reply.ms as number };
	}

	/** What a counting socket has received so far (`reset` starts counting anew). */
	async stats(sock: string, options: { seqs?: boolean; reset?: boolean } = {}): Promise<SocketStats> {
		const reply = await this.agent.request({ cmd: "stats", sock, seqs: options.seqs ?? false, reset: options.reset ?? false });
		if (reply.event !== "stats") throw new Error(`${this.node.name}: stats ${sock}: ${String(reply.error)}`);
		const { datagrams, bytes, firstMs, lastMs, seqs } = reply as unknown as SocketStats;
		return { datagrams, bytes, firstMs, lastMs, ...(seqs ? { seqs } : {}) };
	}

	/** Wait for a datagram on `sock` (optionally with this data); undefined when none came in time. */
	async receive(sock: string, options: { data?: string; from?: string; timeoutMs?: number } = {}): Promise<Received | undefined> {
		const event = await this.agent.waitFor(
			(e: AgentEvent) => e.event === "recv" && e.sock === sock && (options.data === undefined || e.data === options.data) && (options.from === undefined || e.from === options.from),
			options.timeoutMs ?? 1000,
		);
		return event ? { sock, from: event.from as string, data: event.data as string } : undefined;
	}

	/** Send to an echo socket and return the source endpoint it saw (the public mapping), or undefined. */
	async mappedEndpoint(sock: string, echo: string, timeoutMs = 1000): Promise<string | undefined> {
		const deadline = Date.now() + timeoutMs;
		while (Date.now() < deadline) {
			const marker = `probe-${Math.random().toString(36).slice(2)}`;
			const before = this.agent.received().length;
			await this.send(sock, echo, marker);
			const reply = await this.agent.waitFor((e) => e.event === "recv" && e.sock === sock && e.from === echo && String(e.data).startsWith("seen ") && this.agent.received().indexOf(e) >= before, 250);
			if (reply) return String(reply.data).slice("seen ".length);
		}
		return undefined;
	}

	stop(): Promise<void> {
		return this.agent.stop();
	}
}
