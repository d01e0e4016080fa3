// The rendezvous server's logic without sockets: datagram in (bytes, source, clock) → datagrams out.
// Registrations (id → endpoint, host candidates, port-mapped endpoint, secret token), sessions (nonce → two ids), the
// simultaneous "start" to both peers, the relay, per-source rate limiting, and drop counters.
//
// Re-punching: the latest session of each pair of ids is remembered with the registrations of
// both (endpoint, token, host candidates) as they were when it was made. A connect joins that
// session (the asker gets its start again) instead of making a new one when nobody has moved since
// and the asker has not given it up (`after` is not its nonce) — or, for a plain connect, when it is
// younger than joinWindowMs: so two peers that notice a loss at about the same time meet in one
// round. Takeover: an id registered with a `claim` can be registered again from anywhere with the
// same claim; it gets a new token, and the old one stops working.
import { randomBytes } from "node:crypto";
import { type ClientMessage, type DecodeReason, type Endpoint, type ServerMessage, decode, encode } from "./protocol.ts";

export type RendezvousDrop =
	| DecodeReason
	| "rate-limited"
	| "unexpected-type"
	| "spoofed-id"
	| "bad-token"
	| "bad-claim"
	| "not-registered"
	| "unknown-session"
	| "not-in-session"
	| "peer-gone"
	| "bad-relay"
	| "table-full"
	| "internal-error";

export interface Outgoing {
	to: Endpoint;
	bytes: Buffer;
}

export interface RendezvousLimits {
	/** Token bucket per source endpoint: burst and datagrams per second. */
	burst: number;
	perSecond: number;
	maxRegistrations: number;
	maxSessions: number;
	maxSources: number;
	/** Registrations and sessions idle this long are forgotten. */
	idleMs: number;
	/** "start" is resent until acknowledged, this often and this many times. */
	startRetryMs: number;
	startRetries: number;
	/** A plain connect joins its pair's latest session when nobody moved and it is younger than this. */
	joinWindowMs: number;
}

export const defaultLimits: RendezvousLimits = {
	burst: 400,
	perSecond: 400,
	maxRegistrations: 20_000,
	maxSessions: 20_000,
	maxSources: 20_000,
	idleMs: 10 * 60_000,
	startRetryMs: 100,
	startRetries: 20,
	joinWindowMs: 1000,
};

interface Registration {
	id: string;
	endpoint: Endpoint;
	host: Endpoint[];
	/** Its port-mapped public endpoint, when its gateway granted one (passed on in "start"). */
	mapped?: Endpoint;
	token: string;
	/** The owner's secret for a takeover, from the first registration. */
	claim?: string;
	seenAt: number;
	/** The last connect this id asked for: its tx and the session it made (answers retransmits). */
	lastConnect?: { tx: string; nonce: string };
}

interface Session {
	nonce: string;
	a: string;
	b: string;
	interval: number;
	deadline: number;
	relay: boolean;
	keepalive?: number;
	lossAfter?: number;
	at: number;
	createdAt: number;
	/** Both members' registrations when the session was made: a change means someone moved. */
	members: string;
	seenAt: number;
	/** Unacknowledged start signals: id → next resend time and resends left. */
	pendingStart: Map<string, { nextAt: number; left: number }>;
}

export interface RendezvousStats {
	received: number;
	registrations: number;
	sessions: number;
	starts: number;
	/** Connects that joined their pair's latest session instead of making a new one. */
	joined: number;
	takeovers: number;
	relayed: number;
	errorsSent: number;
	dropped: Partial<Record<RendezvousDrop, number>>;
	droppedTotal: number;
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");
const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

export class RendezvousCore {
	private readonly registrations = new Map<string, Registration>();
	private readonly sessions = new Map<string, Session>();
	/** Pair of ids → the nonce of its latest session. */
	private readonly pairs = new Map<string, string>();
	private readonly buckets = new Map<string, { tokens: number; at: number }>();
	private readonly counters = { received: 0, starts: 0, joined: 0, takeovers: 0, relayed: 0, errorsSent: 0 };
	private readonly dropped: Partial<Record<RendezvousDrop, number>> = {};

	constructor(
		private readonly limits: RendezvousLimits = defaultLimits,
		private readonly newSecret: () => string = () => hex(16),
		/** Wall-clock milliseconds since the epoch: the start time a session's two sides agree on. */
		private readonly wallClock: () => number = Date.now,
	) {}

	/** One datagram from `from`; returns what to send. Never throws. */
	handle(data: Uint8Array, from: Endpoint, now: number): Outgoing[] {
		this.counters.received++;
		try {
			if (!this.admit(from, now)) return this.drop("rate-limited");
			const decoded = decode(data);
			if (!decoded.ok) return this.drop(decoded.reason);
			const message = decoded.message;
			switch (message.t) {
				case "register":
					return this.register(message, from, now);
				case "connect":
					return this.connect(message, from, now);
				case "start-ack":
					return this.startAck(message, from, now);
				case "relay":
					return this.relay(message, from, now);
				case "unregister":
					return this.unregister(message, from, now);
				default:
					return this.drop("unexpected-type");
			}
		} catch {
			return this.drop("internal-error");
		}
	}

	/** Resend unacknowledged start signals; forget idle state. Call every few tens of ms. */
	tick(now: number): Outgoing[] {
		const out: Outgoing[] = [];
		for (const session of this.sessions.values()) {
			if (now - session.seenAt > this.limits.idleMs) {
				this.forget(session);
				continue;
			}
			for (const [id, pending] of session.pendingStart) {
				if (now < pending.nextAt) continue;
				if (pending.left <= 0) {
					session.pendingStart.delete(id);
					continue;
				}
				pending.left--;
				pending.nextAt = now + this.limits.startRetryMs;
				out.push(...this.startFor(session, id));
			}
		}
		for (const registration of this.registrations.values()) if (now - registration.seenAt > this.limits.idleMs) this.registrations.delete(registration.id);
		for (const [source, bucket] of this.buckets) if (now - bucket.at > 10_000) this.buckets.delete(source);
		return out;
	}

	stats(): RendezvousStats {
		return {
			...this.counters,
			registrations: this.registrations.size,
			sessions: this.sessions.size,
			dropped: { ...this.dropped },
			droppedTotal: Object.values(this.dropped).reduce((sum, count) => sum + (count ?? 0), 0),
		};
	}

	private forget(session: Session): void {
		this.sessions.delete(session.nonce);
		const key = pairKey(session.a, session.b);
		if (this.pairs.get(key) === session.nonce) this.pairs.delete(key);
	}

	/** Both members' registrations, as a string that changes when either moves, is taken over or goes. */
	private membersOf(a: string, b: string): string {
		const state = (id: string) => {
			const registration = this.registrations.get(id);
			return registration ? `${registration.endpoint} ${registration.token} ${registration.host.join(",")} ${registration.mapped ?? ""}` : "-";
		};
		return `${state(a)} | ${state(b)}`;
	}

	private drop(reason: RendezvousDrop): Outgoing[] {
		this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
		return [];
	}

	/** Token bucket per source endpoint. */
	private admit(from: Endpoint, now: number): boolean {
		let bucket = this.buckets.get(from);
		if (!bucket) {
			if (this.buckets.size >= this.limits.maxSources) {
				// Forget the sources that have been quiet longest (insertion order ≈ age).
				for (const key of [...this.buckets.keys()].slice(0, Math.ceil(this.limits.maxSources / 10))) this.buckets.delete(key);
			}
			bucket = { tokens: this.limits.burst, at: now };
			this.buckets.set(from, bucket);
		}
		bucket.tokens = Math.min(this.limits.burst, bucket.tokens + ((now - bucket.at) * this.limits.perSecond) / 1000);
		bucket.at = now;
		if (bucket.tokens < 1) return false;
		bucket.tokens--;
		return true;
	}

	private send(to: Endpoint, message: ServerMessage): Outgoing[] {
		const bytes = encode(message);
		if (!bytes) return this.drop("internal-error");
		if (message.t === "error") this.counters.errorsSent++;
		return [{ to, bytes }];
	}

	/**
	 * Who may speak for `id`: the holder of its token; a message without the right token from
	 * another endpoint than the registered one is a spoofed id. A valid token from a new endpoint
	 * moves the registration there (the peer's NAT mapping changed).
	 */
	private authenticate(id: string, token: string | undefined, from: Endpoint, now: number): Registration | RendezvousDrop {
		const registration = this.registrations.get(id);
		if (!registration) return "not-registered";
		if (token !== registration.token) return from === registration.endpoint ? "bad-token" : "spoofed-id";
		registration.endpoint = from;
		registration.seenAt = now;
		return registration;
	}

	private register(message: Extract<ClientMessage, { t: "register" }>, from: Endpoint, now: number): Outgoing[] {
		let registration = this.registrations.get(message.id);
		if (registration) {
			// Re-registration: with the token from anywhere, or a retransmit from the same endpoint,
			// or a takeover with the id's claim from anywhere.
			if (message.token !== undefined) {
				if (message.token !== registration.token) return this.drop(from === registration.endpoint ? "bad-token" : "spoofed-id");
			} else if (from !== registration.endpoint) {
				if (message.claim === undefined || registration.claim === undefined) return this.drop("spoofed-id");
				if (message.claim !== registration.claim) return this.drop("bad-claim");
				registration.token = this.newSecret();
				registration.lastConnect = undefined;
				this.counters.takeovers++;
			}
			registration.endpoint = from;
			registration.host = message.host;
			registration.mapped = message.mapped;
			registration.seenAt = now;
		} else {
			if (message.token !== undefined) return this.drop("not-registered");
			if (this.registrations.size >= this.limits.maxRegistrations) {
				this.drop("table-full");
				return this.send(from, { t: "error", tx: message.tx, code: "table-full", message: "the rendezvous has no room for another registration" });
			}
			registration = { id: message.id, endpoint: from, host: message.host, mapped: message.mapped, token: this.newSecret(), claim: message.claim, seenAt: now };
			this.registrations.set(message.id, registration);
		}
		return this.send(from, { t: "registered", tx: message.tx, id: message.id, token: registration.token, reflexive: from });
	}

	private connect(message: Extract<ClientMessage, { t: "connect" }>, from: Endpoint, now: number): Outgoing[] {
		const self = this.authenticate(message.id, message.token, from, now);
		if (self === "not-registered") return this.send(from, { t: "error", tx: message.tx, code: "not-registered", message: `"${message.id}" is not registered here; register first` });
		if (typeof self === "string") return this.drop(self);
		if (message.target === message.id) return this.send(from, { t: "error", tx: message.tx, code: "self", message: `"${message.id}" cannot connect to itself` });
		const target = this.registrations.get(message.target);
		if (!target) return this.send(from, { t: "error", tx: message.tx, code: "unknown-peer", message: `no peer registered as "${message.target}"` });
		// A retransmitted connect: the session exists; tell the asker again.
		const previous = self.lastConnect?.tx === message.tx ? this.sessions.get(self.lastConnect.nonce) : undefined;
		if (previous) return this.startFor(previous, self.id);
		// Join the pair's latest session when it is still current for both (see the top of the file).
		const key = pairKey(self.id, target.id);
		const latest = this.sessions.get(this.pairs.get(key) ?? "");
		if (
			latest &&
			latest.nonce !== message.after &&
			latest.members === this.membersOf(latest.a, latest.b) &&
			(message.after !== undefined || now - latest.createdAt < this.limits.joinWindowMs)
		) {
			self.lastConnect = { tx: message.tx, nonce: latest.nonce };
			latest.seenAt = now;
			this.counters.joined++;
			return this.startFor(latest, self.id);
		}
		// A new session supersedes the pair's latest: its start signals are not resent any more.
		latest?.pendingStart.clear();
		if (this.sessions.size >= this.limits.maxSessions) this.forget(this.sessions.values().next().value!);
		const session: Session = {
			nonce: this.newSecret(),
			a: self.id,
			b: target.id,
			interval: message.interval,
			deadline: message.deadline,
			relay: message.relay,
			keepalive: message.keepalive,
			lossAfter: message.lossAfter,
			at: Math.round(this.wallClock()),
			createdAt: now,
			members: this.membersOf(self.id, target.id),
			seenAt: now,
			pendingStart: new Map(),
		};
		this.sessions.set(session.nonce, session);
		this.pairs.set(key, session.nonce);
		self.lastConnect = { tx: message.tx, nonce: session.nonce };
		for (const id of [session.a, session.b]) session.pendingStart.set(id, { nextAt: now + this.limits.startRetryMs, left: this.limits.startRetries });
		this.counters.starts++;
		// "Punch now": both start signals leave together, in one turn of the event loop.
		return [...this.startFor(session, session.a), ...this.startFor(session, session.b)];
	}

	/** The start signal for one member of a session: the other's candidates. */
	private startFor(session: Session, id: string): Outgoing[] {
		const self = this.registrations.get(id);
		const peerId = id === session.a ? session.b : session.a;
		const peer = this.registrations.get(peerId);
		if (!self || !peer) return [];
		return this.send(self.endpoint, {
			t: "start",
			n: session.nonce,
			id,
			peer: peerId,
			host: peer.host,
			srflx: peer.endpoint,
			role: id === session.a ? "initiator" : "responder",
			interval: session.interval,
			deadline: session.deadline,
			relay: session.relay,
			at: session.at,
			keepalive: session.keepalive,
			lossAfter: session.lossAfter,
			mapped: peer.mapped,
		});
	}

	private startAck(message: Extract<ClientMessage, { t: "start-ack" }>, from: Endpoint, now: number): Outgoing[] {
		const self = this.authenticate(message.id, message.token, from, now);
		if (typeof self === "string") return this.drop(self);
		const session = this.sessions.get(message.n);
		if (!session) return this.drop("unknown-session");
		session.pendingStart.delete(self.id);
		return [];
	}

	private relay(message: Extract<ClientMessage, { t: "relay" }>, from: Endpoint, now: number): Outgoing[] {
		const self = this.authenticate(message.id, message.token, from, now);
		if (typeof self === "string") return this.drop(self);
		const session = this.sessions.get(message.n);
		if (!session) return this.drop("unknown-session");
		if (self.id !== session.a && self.id !== session.b) return this.drop("not-in-session");
		// The relayed message must be what it claims: this session, from this id.
		if (message.data.n !== message.n || message.data.from !== self.id) return this.drop("bad-relay");
		const other = this.registrations.get(self.id === session.a ? session.b : session.a);
		if (!other) return this.drop("peer-gone");
		session.seenAt = now;
		session.pendingStart.delete(self.id); // relaying proves the start arrived
		this.counters.relayed++;
		return this.send(other.endpoint, { t: "relayed", n: message.n, from: self.id, data: message.data });
	}

	private unregister(message: Extract<ClientMessage, { t: "unregister" }>, from: Endpoint, now: number): Outgoing[] {
		const self = this.authenticate(message.id, message.token, from, now);
		if (typeof self === "string") return this.drop(self);
		this.registrations.delete(self.id);
		for (const session of this.sessions.values()) if (session.a === self.id || session.b === self.id) session.pendingStart.delete(self.id);
		return [];
	}
}
