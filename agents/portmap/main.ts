// Port-mapping agent: runs inside a node's namespace, asks its IPv4 default gateway (or --gateway)
// with PCP, NAT-PMP and UPnP-IGD (agents/portmap/client.ts), and prints JSON lines; the last line is
// the result.
//
//   node --import tsx agents/portmap/main.ts [--gateway IP] [--methods pcp,nat-pmp,upnp] [--timeout-ms 2000] [--ssdp-wait-ms 1200]
//        → {"event":"discovery",gateway,answered:[…],methods:[{method,answered,ok,external?,reason?…}]}
//   … --map PORT [--proto udp|tcp] [--lifetime S] [--hold-ms N [--keep]]
//        → {"event":"mapping",ok,mapping?:{method,external,internal,lifetimeS…},failures:[{method,reason}]}
//        With --hold-ms it binds PORT itself first (0: any free port), prints the "mapping" line, waits up
//        to N ms for one datagram (UDP) or connection (TCP) to arrive through the mapping, then deletes
//        the mapping (unless --keep) and ends with
//        {"event":"result",ok,mapping,failures,received:{from,data}|null,deleted:{ok,reason?}|null}
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { askingOrder, portMappingProtocolOf, type PortMappingProtocol } from "../../src/vocabulary/port-mapping.ts";
import { argument, emit } from "../agent-io.ts";
import { deleteMapping, discover, requestMapping, type Timing } from "./client.ts";
import { defaultGateway } from "./gateway.ts";
import { isIPv4Text } from "./pcp.ts";

function usage(problem: string): never {
	emit({ event: "fatal", error: `${problem}; usage: portmap [--gateway IP] [--methods pcp,nat-pmp,upnp] [--timeout-ms N] [--ssdp-wait-ms N] [--map PORT [--proto udp|tcp] [--lifetime S] [--hold-ms N [--keep]]]` });
	process.exit(2);
}

function whole(name: string, fallback: number, min: number, max: number): number {
	const raw = argument(name);
	if (raw === undefined) return fallback;
	const value = Number(raw);
	if (!Number.isInteger(value) || value < min || value > max) usage(`${name} must be a whole number from ${min} to ${max}`);
	return value;
}

/** Bind the port to map (UDP socket or TCP listener) and resolve with what first arrives, or null after waitMs. */
async function holder(proto: "udp" | "tcp", port: number): Promise<{ port: number; first: (waitMs: number) => Promise<{ from: string; data: string } | null>; close: () => void }> {
	if (proto === "udp") {
		const socket: UdpSocket = createSocket("udp4");
		await new Promise<void>((resolve, reject) => {
			socket.once("error", reject);
			socket.bind(port, "0.0.0.0", () => resolve());
		});
		const first = (waitMs: number) =>
			new Promise<{ from: string; data: string } | null>((resolve) => {
				const timer = setTimeout(() => resolve(null), waitMs);
				socket.once("message", (data, from) => {
					clearTimeout(timer);
					resolve({ from: `${from.address}:${from.port}`, data: data.subarray(0, 200).toString("latin1") });
				});
			});
		return { port: socket.address().port, first, close: () => socket.close() };
	}
	const server: Server = createServer();
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, "0.0.0.0", () => resolve());
	});
	const first = (waitMs: number) =>
		new Promise<{ from: string; data: string } | null>((resolve) => {
			const timer = setTimeout(() => resolve(null), waitMs);
			server.once("connection", (socket) => {
				clearTimeout(timer);
				const from = `${socket.remoteAddress}:${socket.remotePort}`;
				socket.once("data", (data) => {
					resolve({ from, data: data.subarray(0, 200).toString("latin1") });
					socket.destroy();
				});
				setTimeout(() => {
					resolve({ from, data: "" });
					socket.destroy();
				}, 500);
			});
		});
	return { port: (server.address() as { port: number }).port, first, close: () => server.close() };
}

async function main(): Promise<void> {
	const gateway = argument("--gateway") ?? defaultGateway();
	if (gateway === undefined) usage("this node has no IPv4 default gateway: give --gateway IP");
	if (!isIPv4Text(gateway)) usage("--gateway must be an IPv4 address");
	const methods: PortMappingProtocol[] = [];
	for (const name of (argument("--methods") ?? askingOrder.join(",")).split(",")) {
		const method = portMappingProtocolOf(name.trim());
		if (!method) usage(`unknown method ${JSON.stringify(name)}: use ${askingOrder.join(", ")}`);
		if (!methods.includes(method)) methods.push(method);
	}
	const timing: Timing = { timeoutMs: whole("--timeout-ms", 2000, 50, 60_000), ssdpWaitMs: whole("--ssdp-wait-ms", 1200, 50, 10_000) };
	if (argument("--map") === undefined) {
		emit({ event: "discovery", ...(await discover(gateway, { ...timing, methods })) });
		process.exit(0);
	}
	const proto = argument("--proto") ?? "udp";
	if (proto !== "udp" && proto !== "tcp") usage("--proto must be udp or tcp");
	const holdMs = argument("--hold-ms") === undefined ? undefined : whole("--hold-ms", 0, 0, 3_600_000);
	const held = holdMs === undefined ? undefined : await holder(proto, whole("--map", 0, 0, 65535));
	const internalPort = held?.port ?? whole("--map", 0, 1, 65535);
	const outcome = await requestMapping({ gateway, internalPort, protocol: proto, lifetimeS: whole("--lifetime", 600, 0, 86_400 * 7), methods, ...timing });
	emit({ event: "mapping", ...outcome });
	if (!held) process.exit(outcome.ok ? 0 : 1);
	const received = outcome.ok ? await held.first(holdMs!) : null;
	held.close();
	const deleted = outcome.ok && !process.argv.includes("--keep") ? await deleteMapping(outcome.mapping, timing) : null;
	emit({ event: "result", ...outcome, received, deleted });
	process.exit(outcome.ok && received ? 0 : 1);
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error?.message ?? error) });
	process.exit(1);
});
