// Rendezvous agent for UDP hole punching, on a public node: peers register an id and learn their
// server-reflexive endpoint; a peer asks to connect to another id and both get, at the same moment,
// the other's candidates, a session nonce and "punch now"; on request it relays between the two
// peers of a session (TURN-like fallback). Hostile input is dropped and counted by reason; each
// source is rate-limited. The wire format is agents/punch/protocol.ts; the logic is
// agents/punch/rendezvous-core.ts.
//
// The same service answers over TCP on the same port (for TCP hole punching): each connection carries
// framed messages (agents/punch/stream.ts), its remote endpoint is the peer's reflexive endpoint, and a
// second core keeps the TCP registrations apart from the UDP ones.
//
//   node --import tsx agents/rendezvous/main.ts --node NAME --address IP [--address6 IPV6] [--port 7777]
//
// With --address6 it answers on that IPv6 address too (UDP and TCP), with the same cores: an
// endpoint's text tells the families apart ("[v6]:port").
//
// stdin (JSON lines): {"id":1,"cmd":"stats"}
// stdout (JSON lines): {"event":"ready",node,address,port} · {"id":1,"event":"stats",received,registrations,
//   sessions,starts,relayed,errorsSent,dropped:{reason:count},droppedTotal,tcp:{…the same for TCP, connections,
//   refusedConnections,brokenStreams}} · {"event":"fatal",error}
// Exits when stdin closes.
import { createSocket } from "node:dgram";
import { createServer, isIPv4, isIPv6, type Socket } from "node:net";
import { RendezvousCore, type Outgoing } from "../punch/rendezvous-core.ts";
import { endpointOf, splitEndpoint, type Endpoint } from "../punch/protocol.ts";
import { FrameReader, frame } from "../punch/stream.ts";
import { argument, commands, emit } from "../agent-io.ts";
import { rendezvousPort } from "../../src/vocabulary/punch.ts";

const node = argument("--node") ?? "unknown";

function usage(problem: string): never {
	emit({ event: "fatal", error: `${problem}; usage: rendezvous --node NAME --address IP [--address6 IPV6] [--port ${rendezvousPort}]` });
	process.exit(2);
}

async function main(): Promise<void> {
	const address = argument("--address");
	if (!address || !isIPv4(address)) usage("--address must be an IPv4 address");
	const address6 = argument("--address6");
	if (address6 !== undefined && !isIPv6(address6)) usage("--address6 must be an IPv6 address");
	const port = Number(argument("--port") ?? rendezvousPort);
	if (!Number.isInteger(port) || port < 1 || port > 65535) usage("--port must be a port number");

	const core = new RendezvousCore();
	const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
	const socket6 = address6 ? createSocket({ type: "udp6", ipv6Only: true, recvBufferSize: 4 << 20 }) : undefined;
	let sendFailures = 0;
	const transmit = (out: Outgoing[]) => {
		for (const { to, bytes } of out) {
			const target = splitEndpoint(to);
			const via = target?.address.includes(":") ? socket6 : socket;
			if (target && via) via.send(bytes, target.port, target.address, (error) => error && sendFailures++);
		}
	};
	for (const [udp, bound] of [[socket, address], [socket6, address6]] as const) {
		if (!udp || !bound) continue;
		udp.on("error", () => undefined); // an ICMP error on one send must not end the server
		// Handled synchronously in the event: no datagram waits behind another's I/O.
		udp.on("message", (data, rinfo) => transmit(core.handle(data, endpointOf(rinfo.address, rinfo.port), performance.now())));
		await new Promise<void>((resolve, reject) => {
			udp.once("error", reject);
			udp.bind({ address: bound, port }, () => resolve());
		});
	}
	const tcp = await serveTcp([address, ...(address6 ? [address6] : [])], port);
	const timer = setInterval(() => {
		transmit(core.tick(performance.now()));
		tcp.tick();
	}, 25);
	emit({ event: "ready", node, address, ...(address6 ? { address6 } : {}), port });

	for await (const command of commands()) {
		if (command?.cmd === "stats") emit({ id: command.id, event: "stats", ...core.stats(), sendFailures, tcp: tcp.stats() });
		else emit({ id: command?.id, event: "error", error: `unknown command ${String(command?.cmd)}` });
	}
	clearInterval(timer);
	socket.close();
	socket6?.close();
	tcp.close();
	process.exit(0);
}

/** Connections the TCP side holds at most; more are refused (counted). */
const maxTcpConnections = 4096;

/** The rendezvous over TCP: a core of its own, one connection per peer endpoint, framed messages. */
async function serveTcp(addresses: string[], port: number) {
	const core = new RendezvousCore();
	const connections = new Map<Endpoint, Socket>();
	const counters = { connections: 0, refusedConnections: 0, brokenStreams: 0, sendFailures: 0 };
	const transmit = (out: Outgoing[]) => {
		for (const { to, bytes } of out) {
			const connection = connections.get(to);
			if (connection && !connection.destroyed) connection.write(frame(bytes));
			else counters.sendFailures++;
		}
	};
	const server = createServer({ noDelay: true }, (connection) => {
		if (!connection.remoteAddress || !connection.remotePort) return connection.destroy();
		const from = endpointOf(connection.remoteAddress, connection.remotePort);
		if (connections.size >= maxTcpConnections) {
			counters.refusedConnections++;
			return connection.destroy();
		}
		// The same endpoint again (the peer's old connection died and it dialed anew): the new one counts.
		connections.get(from)?.destroy();
		counters.connections++;
		connections.set(from, connection);
		const reader = new FrameReader();
		connection.on("data", (chunk: Buffer) => {
			for (const data of reader.push(chunk)) transmit(core.handle(data, from, performance.now()));
			if (reader.broken) {
				counters.brokenStreams++;
				connection.destroy();
			}
		});
		connection.on("error", () => undefined);
		connection.on("close", () => {
			if (connections.get(from) === connection) connections.delete(from);
		});
	});
	// One server on several addresses: a second server shares the handler.
	const servers = [server, ...addresses.slice(1).map(() => createServer({ noDelay: true }, (connection) => server.emit("connection", connection)))];
	for (const [index, listening] of servers.entries())
		await new Promise<void>((resolve, reject) => {
			listening.once("error", reject);
			listening.listen({ host: addresses[index], port, ipv6Only: addresses[index].includes(":"), exclusive: true }, () => resolve());
		});
	return {
		tick: () => transmit(core.tick(performance.now())),
		stats: () => ({ ...core.stats(), ...counters, open: connections.size }),
		close: () => {
			for (const listening of servers) listening.close();
			for (const connection of connections.values()) connection.destroy();
		},
	};
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error?.message ?? error) });
	process.exit(1);
});
