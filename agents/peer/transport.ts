// How one endpoint of the peer agent sends and receives the punch protocol's messages: as UDP
// datagrams from one socket, or as frames over TCP connections that all use one local port.
//
// TCP hole punching is a simultaneous open: both peers dial each other's candidates from the port
// their rendezvous connection uses (so the NAT's mapping of that port is the one the peer was told),
// and listen on it too (a SYN from an unexpected port, the peer-reflexive candidate, is accepted).
// Node 20 cannot set SO_REUSEPORT on a dialing socket, and Linux refuses to bind a port that a
// socket listens on even with SO_REUSEADDR. So each dial closes the listener, binds the new socket
// (with SO_REUSEADDR, as libuv always sets), and listens again at once after it: a SYN that arrives
// in between is lost (the peer's dial then fails and is made again). A dial is left alone while it
// is opening: a SYN the peer's NAT dropped because it came first does no harm, the peer's SYN meets
// ours at our NAT (a simultaneous open); dropping and remaking a dial would close the listener again
// and leave moments with no socket on the port, when an arriving SYN is answered with a reset. A
// dial that failed (refused: a NAT or host answered with a reset) is made again after `redialMs`,
// doubling with each failure in a row up to `maxRedialMs`: every dial closes the listener for an
// instant, so a candidate that keeps refusing must not keep the port without a listener. A host
// candidate with one of our own addresses (two peers with the same private address behind
// different NATs) is never dialed: it would reach ourselves.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { endpointOf, type Endpoint } from "../punch/protocol.ts";
import { FrameReader, frame } from "../punch/stream.ts";

export type Proto = "udp" | "tcp";
export type Family = 4 | 6;

/** The wildcard address of a family: every socket of an endpoint binds it. */
const anyAddress = (family: Family) => (family === 6 ? "::" : "0.0.0.0");

export interface Transport {
	/** The local port (once open). */
	readonly port: number;
	/** Bind (UDP), or connect to the rendezvous and listen (TCP). */
	open(): Promise<void>;
	/** Send one message; `done` is called with an error when it could not leave. */
	send(to: { address: string; port: number }, bytes: Buffer, done?: (error?: Error | null) => void): void;
	close(): void;
	/** What the transport counted (TCP: dials, accepted connections, refusals). */
	counters(): Record<string, number>;
}

export type Receive = (data: Buffer, from: Endpoint) => void;

export class UdpTransport implements Transport {
	private readonly socket: UdpSocket;
	port = 0;

	constructor(
		receive: Receive,
		private readonly family: Family = 4,
	) {
		this.socket = createSocket({ type: family === 6 ? "udp6" : "udp4", ipv6Only: family === 6, recvBufferSize: 1 << 20 });
		this.socket.on("message", (data, rinfo) => receive(data, endpointOf(rinfo.address, rinfo.port)));
	}

	open(): Promise<void> {
		return new Promise((resolve, reject) => {
			this.socket.once("error", reject);
			this.socket.bind({ port: 0, address: anyAddress(this.family) }, () => {
				this.socket.off("error", reject);
				// After binding, an ICMP error for one send must not end the agent.
				this.socket.on("error", () => undefined);
				this.port = this.socket.address().port;
				resolve();
			});
		});
	}

	send(to: { address: string; port: number }, bytes: Buffer, done?: (error?: Error | null) => void): void {
		this.socket.send(bytes, to.port, to.address, (error) => done?.(error));
	}

	close(): void {
		try {
			this.socket.close();
		} catch {}
	}

	counters(): Record<string, number> {
		return {};
	}
}

/** How long a dial may stay opening before it is made anew (the session probes every interval). */
const defaultRedialMs = 15;
/** The longest wait before a candidate that keeps refusing is dialed again. */
const maxRedialMs = 240;
/** Messages kept for a dial in progress, sent when it connects (the newest). */
const maxWaiting = 4;
/** Connections one endpoint holds at most (the rendezvous, the peer's candidates, strays). */
const maxConnections = 32;

export class TcpTransport implements Transport {
	port = 0;
	private server?: Server;
	private listenQueued = false;
	private closed = false;
	private readonly connections = new Map<Endpoint, Socket>();
	private readonly dials = new Map<Endpoint, { socket: Socket; waiting: Buffer[] }>();
	/** When each endpoint's last dial failed. */
	private readonly failed = new Map<Endpoint, { at: number; times: number }>();
	/** This node's own addresses: a dial to one of them would reach ourselves. */
	private readonly own = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address)));
	private readonly count = { dials: 0, connected: 0, accepted: 0, refused: 0, ownAddress: 0, brokenStreams: 0, overLimit: 0 };

	constructor(
		private readonly rendezvous: { address: string; port: number; endpoint: Endpoint },
		private readonly receive: Receive,
		private readonly now: () => number,
		private readonly family: Family = 4,
		private readonly redialMs = defaultRedialMs,
	) {}

	async open(): Promise<void> {
		const socket = connect({ host: this.rendezvous.address, port: this.rendezvous.port, localAddress: anyAddress(this.family), localPort: 0, noDelay: true });
		await new Promise<void>((resolve, reject) => {
			socket.once("connect", resolve);
			socket.once("error", reject);
		});
		this.port = socket.localPort!;
		this.adopt(socket, this.rendezvous.endpoint);
		this.listen();
	}

	send(to: { address: string; port: number }, bytes: Buffer, done?: (error?: Error | null) => void): void {
		const key = endpointOf(to.address, to.port);
		const socket = this.connections.get(key);
		if (socket && !socket.destroyed) {
			socket.write(frame(bytes), (error) => done?.(error));
			return;
		}
		// Not connected (yet): dial; the latest few messages go out if this dial connects (a datagram
		// into a closed NAT would be lost, but there is no reason to wait a round for the next probe).
		const waiting = this.dial(to, key);
		if (waiting) {
			waiting.push(frame(bytes));
			if (waiting.length > maxWaiting) waiting.shift();
		}
		done?.();
	}

	close(): void {
		this.closed = true;
		this.server?.close();
		for (const socket of [...this.connections.values(), ...[...this.dials.values()].map((dial) => dial.socket)]) socket.destroy();
		this.connections.clear();
		this.dials.clear();
	}

	counters(): Record<string, number> {
		return { ...this.count };
	}

	private listen(): void {
		if (this.closed || this.server) return;
		const server = createServer({ noDelay: true }, (socket) => {
			// A connection reset before it is handed over has no remote address any more.
			if (this.closed || !socket.remoteAddress || !socket.remotePort) return socket.destroy();
			this.count.accepted++;
			this.adopt(socket, endpointOf(socket.remoteAddress, socket.remotePort));
		});
		// Listening can fail while a dial holds the port in a way Linux refuses; the next dial retries.
		server.on("error", () => {
			if (this.server === server) this.server = undefined;
		});
		server.listen({ port: this.port, host: anyAddress(this.family), ipv6Only: this.family === 6, exclusive: true });
		this.server = server;
	}

	/** Dial `to` unless a dial is opening or failed just now; returns the messages waiting for the current dial. */
	private dial(to: { address: string; port: number }, key: Endpoint): Buffer[] | undefined {
		if (this.closed) return undefined;
		const opening = this.dials.get(key);
		if (opening) return opening.waiting;
		if (this.own.has(to.address)) {
			this.count.ownAddress++;
			return undefined;
		}
		const failed = this.failed.get(key);
		if (failed && this.now() - failed.at < Math.min(maxRedialMs, this.redialMs * 2 ** (failed.times - 1))) return undefined;
		if (this.connections.size + this.dials.size >= maxConnections) {
			this.count.overLimit++;
			return undefined;
		}
		// The listener goes while the new socket binds the port, and comes back right after.
		this.server?.close();
		this.server = undefined;
		this.count.dials++;
		const socket = connect({ host: to.address, port: to.port, localAddress: anyAddress(this.family), localPort: this.port, noDelay: true });
		const entry = { socket, waiting: [] as Buffer[] };
		this.dials.set(key, entry);
		const settled = () => {
			if (this.dials.get(key)?.socket === socket) this.dials.delete(key);
		};
		socket.once("connect", () => {
			settled();
			this.failed.delete(key);
			if (!socket.remoteAddress || !socket.remotePort) return void socket.destroy();
			this.count.connected++;
			this.adopt(socket, endpointOf(socket.remoteAddress, socket.remotePort));
			for (const waiting of entry.waiting) socket.write(waiting);
		});
		socket.on("error", (error: NodeJS.ErrnoException) => {
			settled();
			this.failed.set(key, { at: this.now(), times: (this.failed.get(key)?.times ?? 0) + 1 });
			if (error.code === "ECONNREFUSED") this.count.refused++;
		});
		if (!this.listenQueued) {
			this.listenQueued = true;
			setImmediate(() => {
				this.listenQueued = false;
				this.listen();
			});
		}
		return entry.waiting;
	}

	/** A connection (dialed or accepted): its frames are messages from `remote`. */
	private adopt(socket: Socket, remote: Endpoint): void {
		if (this.closed) return void socket.destroy();
		const old = this.connections.get(remote);
		if (old && old !== socket) old.destroy();
		if (!old && this.connections.size >= maxConnections) {
			this.count.overLimit++;
			return void socket.destroy();
		}
		this.connections.set(remote, socket);
		const reader = new FrameReader();
		socket.on("data", (chunk: Buffer) => {
			for (const data of reader.push(chunk)) this.receive(data, remote);
			if (reader.broken) {
				this.count.brokenStreams++;
				socket.destroy();
			}
		});
		socket.on("error", () => undefined);
		socket.on("close", () => {
			if (this.connections.get(remote) === socket) this.connections.delete(remote);
		});
	}
}
