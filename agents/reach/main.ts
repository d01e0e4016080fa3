// Reach agent: runs inside one node's namespace. Answers pings on the reach port, and on command
// probes other nodes' addresses. Control: JSON lines on stdin; events: JSON lines on stdout.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createConnection, createServer, type Socket } from "node:net";
import DgramAsPromised, { type SocketAsPromised } from "dgram-as-promised";
import { decodeReach, encodeReach, reachPort } from "./protocol.ts";
import { argument, commands, emit } from "../agent-io.ts";

interface Target {
	key: string;
	address: string;
	port: number;
}

const node = argument("--node") ?? "unknown";
const port = Number(argument("--port") ?? reachPort);
const stats = { answered: 0, dropped: 0 };

/** Serve pings; anything else is dropped and counted. */
async function serve(socket: SocketAsPromised): Promise<void> {
	for await (const packet of socket) {
		const message = decodeReach(packet.msg);
		if (message?.type !== "ping") {
			stats.dropped++;
			continue;
		}
		stats.answered++;
		await socket.send(encodeReach({ type: "pong", nonce: message.nonce, node }), packet.rinfo.port, packet.rinfo.address).catch(() => undefined);
	}
}

/** Probe every target from one fresh socket of its family: resend every `intervalMs` until a pong or `timeoutMs`. */
async function probe(targets: Target[], timeoutMs: number, intervalMs: number) {
	const v6 = targets.some((target) => target.address.includes(":"));
	const socket = DgramAsPromised.createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: v6 });
	socket.socket.on("error", () => undefined); // ICMP errors for unreachable targets
	await socket.bind(v6 ? { address: "::" } : {});
	const pending = new Map<string, { target: Target; sentAt: number }>();
	const results = new Map<string, { key: string; ok: boolean; rttMs?: number; responder?: string; from?: string }>();
	for (const target of targets) {
		const nonce = randomBytes(8).toString("hex");
		pending.set(nonce, { target, sentAt: 0 });
		results.set(target.key, { key: target.key, ok: false });
	}
	socket.socket.on("message", (data, rinfo) => {
		const message = decodeReach(data);
		const entry = message?.type === "pong" ? pending.get(message.nonce) : undefined;
		if (!entry || message?.type !== "pong") {
			stats.dropped++;
			return;
		}
		pending.delete(message.nonce);
		results.set(entry.target.key, { key: entry.target.key, ok: true, rttMs: Math.round((performance.now() - entry.sentAt) * 1000) / 1000, responder: message.node, from: `${rinfo.address}:${rinfo.port}` });
	});
	const started = performance.now();
	while (pending.size > 0 && performance.now() - started < timeoutMs) {
		for (const [nonce, entry] of pending) {
			entry.sentAt = performance.now();
			socket.socket.send(encodeReach({ type: "ping", nonce }), entry.target.port, entry.target.address, () => undefined);
		}
		await new Promise((resolve) => setTimeout(resolve, intervalMs));
	}
	socket.socket.removeAllListeners("message");
	await socket.close();
	return [...results.values()];
}

/** TCP: a flow is open when the three-way handshake completes; the listener answers with the node name. */
async function probeTcp(targets: Target[], timeoutMs: number) {
	return Promise.all(
		targets.map(
			(target) =>
				new Promise<{ key: string; ok: boolean; rttMs?: number; responder?: string }>((resolve) => {
					const started = performance.now();
					const socket = createConnection({ host: target.address, port: target.port, timeout: timeoutMs });
					let data = "";
					const done = (ok: boolean) => {
						socket.destroy();
						resolve({ key: target.key, ok, rttMs: ok ? Math.round((performance.now() - started) * 1000) / 1000 : undefined, responder: ok ? data.trim().split(" ")[2] : undefined });
					};
					socket.setEncoding("latin1");
					socket.on("data", (chunk) => {
						data += chunk;
						if (data.includes("\n")) done(data.startsWith("testbed-reach tcp "));
					});
					socket.on("timeout", () => done(false));
					socket.on("error", () => done(false));
				}),
		),
	);
}

/** ICMP echo through the system's ping (raw sockets are not Node's). */
async function probeIcmp(targets: Target[], timeoutMs: number) {
	return Promise.all(
		targets.map(
			(target) =>
				new Promise<{ key: string; ok: boolean; rttMs?: number; responder?: string }>((resolve) => {
					execFile("ping", ["-n", "-q", "-c", "1", "-W", String(Math.max(1, Math.ceil(timeoutMs / 1000))), target.address], (error, stdout) => {
						const rtt = /= [\d.]+\/([\d.]+)\//.exec(stdout)?.[1];
						resolve({ key: target.key, ok: !error, rttMs: rtt ? Number(rtt) : undefined, responder: error ? undefined : target.key.split("@")[0] });
					});
				}),
		),
	);
}

async function main(): Promise<void> {
	// Both families: UDP and TCP listeners on the IPv4 and the IPv6 wildcard (IPv6 only, so they do not clash).
	const listener = DgramAsPromised.createSocket("udp4");
	await listener.bind({ port, address: "0.0.0.0" });
	void serve(listener);
	const listener6 = DgramAsPromised.createSocket({ type: "udp6", ipv6Only: true });
	const has6 = await listener6.bind({ port, address: "::" }).then(
		() => true,
		() => false, // IPv6 off in this namespace
	);
	if (has6) void serve(listener6);
	const answer = (socket: Socket) => {
		socket.on("error", () => undefined);
		socket.end(`testbed-reach tcp ${node}\n`);
	};
	const tcp = createServer(answer);
	tcp.on("error", () => undefined);
	await new Promise<void>((resolve) => tcp.listen(port, "0.0.0.0", resolve));
	const tcp6 = createServer(answer);
	tcp6.on("error", () => undefined);
	if (has6) await new Promise<void>((resolve) => tcp6.listen({ port, host: "::", ipv6Only: true }, resolve));
	emit({ event: "ready", node, port });
	for await (const next of commands()) {
		const command = next as { id?: number; cmd?: string; proto?: string; targets?: Target[]; timeoutMs?: number; intervalMs?: number };
		if (command.cmd === "probe" && Array.isArray(command.targets)) {
			const timeout = command.timeoutMs ?? 1000;
			const results =
				command.proto === "tcp" ? await probeTcp(command.targets, timeout) : command.proto === "icmp" ? await probeIcmp(command.targets, timeout) : await probe(command.targets, timeout, command.intervalMs ?? 150);
			emit({ id: command.id, event: "result", results });
		} else if (command.cmd === "stats") emit({ id: command.id, event: "stats", ...stats });
		else emit({ id: command.id, event: "error", error: `unknown command ${command.cmd}` });
	}
	await listener.close();
	if (has6) await listener6.close();
	tcp.close();
	tcp6.close();
	process.exit(0);
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error) });
	process.exit(1);
});
