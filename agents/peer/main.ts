// Hole punching peer agent: many independent endpoints in one process, each a fresh UDP socket
// registered with the rendezvous under its own id. On "connect" (or when the rendezvous says a
// peer wants it) both sides punch: probes to all of the other's candidates every intervalMs, a
// nonce handshake to confirm a path, RTT pings, then keepalives; the rendezvous relay when direct
// fails by the deadline and relay is allowed. The session logic is agents/punch/session.ts; the
// wire format agents/punch/protocol.ts.
//
// Sessions are held: keepalives (pings) every keepaliveMs; silence for lossAfterMs → "lost", then
// re-registration and re-punch rounds through the rendezvous until connected again ("reconnected");
// keepalives from a new source of the peer → "migrated". Every endpoint re-registers every two
// keepalives, so the rendezvous always has its current reflexive endpoint ("rebound" when it
// changed). An endpoint opened with a `claim` can be opened again by a new process (a restart) with
// the same claim: it takes the id over at the rendezvous.
//
//   node --import tsx agents/peer/main.ts --node NAME --rendezvous IP:PORT
//
// stdin (JSON lines):
//   {"id":1,"cmd":"open","endpoint":"alice.3","claim":"<32 hex>"?,"keepaliveMs":1000?}
//   {"id":2,"cmd":"connect","endpoint":"alice.3","target":"bob.3","intervalMs":20,"deadlineMs":5000,"relay":true,"keepaliveMs":1000?,"lossAfterMs":3000?}
//   {"id":3,"cmd":"close","endpoint":"alice.3"}
//   {"id":4,"cmd":"stats"}
//   {"id":5,"cmd":"status","endpoint":"alice.3","since":WALL_MS?}
// stdout (JSON lines; events carry wallMs, the agent's clock as ms since the epoch, to sub-ms):
//   {"event":"ready",node,rendezvous}
//   {id,"event":"registered",endpoint,local:"ip:port",reflexive:"ip:port",host:["ip:port",…]}
//   {id,"event":"started",endpoint,peer,role,round}                (the rendezvous answered a connect)
//   {"event":"started",endpoint,peer,role,round}                    (a peer connects to this endpoint, or a re-punch round)
//   {"event":"connected",endpoint,peer,path:"lan"|"hairpin"|"direct"|"relayed",local,remote,timeToConnectMs,packetsSent,rttMs}
//   {"event":"failed",endpoint,peer,reason,packetsSent}
//   {"event":"lost",endpoint,peer,remote,silentMs} · {"event":"rebound",endpoint,old,new}
//   {"event":"migrated",endpoint,peer,old,new,path}
//   {"event":"reconnected",endpoint,peer,path,local,remote,downMs,attempts,timeToConnectMs,packetsSent,rttMs}
//   {id,"event":"status",endpoint,peer,phase,path,remote,reflexive,keepaliveMs,lossAfterMs,connectedAt,heardAt,ackedAt,heardSince}  (times: wall ms or null)
//   {id,"event":"closed",endpoint} · {id,"event":"stats",received,sent,sendFailures,endpoints,sessions,connected,dropped:{reason:count},droppedTotal}
//   {id,"event":"error",error}                                       (bad command, unknown peer, rendezvous silent)
// Exits when stdin closes.
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { networkInterfaces } from "node:os";
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
import { argument, commands, emit } from "../agent-io.ts";

type DropReason = DecodeReason | SessionDrop | "unknown-session" | "unexpected-source" | "unexpected-type" | "stale-reply" | "internal-error";

interface Pending {
	commandId: unknown;
	tx: string;
	timer: NodeJS.Timeout;
}

interface PeerEndpoint {
	name: string;
	socket: Socket;
	host: Endpoint[];
	local: Endpoint;
	reflexive?: Endpoint;
	token?: string;
	/** The owner's secret for taking the id over from another process (sent with the first registration). */
	claim?: string;
	/** The keepalive interval while no session sets one: re-registration comes every two. */
	keepaliveMs: number;
	registering?: Pending;
	connecting?: Pending & { target: string };
	session?: PunchStateMachine;
	timer?: NodeJS.Timeout;
	/** Periodic re-registration, and the tx ids of our latest re-registration and re-punch connect. */
	refresh?: NodeJS.Timeout;
	refreshTx?: string;
	repunchTx?: string;
	closed: boolean;
}

const node = argument("--node") ?? "unknown";
const endpoints = new Map<string, PeerEndpoint>();
const stats = { received: 0, sent: 0, sendFailures: 0, dropped: {} as Partial<Record<DropReason, number>> };
const retryMs = 200;
const giveUpMs = 3000;
let rendezvous: { address: string; port: number; endpoint: Endpoint };

const newTx = () => randomBytes(8).toString("hex");
const now = () => performance.now();
/** The agent's clock as wall time (ms since the epoch, sub-ms): comparable between processes. */
const wall = (at: number) => Math.round((performance.timeOrigin + at) * 1000) / 1000;
const event = (fields: Record<string, unknown>) => emit({ ...fields, wallMs: wall(now()) });

function drop(reason: DropReason): void {
	stats.dropped[reason] = (stats.dropped[reason] ?? 0) + 1;
}

function transmit(endpoint: PeerEndpoint, message: Message, to: { address: string; port: number }, done?: () => void): void {
	const bytes = encode(message);
	if (!bytes || endpoint.closed) return done?.();
	stats.sent++;
	endpoint.socket.send(bytes, to.port, to.address, (error) => {
		if (error) stats.sendFailures++;
		done?.();
	});
}

const toRendezvous = (endpoint: PeerEndpoint, message: Message, done?: () => void) => transmit(endpoint, message, rendezvous, done);

/** This node's IPv4 addresses (its host candidates), at most the protocol's limit. */
function hostAddresses(): string[] {
	return Object.values(networkInterfaces())
		.flatMap((list) => list ?? [])
		.filter((entry) => entry.family === "IPv4" && !entry.internal)
		.map((entry) => entry.address)
		.slice(0, maxHostCandidates);
}

/** Retransmit `send` every retryMs until cleared; after giveUpMs call `gaveUp`. */
function retrying(send: () => void, gaveUp: () => void): NodeJS.Timeout {
	const started = now();
	send();
	const timer: NodeJS.Timeout = setInterval(() => {
		if (now() - started >= giveUpMs) {
			clearInterval(timer);
			gaveUp();
		} else send();
	}, retryMs);
	return timer;
}

// ── commands ───────────────────────────────────────────────────────────────

const isWholeIn = (value: unknown, limits: { min: number; max: number }) => Number.isInteger(value) && (value as number) >= limits.min && (value as number) <= limits.max;

function open(commandId: unknown, command: Record<string, unknown>): void {
	const { endpoint: name, claim } = command;
	const keepaliveMs = command.keepaliveMs ?? defaultKeepaliveMs;
	if (!isPeerId(name)) return emit({ id: commandId, event: "error", error: `bad endpoint name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 . _ -` });
	if (claim !== undefined && !isNonce(claim)) return emit({ id: commandId, event: "error", error: "claim must be 32 lowercase hex digits" });
	if (!isWholeIn(keepaliveMs, keepaliveLimits)) return emit({ id: commandId, event: "error", error: `keepaliveMs must be an integer ${keepaliveLimits.min}..${keepaliveLimits.max}` });
	if (endpoints.has(name as string)) return emit({ id: commandId, event: "error", error: `endpoint ${name} is open already` });
	const socket = createSocket({ type: "udp4", recvBufferSize: 1 << 20 });
	const endpoint: PeerEndpoint = { name: name as string, socket, host: [], local: "", claim: claim as string | undefined, keepaliveMs: keepaliveMs as number, closed: false };
	endpoints.set(endpoint.name, endpoint);
	let bound = false;
	socket.on("error", (error) => {
		// After binding, an ICMP error for one send must not end the agent; before, the open failed.
		if (bound) return;
		release(endpoint);
		emit({ id: commandId, event: "error", error: `${endpoint.name}: cannot bind a UDP socket: ${error.message}` });
	});
	socket.on("message", (data, rinfo) => {
		try {
			receive(endpoint, data, endpointOf(rinfo.address, rinfo.port));
		} catch {
			drop("internal-error");
		}
	});
	socket.bind({ port: 0, address: "0.0.0.0" }, () => {
		bound = true;
		const port = socket.address().port;
		endpoint.host = hostAddresses().map((address) => endpointOf(address, port));
		endpoint.local = endpoint.host[0] ?? endpointOf("0.0.0.0", port);
		const tx = newTx();
		const timer = retrying(
			() => toRendezvous(endpoint, { t: "register", tx, id: endpoint.name, host: endpoint.host, claim: endpoint.claim }),
			() => {
				endpoint.registering = undefined;
				emit({ id: commandId, event: "error", error: `${endpoint.name}: the rendezvous at ${rendezvous.endpoint} did not answer within ${giveUpMs} ms` });
			},
		);
		endpoint.registering = { commandId, tx, timer };
	});
}

function connect(commandId: unknown, endpoint: PeerEndpoint, command: Record<string, unknown>): void {
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
	const timer = retrying(
		() =>
			toRendezvous(endpoint, {
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
			emit({ id: commandId, event: "error", error: `${endpoint.name}: the rendezvous at ${rendezvous.endpoint} did not answer the connect within ${giveUpMs} ms` });
		},
	);
	endpoint.connecting = { commandId, tx, timer, target: target as string };
}

function close(commandId: unknown, endpoint: PeerEndpoint): void {
	clearTimeout(endpoint.refresh);
	if (endpoint.session) apply(endpoint, endpoint.session.close("closed"));
	// Commands still waiting for the rendezvous get their answer now.
	for (const pending of [endpoint.registering, endpoint.connecting]) {
		if (!pending) continue;
		clearInterval(pending.timer);
		emit({ id: pending.commandId, event: "error", error: `${endpoint.name} was closed` });
	}
	endpoint.registering = endpoint.connecting = undefined;
	const token = endpoint.token;
	// The socket closes once the unregister has left (closing at once would discard it).
	if (token) toRendezvous(endpoint, { t: "unregister", id: endpoint.name, token }, () => release(endpoint));
	else release(endpoint);
	endpoint.closed = true;
	endpoints.delete(endpoint.name);
	emit({ id: commandId, event: "closed", endpoint: endpoint.name });
}

function release(endpoint: PeerEndpoint): void {
	endpoint.closed = true;
	clearTimeout(endpoint.timer);
	clearTimeout(endpoint.refresh);
	if (endpoint.registering) clearInterval(endpoint.registering.timer);
	if (endpoint.connecting) clearInterval(endpoint.connecting.timer);
	endpoints.delete(endpoint.name);
	try {
		endpoint.socket.close();
	} catch {}
}

// ── datagrams ──────────────────────────────────────────────────────────────

function receive(endpoint: PeerEndpoint, data: Buffer, from: Endpoint): void {
	stats.received++;
	const decoded = decode(data);
	if (!decoded.ok) return drop(decoded.reason);
	const message = decoded.message;
	if (isPeerMessage(message)) {
		if (!endpoint.session) return drop("unknown-session");
		return deliver(endpoint, from, message);
	}
	if (from !== rendezvous.endpoint) return drop(message.t === "registered" || message.t === "error" || message.t === "start" || message.t === "relayed" ? "unexpected-source" : "unexpected-type");
	switch (message.t) {
		case "registered": {
			if (message.id !== endpoint.name) return drop("stale-reply");
			if (endpoint.registering?.tx === message.tx) {
				clearInterval(endpoint.registering.timer);
				endpoint.token = message.token;
				endpoint.reflexive = message.reflexive;
				emit({ id: endpoint.registering.commandId, event: "registered", endpoint: endpoint.name, local: endpoint.local, reflexive: message.reflexive, host: endpoint.host });
				endpoint.registering = undefined;
				scheduleRefresh(endpoint);
				return;
			}
			if (endpoint.refreshTx !== undefined && endpoint.refreshTx === message.tx) {
				// A re-registration: our reflexive endpoint may have changed (the NAT rebound, or we moved).
				endpoint.refreshTx = undefined;
				endpoint.token = message.token;
				if (endpoint.reflexive !== message.reflexive) {
					event({ event: "rebound", endpoint: endpoint.name, old: endpoint.reflexive, new: message.reflexive });
					endpoint.reflexive = message.reflexive;
				}
			}
			return; // otherwise a reply to a retransmit
		}
		case "error": {
			if (message.tx !== undefined && message.tx === endpoint.repunchTx) return; // a re-punch the rendezvous could not serve yet (the peer is gone): the next one retries
			const pending = endpoint.connecting?.tx === message.tx ? endpoint.connecting : endpoint.registering?.tx === message.tx ? endpoint.registering : undefined;
			if (!pending) return drop("stale-reply");
			clearInterval(pending.timer);
			if (pending === endpoint.connecting) endpoint.connecting = undefined;
			else endpoint.registering = undefined;
			return emit({ id: pending.commandId, event: "error", code: message.code, error: `${endpoint.name}: ${message.message}` });
		}
		case "start":
			return start(endpoint, message);
		case "relayed": {
			if (!endpoint.session) return drop("unknown-session");
			if (message.data.n !== message.n || message.data.from !== message.from) return drop("wrong-peer");
			return deliver(endpoint, relayVia, message.data);
		}
		default:
			return drop("unexpected-type");
	}
}

function deliver(endpoint: PeerEndpoint, from: Endpoint, message: PeerMessage): void {
	const result = endpoint.session!.receive(now(), from, message);
	if (result.drop) drop(result.drop);
	apply(endpoint, result.actions);
}

function start(endpoint: PeerEndpoint, message: Extract<Message, { t: "start" }>): void {
	if (message.id !== endpoint.name || !endpoint.token || !endpoint.reflexive) return drop("stale-reply");
	toRendezvous(endpoint, { t: "start-ack", id: endpoint.name, token: endpoint.token, n: message.n });
	const current = endpoint.session;
	if (current?.knows(message.n)) return; // a resent start, or one of a round we have left behind
	const round: RoundParams = {
		nonce: message.n,
		peerHost: message.host,
		peerReflexive: message.srflx,
		selfReflexive: endpoint.reflexive,
		intervalMs: message.interval,
		deadlineMs: message.deadline,
		relay: message.relay,
		keepaliveMs: message.keepalive,
		lossAfterMs: message.lossAfter,
	};
	let actions: SessionAction[];
	if (current && current.phase !== "closed" && current.params.peer === message.peer) actions = current.restart(now(), round);
	else {
		if (current) apply(endpoint, current.close("superseded by a new session"));
		endpoint.session = new PunchStateMachine({ ...round, self: endpoint.name, peer: message.peer, startedAt: now(), newTx });
		actions = endpoint.session.tick(now());
	}
	const connecting = endpoint.connecting;
	const fields = { event: "started", endpoint: endpoint.name, peer: message.peer, role: message.role, round: endpoint.session!.roundNumber };
	if (connecting && message.peer === connecting.target) {
		clearInterval(connecting.timer);
		endpoint.connecting = undefined;
		event({ id: connecting.commandId, ...fields });
	} else event(fields);
	apply(endpoint, actions);
}

/** The registration as it is now: host candidates on this socket's port (a move changes them). */
function register(endpoint: PeerEndpoint): void {
	if (endpoint.closed || !endpoint.token) return;
	const port = endpoint.socket.address().port;
	endpoint.host = hostAddresses().map((address) => endpointOf(address, port));
	endpoint.local = endpoint.host[0] ?? endpoint.local;
	endpoint.refreshTx = newTx();
	toRendezvous(endpoint, { t: "register", tx: endpoint.refreshTx, id: endpoint.name, host: endpoint.host, token: endpoint.token });
}

/** Re-register every two keepalives (of the session, or the endpoint's own while idle). */
function scheduleRefresh(endpoint: PeerEndpoint): void {
	clearTimeout(endpoint.refresh);
	if (endpoint.closed) return;
	const every = 2 * (endpoint.session?.keepaliveInterval ?? endpoint.keepaliveMs);
	endpoint.refresh = setTimeout(() => {
		try {
			register(endpoint);
		} catch {
			drop("internal-error");
		}
		scheduleRefresh(endpoint);
	}, every);
}

/** Ask the rendezvous for a new round with the session's peer: re-register, then connect. */
function repunch(endpoint: PeerEndpoint, session: PunchStateMachine, after: string): void {
	if (!endpoint.token) return;
	register(endpoint);
	endpoint.repunchTx = newTx();
	const p = session.params;
	toRendezvous(endpoint, {
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
function apply(endpoint: PeerEndpoint, actions: SessionAction[]): void {
	const session = endpoint.session;
	if (!session) return;
	const remote = (via: string) => (via === relayVia ? rendezvous.endpoint : via);
	const peer = session.params.peer;
	for (const action of actions) {
		switch (action.kind) {
			case "send":
				if (action.to === relayVia) toRendezvous(endpoint, { t: "relay", id: endpoint.name, token: endpoint.token!, n: session.params.nonce, data: action.message });
				else {
					const to = splitEndpoint(action.to);
					if (to) transmit(endpoint, action.message, to);
				}
				break;
			case "connected":
			case "reconnected": {
				const { kind, remote: via, ...rest } = action;
				event({ event: kind, endpoint: endpoint.name, peer, local: endpoint.local, remote: remote(via), ...rest });
				if (kind === "connected") scheduleRefresh(endpoint); // at the session's keepalive pace from now on
				break;
			}
			case "failed":
				event({ event: "failed", endpoint: endpoint.name, peer, reason: action.reason, packetsSent: action.packetsSent });
				break;
			case "lost":
				event({ event: "lost", endpoint: endpoint.name, peer, remote: remote(action.remote), silentMs: action.silentMs });
				break;
			case "migrated":
				event({ event: "migrated", endpoint: endpoint.name, peer, old: remote(action.old), new: remote(action.remote), path: action.path });
				break;
			case "repunch":
				if (!endpoint.closed) repunch(endpoint, session, action.after);
				break;
		}
	}
	clearTimeout(endpoint.timer);
	const wake = session.nextWake();
	if (endpoint.closed || !Number.isFinite(wake)) return;
	endpoint.timer = setTimeout(() => {
		if (endpoint.session === session) apply(endpoint, session.tick(now()));
	}, Math.max(0, wake - now()));
}

// ── main ───────────────────────────────────────────────────────────────────

/** Where a session stands, with times as wall ms (null: never). `since` (wall ms): when the peer was first heard after it. */
function status(id: unknown, endpoint: PeerEndpoint, since: unknown): void {
	const session = endpoint.session;
	const at = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? null : wall(value));
	const heardSince = typeof since === "number" && Number.isFinite(since) && session ? session.heardSince(since - performance.timeOrigin) : undefined;
	emit({
		id,
		event: "status",
		endpoint: endpoint.name,
		peer: session?.params.peer ?? null,
		phase: session?.phase ?? "idle",
		path: session?.phase === "connected" ? session.path : null,
		remote: session?.remote === undefined ? null : session.remote === relayVia ? rendezvous.endpoint : session.remote,
		reflexive: endpoint.reflexive ?? null,
		keepaliveMs: session?.keepaliveInterval ?? endpoint.keepaliveMs,
		lossAfterMs: session?.lossAfter ?? null,
		connectedAt: at(session?.connectedAt),
		heardAt: at(session?.lastHeard),
		ackedAt: at(session?.lastAcked),
		heardSince: at(heardSince),
		wallMs: wall(now()),
	});
}

function handle(command: Record<string, unknown>): void {
	const { id } = command;
	if (command.cmd === "stats") {
		const droppedTotal = Object.values(stats.dropped).reduce((sum, count) => sum + (count ?? 0), 0);
		const sessions = [...endpoints.values()].filter((endpoint) => endpoint.session).length;
		const connected = [...endpoints.values()].filter((endpoint) => endpoint.session?.phase === "connected").length;
		return emit({ id, event: "stats", received: stats.received, sent: stats.sent, sendFailures: stats.sendFailures, endpoints: endpoints.size, sessions, connected, dropped: { ...stats.dropped }, droppedTotal });
	}
	if (command.cmd === "open") return open(id, command);
	const endpoint = typeof command.endpoint === "string" ? endpoints.get(command.endpoint) : undefined;
	if (command.cmd !== "connect" && command.cmd !== "close" && command.cmd !== "status") return emit({ id, event: "error", error: `unknown command ${JSON.stringify(command.cmd)}` });
	if (!endpoint) return emit({ id, event: "error", error: `no endpoint ${JSON.stringify(command.endpoint)}` });
	if (command.cmd === "connect") return connect(id, endpoint, command);
	if (command.cmd === "status") return status(id, endpoint, command.since);
	return close(id, endpoint);
}

async function main(): Promise<void> {
	const target = splitEndpoint(argument("--rendezvous") ?? "");
	if (!target) {
		emit({ event: "fatal", error: "usage: peer --node NAME --rendezvous IP:PORT" });
		process.exit(2);
	}
	rendezvous = { ...target, endpoint: endpointOf(target.address, target.port) };
	emit({ event: "ready", node, rendezvous: rendezvous.endpoint });
	for await (const command of commands()) {
		try {
			handle(command as Record<string, unknown>);
		} catch (error) {
			emit({ id: (command as { id?: unknown }).id, event: "error", error: String((error as Error)?.message ?? error) });
		}
	}
	for (const endpoint of [...endpoints.values()]) release(endpoint);
	process.exit(0);
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error?.message ?? error) });
	process.exit(1);
});
