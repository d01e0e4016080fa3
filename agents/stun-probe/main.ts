// STUN probe: runs inside a peer's namespace, classifies the NAT in front of it (RFC 5780 behaviour
// discovery against a testbed STUN server, or any RFC 5780 server) and prints one JSON line:
// {"event":"result", natDetected, mapping, filtering, hairpin, portPreservation, mappedAddress, …}.
//
// With --proto tcp: the same over TCP against testbed's STUN server (agents/stun/tcp-probe.ts).
//
//   node --import tsx agents/stun-probe/main.ts --server IP [--port 3478] [--proto udp|tcp] [--local-port P]
//        [--timeout-ms 500] [--filter-wait-ms 400] [--interval-ms 100]
//        [--timeouts [--max-timeout-s 10] [--timeout-step-s 1]] [--port-mapping]
//
// With --port-mapping it also asks its default gateway, meanwhile, which port-mapping protocols it
// answers (PCP ANNOUNCE, NAT-PMP's public address, SSDP and UPnP's GetExternalIPAddress) and adds
// {"portMapping": {gateway, answered, methods}} to the result (agents/portmap/client.ts discover).
import { isIPv4, isIPv6 } from "node:net";
import { probeNat } from "../stun/probe.ts";
import { probeNatTcp } from "../stun/tcp-probe.ts";
import { argument, emit } from "../agent-io.ts";
import { discover, type Discovery } from "../portmap/client.ts";
import { defaultGateway } from "../portmap/gateway.ts";

/** Which port-mapping protocols the default gateway answers (none without a gateway). */
function portMappingDiscovery(): Promise<Discovery | { error: string }> {
	const gateway = defaultGateway();
	if (!gateway) return Promise.resolve({ error: "no IPv4 default gateway" });
	return discover(gateway, { timeoutMs: 1000, ssdpWaitMs: 1000 }).catch((error: Error) => ({ error: error.message }));
}

function usage(problem: string): never {
	emit({ event: "fatal", error: `${problem}; usage: stun-probe --server IP [--port 3478] [--local-port P] [--timeout-ms N] [--filter-wait-ms N] [--timeouts --max-timeout-s S]` });
	process.exit(2);
}

function number(name: string, fallback: number, check: (value: number) => boolean, what: string): number {
	const raw = argument(name);
	if (raw === undefined) return fallback;
	const value = Number(raw);
	if (!Number.isFinite(value) || !check(value)) usage(`${name} must be ${what}`);
	return value;
}

const isPort = (value: number) => Number.isInteger(value) && value >= 0 && value <= 65535;
const positive = (value: number) => value > 0;

async function main(): Promise<void> {
	const server = argument("--server");
	if (!server || !(isIPv4(server) || isIPv6(server))) usage("--server must be an IPv4 or IPv6 address");
	const proto = argument("--proto") ?? "udp";
	if (proto !== "udp" && proto !== "tcp") usage("--proto must be udp or tcp");
	if (proto === "tcp") {
		const result = await probeNatTcp({ server: { address: server, port: number("--port", 3478, (value) => isPort(value) && value > 0, "a port number") }, timeoutMs: number("--timeout-ms", 1000, positive, "a positive number") });
		emit({ ...result, proto });
		process.exit(result.error ? 1 : 0);
	}
	const portMapping = process.argv.includes("--port-mapping") ? portMappingDiscovery() : undefined;
	const result = await probeNat({
		server: { address: server, port: number("--port", 3478, (value) => isPort(value) && value > 0, "a port number") },
		localPort: number("--local-port", 0, isPort, "a port number"),
		timeoutMs: number("--timeout-ms", 500, positive, "a positive number"),
		filterWaitMs: number("--filter-wait-ms", 400, positive, "a positive number"),
		intervalMs: number("--interval-ms", 100, positive, "a positive number"),
		timeouts: process.argv.includes("--timeouts"),
		maxTimeoutS: number("--max-timeout-s", 10, positive, "a positive number"),
		timeoutStepS: number("--timeout-step-s", 1, positive, "a positive number"),
	});
	emit({ ...result, ...(portMapping ? { portMapping: await portMapping } : {}) });
	process.exit(result.error ? 1 : 0);
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error) });
	process.exit(1);
});
