// An agent started inside a node's namespace, spoken to with JSON lines.
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { spawnLongRunning } from "../apply/run.ts";

const agentsDir = fileURLToPath(new URL("../../agents/", import.meta.url));
const tsxLoader = import.meta.resolve("tsx");

export interface AgentEvent {
	id?: number;
	event: string;
	[key: string]: unknown;
}

export class AgentProcess {
	private nextId = 1;
	private readonly waiting = new Map<number, (event: AgentEvent) => void>();
	private readonly events: AgentEvent[] = [];
	private readonly child: ReturnType<typeof spawnLongRunning>;
	private readonly ready: Promise<AgentEvent>;
	private stderr = "";

	constructor(
		readonly netns: string,
		readonly node: string,
		agent: string,
		args: string[] = [],
	) {
		this.child = spawnLongRunning(["ip", "netns", "exec", netns, process.execPath, "--import", tsxLoader, `${agentsDir}${agent}.ts`, "--node", node, ...args]);
		this.child.stderr.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
		let onReady: (event: AgentEvent) => void;
		this.ready = new Promise((resolve) => (onReady = resolve));
		const exited = this.child.then(() => {
			throw new Error(`agent ${agent} on ${node} exited: ${this.stderr.trim() || "no message"}`);
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
				this.waiting.get(event.id)!(event);
				this.waiting.delete(event.id);
			} else this.events.push(event);
		});
	}

	started(): Promise<AgentEvent> {
		return this.ready;
	}

	request(command: Record<string, unknown>): Promise<AgentEvent> {
		const id = this.nextId++;
		return new Promise((resolve) => {
			this.waiting.set(id, resolve);
			this.child.stdin.write(`${JSON.stringify({ id, ...command })}\n`);
		});
	}

	async stop(): Promise<void> {
		this.child.stdin.end();
		const timer = setTimeout(() => this.child.kill("SIGKILL"), 1000);
		await this.child;
		clearTimeout(timer);
	}
}
