// UDP tool agent: sockets on demand inside one node, for tests and demonstrations of NAT behaviour.
// Commands (JSON lines on stdin):
//   {"id":1,"cmd":"bind","sock":"s1","port":5000,"address":"0.0.0.0","echo":false}
//   {"id":2,"cmd":"send","sock":"s1","to":"203.0.113.10:3000","data":"hello"}
//   {"id":3,"cmd":"close","sock":"s1"}
//   {"id":4,"cmd":"bind","sock":"in","port":6000,"count":true}        a counting socket: no recv events
//   {"id":5,"cmd":"flood","sock":"s1","to":"10.0.0.2:6000","size":1000,"count":500,"pps":2000,"durationMs":2000}
//   {"id":6,"cmd":"stats","sock":"in","seqs":true,"reset":false}
// Events (JSON lines on stdout): ready, bound, sent, recv {sock, from, data}, flooded, stats, error.
// An echo socket answers every datagram with "seen <source ip>:<source port>", so a host behind a
// NAT learns its public endpoint (a minimal, STUN-less reflector). A flood sends numbered datagrams
// ("<seq> " padded to `size` bytes), paced at `pps` (as fast as possible without), until `count` are
// sent or `durationMs` has passed; a counting socket keeps what a measurement needs: datagrams, bytes,
// first and last arrival, and the sequence numbers.
import DgramAsPromised, { type SocketAsPromised } from "dgram-as-promised";
import { argument, commands, emit } from "../agent-io.ts";

const node = argument("--node") ?? "unknown";
const sockets = new Map<string, SocketAsPromised>();
const maxData = 512;
const maxFlood = { size: 65_000, count: 1_000_000, durationMs: 60_000 };

/** What a counting socket has received. Times are milliseconds since this agent started. */
interface Counter {
	datagrams: number;
	bytes: number;
	firstMs?: number;
	lastMs?: number;
	seqs: number[];
}
const counters = new Map<string, Counter>();
const newCounter = (): Counter => ({ datagrams: 0, bytes: 0, seqs: [] });

function parseEndpoint(text: unknown): { address: string; port: number } | undefined {
	const match = typeof text === "string" ? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text) : null;
	const port = Number(match?.[2]);
	return match && port > 0 && port < 65536 ? { address: match[1], port } : undefined;
}

async function bind(id: unknown, name: string, port: number, address: string, echo: boolean, count: boolean): Promise<void> {
	const socket = DgramAsPromised.createSocket("udp4");
	socket.socket.on("error", () => undefined);
	const bound = await socket.bind({ port, address });
	sockets.set(name, socket);
	if (count) {
		const counter = newCounter();
		counters.set(name, counter);
		socket.socket.on("message", (data) => {
			const now = performance.now();
			const entry = counters.get(name) ?? counter;
			entry.datagrams++;
			entry.bytes += data.length;
			entry.firstMs ??= now;
			entry.lastMs = now;
			const seq = /^\d+/.exec(data.subarray(0, 12).toString("latin1"));
			if (seq) entry.seqs.push(Number(seq[0]));
		});
		return emit({ id, event: "bound", sock: name, address: bound.address, port: bound.port });
	}
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
		return bind(id, name, Number(command.port ?? 0), typeof command.address === "string" ? command.address : "0.0.0.0", command.echo === true, command.count === true);
	}
	if (command.cmd === "stats") {
		const counter = counters.get(name);
		if (!counter) return emit({ id, event: "error", error: `no counting socket ${name}` });
		if (command.reset === true) counters.set(name, newCounter());
		const { seqs, ...totals } = counter;
		return emit({ id, event: "stats", sock: name, ...totals, ...(command.seqs === true ? { seqs } : {}) });
	}
	const socket = sockets.get(name);
	if (!socket) return emit({ id, event: "error", error: `no socket ${name}` });
	if (command.cmd === "send") {
		const to = parseEndpoint(command.to);
		if (!to) return emit({ id, event: "error", error: `bad destination ${String(command.to)}` });
		await socket.send(Buffer.from(String(command.data ?? "").slice(0, maxData)), to.port, to.address);
		return emit({ id, event: "sent", sock: name });
	}
	if (command.cmd === "flood") {
		const to = parseEndpoint(command.to);
		if (!to) return emit({ id, event: "error", error: `bad destination ${String(command.to)}` });
		const limit = (value: unknown, max: number) => (Number.isFinite(Number(value)) && Number(value) > 0 ? Math.min(Number(value), max) : undefined);
		const size = limit(command.size, maxFlood.size) ?? 64;
		const count = limit(command.count, maxFlood.count);
		const durationMs = limit(command.durationMs, maxFlood.durationMs);
		if (count === undefined && durationMs === undefined) return emit({ id, event: "error", error: "a flood needs count or durationMs" });
		return emit({ id, event: "flooded", sock: name, ...(await flood(socket, to, size, count ?? maxFlood.count, durationMs ?? maxFlood.durationMs, limit(command.pps, 1e6))) });
	}
	if (command.cmd === "close") {
		sockets.delete(name);
		counters.delete(name);
		await socket.close();
		return emit({ id, event: "closed", sock: name });
	}
	emit({ id, event: "error", error: `unknown command ${String(command.cmd)}` });
}

/** Send numbered datagrams: paced at `pps` (in small batches every millisecond or so), or back to back. */
async function flood(socket: SocketAsPromised, to: { address: string; port: number }, size: number, count: number, durationMs: number, pps: number | undefined) {
	const started = performance.now();
	let sent = 0;
	let bytes = 0;
	let errors = 0;
	let pending = 0;
	let drained: (() => void) | undefined;
	const done = (error: Error | null) => {
		if (error) errors++;
		if (--pending === 0) drained?.();
	};
	const send = () => {
		const head = `${sent} `;
		const data = Buffer.alloc(Math.max(size, head.length), "x");
		data.write(head, "latin1");
		pending++;
		socket.socket.send(data, to.port, to.address, done);
		sent++;
		bytes += data.length;
	};
	while (sent < count) {
		const elapsed = performance.now() - started;
		if (elapsed >= durationMs) break;
		const due = pps ? Math.min(count, Math.floor((elapsed / 1000) * pps) + 1) : Math.min(count, sent + 64);
		while (sent < due) send();
		// Let the sends complete (and keep the queue short): a paced flood waits for its next datagram.
		await new Promise((resolve) => (pps ? setTimeout(resolve, Math.max(1, Math.min(10, 1000 / pps))) : setImmediate(resolve)));
	}
	if (pending > 0) await new Promise<void>((resolve) => (drained = resolve));
	return { sent, bytes, errors, ms: Math.round((performance.now() - started) * 1000) / 1000 };
}

emit({ event: "ready", node });
for await (const command of commands()) {
	await handle(command).catch((error) => emit({ id: command.id, event: "error", error: String(error?.message ?? error) }));
}
for (const socket of sockets.values()) await socket.close().catch(() => undefined);
process.exit(0);
