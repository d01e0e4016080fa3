// `punch`: UDP hole punching between lab nodes. One rendezvous agent on a public host (or on a
// temporary host attached for the purpose) and, lazily, one peer agent per node; every punch uses
// fresh endpoints ("alice.7", "bob.7"), so runs and pairs are independent of each other.
// HeldSession keeps one pair connected while the lab misbehaves: keepalives below the NATs'
// udp-timeout, loss detection, re-punching, path migration, and a peer process restart.
import { randomBytes } from "node:crypto";
import type { Lab, LabNode } from "../resolve/lab.ts";
import { defaultPath, publicNodes } from "../resolve/routing.ts";
import { attachHost, type AttachedHost } from "../apply/attach.ts";
import { LabStateError } from "../errors.ts";
import { AgentProcess, type AgentEvent } from "./agent-process.ts";
import { pathRank, rendezvousPort, type PunchOutcome } from "../vocabulary/punch.ts";

export { rendezvousPort, type PunchOutcome };


export interface PunchResult {
	/** The two nodes; a started the session, b was told by the rendezvous. */
	a: string;
	b: string;
	outcome: PunchOutcome;
	/** From the rendezvous' start signal to the first confirmed path (the later of both sides); null when failed. */
	timeToConnectMs: number | null;
	/** Datagrams both sides sent in the session until their outcome. */
	packetsSent: number;
	/** Median RTT over the chosen path, measured by a; null when failed. */
	rttMs: number | null;
	/** The remote endpoint each side talks to (the rendezvous' for a relayed path). */
	remote?: { a: string; b: string };
	error?: string;
	/** 1 for the first punch of this pair in the session, 2 for the next… */
	run: number;
}

export interface PunchOptions {
	/** Between two rounds of probes (default 20). */
	intervalMs?: number;
	/** Direct attempts give up after this long, and so does the relay after that (default 3000). */
	deadlineMs?: number;
	/** Fall back to the rendezvous relay when no direct path confirms (default true). */
	relay?: boolean;
}

const requestTimeoutMs = 10_000;

/** The node to run the rendezvous on: a public host, preferably one named like "stun" or "rendezvous". */
export function rendezvousHost(lab: Lab): { node: LabNode; address: string } | undefined {
	const hosts = publicNodes(lab)
		.filter((node) => node.kind === "host")
		.map((node) => ({ node, address: primaryAddress(node) }))
		.filter((host): host is { node: LabNode; address: string } => host.address !== undefined);
	return hosts.find((host) => /stun|rendezvous|rdv|server/i.test(host.node.name)) ?? hosts[0];
}

/** The address a host is routed by: the first one on a link (not on a dummy). */
function primaryAddress(node: LabNode): string | undefined {
	const ordered = [...node.interfaces].sort((a, b) => Number(a.type !== "veth") - Number(b.type !== "veth"));
	return ordered.flatMap((iface) => iface.addresses.map((address) => address.ip))[0];
}

/** Where to attach a temporary rendezvous host: the router most hosts' default paths end at. */
function publicRouter(lab: Lab): LabNode | undefined {
	const counts = new Map<string, number>();
	for (const node of lab.nodes.filter((candidate) => candidate.kind === "host")) {
		const end = defaultPath(lab, node).end;
		counts.set(end, (counts.get(end) ?? 0) + 1);
	}
	const routers = new Set(publicNodes(lab).filter((node) => node.kind === "router").map((node) => node.name));
	const best = [...counts].filter(([name]) => routers.has(name)).sort((a, b) => b[1] - a[1])[0]?.[0];
	return lab.nodes.find((node) => node.name === best) ?? lab.nodes.find((node) => routers.has(node.name));
}

/** The lab node named `name`, or a clear error listing the nodes there are. */
function peerNode(lab: Lab, name: string): LabNode {
	const node = lab.nodes.find((candidate) => candidate.name === name);
	const peers = lab.nodes.filter((candidate) => candidate.kind !== "switch").map((candidate) => candidate.name);
	if (!node) throw new LabStateError(`lab "${lab.name}" has no node "${name}"; nodes: ${peers.join(", ") || "none"}`, "NODE_NOT_FOUND");
	if (node.kind === "switch") throw new LabStateError(`node "${name}" of lab "${lab.name}" is a switch, which has no address to punch from; nodes: ${peers.join(", ")}`, "NODE_NOT_FOUND");
	return node;
}

/** A request that gives up (as an error event) when the agent does not answer in time. */
async function ask(agent: AgentProcess, command: Record<string, unknown>, timeoutMs = requestTimeoutMs): Promise<AgentEvent> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<AgentEvent>((resolve) => (timer = setTimeout(() => resolve({ event: "error", error: `agent on ${agent.node} did not answer ${String(command.cmd)} within ${timeoutMs} ms` }), timeoutMs)));
	try {
		return await Promise.race([agent.request(command), timeout]);
	} finally {
		clearTimeout(timer);
	}
}

/** The keepalive interval and loss timeout of a held session (ms). */
export interface HoldTiming {
	keepaliveMs: number;
	lossAfterMs: number;
}

/**
 * Keepalives for a pair: a third of the smallest udp-timeout of the NATs in front of either node,
 * at most 1000 ms (at least 50); loss after three keepalives, at least 1500 ms.
 */
export function holdTiming(lab: Lab, a: string, b: string, options: { keepaliveMs?: number; lossAfterMs?: number } = {}): HoldTiming {
	const timeouts = [a, b]
		.flatMap((name) => defaultPath(lab, peerNode(lab, name)).nats)
		.map((nat) => lab.nodes.find((node) => node.name === nat)?.nat?.behaviour.udpTimeout)
		.filter((seconds): seconds is number => typeof seconds === "number" && seconds > 0);
	const keepaliveMs = options.keepaliveMs ?? (timeouts.length ? Math.max(50, Math.min(1000, Math.floor((Math.min(...timeouts) * 1000) / 3))) : 1000);
	return { keepaliveMs, lossAfterMs: options.lossAfterMs ?? Math.max(1500, 3 * keepaliveMs) };
}

/** A handle on the peer agent of one node: endpoints on demand. */
export class PeerAgent {
	private constructor(readonly agent: AgentProcess) {}

	static async start(node: LabNode, rendezvous: string): Promise<PeerAgent> {
		const agent = new AgentProcess(node.netns, node.name, "peer", ["--rendezvous", rendezvous]);
		await agent.started();
		return new PeerAgent(agent);
	}

	get node(): string {
		return this.agent.node;
	}

	/**
	 * A fresh socket registered as `endpoint`: its local, reflexive and host candidate endpoints.
	 * With `claim` (32 hex digits), another process may later open the same endpoint with the same
	 * claim and take it over (a restart); `keepaliveMs` paces its re-registration while idle.
	 */
	async open(endpoint: string, options: { claim?: string; keepaliveMs?: number } = {}): Promise<{ local: string; reflexive: string; host: string[] }> {
		const reply = await ask(this.agent, { cmd: "open", endpoint, ...options });
		if (reply.event !== "registered") throw new Error(`${this.node}: open ${endpoint}: ${String(reply.error)}`);
		return { local: reply.local as string, reflexive: reply.reflexive as string, host: reply.host as string[] };
	}

	/** Ask the rendezvous for a session with `target`; the reply is "started" or "error". */
	connect(endpoint: string, target: string, options: Required<PunchOptions> & Partial<HoldTiming>): Promise<AgentEvent> {
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

interface Attempt {
	a: string;
	b: string;
	endpointA: string;
	endpointB: string;
	run: number;
	error?: string;
	events?: [AgentEvent | undefined, AgentEvent | undefined];
}

export class PunchSession {
	private readonly peers = new Map<string, Promise<PeerAgent>>();
	private readonly runs = new Map<string, number>();
	private nextEndpoint = 0;
	private closed = false;

	private constructor(
		readonly lab: Lab,
		/** The rendezvous host, its "ip:port", and whether it was attached for this session. */
		readonly rendezvous: { node: LabNode; endpoint: string; temporary: boolean },
		private readonly server: AgentProcess,
		private readonly attached: AttachedHost | undefined,
	) {}

	/** Start the rendezvous (attaching a temporary public host when the lab has none). */
	static async start(lab: Lab): Promise<PunchSession> {
		let host = rendezvousHost(lab);
		let attached: AttachedHost | undefined;
		let server: AgentProcess | undefined;
		try {
			if (!host) {
				const router = publicRouter(lab);
				if (!router) throw new LabStateError(`lab "${lab.name}" has no public host to run a rendezvous on and no public router to attach one to`, "NO_RENDEZVOUS_HOST");
				attached = await attachHost(lab, router, "tb-rdv", 1);
				host = { node: attached.node, address: attached.addresses[0] };
			}
			server = new AgentProcess(host.node.netns, host.node.name, "rendezvous", ["--address", host.address, "--port", String(rendezvousPort)]);
			await server.started();
			return new PunchSession(lab, { node: host.node, endpoint: `${host.address}:${rendezvousPort}`, temporary: Boolean(attached) }, server, attached);
		} catch (error) {
			await server?.stop().catch(() => undefined);
			await attached?.detach().catch(() => undefined);
			throw error;
		}
	}

	/** Fresh endpoint names for a pair, and the run number of the pair in this session. */
	newEndpoints(a: string, b: string): { endpointA: string; endpointB: string; run: number } {
		const n = ++this.nextEndpoint;
		const key = `${a}\u0000${b}`;
		const run = (this.runs.get(key) ?? 0) + 1;
		this.runs.set(key, run);
		return { endpointA: `${a}.${n}`, endpointB: a === b ? `${b}.${n}.b` : `${b}.${n}`, run };
	}

	/** Stop a node's peer agent (if it runs) and start a fresh one in its place. */
	async replacePeer(name: string): Promise<PeerAgent> {
		if (this.closed) throw new Error("the punch session is closed");
		const node = peerNode(this.lab, name);
		const old = this.peers.get(node.name);
		this.peers.delete(node.name);
		if (old) await old.then((agent) => agent.stop()).catch(() => undefined);
		return this.peer(node.name);
	}

	/** The peer agent of a node, started on first use. */
	peer(name: string): Promise<PeerAgent> {
		if (this.closed) return Promise.reject(new Error("the punch session is closed"));
		const node = peerNode(this.lab, name);
		let agent = this.peers.get(node.name);
		if (!agent) {
			agent = PeerAgent.start(node, this.rendezvous.endpoint);
			agent.catch(() => this.peers.delete(node.name));
			this.peers.set(node.name, agent);
		}
		return agent;
	}

	/** The rendezvous' counters: registrations, sessions, relayed datagrams, drops by reason. */
	rendezvousStats(): Promise<AgentEvent> {
		return ask(this.server, { cmd: "stats" });
	}

	/** Punch a hole between nodes a and b (a starts, b is told by the rendezvous). */
	async punch(a: string, b: string, options: PunchOptions = {}): Promise<PunchResult> {
		return (await this.punchMany([[a, b]], options))[0];
	}

	/** Punch all pairs at once: every endpoint is opened first, then every connect goes out together. */
	async punchMany(pairs: [string, string][], options: PunchOptions = {}): Promise<PunchResult[]> {
		const settings: Required<PunchOptions> = { intervalMs: options.intervalMs ?? 20, deadlineMs: options.deadlineMs ?? 3000, relay: options.relay ?? true };
		for (const name of pairs.flat()) peerNode(this.lab, name);
		const attempts: Attempt[] = pairs.map(([a, b]) => ({ a, b, ...this.newEndpoints(a, b) }));
		const opened: { agent: PeerAgent; endpoint: string }[] = [];
		try {
			// Open every endpoint (registering it with the rendezvous).
			await Promise.all(
				attempts.map(async (attempt) => {
					try {
						const [agentA, agentB] = await Promise.all([this.peer(attempt.a), this.peer(attempt.b)]);
						await Promise.all(
							[
								[agentA, attempt.endpointA],
								[agentB, attempt.endpointB],
							].map(async ([agent, endpoint]) => {
								await (agent as PeerAgent).open(endpoint as string);
								opened.push({ agent: agent as PeerAgent, endpoint: endpoint as string });
							}),
						);
					} catch (error) {
						attempt.error = String((error as Error)?.message ?? error);
					}
				}),
			);
			// Then connect them all at once, and wait for both sides' outcomes.
			const waitMs = 2 * settings.deadlineMs + 10_000;
			await Promise.all(
				attempts.map(async (attempt) => {
					if (attempt.error) return;
					const [agentA, agentB] = await Promise.all([this.peer(attempt.a), this.peer(attempt.b)]);
					const reply = await agentA.connect(attempt.endpointA, attempt.endpointB, settings);
					if (reply.event !== "started") {
						attempt.error = String(reply.error ?? `unexpected reply ${reply.event}`);
						return;
					}
					attempt.events = await Promise.all([agentA.outcome(attempt.endpointA, waitMs), agentB.outcome(attempt.endpointB, waitMs)]);
				}),
			);
		} finally {
			await Promise.all(opened.map(({ agent, endpoint }) => agent.close(endpoint).catch(() => undefined)));
		}
		return attempts.map(result);
	}

	/** Stop every agent; detach the temporary rendezvous host if there is one. Safe to call twice. */
	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		try {
			const agents = await Promise.allSettled([...this.peers.values()]);
			await Promise.all(agents.map((agent) => (agent.status === "fulfilled" ? agent.value.stop().catch(() => undefined) : undefined)));
			await this.server.stop().catch(() => undefined);
		} finally {
			await this.attached?.detach();
		}
	}
}

/** A pair's path is the worse of its two sides' paths (the relay is worse than direct). */
function worsePath(a: PunchOutcome, b: PunchOutcome): PunchOutcome {
	return pathRank[b] > pathRank[a] ? b : a;
}

/** Both sides' events → one result. The pair's path is the worse of the two sides' paths. */
function result(attempt: Attempt): PunchResult {
	const base = { a: attempt.a, b: attempt.b, run: attempt.run };
	if (attempt.error || !attempt.events) return { ...base, outcome: "failed", timeToConnectMs: null, packetsSent: 0, rttMs: null, error: attempt.error ?? "no outcome" };
	const [eventA, eventB] = attempt.events;
	const packetsSent = Number(eventA?.packetsSent ?? 0) + Number(eventB?.packetsSent ?? 0);
	if (eventA?.event === "connected" && eventB?.event === "connected") {
		const [pathA, pathB] = [eventA.path as PunchOutcome, eventB.path as PunchOutcome];
		return {
			...base,
			outcome: worsePath(pathA, pathB),
			timeToConnectMs: Math.max(Number(eventA.timeToConnectMs), Number(eventB.timeToConnectMs)),
			packetsSent,
			rttMs: (eventA.rttMs as number | null) ?? (eventB.rttMs as number | null) ?? null,
			remote: { a: String(eventA.remote), b: String(eventB.remote) },
		};
	}
	const why = (endpoint: string, event: AgentEvent | undefined) =>
		event === undefined ? `${endpoint}: no outcome in time` : event.event === "failed" ? `${endpoint}: ${String(event.reason)}` : undefined;
	const error = [why(attempt.endpointA, eventA), why(attempt.endpointB, eventB)].filter(Boolean).join("; ");
	return { ...base, outcome: "failed", timeToConnectMs: null, packetsSent, rttMs: null, error };
}

/** Punch between a and b `runs` times (default 1) in one session, then stop every agent. */
export async function punch(lab: Lab, a: string, b: string, options: PunchOptions & { runs?: number } = {}): Promise<PunchResult[]> {
	peerNode(lab, a);
	peerNode(lab, b);
	const session = await PunchSession.start(lab);
	try {
		const results: PunchResult[] = [];
		for (let run = 0; run < (options.runs ?? 1); run++) results.push(await session.punch(a, b, options));
		return results;
	} finally {
		await session.close();
	}
}

// ── held sessions ──────────────────────────────────────────────────────────

export interface HoldOptions extends PunchOptions {
	/** Keepalive interval (default: a third of the smallest udp-timeout on the pair's paths, at most 1000 ms). */
	keepaliveMs?: number;
	/** Silence before a side declares the path lost (default 3 keepalives, at least 1500 ms). */
	lossAfterMs?: number;
}

export type HeldEventKind = "connected" | "lost" | "rebound" | "migrated" | "reconnected" | "failed" | "restarted";

/**
 * Something that happened to a held session. `at` is performance.now() of this (the driver's)
 * process, from the agent's own clock. "connected" is the pair's (both sides, once); the others
 * are one side's (`side`, a node name): "reconnected" also for a restarted process's first connection.
 */
export type HeldEvent = { kind: HeldEventKind; at: number; side?: string; path?: PunchOutcome; remote?: string; detail?: string };

/** A time the pair was not connected: from the first side losing it until both are connected again. */
export interface Outage {
	downAt: number;
	upAt?: number;
	ms?: number;
	/** What began it: "lost at alice", "restart of bob", "bob re-punched"… */
	cause: string;
}

type SideState = "connecting" | "connected" | "down" | "failed";

interface HeldSide {
	node: string;
	endpoint: string;
	/** The takeover secret: a restarted process opens the endpoint again with it. */
	claim: string;
	agent: PeerAgent;
	/** Stops taking in this agent's events (on close, and when a restart replaces the agent). */
	unsubscribe: () => void;
	state: SideState;
	everConnected: boolean;
	path?: PunchOutcome;
	remote?: string;
}

/** An agent's wall clock (ms since the epoch) → performance.now() of this process. */
const fromWall = (wallMs: unknown): number => (typeof wallMs === "number" && Number.isFinite(wallMs) ? wallMs - performance.timeOrigin : performance.now());
const unsubscribed = () => undefined;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A punched pair kept open: keepalives, loss detection and re-punching are the agents'; this watches and steers. */
export class HeldSession {
	private readonly log: HeldEvent[] = [];
	private readonly interruptions: Outage[] = [];
	/** Times marked by the caller (e.g. when it injected a fault), for reports. */
	readonly marks: { label: string; at: number }[] = [];
	private readonly waiters = new Set<(event: HeldEvent | undefined) => void>();
	private closed = false;
	private connectedOnce = false;
	private failedToStart = false;

	private constructor(
		readonly session: PunchSession,
		readonly a: string,
		readonly b: string,
		private readonly sides: [HeldSide, HeldSide],
		readonly settings: Required<PunchOptions>,
		readonly timing: HoldTiming,
	) {
		for (const side of sides) this.watch(side);
	}

	/** Punch a↔b (a initiates) in a PunchSession and keep the session open. Resolves once first connected or failed. */
	static async open(session: PunchSession, a: string, b: string, options: HoldOptions = {}): Promise<HeldSession> {
		const timing = holdTiming(session.lab, a, b, options);
		const settings: Required<PunchOptions> = { intervalMs: options.intervalMs ?? 20, deadlineMs: options.deadlineMs ?? 3000, relay: options.relay ?? true };
		const { endpointA, endpointB } = session.newEndpoints(a, b);
		const [agentA, agentB] = await Promise.all([session.peer(a), session.peer(b)]);
		const side = (node: string, endpoint: string, agent: PeerAgent): HeldSide => ({ node, endpoint, claim: randomBytes(16).toString("hex"), agent, unsubscribe: unsubscribed, state: "connecting", everConnected: false });
		const held = new HeldSession(session, a, b, [side(a, endpointA, agentA), side(b, endpointB, agentB)], settings, timing);
		try {
			await Promise.all(held.sides.map((entry) => entry.agent.open(entry.endpoint, { claim: entry.claim, keepaliveMs: timing.keepaliveMs })));
		} catch (error) {
			await held.close();
			throw error;
		}
		const reply = await agentA.connect(endpointA, endpointB, { ...settings, ...timing });
		if (reply.event !== "started") {
			held.failedToStart = true;
			held.push({ kind: "failed", at: performance.now(), side: a, detail: String(reply.error ?? `unexpected reply ${reply.event}`) });
			return held;
		}
		await held.waitFor((event) => event.kind === "connected" || event.kind === "failed", 2 * settings.deadlineMs + 10_000, -Infinity);
		return held;
	}

	/** What happened, oldest first (up to date with what the agents said). */
	get events(): HeldEvent[] {
		return this.log;
	}

	/** The pair's interruptions: from the first side losing the path until both are connected again. */
	get outages(): readonly Outage[] {
		return this.interruptions;
	}

	/** "connected" only when both sides are connected; "failed" when the first punch failed. */
	get state(): "connected" | "lost" | "failed" | "closed" {
		if (this.closed) return "closed";
		if (this.failedToStart || (!this.connectedOnce && this.sides.some((side) => side.state === "failed"))) return "failed";
		return this.sides.every((side) => side.state === "connected") ? "connected" : "lost";
	}

	/** The pair's path while connected: the worse of the two sides' paths. */
	get path(): PunchOutcome | undefined {
		return this.pairPath();
	}

	private pairPath(): PunchOutcome | undefined {
		const [pathA, pathB] = this.sides.map((side) => (side.state === "connected" ? side.path : undefined));
		if (!pathA || !pathB) return undefined;
		return worsePath(pathA, pathB);
	}

	/** Each side's endpoint name and where it sends (its current remote). */
	get endpoints(): { node: string; endpoint: string; remote?: string; state: string }[] {
		return this.sides.map((side) => ({ node: side.node, endpoint: side.endpoint, remote: side.remote, state: side.state }));
	}

	/** Remember a moment (e.g. a fault injected now) for the report. */
	mark(label: string, at = performance.now()): void {
		this.marks.push({ label, at });
	}

	/** Resolves with the first event matching after `since` (default now), or undefined after timeoutMs. */
	waitFor(predicate: (event: HeldEvent) => boolean, timeoutMs: number, since = performance.now()): Promise<HeldEvent | undefined> {
		const seen = this.log.find((event) => event.at >= since && predicate(event));
		if (seen || this.closed) return Promise.resolve(seen);
		return new Promise((resolve) => {
			const done = (event: HeldEvent | undefined) => {
				if (event !== undefined && (event.at < since || !predicate(event))) return;
				clearTimeout(timer);
				this.waiters.delete(done);
				resolve(event);
			};
			const timer = setTimeout(() => {
				this.waiters.delete(done);
				resolve(undefined);
			}, timeoutMs);
			this.waiters.add(done);
		});
	}

	/**
	 * Until both sides are connected and each has heard the other after `since` (a keepalive each
	 * way after that time): the time that was true, or undefined after timeoutMs.
	 */
	async waitConnected(since: number, timeoutMs: number): Promise<number | undefined> {
		const deadline = performance.now() + timeoutMs;
		while (!this.closed) {
			const at = await this.connectedSince(since);
			if (at !== undefined) return at;
			if (performance.now() >= deadline) return undefined;
			await sleep(25);
		}
		return undefined;
	}

	private async connectedSince(since: number): Promise<number | undefined> {
		const sinceWall = performance.timeOrigin + since;
		const statuses = await Promise.all(this.sides.map((side) => side.agent.status(side.endpoint, sinceWall).catch(() => undefined)));
		let at = -Infinity;
		for (const status of statuses) {
			if (status?.event !== "status" || status.phase !== "connected" || typeof status.heardSince !== "number") return undefined;
			const connectedAt = typeof status.connectedAt === "number" ? fromWall(status.connectedAt) : -Infinity;
			at = Math.max(at, fromWall(status.heardSince), connectedAt >= since ? connectedAt : -Infinity);
		}
		return at;
	}

	/** Stop this side's peer agent process and start a fresh one that takes the endpoint over and rejoins. */
	async restart(side: string): Promise<void> {
		if (this.closed) throw new Error("the held session is closed");
		const targets = this.sides.filter((entry) => entry.node === side);
		if (targets.length === 0) throw new Error(`"${side}" is not a side of the held session ${this.a} ↔ ${this.b}`);
		const at = performance.now();
		// The old agent's events count until it is replaced (it is stopped by then); the new one's from now on.
		const agent = await this.session.replacePeer(side);
		for (const entry of targets) {
			entry.unsubscribe();
			entry.agent = agent;
			if (!this.closed) this.watch(entry);
		}
		this.push({ kind: "restarted", at, side, detail: `a new peer agent in ${Math.round(performance.now() - at)} ms` });
		for (const entry of targets) this.setState(entry, "down", at, `restart of ${side}`);
		for (const entry of targets) await agent.open(entry.endpoint, { claim: entry.claim, keepaliveMs: this.timing.keepaliveMs });
		const from = targets[0];
		const to = from === this.sides[0] ? this.sides[1] : this.sides[0];
		const reply = await agent.connect(from.endpoint, to.endpoint, { ...this.settings, ...this.timing });
		if (reply.event !== "started") throw new Error(`${side}: the restarted agent could not connect again: ${String(reply.error ?? reply.event)}`);
	}

	/** Close both endpoints (the agents keep running, for the PunchSession). Safe to call twice. */
	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		for (const side of this.sides) side.unsubscribe();
		for (const waiter of [...this.waiters]) waiter(undefined);
		await Promise.all(this.sides.map((side) => side.agent.close(side.endpoint).catch(() => undefined)));
	}

	/** Take in what this side's agent says about its endpoint, as it comes (events before now are not looked at). */
	private watch(side: HeldSide): void {
		side.unsubscribe = side.agent.on((event) => {
			if (!this.closed && event.endpoint === side.endpoint) this.handle(side, event);
		});
	}

	private handle(side: HeldSide, event: AgentEvent): void {
		const at = fromWall(event.wallMs);
		const common = { at, side: side.node };
		switch (event.event) {
			case "started":
				// A new round while connected: the peer noticed a loss first (or alone).
				if (side.state === "connected") this.setState(side, "down", at, `${this.other(side).node} re-punched`);
				break;
			case "connected":
				side.path = event.path as PunchOutcome;
				side.remote = String(event.remote);
				if (side.everConnected) this.push({ ...common, kind: "reconnected", path: side.path, remote: side.remote, detail: `a new process, connected in ${String(event.timeToConnectMs)} ms` });
				side.everConnected = true;
				this.setState(side, "connected", at);
				break;
			case "reconnected":
				side.path = event.path as PunchOutcome;
				side.remote = String(event.remote);
				this.push({ ...common, kind: "reconnected", path: side.path, remote: side.remote, detail: `down ${String(event.downMs)} ms, ${String(event.attempts)} round${event.attempts === 1 ? "" : "s"}` });
				this.setState(side, "connected", at);
				break;
			case "failed":
				this.push({ ...common, kind: "failed", detail: String(event.reason) });
				this.setState(side, side.everConnected ? "down" : "failed", at);
				break;
			case "lost":
				this.push({ ...common, kind: "lost", remote: String(event.remote), detail: `silent ${String(event.silentMs)} ms` });
				this.setState(side, "down", at, `lost at ${side.node}`);
				break;
			case "rebound":
				this.push({ ...common, kind: "rebound", remote: String(event.new), detail: `${String(event.old)} → ${String(event.new)}` });
				break;
			case "migrated":
				side.remote = String(event.new);
				side.path = event.path as PunchOutcome;
				this.push({ ...common, kind: "migrated", path: side.path, remote: side.remote, detail: `${String(event.old)} → ${String(event.new)}` });
				break;
		}
	}

	private other(side: HeldSide): HeldSide {
		return side === this.sides[0] ? this.sides[1] : this.sides[0];
	}

	/** A side's state changed: keep the pair's outages and its first connection. */
	private setState(side: HeldSide, state: SideState, at: number, cause = ""): void {
		const before = this.sides.every((entry) => entry.state === "connected");
		side.state = state;
		const after = this.sides.every((entry) => entry.state === "connected");
		if (after && !this.connectedOnce) {
			this.connectedOnce = true;
			this.push({ kind: "connected", at, path: this.pairPath(), remote: this.sides[0].remote });
		} else if (after && !before) {
			const outage = this.interruptions.at(-1);
			if (outage && outage.upAt === undefined) {
				outage.upAt = at;
				outage.ms = Math.round((at - outage.downAt) * 10) / 10;
			}
		} else if (before && !after && this.connectedOnce) this.interruptions.push({ downAt: at, cause });
	}

	private push(event: HeldEvent): void {
		let index = this.log.length;
		while (index > 0 && this.log[index - 1].at > event.at) index--;
		this.log.splice(index, 0, event);
		for (const waiter of [...this.waiters]) waiter(event);
	}
}
