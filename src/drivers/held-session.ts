// A punched pair kept open while the lab misbehaves: keepalives below the NATs' udp-timeout, loss
// detection, re-punching and path migration are the agents'; HeldSession watches both sides, keeps
// the pair's events and outages, and can restart a side's process. Time comes from a Clock, so the
// logic can be driven by a test's clock.
import { randomBytes } from "node:crypto";
import { appendJournal } from "../apply/journal.ts";
import type { Lab } from "../resolve/lab.ts";
import { defaultPath } from "../resolve/routing.ts";
import type { PunchOutcome } from "../vocabulary/punch.ts";
import type { AgentEvent } from "./agent-process.ts";
import { systemClock, type Clock } from "./clock.ts";
import { peerNode, type PeerAgent } from "./peer-agent.ts";
import { portMappingMethods, worsePath, type Pacing, type PunchOptions, type PunchSession } from "./punch.ts";

/** Each endpoint asks its gateway for a port mapping first (a restarted one too), when the hold asks for it. */
const mapping = (options: PunchOptions) => (portMappingMethods(options.portMapping).length ? { portMapping: portMappingMethods(options.portMapping) } : {});


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


export interface HoldOptions extends PunchOptions {
	/** Keepalive interval (default: a third of the smallest udp-timeout on the pair's paths, at most 1000 ms). */
	keepaliveMs?: number;
	/** Silence before a side declares the path lost (default 3 keepalives, at least 1500 ms). */
	lossAfterMs?: number;
}

export type HeldEventKind = "connected" | "lost" | "rebound" | "migrated" | "reconnected" | "failed" | "restarted";

/**
 * Something that happened to a held session. `at` is on the session's clock (by default
 * performance.now() of the driver's process), from the agent's own clock. "connected" is the
 * pair's (both sides, once); the others are one side's (`side`, a node name): "reconnected" also
 * for a restarted process's first connection.
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

const unsubscribed = () => undefined;

/** A punched pair kept open: keepalives, loss detection and re-punching are the agents'; this watches and steers. */
export class HeldSession {
	private readonly log: HeldEvent[] = [];
	/** The port-mapping protocols its endpoints ask with (a restarted endpoint asks again). */
	private portMapping: PunchOptions["portMapping"];
	/** The address family the pair talks over (a restarted side's agent too). */
	private family: 4 | 6 = 4;
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
		readonly settings: Pacing,
		readonly timing: HoldTiming,
		private readonly clock: Clock,
	) {
		for (const side of sides) this.watch(side);
	}

	/** Punch a↔b (a initiates) in a PunchSession and keep the session open. Resolves once first connected or failed. */
	static async open(session: PunchSession, a: string, b: string, options: HoldOptions = {}, clock: Clock = systemClock): Promise<HeldSession> {
		const timing = holdTiming(session.lab, a, b, options);
		const settings: Pacing = { intervalMs: options.intervalMs ?? 20, deadlineMs: options.deadlineMs ?? 3000, relay: options.relay ?? true };
		const { endpointA, endpointB } = session.newEndpoints(a, b);
		const family = options.family ?? 4;
		const [agentA, agentB] = await Promise.all([session.peer(a, "udp", family), session.peer(b, "udp", family)]);
		const side = (node: string, endpoint: string, agent: PeerAgent): HeldSide => ({ node, endpoint, claim: randomBytes(16).toString("hex"), agent, unsubscribe: unsubscribed, state: "connecting", everConnected: false });
		const held = new HeldSession(session, a, b, [side(a, endpointA, agentA), side(b, endpointB, agentB)], settings, timing, clock);
		held.portMapping = options.portMapping;
		held.family = family;
		try {
			await Promise.all(held.sides.map((entry) => entry.agent.open(entry.endpoint, { claim: entry.claim, keepaliveMs: timing.keepaliveMs, ...mapping(options) })));
		} catch (error) {
			await held.close();
			throw error;
		}
		const reply = await agentA.connect(endpointA, endpointB, { ...settings, ...timing });
		if (reply.event !== "started") {
			held.failedToStart = true;
			held.push({ kind: "failed", at: clock.now(), side: a, detail: String(reply.error ?? `unexpected reply ${reply.event}`) });
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
	mark(label: string, at = this.clock.now()): void {
		this.marks.push({ label, at });
	}

	/** Resolves with the first event matching after `since` (default now), or undefined after timeoutMs. */
	waitFor(predicate: (event: HeldEvent) => boolean, timeoutMs: number, since = this.clock.now()): Promise<HeldEvent | undefined> {
		const seen = this.log.find((event) => event.at >= since && predicate(event));
		if (seen || this.closed) return Promise.resolve(seen);
		return new Promise((resolve) => {
			const done = (event: HeldEvent | undefined) => {
				if (event !== undefined && (event.at < since || !predicate(event))) return;
				cancel();
				this.waiters.delete(done);
				resolve(event);
			};
			const cancel = this.clock.after(timeoutMs, () => {
				this.waiters.delete(done);
				resolve(undefined);
			});
			this.waiters.add(done);
		});
	}

	/**
	 * Until both sides are connected and each has heard the other after `since` (a keepalive each
	 * way after that time): the time that was true, or undefined after timeoutMs.
	 */
	async waitConnected(since: number, timeoutMs: number): Promise<number | undefined> {
		const deadline = this.clock.now() + timeoutMs;
		while (!this.closed) {
			const at = await this.connectedSince(since);
			if (at !== undefined) return at;
			if (this.clock.now() >= deadline) return undefined;
			await this.clock.sleep(25);
		}
		return undefined;
	}

	private async connectedSince(since: number): Promise<number | undefined> {
		const sinceWall = this.clock.origin + since;
		const statuses = await Promise.all(this.sides.map((side) => side.agent.status(side.endpoint, sinceWall).catch(() => undefined)));
		let at = -Infinity;
		for (const status of statuses) {
			if (status?.event !== "status" || status.phase !== "connected" || typeof status.heardSince !== "number") return undefined;
			const connectedAt = typeof status.connectedAt === "number" ? this.fromWall(status.connectedAt) : -Infinity;
			at = Math.max(at, this.fromWall(status.heardSince), connectedAt >= since ? connectedAt : -Infinity);
		}
		return at;
	}

	/** Stop this side's peer agent process and start a fresh one that takes the endpoint over and rejoins. */
	async restart(side: string): Promise<void> {
		if (this.closed) throw new Error("the held session is closed");
		const targets = this.sides.filter((entry) => entry.node === side);
		if (targets.length === 0) throw new Error(`"${side}" is not a side of the held session ${this.a} ↔ ${this.b}`);
		const at = this.clock.now();
		// The old agent's events count until it is replaced (it is stopped by then); the new one's from now on.
		const agent = await this.session.replacePeer(side, "udp", this.family);
		for (const entry of targets) {
			entry.unsubscribe();
			entry.agent = agent;
			if (!this.closed) this.watch(entry);
		}
		this.push({ kind: "restarted", at, side, detail: `a new peer agent in ${Math.round(this.clock.now() - at)} ms` });
		for (const entry of targets) this.setState(entry, "down", at, `restart of ${side}`);
		for (const entry of targets) await agent.open(entry.endpoint, { claim: entry.claim, keepaliveMs: this.timing.keepaliveMs, ...mapping({ portMapping: this.portMapping }) });
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
		const at = this.fromWall(event.wallMs);
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

	/** An agent's wall-clock time (ms since the epoch) on this session's clock. */
	private fromWall(wallMs: unknown): number {
		return typeof wallMs === "number" && Number.isFinite(wallMs) ? wallMs - this.clock.origin : this.clock.now();
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
		// For `testbed watch`: the session's life, as it happens.
		appendJournal(this.session.lab.name, { kind: "held", a: this.a, b: this.b, what: event.kind, ...(event.side ? { side: event.side } : {}), ...(event.path ? { path: event.path } : {}), ...(event.detail ? { detail: event.detail } : {}) });
		for (const waiter of [...this.waiters]) waiter(event);
	}
}
