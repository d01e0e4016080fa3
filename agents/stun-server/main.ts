// STUN server agent (RFC 5389 Binding + RFC 5780 NAT behaviour discovery): runs inside one node's
// namespace with two addresses and two ports, so four UDP sockets. A CHANGE-REQUEST is honoured by
// answering from the socket with the other address and/or port. Anything that is not a Binding
// request is dropped and counted by reason. Events: JSON lines on stdout; commands: JSON lines on
// stdin ({"cmd":"stats"}); exits when stdin closes.
//
//   node --import tsx agents/stun-server/main.ts --node NAME --primary IP --alternate IP [--port 3478] [--alt-port 3479] [--software TEXT]
import { isIPv4 } from "node:net";
import DgramAsPromised, { type SocketAsPromised } from "dgram-as-promised";
import { type DropReason, type ServerAddresses, defaultSoftware, respond, serverEndpoints } from "../stun/responder.ts";
import { argument, commands, emit } from "../agent-io.ts";

const node = argument("--node") ?? "unknown";
const software = argument("--software") ?? defaultSoftware;
const stats = {
	received: 0,
	answered: 0,
	errorResponses: 0,
	sendFailures: 0,
	dropped: {} as Partial<Record<DropReason | "internal-error", number>>,
};

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

async function main(): Promise<void> {
	const server = addresses();
	const sockets = new Map<string, SocketAsPromised>();
	for (const endpoint of serverEndpoints(server)) {
		const socket = DgramAsPromised.createSocket("udp4");
		socket.socket.on("error", () => undefined); // an ICMP error on one send must not end the server
		await socket.bind({ address: endpoint.address, port: endpoint.port });
		sockets.set(`${endpoint.address}:${endpoint.port}`, socket);
		// Handled synchronously in the event (no await between datagrams), so none is missed.
		socket.socket.on("message", (data, rinfo) => {
			stats.received++;
			try {
				const reply = respond(data, endpoint, { address: rinfo.address, port: rinfo.port }, server, software);
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
	emit({ event: "ready", node, ...server, sockets: [...sockets.keys()], software });

	for await (const command of commands()) {
		if (command.cmd === "stats") emit({ id: command.id, event: "stats", ...stats, droppedTotal: droppedTotal() });
		else emit({ id: command.id, event: "error", error: `unknown command ${command.cmd}` });
	}
	await Promise.all([...sockets.values()].map((socket) => socket.close().catch(() => undefined)));
	process.exit(0);
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error) });
	process.exit(1);
});
