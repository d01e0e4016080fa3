// An agent started inside a node's namespace, spoken to with JSON lines.
import { createInterface } from "node:readline";
import { spawnLongRunning } from "../apply/run.ts";
import { inNamespace } from "../render/batch.ts";
import { agentBundle } from "./bundle.ts";


/** The command that runs an agent program inside a node's network namespace. */
export function agentCommand(netns: string, node: string, agent: string, args: string[]): string[] {
	return inNamespace(netns, [process.execPath, agentBundle(agent), "--node", node, ...args]);
}

/** Run a one-shot agent (e.g. the STUN probe) and return the JSON line it ends with. */
export async function runAgentOnce(netns: string, node: string, agent: string, args: string[], timeoutMs: number): Promise<AgentEvent> {
	const child = spawnLongRunning(agentCommand(netns, node, agent, args));
	child.stdin.end();
	let last: AgentEvent | undefined;
	let stderr = "";
	child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
	createInterface({ input: child.stdout }).on("line", (line) => {
		try {
			last = JSON.parse(line);
		} catch {}
	});
	const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
	await child;
	clearTimeout(timer);
	return last ?? { event: "fatal", error: stderr.trim() || `agent ${agent} on ${node} printed nothing` };
}

export interface AgentEvent {
	id?: number;
	event: string;
	[key: string]: unknown;
}

export class AgentProcess {
	private nextId = 1;
	private readonly waiting = new Map<number, { resolve: (event: AgentEvent) => void; reject: (error: Error) => void }>();
	private exitedWith?: Error;
	private readonly events: AgentEvent[] = [];
	private readonly listeners = new Set<(event: AgentEvent) => void>();
	private readonly child: ReturnType<typeof spawnLongRunning>;
	private readonly ready: Promise<AgentEvent>;
	private stderr = "";

	constructor(
		readonly netns: string,
		readonly node: string,
		agent: string,
		args: string[] = [],
	) {
		this.child = spawnLongRunning(agentCommand(netns, node, agent, args));
		this.child.stdin.on("error", () => undefined); // writes after the agent died: the pending requests reject instead
		this.child.stderr.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
		let onReady: (event: AgentEvent) => void;
		this.ready = new Promise((resolve) => (onReady = resolve));
		const exited = this.child.then(() => {
			this.exitedWith = new Error(`agent ${agent} on ${node} exited: ${this.stderr.trim() || "no message"}`);
			for (const pending of this.waiting.values()) pending.reject(this.exitedWith);
			this.waiting.clear();
			throw this.exitedWith;
		});
		this.ready = Promise.race([this.ready, exited]);
		exited.catch(() => undefined);
		createInterface({ input: this.child.stdout }).on("line", (line) => {
			let event: AgentEvent;
			try {
				event = JSON.parse(line);
			} catch {
				return;
			}
			if (event.event === "ready") onReady(event);
			else if (event.id !== undefined && this.waiting.has(event.id)) {
				this.waiting.get(event.id)!.resolve(event);
				this.waiting.delete(event.id);
			} else {
				this.events.push(event);
				for (const listener of this.listeners) listener(event);
			}
		});
	}

	started(): Promise<AgentEvent> {
		return this.ready;
	}

	request(command: Record<string, unknown>): Promise<AgentEvent> {
		const id = this.nextId++;
		if (this.exitedWith) return Promise.reject(this.exitedWith);
		return new Promise((resolve, reject) => {
			this.waiting.set(id, { resolve, reject });
			this.child.stdin.write(`${JSON.stringify({ id, ...command })}\n`);
		});
	}

	/** Events without a request id (e.g. datagrams received), oldest first. */
	received(): readonly AgentEvent[] {
		return this.events;
	}

	/** The first event (already received or coming) that matches, or undefined after `timeoutMs`. */
	waitFor(match: (event: AgentEvent) => boolean, timeoutMs: number): Promise<AgentEvent | undefined> {
		const seen = this.events.find(match);
		if (seen) return Promise.resolve(seen);
		return new Promise((resolve) => {
			const listener = (event: AgentEvent) => {
				if (!match(event)) return;
				clearTimeout(timer);
				this.listeners.delete(listener);
				resolve(event);
			};
			const timer = setTimeout(() => {
				this.listeners.delete(listener);
				resolve(undefined);
			}, timeoutMs);
			this.listeners.add(listener);
		});
	}

	async stop(): Promise<void> {
		this.child.stdin.end();
		const timer = setTimeout(() => this.child.kill("SIGKILL"), 1000);
		await this.child;
		clearTimeout(timer);
	}
}
