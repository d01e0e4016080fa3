// An agent started inside a node's namespace, spoken to with JSON lines.
import { createInterface } from "node:readline";
import { spawnLongRunning } from "../apply/spawn.ts";
import { inNamespace } from "../render/batch.ts";
import { isContainer, nodeEntry } from "../apply/node-env.ts";
import type { LabNode } from "../resolve/lab.ts";
import { agentBundle } from "./bundle.ts";

/**
 * Where an agent runs: a network namespace's name, or the argv prefix that makes a process one of a
 * node's (a node with private directories or limits: its cgroups and namespaces, as its programs).
 */
export type AgentPlace = string | string[];

/** Where a node's agents run: with its programs when it is a container, else in its network namespace. */
export function agentPlace(lab: string, node: LabNode): AgentPlace {
	return isContainer(node) ? nodeEntry(lab, node) : node.netns;
}

/** The command that runs an agent program in its place. */
export function agentCommand(place: AgentPlace, node: string, agent: string, args: string[]): string[] {
	const argv = [process.execPath, agentBundle(agent), "--node", node, ...args];
	return typeof place === "string" ? inNamespace(place, argv) : [...place, ...argv];
}

/** Run a one-shot agent (e.g. the STUN probe) and return the JSON line it ends with. */
export async function runAgentOnce(place: AgentPlace, node: string, agent: string, args: string[], timeoutMs: number): Promise<AgentEvent> {
	const child = spawnLongRunning(agentCommand(place, node, agent, args));
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

/** How many events `received()` keeps at most, and how many of the oldest go at once past that. */
const historyLimit = 100_000;
const historyTrim = 10_000;

export class AgentProcess {
	private nextId = 1;
	private readonly waiting = new Map<number, { resolve: (event: AgentEvent) => void; reject: (error: Error) => void }>();
	private exitedWith?: Error;
	/** The latest events without a request id, oldest first; at most `historyLimit` (see `record`). */
	private readonly events: AgentEvent[] = [];
	/** One entry per `on()` call (so the same function may subscribe twice and unsubscribe once). */
	private readonly listeners = new Set<{ listener: (event: AgentEvent) => void; warned?: boolean }>();
	private readonly child: ReturnType<typeof spawnLongRunning>;
	private readonly ready: Promise<AgentEvent>;
	private stderr = "";

	/**
	 * `command`, when given, runs instead of the agent in `place` (tests drive the JSON-lines protocol
	 * with a plain process that way, without a namespace or root).
	 */
	constructor(
		place: AgentPlace,
		readonly node: string,
		agent: string,
		args: string[] = [],
		command?: string[],
	) {
		this.child = spawnLongRunning(command ?? agentCommand(place, node, agent, args));
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
			} else this.record(event);
		});
	}

	/** Keep an event (bounded) and hand it to every listener, in the order the lines came. */
	private record(event: AgentEvent): void {
		this.events.push(event);
		// The history is bounded: a held session or a soak run can go on for hours. Past
		// `historyLimit` events the oldest `historyTrim` go at once, so between two trims positions
		// in `received()` stay put and `received().length` grows by one per event (callers compare
		// lengths and indexes taken a moment apart); the trim is amortised over many events.
		if (this.events.length > historyLimit) this.events.splice(0, historyTrim);
		if (this.listeners.size === 0) return;
		for (const entry of [...this.listeners]) {
			if (!this.listeners.has(entry)) continue; // unsubscribed by an earlier listener for this very event
			try {
				entry.listener(event);
			} catch (error) {
				// A listener's bug must not stop the reader (the other listeners, later lines, replies);
				// it is reported once per subscription, not once per event.
				if (entry.warned) continue;
				entry.warned = true;
				process.emitWarning(`a listener of agent events on ${this.node} threw: ${String((error as Error)?.stack ?? error)}`, "AgentListenerWarning");
			}
		}
	}

	/**
	 * Call `listener` with every event without a request id (what `received()` keeps: unsolicited
	 * events, and replies no request waits for), as each line arrives, in order. Not "ready", nor
	 * the replies that resolve `request()`. Returns the unsubscribe (safe to call twice).
	 */
	on(listener: (event: AgentEvent) => void): () => void {
		const entry: { listener: (event: AgentEvent) => void; warned?: boolean } = { listener };
		this.listeners.add(entry);
		return () => void this.listeners.delete(entry);
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

	/**
	 * Events without a request id (e.g. datagrams received), oldest first: the latest ones only,
	 * at most `historyLimit` (100,000; the oldest 10,000 are dropped at once past that). The array
	 * is live (it grows as events come). To see every event, subscribe with `on()`.
	 */
	received(): readonly AgentEvent[] {
		return this.events;
	}

	/**
	 * The first event (already received and still kept, or coming) that matches, or undefined
	 * after `timeoutMs`. Looks through the history once, then listens (no polling).
	 */
	waitFor(match: (event: AgentEvent) => boolean, timeoutMs: number): Promise<AgentEvent | undefined> {
		const seen = this.events.find(match);
		if (seen) return Promise.resolve(seen);
		return new Promise((resolve, reject) => {
			const unsubscribe = this.on((event) => {
				let matched: boolean;
				try {
					matched = match(event);
				} catch (error) {
					clearTimeout(timer);
					unsubscribe();
					reject(error);
					return;
				}
				if (!matched) return;
				clearTimeout(timer);
				unsubscribe();
				resolve(event);
			});
			const timer = setTimeout(() => {
				unsubscribe();
				resolve(undefined);
			}, timeoutMs);
		});
	}

	async stop(): Promise<void> {
		this.child.stdin.end();
		const timer = setTimeout(() => this.child.kill("SIGKILL"), 1000);
		await this.child;
		clearTimeout(timer);
	}
}
