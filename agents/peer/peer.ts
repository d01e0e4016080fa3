// The peer agent's logic: many independent endpoints in one process, each a fresh UDP socket (or, for
// TCP punching, a TCP port: see transport.ts) registered with the rendezvous under its own id; commands from the driver (open, connect, close,
// status, stats) and datagrams from the network go through a PeerDriver. The session logic is
// agents/punch/session.ts; main.ts reads commands and runs one PeerDriver.
import { randomBytes } from "node:crypto";
import {
	type DecodeReason,
	type Endpoint,
	type Message,
	type PeerMessage,
	decode,
	encode,
	endpointOf,
	isNonce,
	isPeerId,
	isPeerMessage,
	keepaliveLimits,
	lossAfterLimits,
	maxHostCandidates,
	splitEndpoint,
} from "../punch/protocol.ts";
import { PunchStateMachine, keepaliveMs as defaultKeepaliveMs, relayVia, type RoundParams, type SessionAction, type SessionDrop } from "../punch/session.ts";
import { emit, nodeAddresses } from "../agent-io.ts";
import { TcpTransport, UdpTransport, type Family, type Proto, type Transport } from "./transport.ts";
import { deleteMapping, refreshMapping, requestMapping, type Mapping, type MethodFailure } from "../portmap/client.ts";
import { defaultGateway } from "../portmap/gateway.ts";
import { portMappingProtocolOf, portMappingProtocols, type PortMappingProtocol } from "../../src/vocabulary/port-mapping.ts";

/** The agent's clock: milliseconds on a monotonic clock, and the wall time (ms since the epoch) it starts at. */
export interface AgentClock {
	now(): number;
	readonly origin: number;
}

export const systemAgentClock: AgentClock = { now: () => performance.now(), origin: performance.timeOrigin };

type DropReason = DecodeReason | SessionDrop | "unknown-session" | "unexpected-source" | "unexpected-type" | "stale-reply" | "internal-error";

interface Pending {
	commandId: unknown;
	tx: string;
	timer: NodeJS.Timeout;
}

interface PeerEndpoint {
	name: string;
	transport: Transport;
	host: Endpoint[];
	local: Endpoint;
	reflexive?: Endpoint;
	token?: string;
	/** The owner's secret for taking the id over from another process (sent with the first registration). */
	claim?: string;
	/** The keepalive interval while no session sets one: re-registration comes every two. */
	keepaliveMs: number;
	/** The port mapping its gateway granted (registered as `mapped`), and its renewal. */
	mapping?: Mapping;
	renewal?: NodeJS.Timeout;
	/** What the gateway said when asked (the registered event carries it). */
	portMapping?: { granted: ReturnType<typeof grantOf> | null; failures: MethodFailure[] };
	registering?: Pending;
	connecting?: Pending & { target: string };
	session?: PunchStateMachine;
	timer?: NodeJS.Timeout;
	/** Periodic re-registration, and the tx ids of our latest re-registration and re-punch connect. */
	refresh?: NodeJS.Timeout;
	refreshTx?: string;
	repunchTx?: string;
	closed: boolean;
	/** Its transport is closed (and its counters added to the agent's). */
	released?: boolean;
}

/**
 * Requests to the rendezvous are resent every retryMs until answered, for giveUpMs: 30 tries, so a
 * loss burst (which advances per packet: on a quiet link it spans several resends) does not end a
 * registration. A lossy link that is dead for seconds was ARP's doing, not this: see plan.ts' lossyNeighbours.
 */
const retryMs = 100;
const giveUpMs = 3000;
/** A port mapping is asked for this long, and renewed at half of what was granted. */
const mappingLifetimeS = 600;
/** How long deleting the endpoints' mappings may hold up the agent's exit (its driver kills it after 1 s). */
const mappingDeleteMs = 700;
const newTx = () => randomBytes(8).toString("hex");

/** This node's addresses of a family (its host candidates; IPv6: global ones, not link-local), at most the protocol's limit. */
function hostAddresses(family: Family): string[] {
	return nodeAddresses(family).slice(0, maxHostCandidates);
}
const addCounters = (sum: Record<string, number>, more: Record<string, number>) => {
	for (const [name, value] of Object.entries(more)) sum[name] = (sum[name] ?? 0) + value;
	return sum;
};
const isWholeIn = (value: unknown, limits: { min: number; max: number }) => Number.isInteger(value) && (value as number) >= limits.min && (value as number) <= limits.max;

/** An open command's `portMapping`: absent → none; a list of known methods, each once → that list; anything else → undefined. */
export function portMappingOption(value: unknown): PortMappingProtocol[] | undefined {
	if (value === undefined) return [];
	if (!Array.isArray(value) || value.length > portMappingProtocols.length) return undefined;
	const methods = value.map((name) => (typeof name === "string" ? portMappingProtocolOf(name) : undefined));
	if (methods.some((method) => method === undefined) || new Set(methods).size !== methods.length) return undefined;
	return methods as PortMappingProtocol[];
}

/** What the registered event says of a granted mapping. */
const grantOf = (mapping: Mapping) => ({ method: mapping.method, external: mapping.external, internal: mapping.internal, lifetimeS: mapping.lifetimeS });

/** One peer agent: its endpoints (sockets registered with the rendezvous), their sessions, its counters. */
export class PeerDriver {
	private readonly endpoints = new Map<string, PeerEndpoint>();
	private readonly stats = { received: 0, sent: 0, sendFailures: 0, dropped: {} as Partial<Record<DropReason, number>> };
	/** What closed endpoints' TCP transports counted (open ones are added when asked). */
	private readonly tcpCounters: Record<string, number> = {};
	/** Port mappings being deleted (closed endpoints'): the agent waits for them before it exits. */
	private readonly deleting = new Set<Promise<unknown>>();

	constructor(
		readonly node: string,
		private readonly rendezvous: { address: string; port: number; endpoint: Endpoint },
		private readonly clock: AgentClock = systemAgentClock,
		readonly proto: Proto = "udp",
		readonly family: Family = 4,
	) {}

	/** The agent's clock as wall time (ms since the epoch, sub-ms): comparable between processes. */
	private wall(at: number): number {
		return Math.round((this.clock.origin + at) * 1000) / 1000;
	}

	private event(fields: Record<string, unknown>): void {
		emit({ ...fields, wallMs: this.wall(this.clock.now()) });
	}

	/** Every endpoint closed (stdin ended); resolves once their port mappings are deleted (or after a short while). */
	async releaseAll(): Promise<void> {
		for (const endpoint of [...this.endpoints.values()]) this.release(endpoint);
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([Promise.allSettled([...this.deleting]), new Promise((resolve) => (timer = setTimeout(resolve, mappingDeleteMs)))]);
		clearTimeout(timer);
	}
	private drop(reason: DropReason): void {
		this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
	}

	private transmit(endpoint: PeerEndpoint, message: Message, to: { address: string; port: number }, done?: () => void): void {
		const bytes = encode(message);
		if (!bytes || endpoint.closed) return done?.();
		this.stats.sent++;
		endpoint.transport.send(to, bytes, (error) => {
			if (error) this.stats.sendFailures++;
			done?.();
		});
	}

	private toRendezvous(endpoint: PeerEndpoint, message: Message, done?: () => void): void {
		this.transmit(endpoint, message, this.rendezvous, done);
	}


	/** Retransmit `send` every retryMs until cleared; after giveUpMs call `gaveUp`. */
	private retrying(send: () => void, gaveUp: () => void): NodeJS.Timeout {
		const started = this.clock.now();
		send();
		const timer: NodeJS.Timeout = setInterval(() => {
			if (this.clock.now() - started >= giveUpMs) {
				clearInterval(timer);
				gaveUp();
			} else send();
		}, retryMs);
		return timer;
	}



	private open(commandId: unknown, command: Record<string, unknown>): void {
		const { endpoint: name, claim, portMapping } = command;
		const keepaliveMs = command.keepaliveMs ?? defaultKeepaliveMs;
		if (!isPeerId(name)) return emit({ id: commandId, event: "error", error: `bad endpoint name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 . _ -` });
		const methods = portMappingOption(portMapping);
		if (methods === undefined) return emit({ id: commandId, event: "error", error: `portMapping must be a list of ${portMappingProtocols.join(", ")}, each at most once` });
		if (methods.length > 0 && this.family === 6) return emit({ id: commandId, event: "error", error: "portMapping asks an IPv4 gateway: not with --family 6" });
		if (claim !== undefined && !isNonce(claim)) return emit({ id: commandId, event: "error", error: "claim must be 32 lowercase hex digits" });
		if (!isWholeIn(keepaliveMs, keepaliveLimits)) return emit({ id: commandId, event: "error", error: `keepaliveMs must be an integer ${keepaliveLimits.min}..${keepaliveLimits.max}` });
		if (this.endpoints.has(name as string)) return emit({ id: commandId, event: "error", error: `endpoint ${name} is open already` });
		const receive = (data: Buffer, from: Endpoint) => {
			try {
				this.receive(endpoint, data, from);
			} catch {
				this.drop("internal-error");
			}
		};
		const transport = this.proto === "tcp" ? new TcpTransport(this.rendezvous, receive, () => this.clock.now(), this.family) : new UdpTransport(receive, this.family);
		const endpoint: PeerEndpoint = { name: name as string, transport, host: [], local: "", claim: claim as string | undefined, keepaliveMs: keepaliveMs as number, closed: false };
		this.endpoints.set(endpoint.name, endpoint);
		transport.open().then(
			() => {
				if (endpoint.closed) return;
				endpoint.host = hostAddresses(this.family).map((address) => endpointOf(address, transport.port));
				endpoint.local = endpoint.host[0] ?? endpointOf(this.family === 6 ? "::" : "0.0.0.0", transport.port);
				if (methods.length === 0) return this.firstRegistration(commandId, endpoint);
				// Ask the gateway for a mapping of this port first: the registration carries what it granted.
				const gateway = defaultGateway();
				const asked = gateway === undefined ? Promise.resolve({ ok: false as const, failures: methods.map((method) => ({ method, reason: "this node has no IPv4 default gateway" })) }) : requestMapping({ gateway, internalPort: transport.port, protocol: this.proto, lifetimeS: mappingLifetimeS, methods, description: `testbed ${this.node} ${endpoint.name}` });
				asked.then((outcome) => {
					if (outcome.ok) endpoint.mapping = outcome.mapping;
					endpoint.portMapping = { granted: outcome.ok ? grantOf(outcome.mapping) : null, failures: outcome.failures };
					if (endpoint.closed) return this.dropMapping(endpoint);
					if (endpoint.mapping) this.scheduleRenewal(endpoint);
					this.firstRegistration(commandId, endpoint);
				});
			},
			(error: Error) => {
				this.release(endpoint);
				const what = this.proto === "tcp" ? `cannot connect to the rendezvous at ${this.rendezvous.endpoint} over TCP` : "cannot bind a UDP socket";
				emit({ id: commandId, event: "error", error: `${endpoint.name}: ${what}: ${error.message}` });
			},
		);
	}

	/** Register with the rendezvous (retransmitting until it answers); the answer completes the open command. */
	private firstRegistration(commandId: unknown, endpoint: PeerEndpoint): void {
		const tx = newTx();
		const timer = this.retrying(
			() => this.toRendezvous(endpoint, { t: "register", tx, id: endpoint.name, host: endpoint.host, claim: endpoint.claim, mapped: endpoint.mapping?.external }),
			() => {
				endpoint.registering = undefined;
				emit({ id: commandId, event: "error", error: `${endpoint.name}: the rendezvous at ${this.rendezvous.endpoint} did not answer within ${giveUpMs} ms` });
			},
		);
		endpoint.registering = { commandId, tx, timer };
	}

	/** Renew the mapping at half its lifetime; a new external endpoint is registered at once ("remapped"). */
	private scheduleRenewal(endpoint: PeerEndpoint, afterMs?: number): void {
		clearTimeout(endpoint.renewal);
		const mapping = endpoint.mapping;
		if (!mapping || endpoint.closed || mapping.lifetimeS === 0) return;
		endpoint.renewal = setTimeout(async () => {
			const renewed = await refreshMapping(mapping);
			if (endpoint.closed || endpoint.mapping !== mapping) return;
			if (!renewed.ok) {
				this.event({ event: "mapping-failed", endpoint: endpoint.name, method: mapping.method, external: mapping.external, reason: renewed.reason });
				return this.scheduleRenewal(endpoint, 30_000);
			}
			endpoint.mapping = renewed.mapping;
			if (renewed.mapping.external !== mapping.external) {
				this.event({ event: "remapped", endpoint: endpoint.name, method: mapping.method, old: mapping.external, new: renewed.mapping.external, lifetimeS: renewed.mapping.lifetimeS });
				this.register(endpoint);
			}
			this.scheduleRenewal(endpoint);
		}, afterMs ?? Math.max(10_000, (mapping.lifetimeS * 1000) / 2));
	}

	/** Delete the endpoint's mapping (best effort, in the background; releaseAll waits for it). */
	private dropMapping(endpoint: PeerEndpoint): void {
		clearTimeout(endpoint.renewal);
		const mapping = endpoint.mapping;
		if (!mapping) return;
		endpoint.mapping = undefined;
		const deleting = deleteMapping(mapping, { timeoutMs: mappingDeleteMs });
		this.deleting.add(deleting);
		void deleting.then(() => this.deleting.delete(deleting));
	}

	private connect(commandId: unknown, endpoint: PeerEndpoint, command: Record<string, unknown>): void {
		const target = command.target;
		const intervalMs = command.intervalMs ?? 20;
		const deadlineMs = command.deadlineMs ?? 5000;
		const relay = command.relay ?? true;
		const { keepaliveMs, lossAfterMs } = command;
		if (!isPeerId(target)) return emit({ id: commandId, event: "error", error: `bad target ${JSON.stringify(target)}` });
		if (keepaliveMs !== undefined && !isWholeIn(keepaliveMs, keepaliveLimits)) return emit({ id: commandId, event: "error", error: `keepaliveMs must be an integer ${keepaliveLimits.min}..${keepaliveLimits.max}` });
		if (lossAfterMs !== undefined && !isWholeIn(lossAfterMs, lossAfterLimits)) return emit({ id: commandId, event: "error", error: `lossAfterMs must be an integer ${lossAfterLimits.min}..${lossAfterLimits.max}` });
		if (!Number.isInteger(intervalMs) || (intervalMs as number) < 1 || (intervalMs as number) > 10_000) return emit({ id: commandId, event: "error", error: "intervalMs must be an integer 1..10000" });
		if (!Number.isInteger(deadlineMs) || (deadlineMs as number) < 1 || (deadlineMs as number) > 600_000) return emit({ id: commandId, event: "error", error: "deadlineMs must be an integer 1..600000" });
		if (typeof relay !== "boolean") return emit({ id: commandId, event: "error", error: "relay must be true or false" });
		if (!endpoint.token) return emit({ id: commandId, event: "error", error: `${endpoint.name} is not registered yet` });
		if (endpoint.connecting) return emit({ id: commandId, event: "error", error: `${endpoint.name} is connecting already` });
		const tx = newTx();
		const token = endpoint.token;
		const timer = this.retrying(
			() =>
				this.toRendezvous(endpoint, {
					t: "connect",
					tx,
					id: endpoint.name,
					token,
					target: target as string,
					interval: intervalMs as number,
					deadline: deadlineMs as number,
					relay,
					keepalive: keepaliveMs as number | undefined,
					lossAfter: lossAfterMs as number | undefined,
				}),
			() => {
				endpoint.connecting = undefined;
				emit({ id: commandId, event: "error", error: `${endpoint.name}: the rendezvous at ${this.rendezvous.endpoint} did not answer the connect within ${giveUpMs} ms` });
			},
		);
		endpoint.connecting = { commandId, tx, timer, target: target as string };
	}

	private close(commandId: unknown, endpoint: PeerEndpoint): void {
		clearTimeout(endpoint.refresh);
		if (endpoint.session) this.apply(endpoint, endpoint.session.close("closed"));
		// Commands still waiting for the this.rendezvous get their answer now.
		for (const pending of [endpoint.registering, endpoint.connecting]) {
			if (!pending) continue;
			clearInterval(pending.timer);
			emit({ id: pending.commandId, event: "error", error: `${endpoint.name} was closed` });
		}
		endpoint.registering = endpoint.connecting = undefined;
		const token = endpoint.token;
		// The socket closes once the unregister has left (closing at once would discard it).
		if (token) this.toRendezvous(endpoint, { t: "unregister", id: endpoint.name, token }, () => this.release(endpoint));
		else this.release(endpoint);
		endpoint.closed = true;
		this.endpoints.delete(endpoint.name);
		emit({ id: commandId, event: "closed", endpoint: endpoint.name });
	}

	release(endpoint: PeerEndpoint): void {
		endpoint.closed = true;
		clearTimeout(endpoint.timer);
		clearTimeout(endpoint.refresh);
		this.dropMapping(endpoint);
		if (endpoint.registering) clearInterval(endpoint.registering.timer);
		if (endpoint.connecting) clearInterval(endpoint.connecting.timer);
		this.endpoints.delete(endpoint.name);
		if (endpoint.released) return;
		endpoint.released = true;
		addCounters(this.tcpCounters, endpoint.transport.counters());
		endpoint.transport.close();
	}

	// ── datagrams ──────────────────────────────────────────────────────────────

	private receive(endpoint: PeerEndpoint, data: Buffer, from: Endpoint): void {
		this.stats.received++;
		const decoded = decode(data);
		if (!decoded.ok) return this.drop(decoded.reason);
		const message = decoded.message;
		if (isPeerMessage(message)) {
			if (!endpoint.session) return this.drop("unknown-session");
			return this.deliver(endpoint, from, message);
		}
		if (from !== this.rendezvous.endpoint) return this.drop(message.t === "registered" || message.t === "error" || message.t === "start" || message.t === "relayed" ? "unexpected-source" : "unexpected-type");
		switch (message.t) {
			case "registered": {
				if (message.id !== endpoint.name) return this.drop("stale-reply");
				if (endpoint.registering?.tx === message.tx) {
					clearInterval(endpoint.registering.timer);
					endpoint.token = message.token;
					endpoint.reflexive = message.reflexive;
					emit({ id: endpoint.registering.commandId, event: "registered", endpoint: endpoint.name, local: endpoint.local, reflexive: message.reflexive, host: endpoint.host, ...(endpoint.portMapping ? { portMapping: endpoint.portMapping } : {}) });
					endpoint.registering = undefined;
					this.scheduleRefresh(endpoint);
					return;
				}
				if (endpoint.refreshTx !== undefined && endpoint.refreshTx === message.tx) {
					// A re-registration: our reflexive endpoint may have changed (the NAT rebound, or we moved).
					endpoint.refreshTx = undefined;
					endpoint.token = message.token;
					if (endpoint.reflexive !== message.reflexive) {
						this.event({ event: "rebound", endpoint: endpoint.name, old: endpoint.reflexive, new: message.reflexive });
						endpoint.reflexive = message.reflexive;
					}
				}
				return; // otherwise a reply to a retransmit
			}
			case "error": {
				if (message.tx !== undefined && message.tx === endpoint.repunchTx) return; // a re-punch the this.rendezvous could not serve yet (the peer is gone): the next one retries
				const pending = endpoint.connecting?.tx === message.tx ? endpoint.connecting : endpoint.registering?.tx === message.tx ? endpoint.registering : undefined;
				if (!pending) return this.drop("stale-reply");
				clearInterval(pending.timer);
				if (pending === endpoint.connecting) endpoint.connecting = undefined;
				else endpoint.registering = undefined;
				return emit({ id: pending.commandId, event: "error", code: message.code, error: `${endpoint.name}: ${message.message}` });
			}
			case "start":
				return this.start(endpoint, message);
			case "relayed": {
				if (!endpoint.session) return this.drop("unknown-session");
				if (message.data.n !== message.n || message.data.from !== message.from) return this.drop("wrong-peer");
				return this.deliver(endpoint, relayVia, message.data);
			}
			default:
				return this.drop("unexpected-type");
		}
	}

	private deliver(endpoint: PeerEndpoint, from: Endpoint, message: PeerMessage): void {
		const result = endpoint.session!.receive(this.clock.now(), from, message);
		if (result.drop) this.drop(result.drop);
		this.apply(endpoint, result.actions);
	}

	private start(endpoint: PeerEndpoint, message: Extract<Message, { t: "start" }>): void {
		if (message.id !== endpoint.name || !endpoint.token || !endpoint.reflexive) return this.drop("stale-reply");
		this.toRendezvous(endpoint, { t: "start-ack", id: endpoint.name, token: endpoint.token, n: message.n });
		const current = endpoint.session;
		if (current?.knows(message.n)) return; // a resent start, or one of a round we have left behind
		const round: RoundParams = {
			nonce: message.n,
			peerHost: message.host,
			peerReflexive: message.srflx,
			peerMapped: message.mapped,
			selfReflexive: endpoint.reflexive,
			intervalMs: message.interval,
			deadlineMs: message.deadline,
			relay: message.relay,
			keepaliveMs: message.keepalive,
			lossAfterMs: message.lossAfter,
		};
		let actions: SessionAction[];
		if (current && current.phase !== "closed" && current.params.peer === message.peer) actions = current.restart(this.clock.now(), round);
		else {
			if (current) this.apply(endpoint, current.close("superseded by a new session"));
			endpoint.session = new PunchStateMachine({ ...round, self: endpoint.name, peer: message.peer, startedAt: this.clock.now(), newTx });
			actions = endpoint.session.tick(this.clock.now());
		}
		const connecting = endpoint.connecting;
		const fields = { event: "started", endpoint: endpoint.name, peer: message.peer, role: message.role, round: endpoint.session!.roundNumber };
		if (connecting && message.peer === connecting.target) {
			clearInterval(connecting.timer);
			endpoint.connecting = undefined;
			this.event({ id: connecting.commandId, ...fields });
		} else this.event(fields);
		this.apply(endpoint, actions);
	}

	/** The registration as it is now: host candidates on this socket's port (a move changes them). */
	private register(endpoint: PeerEndpoint): void {
		if (endpoint.closed || !endpoint.token) return;
		endpoint.host = hostAddresses(this.family).map((address) => endpointOf(address, endpoint.transport.port));
		endpoint.local = endpoint.host[0] ?? endpoint.local;
		endpoint.refreshTx = newTx();
		this.toRendezvous(endpoint, { t: "register", tx: endpoint.refreshTx, id: endpoint.name, host: endpoint.host, token: endpoint.token, mapped: endpoint.mapping?.external });
	}

	/** Re-register every two keepalives (of the session, or the endpoint's own while idle). */
	private scheduleRefresh(endpoint: PeerEndpoint): void {
		clearTimeout(endpoint.refresh);
		if (endpoint.closed) return;
		const every = 2 * (endpoint.session?.keepaliveInterval ?? endpoint.keepaliveMs);
		endpoint.refresh = setTimeout(() => {
			try {
				this.register(endpoint);
			} catch {
				this.drop("internal-error");
			}
			this.scheduleRefresh(endpoint);
		}, every);
	}

	/** Ask the this.rendezvous for a new round with the session's peer: re-register, then connect. */
	private repunch(endpoint: PeerEndpoint, session: PunchStateMachine, after: string): void {
		if (!endpoint.token) return;
		this.register(endpoint);
		endpoint.repunchTx = newTx();
		const p = session.params;
		this.toRendezvous(endpoint, {
			t: "connect",
			tx: endpoint.repunchTx,
			id: endpoint.name,
			token: endpoint.token,
			target: p.peer,
			interval: p.intervalMs,
			deadline: p.deadlineMs,
			relay: p.relay,
			keepalive: session.keepaliveInterval,
			lossAfter: session.lossAfter,
			after,
		});
	}

	/** Carry out a session's actions, then wake it when it next needs to act. */
	private apply(endpoint: PeerEndpoint, actions: SessionAction[]): void {
		const session = endpoint.session;
		if (!session) return;
		const remote = (via: string) => (via === relayVia ? this.rendezvous.endpoint : via);
		const peer = session.params.peer;
		for (const action of actions) {
			switch (action.kind) {
				case "send":
					if (action.to === relayVia) this.toRendezvous(endpoint, { t: "relay", id: endpoint.name, token: endpoint.token!, n: session.params.nonce, data: action.message });
					else {
						const to = splitEndpoint(action.to);
						if (to) this.transmit(endpoint, action.message, to);
					}
					break;
				case "connected":
				case "reconnected": {
					const { kind, remote: via, ...rest } = action;
					this.event({ event: kind, endpoint: endpoint.name, peer, local: endpoint.local, remote: remote(via), ...rest });
					if (kind === "connected") this.scheduleRefresh(endpoint); // at the session's keepalive pace from now on
					break;
				}
				case "failed":
					this.event({ event: "failed", endpoint: endpoint.name, peer, reason: action.reason, packetsSent: action.packetsSent });
					break;
				case "lost":
					this.event({ event: "lost", endpoint: endpoint.name, peer, remote: remote(action.remote), silentMs: action.silentMs });
					break;
				case "migrated":
					this.event({ event: "migrated", endpoint: endpoint.name, peer, old: remote(action.old), new: remote(action.remote), path: action.path });
					break;
				case "repunch":
					if (!endpoint.closed) this.repunch(endpoint, session, action.after);
					break;
			}
		}
		clearTimeout(endpoint.timer);
		const wake = session.nextWake();
		if (endpoint.closed || !Number.isFinite(wake)) return;
		endpoint.timer = setTimeout(() => {
			if (endpoint.session === session) this.apply(endpoint, session.tick(this.clock.now()));
		}, Math.max(0, wake - this.clock.now()));
	}

	// ── main ───────────────────────────────────────────────────────────────────

	/** Where a session stands, with times as wall ms (null: never). `since` (wall ms): when the peer was first heard after it. */
	private status(id: unknown, endpoint: PeerEndpoint, since: unknown): void {
		const session = endpoint.session;
		const at = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? null : this.wall(value));
		const heardSince = typeof since === "number" && Number.isFinite(since) && session ? session.heardSince(since - performance.timeOrigin) : undefined;
		emit({
			id,
			event: "status",
			endpoint: endpoint.name,
			peer: session?.params.peer ?? null,
			phase: session?.phase ?? "idle",
			path: session?.phase === "connected" ? session.path : null,
			remote: session?.remote === undefined ? null : session.remote === relayVia ? this.rendezvous.endpoint : session.remote,
			reflexive: endpoint.reflexive ?? null,
			mapped: endpoint.mapping?.external ?? null,
			keepaliveMs: session?.keepaliveInterval ?? endpoint.keepaliveMs,
			lossAfterMs: session?.lossAfter ?? null,
			connectedAt: at(session?.connectedAt),
			heardAt: at(session?.lastHeard),
			ackedAt: at(session?.lastAcked),
			heardSince: at(heardSince),
			wallMs: this.wall(this.clock.now()),
		});
	}

	handle(command: Record<string, unknown>): void {
		const { id } = command;
		if (command.cmd === "stats") {
			const droppedTotal = Object.values(this.stats.dropped).reduce((sum, count) => sum + (count ?? 0), 0);
			const sessions = [...this.endpoints.values()].filter((endpoint) => endpoint.session).length;
			const connected = [...this.endpoints.values()].filter((endpoint) => endpoint.session?.phase === "connected").length;
			const tcp = this.proto === "tcp" ? { tcp: [...this.endpoints.values()].reduce((sum, endpoint) => addCounters(sum, endpoint.transport.counters()), { ...this.tcpCounters }) } : {};
			return emit({ id, event: "stats", received: this.stats.received, sent: this.stats.sent, sendFailures: this.stats.sendFailures, endpoints: this.endpoints.size, sessions, connected, dropped: { ...this.stats.dropped }, droppedTotal, ...tcp });
		}
		if (command.cmd === "open") return this.open(id, command);
		const endpoint = typeof command.endpoint === "string" ? this.endpoints.get(command.endpoint) : undefined;
		if (command.cmd !== "connect" && command.cmd !== "close" && command.cmd !== "status") return emit({ id, event: "error", error: `unknown command ${JSON.stringify(command.cmd)}` });
		if (!endpoint) return emit({ id, event: "error", error: `no endpoint ${JSON.stringify(command.endpoint)}` });
		if (command.cmd === "connect") return this.connect(id, endpoint, command);
		if (command.cmd === "status") return this.status(id, endpoint, command.since);
		return this.close(id, endpoint);
	}
}
