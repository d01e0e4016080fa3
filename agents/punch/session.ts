// One side of a hole punching session as a pure state machine: fed with the start signal, received
// peer messages and the clock, it answers with datagrams to send and, once, a result. No sockets,
// no timers: the peer agent drives it (and tests drive it by hand).
//
//   punching ──(a path confirmed)──▶ grace ──(2.5 × interval, or at once for lan/relay)──▶ measuring ──▶ connected
//      │                                                                                                 (keepalive)
//      └─(deadline)──▶ relaying (when allowed) ──(relay path confirmed)──▶ measuring ──▶ connected
//                           └─(deadline)──▶ failed          (and without relay: punching ─(deadline)─▶ failed)
//
// A path (a remote endpoint, or "relay") is confirmed only by the nonce handshake: we received the
// peer's probe from it AND an ack, from it, of a probe we sent to it (the ack echoes our random tx).
// A stray or spoofed packet cannot fake that without the session nonce and our tx ids.
import type { Endpoint, PeerMessage } from "./protocol.ts";

export type PathKind = "lan" | "hairpin" | "direct" | "relayed";
export type CandidateKind = "host" | "srflx" | "prflx" | "relay";
/** Where a datagram came from or goes to: an "ip:port", or the rendezvous relay. */
export type Via = Endpoint | "relay";
export const relayVia = "relay";

export interface SessionParams {
	self: string;
	peer: string;
	nonce: string;
	/** The peer's host candidates and its server-reflexive endpoint, from the start signal. */
	peerHost: Endpoint[];
	peerReflexive: Endpoint;
	/** Our own server-reflexive endpoint (our public address, for hairpin classification). */
	selfReflexive: Endpoint;
	intervalMs: number;
	deadlineMs: number;
	relay: boolean;
	/** When the start signal arrived (ms, the driver's clock). */
	startedAt: number;
	/** A fresh random 16-hex-digit transaction id. */
	newTx: () => string;
}

export type SessionAction =
	| { kind: "send"; to: Via; message: PeerMessage }
	| { kind: "connected"; path: PathKind; remote: Via; timeToConnectMs: number; packetsSent: number; rttMs: number | null }
	| { kind: "failed"; reason: string; packetsSent: number };

export type SessionDrop = "wrong-nonce" | "wrong-peer" | "unknown-tx" | "too-many-candidates" | "unknown-pong";

export type Phase = "punching" | "grace" | "relaying" | "measuring" | "connected" | "failed" | "closed";

export const keepaliveMs = 1000;
export const rttSamples = 5;
const pingTimeoutMs = 250;
const maxPings = 12;
const maxPeerReflexive = 8;
const maxOutstandingTx = 4096;

/** "ip:port" → "ip". */
export const ipOf = (endpoint: string): string => endpoint.slice(0, endpoint.lastIndexOf(":"));

/**
 * What kind of path a confirmed remote is: one of the peer's host candidates (that is not also its
 * public endpoint) → lan; the remote's public address is our own (both behind one NAT, through
 * its public address) → hairpin; the rendezvous relay → relayed; anything else → direct.
 */
export function classifyPath(remote: Via, peerHost: readonly Endpoint[], peerReflexive: Endpoint, selfReflexive: Endpoint): PathKind {
	if (remote === relayVia) return "relayed";
	if (peerHost.includes(remote) && remote !== peerReflexive) return "lan";
	if (ipOf(remote) === ipOf(selfReflexive) && ipOf(peerReflexive) === ipOf(selfReflexive)) return "hairpin";
	return "direct";
}

/** Lower is better: lan beats hairpin and direct, which beat the relay. */
export const pathRank: Record<PathKind, number> = { lan: 0, hairpin: 1, direct: 1, relayed: 2 };

/** The candidate list to punch: host candidates first, then the reflexive one (deduplicated). */
export function initialCandidates(peerHost: readonly Endpoint[], peerReflexive: Endpoint): Map<Endpoint, CandidateKind> {
	const candidates = new Map<Endpoint, CandidateKind>();
	for (const host of peerHost) candidates.set(host, "host");
	if (!candidates.has(peerReflexive)) candidates.set(peerReflexive, "srflx");
	return candidates;
}

/** The median of some samples (the mean of the middle two for an even count); null for none. */
export function median(samples: readonly number[]): number | null {
	if (samples.length === 0) return null;
	const sorted = [...samples].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export class PunchStateMachine {
	phase: Phase = "punching";
	readonly candidates: Map<Via, CandidateKind>;
	/** Remotes a valid probe came from, and remotes that acked a probe we sent to them. */
	readonly probeFrom = new Set<Via>();
	readonly ackFrom = new Set<Via>();
	/** Confirmed remotes, with the time of confirmation. */
	readonly confirmed = new Map<Via, number>();
	packetsSent = 0;
	private readonly sentTx = new Map<string, Via>();
	private firstConfirmedAt: number | undefined;
	private graceUntil = 0;
	private nextProbeAt: number;
	private readonly deadlineAt: number;
	private relayDeadlineAt = 0;
	private chosen: Via | undefined;
	private readonly rtts: number[] = [];
	private readonly pingsOut = new Map<number, number>();
	private pingSeq = 0;
	private nextPingAt = 0;
	private nextKeepaliveAt = 0;
	private result: SessionAction | undefined;

	constructor(readonly params: SessionParams) {
		this.candidates = initialCandidates(params.peerHost, params.peerReflexive);
		this.nextProbeAt = params.startedAt;
		this.deadlineAt = params.startedAt + params.deadlineMs;
	}

	/** The path in use once connected (or while measuring). */
	get remote(): Via | undefined {
		return this.chosen;
	}

	get outcome(): SessionAction | undefined {
		return this.result;
	}

	/** When the driver must call tick() next (ms); Infinity when nothing is scheduled. */
	nextWake(): number {
		switch (this.phase) {
			case "punching":
				return Math.min(this.nextProbeAt, this.deadlineAt);
			case "grace":
				return Math.min(this.nextProbeAt, this.graceUntil);
			case "relaying":
				return Math.min(this.nextProbeAt, this.relayDeadlineAt);
			case "measuring":
				return this.nextPingAt;
			case "connected":
				return this.nextKeepaliveAt;
			default:
				return Infinity;
		}
	}

	/** Advance the clock: probes, deadlines, pings, keepalives — everything due by `now`. */
	tick(now: number): SessionAction[] {
		const actions: SessionAction[] = [];
		for (let guard = 0; guard < 8 && this.nextWake() <= now; guard++) this.step(now, actions);
		return actions;
	}

	private step(now: number, actions: SessionAction[]): void {
		if (this.phase === "punching" && now >= this.deadlineAt && this.confirmed.size === 0) {
			if (this.params.relay) this.startRelaying(now, actions);
			else this.fail(`no path confirmed within ${this.params.deadlineMs} ms (relay not allowed)`, actions);
			return;
		}
		if (this.phase === "relaying" && now >= this.relayDeadlineAt) {
			this.fail(`no direct path within ${this.params.deadlineMs} ms, and the relay did not confirm within ${this.params.deadlineMs} ms more`, actions);
			return;
		}
		if (this.phase === "grace" && now >= this.graceUntil) {
			this.choose(now, actions);
			return;
		}
		if ((this.phase === "punching" || this.phase === "grace" || this.phase === "relaying") && now >= this.nextProbeAt) {
			for (const to of this.probeTargets()) this.probe(to, actions);
			const step = this.phase === "relaying" ? Math.max(this.params.intervalMs, 50) : this.params.intervalMs;
			this.nextProbeAt = Math.max(this.nextProbeAt + step, now + 1);
			return;
		}
		if (this.phase === "measuring" && now >= this.nextPingAt) {
			if (this.pingSeq >= maxPings) this.finishMeasuring(now, actions);
			else this.ping(now, actions);
			return;
		}
		if (this.phase === "connected" && now >= this.nextKeepaliveAt && this.chosen) {
			this.send(this.chosen, { t: "ka", n: this.params.nonce, from: this.params.self }, actions);
			this.nextKeepaliveAt = now + keepaliveMs;
		}
	}

	/** A peer message from `from` (an "ip:port" or the relay). `drop` says why it was ignored. */
	receive(now: number, from: Via, message: PeerMessage): { actions: SessionAction[]; drop?: SessionDrop } {
		const actions: SessionAction[] = [];
		if (message.n !== this.params.nonce) return { actions, drop: "wrong-nonce" };
		if (message.from !== this.params.peer) return { actions, drop: "wrong-peer" };
		if (this.phase === "closed") return { actions };
		switch (message.t) {
			case "probe": {
				if (!this.candidates.has(from)) {
					const learned = [...this.candidates.values()].filter((kind) => kind === "prflx").length;
					if (from !== relayVia && learned >= maxPeerReflexive) return { actions, drop: "too-many-candidates" };
					// A source we did not know, with the right nonce: a peer-reflexive candidate (as ICE).
					this.candidates.set(from, from === relayVia ? "relay" : "prflx");
				}
				this.probeFrom.add(from);
				this.send(from, { t: "ack", n: this.params.nonce, from: this.params.self, tx: message.tx, seen: from === relayVia ? this.params.selfReflexive : from }, actions);
				// Triggered check: probe back at once where our own probe is not yet acked.
				if (!this.ackFrom.has(from) && this.punchingPhase()) this.probe(from, actions);
				this.checkConfirmed(now, from, actions);
				break;
			}
			case "ack": {
				if (this.sentTx.get(message.tx) !== from) return { actions, drop: "unknown-tx" };
				this.ackFrom.add(from);
				this.checkConfirmed(now, from, actions);
				break;
			}
			case "ping":
				this.send(from, { t: "pong", n: this.params.nonce, from: this.params.self, seq: message.seq }, actions);
				break;
			case "pong": {
				const sentAt = this.pingsOut.get(message.seq);
				if (sentAt === undefined || from !== this.chosen) return { actions, drop: "unknown-pong" };
				this.pingsOut.delete(message.seq);
				if (this.phase !== "measuring") break;
				this.rtts.push(now - sentAt);
				if (this.rtts.length >= rttSamples) this.finishMeasuring(now, actions);
				else this.ping(now, actions);
				break;
			}
			case "ka":
				break;
		}
		return { actions };
	}

	/** Stop: no more datagrams; a session that had no result yet fails with `reason`. */
	close(reason = "closed"): SessionAction[] {
		const actions: SessionAction[] = [];
		if (this.phase !== "connected" && this.phase !== "failed") this.fail(reason, actions);
		this.phase = "closed";
		return actions;
	}

	private punchingPhase(): boolean {
		return this.phase === "punching" || this.phase === "grace" || this.phase === "relaying";
	}

	private probeTargets(): Via[] {
		if (this.phase === "relaying") return [relayVia];
		return [...this.candidates.keys()].filter((via) => via !== relayVia);
	}

	private send(to: Via, message: PeerMessage, actions: SessionAction[]): void {
		this.packetsSent++;
		actions.push({ kind: "send", to, message });
	}

	private probe(to: Via, actions: SessionAction[]): void {
		const tx = this.params.newTx();
		if (this.sentTx.size >= maxOutstandingTx) this.sentTx.delete(this.sentTx.keys().next().value!);
		this.sentTx.set(tx, to);
		this.send(to, { t: "probe", n: this.params.nonce, from: this.params.self, tx }, actions);
	}

	private startRelaying(now: number, actions: SessionAction[]): void {
		this.phase = "relaying";
		this.relayDeadlineAt = now + this.params.deadlineMs;
		this.nextProbeAt = now;
		this.probe(relayVia, actions);
		this.nextProbeAt = now + Math.max(this.params.intervalMs, 50);
		// The peer may have reached its deadline first and completed our half already.
		this.checkConfirmed(now, relayVia, actions);
	}

	private checkConfirmed(now: number, from: Via, actions: SessionAction[]): void {
		if (this.confirmed.has(from) || !this.probeFrom.has(from) || !this.ackFrom.has(from)) return;
		if (!this.punchingPhase()) return; // already measuring or connected: the path is chosen
		if (from === relayVia && this.phase !== "relaying") return; // the relay is the fallback only
		this.confirmed.set(from, now);
		const kind = this.classify(from);
		if (this.firstConfirmedAt === undefined) {
			this.firstConfirmedAt = now;
			// Two more rounds of probes, and half a round for their answers.
			this.graceUntil = now + 2.5 * this.params.intervalMs;
		}
		// The best path there is, or the fallback (or late, while relaying): no need to wait for a better one.
		if (kind === "lan" || kind === "relayed" || this.phase === "relaying") this.choose(now, actions);
		else if (this.phase === "punching") this.phase = "grace";
	}

	private classify(remote: Via): PathKind {
		return classifyPath(remote, this.params.peerHost, this.params.peerReflexive, this.params.selfReflexive);
	}

	/** Pick the best confirmed path (the first confirmed among equals) and measure its RTT. */
	private choose(now: number, actions: SessionAction[]): void {
		const best = [...this.confirmed.entries()].sort((a, b) => pathRank[this.classify(a[0])] - pathRank[this.classify(b[0])] || a[1] - b[1])[0];
		this.chosen = best[0];
		this.phase = "measuring";
		this.ping(now, actions);
	}

	private ping(now: number, actions: SessionAction[]): void {
		const seq = ++this.pingSeq;
		this.pingsOut.set(seq, now);
		this.nextPingAt = now + pingTimeoutMs;
		this.send(this.chosen!, { t: "ping", n: this.params.nonce, from: this.params.self, seq }, actions);
	}

	private finishMeasuring(now: number, actions: SessionAction[]): void {
		const remote = this.chosen!;
		this.phase = "connected";
		this.nextKeepaliveAt = now + keepaliveMs;
		const rtt = median(this.rtts);
		this.result = {
			kind: "connected",
			path: this.classify(remote),
			remote,
			timeToConnectMs: Math.round((this.firstConfirmedAt! - this.params.startedAt) * 10) / 10,
			packetsSent: this.packetsSent,
			rttMs: rtt === null ? null : Math.round(rtt * 1000) / 1000,
		};
		actions.push(this.result);
	}

	private fail(reason: string, actions: SessionAction[]): void {
		this.phase = "failed";
		this.result = { kind: "failed", reason, packetsSent: this.packetsSent };
		actions.push(this.result);
	}
}
