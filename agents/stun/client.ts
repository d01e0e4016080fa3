// A STUN client on one UDP socket: Binding transactions with retransmission, matched by
// transaction id, and a watch for requests that arrive (the hairpin test sends one to ourselves).
import { randomBytes } from "node:crypto";
import DgramAsPromised, { type SocketAsPromised } from "dgram-as-promised";
import { type StunMessage, bindingRequest, decodeStun, encodeStun } from "./message.ts";
import type { Endpoint } from "./discovery.ts";

export interface Timing {
	/** Resend every `intervalMs` until an answer or until `waitMs` have passed since the first send. */
	waitMs: number;
	intervalMs: number;
}

export interface Answer {
	message: StunMessage;
	/** Where the answer came from (after any NAT on the way). */
	from: Endpoint;
	rttMs: number;
}

export interface Transaction {
	to: Endpoint;
	sent: number;
	elapsedMs: number;
	answer?: Answer;
	/** With `answerOn`: an answer that came back to the sending socket instead (the server ignored RESPONSE-PORT, or refused it). */
	misdirected?: Answer;
}

export interface RequestOptions {
	changeIp?: boolean;
	changePort?: boolean;
	responsePort?: number;
	/** Another client's socket to listen on for the answer (RESPONSE-PORT sends it there). */
	answerOn?: StunClient;
}

/** Wait until `done` settles or `ms` pass, whichever is first. */
async function until(done: Promise<unknown>, ms: number): Promise<void> {
	let timer: NodeJS.Timeout | undefined;
	await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(ms, 0))))]);
	clearTimeout(timer);
}

export class StunClient {
	private readonly waiting = new Map<string, (answer: Answer) => void>();
	private readonly requestsWanted = new Map<string, () => void>();
	/** When this socket last sent or received anything (a NAT mapping's idle time starts there). */
	lastActivity = performance.now();
	/** Datagrams that were not STUN or matched no transaction. */
	strays = 0;

	private constructor(readonly socket: SocketAsPromised) {
		socket.socket.on("error", () => undefined); // ICMP errors: an unanswered request times out instead
		socket.socket.on("message", (data, rinfo) => {
			this.lastActivity = performance.now();
			const decoded = decodeStun(data);
			if (!decoded.ok) return void this.strays++;
			const key = decoded.message.transactionId.toString("hex");
			if (decoded.message.class === "request") {
				const arrived = this.requestsWanted.get(key);
				if (!arrived) return void this.strays++;
				this.requestsWanted.delete(key);
				return arrived();
			}
			const resolve = this.waiting.get(key);
			if (!resolve) return void this.strays++;
			this.waiting.delete(key);
			resolve({ message: decoded.message, from: { address: rinfo.address, port: rinfo.port }, rttMs: 0 });
		});
	}

	/** A socket of the family (IPv6: IPv6 only), bound to `localPort` (0: any). */
	static async open(localPort = 0, family: 4 | 6 = 4): Promise<StunClient> {
		const socket = DgramAsPromised.createSocket({ type: family === 6 ? "udp6" : "udp4", ipv6Only: family === 6 });
		await socket.bind({ port: localPort, address: family === 6 ? "::" : "0.0.0.0" });
		return new StunClient(socket);
	}

	get localPort(): number {
		return this.socket.address().port;
	}

	/** Send a Binding request to `to` and wait for its answer (on this socket, or on `answerOn`). */
	async request(to: Endpoint, options: RequestOptions, timing: Timing): Promise<Transaction> {
		const transactionId = randomBytes(12);
		const key = transactionId.toString("hex");
		const bytes = encodeStun(bindingRequest(transactionId, { ...options, fingerprint: true }));
		const listener = options.answerOn ?? this;
		let answer: Answer | undefined;
		let misdirected: Answer | undefined;
		const answered = new Promise<void>((resolve) => {
			listener.waiting.set(key, (received) => resolve(void (answer = received)));
			if (listener !== this) this.waiting.set(key, (received) => resolve(void (misdirected = received)));
		});
		const result = await this.resend(bytes, to, answered, () => answer !== undefined || misdirected !== undefined, timing).finally(() => {
			listener.waiting.delete(key);
			this.waiting.delete(key);
		});
		if (answer) answer.rttMs = round(performance.now() - result.lastSend);
		return { to, sent: result.sent, elapsedMs: result.elapsedMs, answer, ...(misdirected ? { misdirected } : {}) };
	}

	/** Send a Binding request to `to` (our own mapped address, for hairpinning) and see whether `target` receives it. */
	async reaches(to: Endpoint, target: StunClient, timing: Timing): Promise<{ arrived: boolean; sent: number; elapsedMs: number }> {
		const transactionId = randomBytes(12);
		const key = transactionId.toString("hex");
		const bytes = encodeStun(bindingRequest(transactionId, { fingerprint: true }));
		let arrived = false;
		const seen = new Promise<void>((resolve) => target.requestsWanted.set(key, () => resolve(void (arrived = true))));
		const result = await this.resend(bytes, to, seen, () => arrived, timing).finally(() => target.requestsWanted.delete(key));
		return { arrived, sent: result.sent, elapsedMs: result.elapsedMs };
	}

	/** Send now, then every intervalMs, until `done` or waitMs after the first send. */
	private async resend(bytes: Buffer, to: Endpoint, done: Promise<void>, isDone: () => boolean, timing: Timing) {
		const started = performance.now();
		let sent = 0;
		let lastSend = started;
		while (!isDone() && performance.now() - started < timing.waitMs) {
			lastSend = performance.now();
			this.send(bytes, to);
			sent++;
			await until(done, Math.min(lastSend + timing.intervalMs, started + timing.waitMs) - performance.now());
		}
		return { sent, lastSend, elapsedMs: round(performance.now() - started) };
	}

	private send(bytes: Buffer, to: Endpoint): void {
		this.lastActivity = performance.now();
		this.socket.socket.send(bytes, to.port, to.address, () => undefined);
	}

	async close(): Promise<void> {
		await this.socket.close().catch(() => undefined);
	}
}

export function round(ms: number): number {
	return Math.round(ms * 10) / 10;
}
