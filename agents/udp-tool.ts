// UDP tool agent: sockets on demand inside one node, for tests and demonstrations of NAT behaviour.
// Commands (JSON lines on stdin):
//   {"id":1,"cmd":"bind","sock":"s1","port":5000,"address":"0.0.0.0","echo":false}
//   {"id":2,"cmd":"send","sock":"s1","to":"203.0.113.10:3000","data":"hello"}
//   {"id":3,"cmd":"close","sock":"s1"}
// Events (JSON lines on stdout): ready, bound, sent, recv {sock, from, data}, error.
// An echo socket answers every datagram with "seen <source ip>:<source port>", so a host behind a
// NAT learns its public endpoint (a minimal, STUN-less reflector).
import DgramAsPromised, { type SocketAsPromised } from "dgram-as-promised";
import { argument, commands, emit } from "./agent-io.ts";

const node = argument("--node") ?? "unknown";
const sockets = new Map<string, SocketAsPromised>();
const maxData = 512;

function parseEndpoint(text: unknown): { address: string; port: number } | undefined {
	const match = typeof text === "string" ? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text) : null;
	const port = Number(match?.[2]);
	return match && port > 0 && port < 65536 ? { address: match[1], port } : undefined;
}

async function bind(id: unknown, name: string, port: number, address: string, echo: boolean): Promise<void> {
	const socket = DgramAsPromised.createSocket("udp4");
	socket.socket.on("error", () => undefined);
	const bound = await socket.bind({ port, address });
	sockets.set(name, socket);
	socket.socket.on("message", (data, rinfo) => {
		const from = `${rinfo.address}:${rinfo.port}`;
		emit({ event: "recv", node, sock: name, from, data: data.subarray(0, maxData).toString("latin1") });
		if (echo) socket.socket.send(Buffer.from(`seen ${from}`), rinfo.port, rinfo.address, () => undefined);
	});
	emit({ id, event: "bound", sock: name, address: bound.address, port: bound.port });
}

async function handle(command: Record<string, unknown>): Promise<void> {
	const { id } = command;
	const name = typeof command.sock === "string" ? command.sock : "";
	if (command.cmd === "bind") {
		if (sockets.has(name)) return emit({ id, event: "error", error: `socket ${name} exists` });
		return bind(id, name, Number(command.port ?? 0), typeof command.address === "string" ? command.address : "0.0.0.0", command.echo === true);
	}
	const socket = sockets.get(name);
	if (!socket) return emit({ id, event: "error", error: `no socket ${name}` });
	if (command.cmd === "send") {
		const to = parseEndpoint(command.to);
		if (!to) return emit({ id, event: "error", error: `bad destination ${String(command.to)}` });
		await socket.send(Buffer.from(String(command.data ?? "").slice(0, maxData)), to.port, to.address);
		return emit({ id, event: "sent", sock: name });
	}
	if (command.cmd === "close") {
		sockets.delete(name);
		await socket.close();
		return emit({ id, event: "closed", sock: name });
	}
	emit({ id, event: "error", error: `unknown command ${String(command.cmd)}` });
}

emit({ event: "ready", node });
for await (const command of commands()) {
	await handle(command).catch((error) => emit({ id: command.id, event: "error", error: String(error?.message ?? error) }));
}
for (const socket of sockets.values()) await socket.close().catch(() => undefined);
process.exit(0);
