// STUN server agent (RFC 5389 Binding + RFC 5780 NAT behaviour discovery): runs inside one node's
// namespace with two addresses and two ports, so four UDP sockets. A CHANGE-REQUEST is honoured by
// answering from the socket with the other address and/or port. Anything that is not a Binding
// request is dropped and counted by reason. Events: JSON lines on stdout; commands: JSON lines on
// stdin ({"cmd":"stats"}); exits when stdin closes.
//
// The same four endpoints answer STUN over TCP (RFC 5389 7.2.2); a CHANGE-REQUEST over TCP is
// testbed's filtering test: a new connection to the client's mapped endpoint from the changed address
// (agents/stun/tcp.ts).
//
//   node --import tsx agents/stun-server/main.ts --node NAME --primary IP --alternate IP [--primary6 IPV6 --alternate6 IPV6] [--port 3478] [--alt-port 3479] [--software TEXT]
//
// With --primary6/--alternate6 the same server answers on two IPv6 addresses too (UDP): four more
// sockets, each answering within its family (a CHANGE-REQUEST changes to the other IPv6 address).
import { connect, createServer, isIPv4, isIPv6, type Server, type Socket } from "node:net";
import DgramAsPromised, { type SocketAsPromised } from "dgram-as-promised";
import { type DropReason, type ServerAddresses, defaultSoftware, respond, serverEndpoints } from "../stun/responder.ts";
import { bindingMethod, decodeStun, encodeStun } from "../stun/message.ts";
import type { Endpoint } from "../stun/discovery.ts";
import { StunStreamReader, connectBackRefused, connectBackTimedOut, connectBackTimeoutMs } from "../stun/tcp.ts";
import { argument, commands, emit } from "../agent-io.ts";

const node = argument("--node") ?? "unknown";
const software = argument("--software") ?? defaultSoftware;
const stats = {
	received: 0,
	answered: 0,
	errorResponses: 0,
	sendFailures: 0,
	dropped: {} as Partial<Record<DropReason | "internal-error", number>>,
	tcp: { connections: 0, answered: 0, brokenStreams: 0, connectBacks: 0, connectBacksRefused: 0, connectBacksTimedOut: 0, refusedConnections: 0 },
};
/** TCP connections the server holds at most (asking and connect-back ones); more are refused. */
const maxTcpConnections = 1024;
let tcpOpen = 0;

function usage(problem: string): never {
	emit({ event: "fatal", error: `${problem}; usage: stun-server --primary IP --alternate IP [--port 3478] [--alt-port 3479]` });
	process.exit(2);
}

function port(name: string, fallback: number): number {
	const value = Number(argument(name) ?? fallback);
	if (!Number.isInteger(value) || value < 1 || value > 65535) usage(`${name} must be a port number`);
	return value;
}

function addresses(): ServerAddresses {
	const primary = argument("--primary");
	const alternate = argument("--alternate");
	if (!primary || !isIPv4(primary)) usage("--primary must be an IPv4 address");
	if (!alternate || !isIPv4(alternate)) usage("--alternate must be an IPv4 address");
	if (primary === alternate) usage("--primary and --alternate must differ");
	const server = { primary, alternate, port: port("--port", 3478), altPort: port("--alt-port", 3479) };
	if (server.port === server.altPort) usage("--port and --alt-port must differ");
	return server;
}

function countDrop(reason: DropReason | "internal-error"): void {
	stats.dropped[reason] = (stats.dropped[reason] ?? 0) + 1;
}

function droppedTotal(): number {
	return Object.values(stats.dropped).reduce((sum, count) => sum + (count ?? 0), 0);
}

/** The IPv6 pair, when given: both or neither. */
function addresses6(server: ServerAddresses): ServerAddresses | undefined {
	const primary = argument("--primary6");
	const alternate = argument("--alternate6");
	if (primary === undefined && alternate === undefined) return undefined;
	if (!primary || !isIPv6(primary) || !alternate || !isIPv6(alternate) || primary === alternate) usage("--primary6 and --alternate6 must be two IPv6 addresses");
	return { ...server, primary, alternate };
}

async function main(): Promise<void> {
	const server = addresses();
	const server6 = addresses6(server);
	const sockets = new Map<string, SocketAsPromised>();
	const families = [server, ...(server6 ? [server6] : [])];
	for (const endpoint of families.flatMap((addresses) => serverEndpoints(addresses).map((at) => ({ ...at, addresses })))) {
		const v6 = endpoint.address.includes(":");
		const socket = DgramAsPromised.createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: v6 });
		socket.socket.on("error", () => undefined); // an ICMP error on one send must not end the server
		await socket.bind({ address: endpoint.address, port: endpoint.port });
		sockets.set(`${endpoint.address}:${endpoint.port}`, socket);
		// Handled synchronously in the event (no await between datagrams), so none is missed.
		socket.socket.on("message", (data, rinfo) => {
			stats.received++;
			try {
				const reply = respond(data, endpoint, { address: rinfo.address, port: rinfo.port }, endpoint.addresses, software);
				if (reply.kind === "drop") return countDrop(reply.reason);
				if (reply.kind === "success") stats.answered++;
				else stats.errorResponses++;
				const via = sockets.get(`${reply.from.address}:${reply.from.port}`)!;
				via.socket.send(reply.bytes, reply.to.port, reply.to.address, (error) => {
					if (error) stats.sendFailures++;
				});
			} catch {
				countDrop("internal-error");
			}
		});
	}
	const listeners = await Promise.all(families.flatMap((addresses) => serverEndpoints(addresses).map((endpoint) => serveTcp(endpoint, addresses))));
	emit({ event: "ready", node, ...server, ...(server6 ? { primary6: server6.primary, alternate6: server6.alternate } : {}), sockets: [...sockets.keys()], tcp: true, software });

	for await (const command of commands()) {
		if (command.cmd === "stats") emit({ id: command.id, event: "stats", ...stats, droppedTotal: droppedTotal() });
		else emit({ id: command.id, event: "error", error: `unknown command ${command.cmd}` });
	}
	await Promise.all([...sockets.values()].map((socket) => socket.close().catch(() => undefined)));
	for (const listener of listeners) listener.close();
	process.exit(0);
}

/** A held TCP connection: counted against the limit, destroyed after `lifetimeMs` at the latest. */
function hold(socket: Socket, lifetimeMs = 30_000): boolean {
	if (tcpOpen >= maxTcpConnections) {
		stats.tcp.refusedConnections++;
		socket.destroy();
		return false;
	}
	tcpOpen++;
	const timer = setTimeout(() => socket.destroy(), lifetimeMs);
	socket.on("error", () => undefined);
	socket.on("close", () => {
		tcpOpen--;
		clearTimeout(timer);
	});
	return true;
}

/** STUN over TCP on one endpoint. */
function serveTcp(endpoint: Endpoint, server: ServerAddresses): Promise<Server> {
	const listener = createServer({ noDelay: true }, (connection) => {
		if (!hold(connection)) return;
		stats.tcp.connections++;
		const client = { address: connection.remoteAddress ?? "", port: connection.remotePort ?? 0 };
		const reader = new StunStreamReader();
		connection.on("data", (chunk: Buffer) => {
			for (const data of reader.push(chunk)) {
				stats.received++;
				try {
					const reply = respond(data, endpoint, client, server, software);
					if (reply.kind === "drop") {
						countDrop(reply.reason);
						continue;
					}
					if (reply.kind === "error") stats.errorResponses++;
					if (reply.kind === "error" || (reply.from.address === endpoint.address && reply.from.port === endpoint.port)) {
						if (reply.kind === "success") stats.tcp.answered++;
						connection.write(reply.bytes);
					} else connectBack(connection, client, reply.from.address, reply.bytes);
				} catch {
					countDrop("internal-error");
				}
			}
			if (reader.broken) {
				stats.tcp.brokenStreams++;
				connection.destroy();
			}
		});
	});
	return new Promise((resolve, reject) => {
		listener.once("error", reject);
		listener.listen({ host: endpoint.address, port: endpoint.port, exclusive: true }, () => resolve(listener));
	});
}

/**
 * The filtering test over TCP: a new connection from `fromAddress` (any port) to the client's mapped
 * endpoint, the success response over it (its RESPONSE-ORIGIN the real source); when it cannot be
 * made, an error response over the asking connection says why.
 */
function connectBack(asking: Socket, client: Endpoint, fromAddress: string, success: Buffer): void {
	stats.tcp.connectBacks++;
	const request = decodeStun(success);
	if (!request.ok) return countDrop("internal-error");
	const back = connect({ host: client.address, port: client.port, localAddress: fromAddress, localPort: 0, noDelay: true });
	if (!hold(back, 5000)) return;
	let settled = false;
	const fail = (code: number, reason: string) => {
		if (settled) return;
		settled = true;
		back.destroy();
		stats.errorResponses++;
		const attributes = [{ type: "ERROR-CODE" as const, code, reason }, { type: "SOFTWARE" as const, text: software }, { type: "FINGERPRINT" as const, crc: 0 }];
		if (!asking.destroyed) asking.write(encodeStun({ method: bindingMethod, class: "error", transactionId: request.message.transactionId, attributes }));
	};
	const timer = setTimeout(() => {
		stats.tcp.connectBacksTimedOut++;
		fail(connectBackTimedOut, `connect-back from ${fromAddress} timed out`);
	}, connectBackTimeoutMs);
	back.once("connect", () => {
		clearTimeout(timer);
		settled = true;
		stats.tcp.answered++;
		const origin = { address: back.localAddress ?? fromAddress, port: back.localPort ?? 0 };
		const attributes = request.message.attributes.map((attribute) => (attribute.type === "RESPONSE-ORIGIN" ? { ...attribute, ...origin } : attribute));
		back.write(encodeStun({ ...request.message, attributes }));
	});
	back.on("error", (error: NodeJS.ErrnoException) => {
		clearTimeout(timer);
		if (error.code === "ECONNREFUSED") stats.tcp.connectBacksRefused++;
		fail(error.code === "ECONNREFUSED" ? connectBackRefused : connectBackTimedOut, `connect-back from ${fromAddress}: ${error.code ?? error.message}`);
	});
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error) });
	process.exit(1);
});
