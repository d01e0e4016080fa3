// One side of a hole punching session as a pure state machine: fed with start signals, received
// peer messages and the clock, it answers with datagrams to send and results. No sockets, no
// timers: the peer agent drives it (and tests drive it by hand).
//
//   punching ──(a path confirmed)──▶ grace ──(2.5 × interval, or at once for lan/relay)──▶ measuring ──▶ connected
//      │                                                                                                 (keepalive)
//      └─(deadline)──▶ relaying (when allowed) ──(relay path confirmed)──▶ measuring ──▶ connected
//                           └─(deadline)──▶ failed          (and without relay: punching ─(deadline)─▶ failed)
//
// A path (a remote endpoint, or "relay") is confirmed only by the nonce handshake: we received the
// peer's probe from it AND an ack, from it, of a probe we sent to it (the ack echoes our random tx).
// A stray or spoofed packet cannot fake that without the session nonce and our tx ids.
//
// Once connected the session is held: a keepalive (a ping, answered by a pong) every keepaliveMs,
// and nothing heard from the peer over the path for lossAfterMs → "lost", and a "repunch" request
// (the driver re-registers and asks the rendezvous for a new round), repeated with a backoff capped
// at 1 s until a new start signal arrives — restart() then punches a new round (a new nonce, fresh
// candidates), and its success is "reconnected". A round that fails goes back to lost and asks
// again. A start that arrives while connected (the peer noticed a loss first) is a new round too.
//
//   connected ──(silent lossAfterMs)──▶ lost ──(start: restart())──▶ punching … ──▶ connected ("reconnected")
//                                        ▲                               │
//                                        └──────(round deadline)─────────┘
//
// Path migration: while connected, keepalives of the peer that arrive from a new source (its NAT
// rebound) are answered and that source is probed; its ack (our tx, the nonce) confirms it, and the
// session moves there ("migrated") without declaring a loss.
import type { Endpoint, PeerMessage } from "./protocol.ts";
import { pathRank, type PathKind } from "../../src/vocabulary/punch.ts";

export type { PathKind };
/** host: the peer's own address; mapped: a port its gateway granted it (PCP, NAT-PMP, UPnP); srflx: its public endpoint as the rendezvous saw it; prflx: a source its probes came from; relay: the rendezvous. */
export type CandidateKind = "host" | "mapped" | "srflx" | "prflx" | "relay";
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
	/** The peer's port-mapped public endpoint (its gateway granted it), from the start signal. */
	peerMapped?: Endpoint;
	/** Our own server-reflexive endpoint (our public address, for hairpin classification). */
	selfReflexive: Endpoint;
	intervalMs: number;
	deadlineMs: number;
	relay: boolean;
	/** When the start signal arrived (ms, the driver's clock). */
	startedAt: number;
	/** A fresh random 16-hex-digit transaction id. */
	newTx: () => string;
	/** Once connected, a keepalive this often (default 1000 ms). */
	keepaliveMs?: number;
	/** Nothing heard from the peer this long → lost (default 3 keepalives, at least 1500 ms). */
	lossAfterMs?: number;
}

/** What a later start signal for the same peer brings: a new round of punching. */
export type RoundParams = Pick<SessionParams, "nonce" | "peerHost" | "peerReflexive" | "peerMapped" | "selfReflexive" | "intervalMs" | "deadlineMs" | "relay" | "keepaliveMs" | "lossAfterMs">;

export type SessionAction =
	| { kind: "send"; to: Via; message: PeerMessage }
	/** `candidate`: what kind of candidate of the peer the path goes to; `seenAs`: where the peer sees us on it (its ack's `seen`). */
	| { kind: "connected"; path: PathKind; remote: Via; candidate: CandidateKind; seenAs?: Endpoint; timeToConnectMs: number; packetsSent: number; rttMs: number | null }
	| { kind: "failed"; reason: string; packetsSent: number }
	/** Nothing heard over the path for silentMs. */
	| { kind: "lost"; remote: Via; silentMs: number }
	/** Ask the rendezvous for a new round: re-register, then connect with `after` (the nonce given up). */
	| { kind: "repunch"; attempt: number; after: string }
	/** The peer's traffic now comes from `remote` (confirmed by the nonce handshake): the path moved. */
	| { kind: "migrated"; old: Via; remote: Via; path: PathKind }
	/** Connected again after a loss (or after the peer re-punched): down for downMs, in `attempts` rounds. */
	| { kind: "reconnected"; path: PathKind; remote: Via; candidate: CandidateKind; seenAs?: Endpoint; downMs: number; attempts: number; timeToConnectMs: number; packetsSent: number; rttMs: number | null };

export type SessionDrop = "wrong-nonce" | "wrong-peer" | "unknown-tx" | "too-many-candidates" | "unknown-pong";

export type Phase = "punching" | "grace" | "relaying" | "measuring" | "connected" | "lost" | "failed" | "closed";

/** The default keepalive interval. */
export const keepaliveMs = 1000;
export const minLossAfterMs = 1500;
export const maxRepunchBackoffMs = 1000;
/** The default loss timeout for a keepalive interval: three keepalives, at least 1.5 s. */
export const defaultLossAfter = (keepalive: number): number => Math.max(minLossAfterMs, 3 * keepalive);
/** How long after the k-th re-punch request (k ≥ 1) it is repeated: 250, 500, then every 1000 ms. */
export const repunchBackoff = (attempt: number): number => Math.min(maxRepunchBackoffMs, 125 * 2 ** Math.max(1, attempt));
/** During a re-punch round, the registration is refreshed this soon (our endpoint may have moved). */
const roundRefreshMs = 250;
export const rttSamples = 5;
const pingTimeoutMs = 250;
const maxPings = 12;
const maxPeerReflexive = 8;
const maxOutstandingTx = 4096;
const maxPingsOut = 64;
const maxHeardLog = 512;
const maxKnownNonces = 32;
const maxMigrating = 8;
const migrationProbeGapMs = 100;

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

/**
 * The candidate list to punch: host candidates first, then the port-mapped one, then the reflexive
 * one (deduplicated). A mapped endpoint equal to the reflexive one is "mapped": the gateway's
 * mapping is what lets unsolicited traffic in there, whatever its filtering.
 */
export function initialCandidates(peerHost: readonly Endpoint[], peerReflexive: Endpoint, peerMapped?: Endpoint): Map<Endpoint, CandidateKind> {
	const candidates = new Map<Endpoint, CandidateKind>();
	for (const host of peerHost) candidates.set(host, "host");
	if (peerMapped !== undefined && !candidates.has(peerMapped)) candidates.set(peerMapped, "mapped");
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
	/** The current round's parameters (a restart() replaces the nonce, the candidates and the timing). */
	params: SessionParams;
	readonly candidates: Map<Via, CandidateKind>;
	/** Remotes a valid probe came from, and remotes that acked a probe we sent to them. */
	readonly probeFrom = new Set<Via>();
	readonly ackFrom = new Set<Via>();
	/** Confirmed remotes, with the time of confirmation. */
	readonly confirmed = new Map<Via, number>();
	packetsSent = 0;
	private roundPacketsAt = 0;
	private readonly sentTx = new Map<string, Via>();
	/** What each remote's acks say it sees us as. */
	private readonly seenBy = new Map<Via, Endpoint>();
	private firstConfirmedAt: number | undefined;
	private graceUntil = 0;
	private nextProbeAt: number;
	private deadlineAt: number;
	private relayDeadlineAt = 0;
	private chosen: Via | undefined;
	private readonly rtts: number[] = [];
	private readonly pingsOut = new Map<number, number>();
	private pingSeq = 0;
	private nextPingAt = 0;
	private nextKeepaliveAt = 0;
	private result: SessionAction | undefined;
	// ── the held session ──
	private heardAt = -Infinity;
	private ackedAt = -Infinity;
	private connectedAtTime: number | undefined;
	private readonly heardLog: number[] = [];
	private everConnected = false;
	/** Since when the path is down (lost, or re-punched by the peer); undefined while it is up. */
	private downSince: number | undefined;
	private rounds = 0;
	private roundCount = 1;
	private lostNonce: string | undefined;
	private repunchAttempt = 0;
	private nextRepunchAt = Infinity;
	private readonly knownNonces: string[] = [];
	/** Sources of the peer's keepalives other than the path, with when we last probed them. */
	private readonly migrating = new Map<Via, number>();

	constructor(params: SessionParams) {
		this.params = params;
		this.candidates = initialCandidates(params.peerHost, params.peerReflexive, params.peerMapped);
		this.nextProbeAt = params.startedAt;
		this.deadlineAt = params.startedAt + params.deadlineMs;
	}

	/** The path in use once connected (or while measuring; the lost one while lost). */
	get remote(): Via | undefined {
		return this.chosen;
	}

	get outcome(): SessionAction | undefined {
		return this.result;
	}

	get keepaliveInterval(): number {
		return this.params.keepaliveMs ?? keepaliveMs;
	}

	get lossAfter(): number {
		return this.params.lossAfterMs ?? defaultLossAfter(this.keepaliveInterval);
	}

	/** When the peer was last heard over the path (ms; -Infinity: never). */
	get lastHeard(): number {
		return this.heardAt;
	}

	/** When a keepalive of ours was last answered (ms; -Infinity: never). */
	get lastAcked(): number {
		return this.ackedAt;
	}

	/** When the current connection was made (ms), while connected. */
	get connectedAt(): number | undefined {
		return this.phase === "connected" ? this.connectedAtTime : undefined;
	}

	/** Since when the path is down, or undefined while it is up (or before the first connection). */
	get downAt(): number | undefined {
		return this.downSince;
	}

	/** The path's kind while connected. */
	get path(): PathKind | undefined {
		return this.chosen === undefined ? undefined : this.classify(this.chosen);
	}

	/** 1 for the first round of punching, 2 for the next (a re-punch)… */
	get roundNumber(): number {
		return this.roundCount;
	}

	/** Whether a start signal with this nonce was seen already (the current round or an earlier one). */
	knows(nonce: string): boolean {
		return nonce === this.params.nonce || this.knownNonces.includes(nonce);
	}

	/** The first time at or after `since` the peer was heard over the path (from the last 512), or undefined. */
	heardSince(since: number): number | undefined {
		return this.heardLog.find((at) => at >= since);
	}

	/** When the driver must call tick() next (ms); Infinity when nothing is scheduled. */
	nextWake(): number {
		const repunch = this.downSince === undefined ? Infinity : this.nextRepunchAt;
		switch (this.phase) {
			case "punching":
				return Math.min(this.nextProbeAt, this.deadlineAt, repunch);
			case "grace":
				return Math.min(this.nextProbeAt, this.graceUntil);
			case "relaying":
				return Math.min(this.nextProbeAt, this.relayDeadlineAt, repunch);
			case "measuring":
				return this.nextPingAt;
			case "connected":
				return Math.min(this.nextKeepaliveAt, this.heardAt + this.lossAfter);
			case "lost":
				return this.nextRepunchAt;
			default:
				return Infinity;
		}
	}

	/** Advance the clock: probes, deadlines, pings, keepalives, loss, re-punch requests — everything due by `now`. */
	tick(now: number): SessionAction[] {
		const actions: SessionAction[] = [];
		for (let guard = 0; guard < 8 && this.nextWake() <= now; guard++) this.step(now, actions);
		return actions;
	}

	private step(now: number, actions: SessionAction[]): void {
		if (this.phase === "connected" && now >= this.heardAt + this.lossAfter) {
			this.lose(now, actions);
			return;
		}
		// Lost, or in a re-punch round that has confirmed nothing yet: ask (again) for a round.
		const asking = this.phase === "lost" || ((this.phase === "punching" || this.phase === "relaying") && this.downSince !== undefined);
		if (asking && now >= this.nextRepunchAt) {
			this.repunch(now, actions);
			return;
		}
		if (this.phase === "punching" && now >= this.deadlineAt && this.confirmed.size === 0) {
			if (this.params.relay) this.startRelaying(now, actions);
			else this.fail(now, `no path confirmed within ${this.params.deadlineMs} ms (relay not allowed)`, actions);
			return;
		}
		if (this.phase === "relaying" && now >= this.relayDeadlineAt) {
			this.fail(now, `no direct path within ${this.params.deadlineMs} ms, and the relay did not confirm within ${this.params.deadlineMs} ms more`, actions);
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
			this.sendPing(now, actions);
			this.nextKeepaliveAt = now + this.keepaliveInterval;
		}
	}

	/** A peer message from `from` (an "ip:port" or the relay). `drop` says why it was ignored. */
	receive(now: number, from: Via, message: PeerMessage): { actions: SessionAction[]; drop?: SessionDrop } {
		const actions: SessionAction[] = [];
		if (message.n !== this.params.nonce) return { actions, drop: "wrong-nonce" };
		if (message.from !== this.params.peer) return { actions, drop: "wrong-peer" };
		if (this.phase === "closed") return { actions };
		if (from === this.chosen && (this.phase === "measuring" || this.phase === "connected")) this.hear(now);
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
				if (from !== relayVia && (this.seenBy.has(from) || this.seenBy.size < maxOutstandingTx)) this.seenBy.set(from, message.seen);
				if (this.phase === "connected" && this.migrating.has(from)) this.migrate(now, from, actions);
				else this.checkConfirmed(now, from, actions);
				break;
			}
			case "ping":
				this.send(from, { t: "pong", n: this.params.nonce, from: this.params.self, seq: message.seq }, actions);
				this.checkSource(now, from, actions);
				break;
			case "pong": {
				const sentAt = this.pingsOut.get(message.seq);
				if (sentAt === undefined || from !== this.chosen) return { actions, drop: "unknown-pong" };
				this.pingsOut.delete(message.seq);
				if (this.phase === "connected") this.ackedAt = now;
				if (this.phase !== "measuring") break;
				this.rtts.push(now - sentAt);
				if (this.rtts.length >= rttSamples) this.finishMeasuring(now, actions);
				else this.ping(now, actions);
				break;
			}
			case "ka":
				this.checkSource(now, from, actions);
				break;
		}
		return { actions };
	}

	/**
	 * A later start signal for the same peer: punch a new round (new nonce, fresh candidates). While
	 * connected this is the peer re-punching after it lost us; while lost it is the answer to our
	 * own request. Nothing happens for a nonce seen before (a resent or superseded start).
	 */
	restart(now: number, round: RoundParams): SessionAction[] {
		if (this.phase === "closed" || this.knows(round.nonce)) return [];
		this.remember(this.params.nonce);
		this.roundCount++;
		if (this.everConnected && this.downSince === undefined) {
			// The peer noticed a loss before we did (or only it did).
			this.downSince = now;
			this.rounds = 0;
			this.repunchAttempt = 0;
			this.lostNonce = this.params.nonce;
			this.nextRepunchAt = Infinity;
		}
		if (this.downSince !== undefined) {
			this.rounds++;
			this.nextRepunchAt = Math.min(this.nextRepunchAt, now + roundRefreshMs);
		}
		this.params = {
			...this.params,
			...round,
			peerMapped: round.peerMapped, // a round without one has none (the peer's mapping may be gone)
			keepaliveMs: round.keepaliveMs ?? this.params.keepaliveMs,
			lossAfterMs: round.lossAfterMs ?? this.params.lossAfterMs,
			startedAt: now,
		};
		this.candidates.clear();
		for (const [via, kind] of initialCandidates(round.peerHost, round.peerReflexive, round.peerMapped)) this.candidates.set(via, kind);
		this.probeFrom.clear();
		this.ackFrom.clear();
		this.confirmed.clear();
		this.sentTx.clear();
		this.seenBy.clear();
		this.migrating.clear();
		this.pingsOut.clear();
		this.rtts.length = 0;
		this.firstConfirmedAt = undefined;
		this.graceUntil = 0;
		this.nextProbeAt = now;
		this.deadlineAt = now + round.deadlineMs;
		this.relayDeadlineAt = 0;
		this.chosen = undefined;
		this.pingSeq = 0;
		this.nextPingAt = 0;
		this.nextKeepaliveAt = 0;
		this.roundPacketsAt = this.packetsSent;
		this.phase = "punching";
		return this.tick(now);
	}

	/** Stop: no more datagrams; a session that never connected fails with `reason`. */
	close(reason = "closed"): SessionAction[] {
		const actions: SessionAction[] = [];
		if (!this.everConnected && this.phase !== "failed" && this.phase !== "closed") this.finalFail(reason, actions);
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
		this.nextPingAt = now + pingTimeoutMs;
		this.sendPing(now, actions);
	}

	private sendPing(now: number, actions: SessionAction[]): void {
		const seq = ++this.pingSeq;
		if (this.pingsOut.size >= maxPingsOut) this.pingsOut.delete(this.pingsOut.keys().next().value!);
		this.pingsOut.set(seq, now);
		this.send(this.chosen!, { t: "ping", n: this.params.nonce, from: this.params.self, seq }, actions);
	}

	private hear(now: number): void {
		this.heardAt = now;
		this.heardLog.push(now);
		if (this.heardLog.length > maxHeardLog) this.heardLog.splice(0, this.heardLog.length - maxHeardLog);
	}

	private remember(nonce: string): void {
		if (this.knownNonces.includes(nonce)) return;
		this.knownNonces.push(nonce);
		if (this.knownNonces.length > maxKnownNonces) this.knownNonces.shift();
	}

	private finishMeasuring(now: number, actions: SessionAction[]): void {
		const remote = this.chosen!;
		this.phase = "connected";
		this.nextKeepaliveAt = now + this.keepaliveInterval;
		this.connectedAtTime = now;
		// The loss timer starts now (the measurement itself may have gone unanswered).
		if (this.heardAt < now) this.heardAt = now;
		const rtt = median(this.rtts);
		const seenAs = this.seenBy.get(remote);
		const base = {
			path: this.classify(remote),
			remote,
			candidate: this.candidates.get(remote) ?? (remote === relayVia ? "relay" : "prflx"),
			...(seenAs === undefined ? {} : { seenAs }),
			timeToConnectMs: Math.round((this.firstConfirmedAt! - this.params.startedAt) * 10) / 10,
			packetsSent: this.packetsSent - this.roundPacketsAt,
			rttMs: rtt === null ? null : Math.round(rtt * 1000) / 1000,
		};
		if (this.everConnected && this.downSince !== undefined) {
			this.result = { kind: "reconnected", ...base, downMs: Math.round((now - this.downSince) * 10) / 10, attempts: this.rounds };
			this.downSince = undefined;
			this.nextRepunchAt = Infinity;
		} else this.result = { kind: "connected", ...base };
		this.everConnected = true;
		actions.push(this.result);
	}

	/** Nothing heard over the path for lossAfter: ask for a new round. */
	private lose(now: number, actions: SessionAction[]): void {
		const silentMs = now - this.heardAt;
		this.phase = "lost";
		this.downSince = now;
		this.rounds = 0;
		this.repunchAttempt = 0;
		this.lostNonce = this.params.nonce;
		actions.push({ kind: "lost", remote: this.chosen!, silentMs: Math.round(silentMs) });
		this.repunch(now, actions);
	}

	private repunch(now: number, actions: SessionAction[]): void {
		this.repunchAttempt++;
		this.nextRepunchAt = now + repunchBackoff(this.repunchAttempt);
		actions.push({ kind: "repunch", attempt: this.repunchAttempt, after: this.lostNonce! });
	}

	/**
	 * Session traffic (a keepalive) from a source that is not the path: the peer's NAT may have
	 * rebound. Probe that source; its ack confirms it (see migrate).
	 */
	private checkSource(now: number, from: Via, actions: SessionAction[]): void {
		if (this.phase !== "connected" || from === this.chosen || from === relayVia) return;
		const last = this.migrating.get(from);
		if (last !== undefined && now - last < migrationProbeGapMs) return;
		if (last === undefined && this.migrating.size >= maxMigrating) this.migrating.delete(this.migrating.keys().next().value!);
		this.migrating.set(from, now);
		this.probe(from, actions);
	}

	/** Move to a confirmed new source of the peer: when it is no worse, or when the path has gone quiet. */
	private migrate(now: number, to: Via, actions: SessionAction[]): void {
		const old = this.chosen!;
		const path = this.classify(to);
		if (pathRank[path] > pathRank[this.classify(old)] && now - this.heardAt <= this.keepaliveInterval) return;
		this.chosen = to;
		this.migrating.clear();
		this.hear(now);
		actions.push({ kind: "migrated", old, remote: to, path });
	}

	/** A round failed: after a loss, ask for another; otherwise the session has failed. */
	private fail(now: number, reason: string, actions: SessionAction[]): void {
		if (this.everConnected && this.downSince !== undefined) {
			this.phase = "lost";
			this.lostNonce = this.params.nonce;
			this.repunch(now, actions);
			return;
		}
		this.finalFail(reason, actions);
	}

	private finalFail(reason: string, actions: SessionAction[]): void {
		this.phase = "failed";
		this.result = { kind: "failed", reason, packetsSent: this.packetsSent };
		actions.push(this.result);
	}
}
