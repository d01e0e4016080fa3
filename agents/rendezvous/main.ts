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
//   node --import tsx agents/rendezvous/main.ts --node NAME --address IP [--port 7777]
//
// stdin (JSON lines): {"id":1,"cmd":"stats"}
// stdout (JSON lines): {"event":"ready",node,address,port} · {"id":1,"event":"stats",received,registrations,
//   sessions,starts,relayed,errorsSent,dropped:{reason:count},droppedTotal,tcp:{…the same for TCP, connections,
//   refusedConnections,brokenStreams}} · {"event":"fatal",error}
// Exits when stdin closes.
import { createSocket } from "node:dgram";
import { createServer, isIPv4, type Socket } from "node:net";
import { RendezvousCore, type Outgoing } from "../punch/rendezvous-core.ts";
import { endpointOf, splitEndpoint, type Endpoint } from "../punch/protocol.ts";
import { FrameReader, frame } from "../punch/stream.ts";
import { argument, commands, emit } from "../agent-io.ts";
import { rendezvousPort } from "../../src/vocabulary/punch.ts";

const node = argument("--node") ?? "unknown";

function usage(problem: string): never {
	emit({ event: "fatal", error: `${problem}; usage: rendezvous --node NAME --address IP [--port ${rendezvousPort}]` });
	process.exit(2);
}

async function main(): Promise<void> {
	const address = argument("--address");
	if (!address || !isIPv4(address)) usage("--address must be an IPv4 address");
	const port = Number(argument("--port") ?? rendezvousPort);
	if (!Number.isInteger(port) || port < 1 || port > 65535) usage("--port must be a port number");

	const core = new RendezvousCore();
	const socket = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
	let sendFailures = 0;
	socket.on("error", () => undefined); // an ICMP error on one send must not end the server
	const transmit = (out: Outgoing[]) => {
		for (const { to, bytes } of out) {
			const target = splitEndpoint(to);
			if (target) socket.send(bytes, target.port, target.address, (error) => error && sendFailures++);
		}
	};
	// Handled synchronously in the event: no datagram waits behind another's I/O.
	socket.on("message", (data, rinfo) => transmit(core.handle(data, endpointOf(rinfo.address, rinfo.port), performance.now())));
	await new Promise<void>((resolve, reject) => {
		socket.once("error", reject);
		socket.bind({ address, port }, () => resolve());
	});
	const tcp = await serveTcp(address, port);
	const timer = setInterval(() => {
		transmit(core.tick(performance.now()));
		tcp.tick();
	}, 25);
	emit({ event: "ready", node, address, port });

	for await (const command of commands()) {
		if (command?.cmd === "stats") emit({ id: command.id, event: "stats", ...core.stats(), sendFailures, tcp: tcp.stats() });
		else emit({ id: command?.id, event: "error", error: `unknown command ${String(command?.cmd)}` });
	}
	clearInterval(timer);
	socket.close();
	tcp.close();
	process.exit(0);
}

/** Connections the TCP side holds at most; more are refused (counted). */
const maxTcpConnections = 4096;

/** The rendezvous over TCP: a core of its own, one connection per peer endpoint, framed messages. */
async function serveTcp(address: string, port: number) {
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
		const from = endpointOf(connection.remoteAddress ?? "", connection.remotePort ?? 0);
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
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen({ host: address, port, exclusive: true }, () => resolve());
	});
	return {
		tick: () => transmit(core.tick(performance.now())),
		stats: () => ({ ...core.stats(), ...counters, open: connections.size }),
		close: () => {
			server.close();
			for (const connection of connections.values()) connection.destroy();
		},
	};
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error?.message ?? error) });
	process.exit(1);
});
