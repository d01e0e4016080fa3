// NAT behaviour discovery over TCP against testbed's STUN server: mapping as RFC 5780 4.3 (Binding
// requests from one local port on connections to the server's primary address, its alternate address,
// and its alternate address and port), filtering with testbed's connect-back test (agents/stun/tcp.ts),
// hairpinning (a connection from a second port to our own mapped endpoint), port preservation, and
// what the NAT does with a SYN it filters (dropped, or answered with a reset). Same conclusions as the
// UDP probe (discovery.ts), same result shape plus `unsolicitedTcp`.
import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { bindingRequest, decodeStun, encodeStun, getAttribute, type StunMessage } from "./message.ts";
import { type Endpoint, type FilteringObservation, classicNatType, classifyFiltering, classifyMapping, natDetected, portPreserved, sameEndpoint } from "./discovery.ts";
import { StunStreamReader, connectBackRefused, connectBackTimeoutMs } from "./tcp.ts";
import { unknownResult, type ProbeResult, type TestRecord } from "./probe.ts";
import { round } from "./client.ts";
import { nodeAddresses } from "../agent-io.ts";

export interface TcpProbeOptions {
	server: Endpoint;
	/** How long to wait for a connection or an answer that should come. */
	timeoutMs?: number;
}

export type TcpProbeResult = ProbeResult & {
	/** What the NAT did with a SYN its filter refused: "drop", "rst", or null when no test was refused. */
	unsolicitedTcp: "drop" | "rst" | null;
};

const text = (endpoint: Endpoint) => `${endpoint.address}:${endpoint.port}`;

/** Any local address of the server's family: the probe runs over IPv4 or IPv6, as the server's address is. */
const anyAddressFor = (server: Endpoint) => (server.address.includes(":") ? "::" : "0.0.0.0");

/** One connection to a STUN server: requests out, messages in, in order. */
class StunConnection {
	private readonly reader = new StunStreamReader();
	private readonly inbox: StunMessage[] = [];
	private waiting?: () => void;
	closed = false;

	private constructor(readonly socket: Socket) {
		socket.on("data", (chunk: Buffer) => {
			for (const data of this.reader.push(chunk)) {
				const decoded = decodeStun(data);
				if (decoded.ok) this.inbox.push(decoded.message);
			}
			if (this.reader.broken) socket.destroy();
			this.waiting?.();
		});
		socket.on("error", () => undefined);
		socket.on("close", () => {
			this.closed = true;
			this.waiting?.();
		});
	}

	/** A connection from `localPort` (0: any; SO_REUSEADDR, so several may share it). */
	static open(to: Endpoint, localPort: number, timeoutMs: number): Promise<StunConnection | undefined> {
		return new Promise((resolve) => {
			const socket = connect({ host: to.address, port: to.port, localAddress: anyAddressFor(to), localPort, noDelay: true });
			const timer = setTimeout(() => {
				socket.destroy();
				resolve(undefined);
			}, timeoutMs);
			socket.once("connect", () => {
				clearTimeout(timer);
				resolve(new StunConnection(socket));
			});
			socket.once("error", () => {
				clearTimeout(timer);
				resolve(undefined);
			});
		});
	}

	/** Adopt an accepted connection (the server's connect-back). */
	static adopt(socket: Socket): StunConnection {
		return new StunConnection(socket);
	}

	send(message: StunMessage): void {
		this.socket.write(encodeStun(message));
	}

	/** The next message with this transaction id, or undefined after `timeoutMs`. */
	async next(transactionId: Buffer, timeoutMs: number): Promise<StunMessage | undefined> {
		const deadline = performance.now() + timeoutMs;
		for (;;) {
			const index = this.inbox.findIndex((message) => message.transactionId.equals(transactionId));
			if (index >= 0) return this.inbox.splice(index, 1)[0];
			const left = deadline - performance.now();
			if (left <= 0 || this.closed) return undefined;
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, left);
				this.waiting = () => {
					clearTimeout(timer);
					resolve();
				};
			});
			this.waiting = undefined;
		}
	}

	get localPort(): number {
		return this.socket.localPort ?? 0;
	}

	close(): void {
		this.socket.destroy();
	}
}

const mappedOf = (message: StunMessage | undefined): Endpoint | undefined => {
	const mapped = message && (getAttribute(message, "XOR-MAPPED-ADDRESS") ?? getAttribute(message, "MAPPED-ADDRESS"));
	return mapped ? { address: mapped.address, port: mapped.port } : undefined;
};

/** A listener on `port` that hands out the connections it accepts. */
async function listenOn(port: number, host: string): Promise<{ server: Server; accepted: (timeoutMs: number, from?: (remote: Endpoint) => boolean) => Promise<StunConnection | undefined> }> {
	const queue: Socket[] = [];
	let wake: (() => void) | undefined;
	const server = createServer({ noDelay: true }, (socket) => {
		queue.push(socket);
		wake?.();
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen({ port, host, exclusive: true }, () => resolve());
	});
	const accepted = async (timeoutMs: number, from: (remote: Endpoint) => boolean = () => true) => {
		const deadline = performance.now() + timeoutMs;
		for (;;) {
			const index = queue.findIndex((socket) => from({ address: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 }));
			if (index >= 0) return StunConnection.adopt(queue.splice(index, 1)[0]);
			const left = deadline - performance.now();
			if (left <= 0) return undefined;
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, left);
				wake = () => {
					clearTimeout(timer);
					resolve();
				};
			});
			wake = undefined;
		}
	};
	return { server, accepted };
}

export async function probeNatTcp(options: TcpProbeOptions): Promise<TcpProbeResult> {
	const started = performance.now();
	const timeoutMs = options.timeoutMs ?? 1000;
	const timings: Record<string, number> = {};
	const tests: ProbeResult["tests"] = {};
	const open: { close(): void }[] = [];
	const result: TcpProbeResult = { ...unknownResult(options.server, 0, nodeAddresses(options.server.address.includes(":") ? 6 : 4), timings, tests), unsolicitedTcp: null };
	/** A Binding over a new connection from `localPort`: its record and mapped endpoint. */
	const binding = async (name: string, to: Endpoint, localPort: number): Promise<{ connection?: StunConnection; mapped?: Endpoint; message?: StunMessage }> => {
		const at = performance.now();
		const connection = await StunConnection.open(to, localPort, timeoutMs);
		if (connection) open.push(connection);
		const id = randomBytes(12);
		connection?.send(bindingRequest(id));
		const message = await connection?.next(id, timeoutMs);
		const mapped = mappedOf(message);
		const elapsedMs = round(performance.now() - at);
		timings[`${name}Ms`] = elapsedMs;
		const record: TestRecord = { to: text(to), sent: connection ? 1 : 0, elapsedMs, answered: Boolean(mapped), ...(mapped ? { mapped: text(mapped) } : {}) };
		tests[name] = record;
		return { connection, mapped, message };
	};
	try {
		// Mapping: tests I, II and III from one local port.
		const first = await binding("testI", options.server, 0);
		if (!first.connection || !first.mapped || !first.message) {
			result.error = `no STUN answer over TCP from ${text(options.server)}: TCP blocked or no server`;
			return result;
		}
		const port = first.connection.localPort;
		result.localPort = port;
		const otherAttribute = getAttribute(first.message, "OTHER-ADDRESS");
		const other = otherAttribute ? { address: otherAttribute.address, port: otherAttribute.port } : undefined;
		result.mappedAddress = first.mapped;
		result.otherAddress = other ?? null;
		result.natDetected = natDetected(first.mapped, result.localAddresses, port);
		result.portPreservation = portPreserved(first.mapped, port);
		let testII: Endpoint | undefined;
		let testIII: Endpoint | undefined;
		if (other) {
			testII = (await binding("mappingII", { address: other.address, port: options.server.port }, port)).mapped;
			if (testII && !sameEndpoint(first.mapped, testII)) testIII = (await binding("mappingIII", other, port)).mapped;
			else tests.mappingIII = { skipped: testII ? "test II decided" : "test II had no answer" };
		} else tests.mappingII = tests.mappingIII = { skipped: "the server sent no OTHER-ADDRESS" };
		result.mapping = classifyMapping({ testI: first.mapped, testII, testIII });

		// Filtering: a fresh port that has reached only the primary endpoint, listening; the server
		// connects back from its other address (II), then from its own address and another port (III).
		const refusals: boolean[] = [];
		let filteringII: FilteringObservation = "not-run";
		let filteringIII: FilteringObservation = "not-run";
		const fresh = await binding("filteringI", options.server, 0);
		if (other && fresh.connection && fresh.mapped) {
			const listener = await listenOn(fresh.connection.localPort, anyAddressFor(options.server));
			open.push({ close: () => listener.server.close() });
			const connectBack = async (name: string, change: { changeIp?: boolean; changePort?: boolean }, fromAddress: string): Promise<FilteringObservation> => {
				const at = performance.now();
				const id = randomBytes(12);
				fresh.connection!.send(bindingRequest(id, change));
				// Either the server's connection arrives (answered) or it says over ours why it could not.
				const arrived = listener.accepted(connectBackTimeoutMs + timeoutMs, (remote) => remote.address === fromAddress);
				const refused = fresh.connection!.next(id, connectBackTimeoutMs + timeoutMs);
				const outcome = await Promise.race([arrived.then((connection) => ({ connection })), refused.then((message) => ({ message }))]);
				let observation: FilteringObservation = "silent";
				if ("connection" in outcome && outcome.connection) {
					open.push(outcome.connection);
					const answer = await outcome.connection.next(id, timeoutMs);
					observation = answer ? "answered" : "wrong-source";
				} else if ("message" in outcome && outcome.message) {
					const code = getAttribute(outcome.message, "ERROR-CODE")?.code;
					refusals.push(code === connectBackRefused);
				}
				tests[name] = { to: text(options.server), sent: 1, elapsedMs: round(performance.now() - at), answered: observation === "answered" };
				timings[`${name}Ms`] = round(performance.now() - at);
				return observation;
			};
			filteringII = await connectBack("filteringII", { changeIp: true, changePort: true }, other.address);
			if (filteringII === "silent") filteringIII = await connectBack("filteringIII", { changePort: true }, options.server.address);
			else tests.filteringIII = { skipped: "test II decided" };
		} else tests.filteringII = tests.filteringIII = { skipped: other ? "no answer on the filtering port" : "the server sent no OTHER-ADDRESS" };
		result.filtering = classifyFiltering({ testI: Boolean(fresh.mapped), testII: filteringII, testIII: filteringIII });
		result.unsolicitedTcp = refusals.length === 0 ? null : refusals.some(Boolean) ? "rst" : "drop";
		result.natType = classicNatType(result.natDetected, result.mapping, result.filtering);

		// Hairpinning: listening on the first port, a connection from a second port to our own mapped endpoint.
		if (result.natDetected) {
			const at = performance.now();
			const listener = await listenOn(port, anyAddressFor(options.server));
			open.push({ close: () => listener.server.close() });
			const dialed = await StunConnection.open(first.mapped, 0, timeoutMs);
			if (dialed) open.push(dialed);
			const accepted = dialed ? await listener.accepted(timeoutMs) : undefined;
			if (accepted) open.push(accepted);
			result.hairpin = Boolean(dialed && accepted);
			tests.hairpin = { to: text(first.mapped), sent: 1, elapsedMs: round(performance.now() - at), answered: result.hairpin };
			timings.hairpinMs = round(performance.now() - at);
		} else tests.hairpin = { skipped: "no NAT" };
		return result;
	} finally {
		for (const item of open) item.close();
		timings.totalMs = round(performance.now() - started);
	}
}

