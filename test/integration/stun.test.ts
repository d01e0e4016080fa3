// The STUN server and probe in a real lab: a STUN host with two addresses, a router, a
// port-restricted NAT with a peer behind it, and a public peer. Also a third-party STUN client
// (@msimerson/stun) against our server, and garbage datagrams that must be dropped and counted.
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import type { ExecutionContext } from "ava";
import { execa } from "execa";
import { type Lab, loadLabText } from "../../src/index.ts";
import { AgentProcess } from "../../src/drivers/agent-process.ts";
import { bindingRequest, encodeStun } from "../../agents/stun/message.ts";
import type { ProbeResult } from "../../agents/stun/probe.ts";
import { inLab, rootTest } from "../helpers/host.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const probeFile = fileURLToPath(new URL("../../agents/stun-probe/main.ts", import.meta.url));
const tsxLoader = import.meta.resolve("tsx");
const primary = "203.0.113.10";
const alternate = "203.0.113.11";
const natPublic = "198.51.100.2";
const publicPeer = "198.51.100.10";

// The NAT's knobs are declared explicitly, so that the expectations hold whichever way testbed builds
// a port-restricted NAT (plain masquerade, or mapping maps with hairpinning on by default).
const topology = (name: string, nat = "hairpin: false") => `
name: ${name}
nodes:
  internet: { kind: router }
  stun:
    interfaces:
      - { name: alt0, type: dummy, address: ${alternate}/24 }
  home:
    kind: nat
    nat: { type: port-restricted, ${nat} }
  alice: {}
  pub: {}
links:
  - { endpoints: [alice:eth0, home:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [home:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [stun:eth0, internet:e2], addresses: [${primary}/24, 203.0.113.1/24] }
  - { endpoints: [pub:eth0, internet:e3], subnet: 198.51.100.8/30 }
`;

interface Stun {
	lab: Lab;
	ns: (node: string) => string;
	server: AgentProcess;
}

/** Build the lab, start the STUN server in it, run `body`; always stop and tear down, and check nothing is left. */
async function withStunLab(t: ExecutionContext, name: string, body: (stun: Stun) => Promise<void>, nat?: string): Promise<void> {
	const lab = loadLabText(topology(name, nat));
	const ns = (node: string) => lab.nodes.find((candidate) => candidate.name === node)!.netns;
	await inLab(t, lab, async () => {
		const server = new AgentProcess(ns("stun"), "stun", "stun-server", ["--primary", primary, "--alternate", alternate]);
		try {
			const ready = await server.started();
			t.deepEqual(ready.sockets, [`${primary}:3478`, `${primary}:3479`, `${alternate}:3478`, `${alternate}:3479`]);
			await body({ lab, ns, server });
		} finally {
			await server.stop().catch(() => undefined);
		}
	});
}

async function probe(netns: string, args: string[] = []): Promise<ProbeResult> {
	const result = await execa("ip", ["netns", "exec", netns, process.execPath, "--import", tsxLoader, probeFile, "--server", primary, ...args], { reject: false, timeout: 30_000 });
	const line = result.stdout.trim().split("\n").at(-1) ?? "";
	try {
		return JSON.parse(line) as ProbeResult;
	} catch {
		throw new Error(`stun-probe printed no result (exit ${result.exitCode}): ${result.stdout} ${result.stderr}`);
	}
}

// The third-party client, run as a CommonJS one-liner inside a namespace (argv: server URL, CHANGE-REQUEST flags).
const theirClient = `
const stun = require("@msimerson/stun");
const dgram = require("node:dgram");
const c = stun.constants;
const [url, flags] = process.argv.slice(1);
const socket = dgram.createSocket("udp4");
socket.bind(0, async () => {
	try {
		const message = stun.createMessage(c.STUN_BINDING_REQUEST);
		if (Number(flags)) message.addAttribute(c.STUN_ATTR_CHANGE_REQUEST, Number(flags));
		message.addFingerprint();
		const response = await stun.request(url, { socket, message, timeout: 100, retries: 4 });
		const value = (type) => response.getAttribute(type)?.value;
		console.log(JSON.stringify({ localPort: socket.address().port, xor: response.getXorAddress(), mapped: response.getAddress(), origin: value(c.STUN_ATTR_RESPONSE_ORIGIN), other: value(c.STUN_ATTR_OTHER_ADDRESS), software: response.getSoftware(), fingerprint: stun.validateFingerprint(response) }));
		process.exit(0);
	} catch (error) {
		console.log(JSON.stringify({ error: String(error) }));
		process.exit(1);
	}
});`;

interface TheirAnswer {
	localPort: number;
	xor: { address: string; port: number };
	mapped: { address: string; port: number };
	origin: { address: string; port: number };
	other: { address: string; port: number };
	software: string;
	fingerprint: boolean;
	error?: string;
}

async function theirRequest(netns: string, flags = 0): Promise<TheirAnswer> {
	const result = await execa("ip", ["netns", "exec", netns, process.execPath, "-e", theirClient, `${primary}:3478`, String(flags)], { reject: false, cwd: repo, timeout: 15_000 });
	return JSON.parse(result.stdout.trim().split("\n").at(-1) || `{"error":${JSON.stringify(result.stderr)}}`) as TheirAnswer;
}

// Sends each hex payload once to each target, then exits.
const sender = `
const socket = require("node:dgram").createSocket("udp4");
const [targets, ...payloads] = process.argv.slice(1);
let pending = 0;
for (const target of targets.split(",")) for (const payload of payloads) {
	const [host, port] = target.split(":");
	pending++;
	socket.send(Buffer.from(payload, "hex"), Number(port), host, () => { if (--pending === 0) socket.close(); });
}`;

rootTest("STUN behind a port-restricted NAT: endpoint-independent mapping, address-and-port-dependent filtering, no hairpin, ports preserved; a public peer sees no NAT", async (t) => {
	await withStunLab(t, "tb-stun-nat", async ({ ns, server }) => {
		const behind = await probe(ns("alice"));
		t.is(behind.error, undefined);
		t.true(behind.natDetected);
		t.is(behind.mapping, "endpoint-independent");
		t.is(behind.filtering, "address-and-port-dependent");
		t.is(behind.natType, "port-restricted");
		t.is(behind.hairpin, false);
		t.true(behind.portPreservation);
		t.deepEqual(behind.mappedAddress, { address: natPublic, port: behind.localPort });
		t.deepEqual(behind.otherAddress, { address: alternate, port: 3479 });
		t.log(`behind the NAT: ${behind.mapping} / ${behind.filtering}, ${behind.timings.totalMs} ms`);

		const fixedPort = await probe(ns("alice"), ["--local-port", "40000"]);
		t.is(fixedPort.localPort, 40000);
		t.deepEqual(fixedPort.mappedAddress, { address: natPublic, port: 40000 }, "plain masquerade keeps a free port");
		t.true(fixedPort.portPreservation);

		const open = await probe(ns("pub"));
		t.false(open.natDetected);
		t.deepEqual(open.mappedAddress, { address: publicPeer, port: open.localPort });
		t.is(open.mapping, "endpoint-independent");
		t.is(open.filtering, "endpoint-independent");
		t.is(open.natType, "open");
		t.is(open.hairpin, null);

		const stats = await server.request({ cmd: "stats" });
		t.true((stats.answered as number) >= 10);
		t.is(stats.droppedTotal, 0);
	});
});

rootTest("a third-party STUN client (@msimerson/stun) gets the right XOR-MAPPED-ADDRESS and RFC 5780 attributes from our server", async (t) => {
	await withStunLab(t, "tb-stun-client", async ({ ns }) => {
		const behind = await theirRequest(ns("alice"));
		t.is(behind.error, undefined);
		t.deepEqual(behind.xor, { address: natPublic, port: behind.localPort, family: "IPv4" });
		t.deepEqual(behind.mapped, behind.xor);
		t.like(behind.origin, { address: primary, port: 3478 });
		t.like(behind.other, { address: alternate, port: 3479 });
		t.is(behind.software, "testbed-stun");
		t.true(behind.fingerprint);

		const open = await theirRequest(ns("pub"));
		t.like(open.xor, { address: publicPeer, port: open.localPort });

		// Their CHANGE-REQUEST (change IP and port): the answer comes from the alternate socket and says so.
		const changed = await theirRequest(ns("pub"), 0x06);
		t.is(changed.error, undefined);
		t.like(changed.origin, { address: alternate, port: 3479 });
		t.like(changed.xor, { address: publicPeer, port: changed.localPort });
		// Behind the port-restricted NAT the same request gets no answer through.
		const filtered = await theirRequest(ns("alice"), 0x06);
		t.regex(filtered.error ?? "", /timeout/);
	});
});

rootTest("garbage datagrams are dropped and counted by reason, and the server keeps answering", async (t) => {
	await withStunLab(t, "tb-stun-junk", async ({ ns, server }) => {
		const badFingerprint = encodeStun(bindingRequest(randomBytes(12), { fingerprint: true }));
		badFingerprint[badFingerprint.length - 1] ^= 0xff;
		const payloads: [string, Buffer][] = [
			["not-stun", Buffer.from("GET / HTTP/1.1\r\nHost: stun\r\n\r\n")],
			["bad-cookie", Buffer.alloc(40)],
			["truncated-header", Buffer.from([0, 1, 0])],
			["not-a-request", encodeStun({ method: 1, class: "success", transactionId: randomBytes(12), attributes: [] })],
			["unsupported-method", encodeStun({ method: 3, class: "request", transactionId: randomBytes(12), attributes: [] })],
			["bad-fingerprint", badFingerprint],
			["length-mismatch", Buffer.concat([encodeStun(bindingRequest(randomBytes(12))), Buffer.alloc(4)])],
		];
		const targets = [`${primary}:3478`, `${alternate}:3479`];
		const sent = await execa("ip", ["netns", "exec", ns("pub"), process.execPath, "-e", sender, targets.join(","), ...payloads.map(([, bytes]) => bytes.toString("hex"))], { reject: false });
		t.is(sent.exitCode, 0, sent.stderr);
		const deadline = Date.now() + 2000;
		let stats = await server.request({ cmd: "stats" });
		while ((stats.droppedTotal as number) < payloads.length * targets.length && Date.now() < deadline) {
			await new Promise((resolve) => setTimeout(resolve, 50));
			stats = await server.request({ cmd: "stats" });
		}
		t.deepEqual(stats.dropped, Object.fromEntries(payloads.map(([reason]) => [reason, targets.length])));
		t.is(stats.answered, 0);

		const after = await theirRequest(ns("alice"));
		t.like(after.xor, { address: natPublic });
		const result = await probe(ns("alice"));
		t.is(result.mapping, "endpoint-independent");
		const final = await server.request({ cmd: "stats" });
		t.true((final.answered as number) > 0);
		t.is(final.droppedTotal, payloads.length * targets.length);
	});
});

rootTest("mapping lifetime: with the NAT's UDP timeout at 2 s, --timeouts measures about 2 s", async (t) => {
	await withStunLab(t, "tb-stun-life", async ({ ns }) => {
		// Declared as udp-timeout, and set on the NAT namespace's own conntrack as well, for a testbed
		// that builds plain masquerade and leaves conntrack's defaults (30 s) alone.
		const set = await execa("ip", ["netns", "exec", ns("home"), "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_udp_timeout=2", "net.netfilter.nf_conntrack_udp_timeout_stream=2"], { reject: false });
		if (set.exitCode !== 0) {
			t.log(`cannot set conntrack timeouts in the NAT's namespace (${set.stderr.trim()}); lifetime only bounded`);
		}
		const result = await probe(ns("alice"), ["--timeouts", "--max-timeout-s", "4", "--timeout-step-s", "0.5"]);
		t.is(result.error, undefined);
		const lifetime = result.mappingLifetime;
		if (!lifetime || "skipped" in lifetime) return t.fail(`no lifetime measured: ${JSON.stringify(lifetime)}`);
		t.log(`mapping lifetime: alive after ${lifetime.aliveS} s idle, gone after ${lifetime.expiredS} s; ${result.timings.mappingLifetimeMs} ms`);
		t.true(lifetime.consistent, JSON.stringify(lifetime.samples));
		t.is(lifetime.samples.length, 8);
		if (set.exitCode === 0) {
			t.true(lifetime.aliveS >= 1 && lifetime.aliveS < 2.5, `alive ${lifetime.aliveS}`);
			t.true(lifetime.expiredS !== null && lifetime.expiredS >= 1.5 && lifetime.expiredS <= 3, `expired ${lifetime.expiredS}`);
			t.is(result.mappingLifetimeS, lifetime.aliveS);
		}
	}, "hairpin: false, udp-timeout: 2s");
});
