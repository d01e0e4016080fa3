// Rendezvous agent for UDP hole punching, on a public node: peers register an id and learn their
// server-reflexive endpoint; a peer asks to connect to another id and both get, at the same moment,
// the other's candidates, a session nonce and "punch now"; on request it relays between the two
// peers of a session (TURN-like fallback). Hostile input is dropped and counted by reason; each
// source is rate-limited. The wire format is agents/punch/protocol.ts; the logic is
// agents/punch/rendezvous-core.ts.
//
//   node --import tsx agents/rendezvous/main.ts --node NAME --address IP [--port 7777]
//
// stdin (JSON lines): {"id":1,"cmd":"stats"}
// stdout (JSON lines): {"event":"ready",node,address,port} · {"id":1,"event":"stats",received,registrations,
//   sessions,starts,relayed,errorsSent,dropped:{reason:count},droppedTotal} · {"event":"fatal",error}
// Exits when stdin closes.
import { createSocket } from "node:dgram";
import { isIPv4 } from "node:net";
import { RendezvousCore, type Outgoing } from "../punch/rendezvous-core.ts";
import { endpointOf, splitEndpoint } from "../punch/protocol.ts";
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
	const timer = setInterval(() => transmit(core.tick(performance.now())), 25);
	emit({ event: "ready", node, address, port });

	for await (const command of commands()) {
		if (command?.cmd === "stats") emit({ id: command.id, event: "stats", ...core.stats(), sendFailures });
		else emit({ id: command?.id, event: "error", error: `unknown command ${String(command?.cmd)}` });
	}
	clearInterval(timer);
	socket.close();
	process.exit(0);
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error?.message ?? error) });
	process.exit(1);
});
