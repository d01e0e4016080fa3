// The port-mapping client against fake gateways on 127.0.0.1 (no root, no lab): PCP and NAT-PMP
// answered, refused, silent or garbled; UPnP discovery, description, SOAP and its faults. The
// real daemon (miniupnpd) is exercised in a lab: see the notes of issue 17.
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server } from "node:http";
import test from "ava";
import { deleteMapping, discover, refreshMapping, requestMapping } from "../../agents/portmap/client.ts";

type Behaviour = "grant" | "refuse" | "silent" | "garbage";

/** PCP and NAT-PMP on one UDP port, as miniupnpd has them: grants lifetimes of at least 120 s, the suggested port. */
async function fakePmp(policy: { pcp?: Behaviour; pmp?: Behaviour }): Promise<{ port: number; requests: Buffer[]; close: () => void }> {
	const socket: Socket = createSocket("udp4");
	const requests: Buffer[] = [];
	socket.on("message", (data, from) => {
		requests.push(Buffer.from(data));
		const reply = (bytes: Buffer) => socket.send(bytes, from.port, from.address);
		const behaviour = data[0] === 2 ? (policy.pcp ?? "grant") : (policy.pmp ?? "grant");
		if (behaviour === "silent") return;
		if (behaviour === "garbage") return reply(randomBytes(data[0] === 2 ? 60 : 16));
		const lifetime = (asked: number) => (asked === 0 ? 0 : Math.max(120, asked));
		if (data[0] === 2) {
			const opcode = data[1] & 0x7f;
			const header = Buffer.alloc(24);
			header[0] = 2;
			header[1] = 0x80 | opcode;
			header[3] = behaviour === "refuse" && opcode === 1 ? 2 : 0;
			header.writeUInt32BE(opcode === 1 ? lifetime(data.readUInt32BE(4)) : 0, 4);
			header.writeUInt32BE(1234, 8);
			if (opcode !== 1) return reply(header);
			const body = Buffer.from(data.subarray(24, 60)); // nonce, protocol, internal port, suggested port
			Buffer.from("00000000000000000000ffff0b000002", "hex").copy(body, 20);
			return reply(Buffer.concat([header, body]));
		}
		if (data[1] === 0) return reply(Buffer.from("008000000000162e0b000002", "hex"));
		const answer = Buffer.alloc(16);
		answer[1] = 128 + data[1];
		answer.writeUInt16BE(behaviour === "refuse" ? 2 : 0, 2);
		answer.writeUInt32BE(5678, 4);
		data.copy(answer, 8, 4, 6); // internal port
		answer.writeUInt16BE(data.readUInt32BE(8) === 0 ? 0 : data.readUInt16BE(6), 10);
		answer.writeUInt32BE(lifetime(data.readUInt32BE(8)), 12);
		reply(answer);
	});
	await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
	return { port: socket.address().port, requests, close: () => socket.close() };
}

/** A port where nothing listens (the kernel answers ICMP port unreachable). */
async function closedPort(): Promise<number> {
	const socket = createSocket("udp4");
	await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
	const { port } = socket.address();
	await new Promise<void>((resolve) => socket.close(() => resolve()));
	return port;
}

test("PCP grants: ANNOUNCE, then MAP with our address and port; the answer's external endpoint and lifetime; delete sends lifetime 0 with the same nonce", async (t) => {
	const gateway = await fakePmp({});
	t.teardown(gateway.close);
	const outcome = await requestMapping({ gateway: "127.0.0.1", internalPort: 40001, protocol: "udp", lifetimeS: 30, methods: ["pcp"], targets: { pmpPort: gateway.port } });
	t.true(outcome.ok, JSON.stringify(outcome));
	if (!outcome.ok) return;
	t.like(outcome.mapping, { method: "pcp", gateway: "127.0.0.1", protocol: "udp", internal: "127.0.0.1:40001", external: "11.0.0.2:40001", lifetimeS: 120, epoch: 1234 });
	t.deepEqual(outcome.failures, []);
	const [announce, map] = gateway.requests;
	t.is(announce[1], 0);
	t.is(map.length, 60);
	t.is(map.subarray(8, 24).toString("hex"), "00000000000000000000ffff7f000001", "the client address is ours, IPv4-mapped");
	t.is(map.readUInt32BE(4), 30);
	t.is(map.subarray(24, 36).toString("hex"), outcome.mapping.nonce!);
	t.deepEqual(await refreshMapping(outcome.mapping, { targets: { pmpPort: gateway.port } }), { ok: true, mapping: { ...outcome.mapping } });
	t.is(gateway.requests[2].subarray(24, 36).toString("hex"), outcome.mapping.nonce!, "a renewal keeps the nonce");
	t.deepEqual(await deleteMapping(outcome.mapping, { targets: { pmpPort: gateway.port } }), { ok: true });
	const deleted = gateway.requests[3];
	t.is(deleted.readUInt32BE(4), 0);
	t.is(deleted.subarray(24, 36).toString("hex"), outcome.mapping.nonce!);
});

test("the first method in order that grants wins: PCP refuses (NOT_AUTHORIZED), NAT-PMP grants; PCP's reason is reported", async (t) => {
	const gateway = await fakePmp({ pcp: "refuse" });
	t.teardown(gateway.close);
	const outcome = await requestMapping({ gateway: "127.0.0.1", internalPort: 40002, protocol: "tcp", lifetimeS: 600, methods: ["pcp", "nat-pmp"], targets: { pmpPort: gateway.port } });
	t.like(outcome, { ok: true, mapping: { method: "nat-pmp", protocol: "tcp", external: "11.0.0.2:40002", lifetimeS: 600, epoch: 5678 }, failures: [{ method: "pcp", reason: "PCP result 2 NOT_AUTHORIZED" }] });
	t.true(
		gateway.requests.some((request) => request[0] === 0 && request[1] === 2 && request.readUInt16BE(4) === 40002),
		"a NAT-PMP TCP map request for our port",
	);
	if (outcome.ok) t.deepEqual(await deleteMapping(outcome.mapping, { targets: { pmpPort: gateway.port } }), { ok: true });
	t.deepEqual([...gateway.requests.at(-1)!], [0, 2, 0, 0, 40002 >> 8, 40002 & 0xff, 0, 0, 0, 0, 0, 0], "NAT-PMP deletes with lifetime 0 and external port 0");
	// The order is the caller's: NAT-PMP first wins without asking PCP to map.
	const reversed = await requestMapping({ gateway: "127.0.0.1", internalPort: 40003, protocol: "udp", methods: ["nat-pmp", "pcp"], targets: { pmpPort: gateway.port } });
	t.like(reversed, { ok: true, mapping: { method: "nat-pmp" }, failures: [] });
});

test("a silent gateway: each method gives up after timeoutMs, having resent at 250 ms; all fail with their reasons", async (t) => {
	const gateway = await fakePmp({ pcp: "silent", pmp: "silent" });
	t.teardown(gateway.close);
	const outcome = await requestMapping({ gateway: "127.0.0.1", internalPort: 40004, protocol: "udp", methods: ["pcp", "nat-pmp", "upnp"], timeoutMs: 600, ssdpWaitMs: 300, targets: { pmpPort: gateway.port, ssdp: { address: "127.0.0.1", port: gateway.port } } });
	t.false(outcome.ok);
	t.deepEqual(
		outcome.failures.map((failure) => failure.method),
		["pcp", "nat-pmp", "upnp"],
	);
	t.is(outcome.failures[0].reason, "no answer within 600 ms");
	t.is(outcome.failures[1].reason, "no answer within 600 ms");
	t.regex(outcome.failures[2].reason, /^no SSDP answer from 127\.0\.0\.1 within 300 ms/);
	t.is(gateway.requests.filter((request) => request[0] === 2).length, 2, "PCP: sent, and resent once before giving up");
	t.is(gateway.requests.filter((request) => request[0] === 0).length, 2, "NAT-PMP: the same");
	t.is(gateway.requests.filter((request) => request.toString("latin1").startsWith("M-SEARCH")).length, 2, "the M-SEARCH went out twice");
});

test("nothing listening: ICMP port unreachable ends the wait with 'refused'", async (t) => {
	const outcome = await requestMapping({ gateway: "127.0.0.1", internalPort: 40005, protocol: "udp", methods: ["pcp", "nat-pmp"], timeoutMs: 5000, targets: { pmpPort: await closedPort() } });
	t.false(outcome.ok);
	for (const failure of outcome.failures) t.regex(failure.reason, /^refused \(ICMP port unreachable/);
});

test("garbled answers are not taken: the method fails naming what it refused", async (t) => {
	const gateway = await fakePmp({ pcp: "garbage", pmp: "garbage" });
	t.teardown(gateway.close);
	const found = await discover("127.0.0.1", { methods: ["pcp", "nat-pmp"], timeoutMs: 400, targets: { pmpPort: gateway.port } });
	t.deepEqual(found.answered, []);
	for (const entry of found.methods) {
		t.false(entry.ok);
		if (!entry.ok) t.regex(entry.reason, /^no answer within 400 ms \(refused an answer: .+\)$|^the gateway answered in NAT-PMP/);
	}
});

test("bad input to the API is a failure per method, not a throw", async (t) => {
	t.deepEqual(await requestMapping({ gateway: "gateway", internalPort: 1, protocol: "udp", methods: ["pcp"] }), { ok: false, failures: [{ method: "pcp", reason: 'no IPv4 gateway to ask ("gateway")' }] });
	t.deepEqual(await requestMapping({ gateway: "127.0.0.1", internalPort: 0, protocol: "udp", methods: ["upnp"] }), { ok: false, failures: [{ method: "upnp", reason: "bad internal port 0" }] });
});

// ── UPnP-IGD ────────────────────────────────────────────────────────────────

const serviceType = "urn:schemas-upnp-org:service:WANIPConnection:1";

/** An IGD: SSDP on a UDP port of `address`, HTTP with the description and the SOAP control point on 127.0.0.1. */
async function fakeIgd(options: { address?: string; location?: (http: number) => string; taken?: number[] } = {}) {
	const actions: { action: string; body: string }[] = [];
	const mappings = new Map<number, string>();
	const http: Server = createServer((request, response) => {
		let body = "";
		request.on("data", (chunk) => (body += chunk));
		request.on("end", () => {
			if (request.method === "GET" && request.url === "/rootDesc.xml") {
				response.end(`<?xml version="1.0"?><root><device><serviceList><service><serviceType>${serviceType}</serviceType><controlURL>/ctl/IPConn</controlURL></service></serviceList></device></root>`);
				return;
			}
			const action = String(request.headers.soapaction ?? "").replace(/^"[^#]*#(\w+)"$/, "$1");
			actions.push({ action, body });
			const port = Number(/<NewExternalPort>(\d+)</.exec(body)?.[1]);
			const ok = (inner = "") => response.end(`<s:Envelope><s:Body><u:${action}Response xmlns:u="${serviceType}">${inner}</u:${action}Response></s:Body></s:Envelope>`);
			if (action === "GetExternalIPAddress") return ok("<NewExternalIPAddress>11.0.0.2</NewExternalIPAddress>");
			if (action === "AddPortMapping" && (options.taken ?? []).includes(port)) {
				response.statusCode = 500;
				return response.end("<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>");
			}
			if (action === "AddPortMapping") mappings.set(port, body);
			if (action === "DeletePortMapping") mappings.delete(port);
			ok();
		});
	});
	await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", () => resolve()));
	const httpPort = (http.address() as { port: number }).port;
	const ssdp = createSocket("udp4");
	ssdp.on("message", (data, from) => {
		if (!data.toString("latin1").startsWith("M-SEARCH")) return;
		const location = options.location?.(httpPort) ?? `http://127.0.0.1:${httpPort}/rootDesc.xml`;
		ssdp.send(Buffer.from(`HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: ${location}\r\nSERVER: fake\r\n\r\n`), from.port, from.address);
	});
	await new Promise<void>((resolve) => ssdp.bind(0, options.address ?? "127.0.0.1", () => resolve()));
	return {
		ssdp: { address: options.address ?? "127.0.0.1", port: ssdp.address().port },
		actions,
		mappings,
		close: () => {
			ssdp.close();
			http.close();
		},
	};
}

test("UPnP: discovery, description, GetExternalIPAddress; AddPortMapping for our port, another when it is taken (718); DeletePortMapping", async (t) => {
	const igd = await fakeIgd({ taken: [40006] });
	t.teardown(igd.close);
	const found = await discover("127.0.0.1", { methods: ["upnp"], targets: { ssdp: igd.ssdp } });
	t.like(found, { answered: ["upnp"], methods: [{ method: "upnp", answered: true, ok: true, external: "11.0.0.2", server: "fake" }] });
	const outcome = await requestMapping({ gateway: "127.0.0.1", internalPort: 40006, protocol: "udp", lifetimeS: 300, methods: ["upnp"], description: "testbed alice alice.1", targets: { ssdp: igd.ssdp } });
	t.true(outcome.ok, JSON.stringify(outcome));
	if (!outcome.ok) return;
	const external = Number(outcome.mapping.external.split(":")[1]);
	t.not(external, 40006, "the taken port was not used");
	t.like(outcome.mapping, { method: "upnp", internal: "127.0.0.1:40006", external: `11.0.0.2:${external}`, lifetimeS: 300, control: { serviceType } });
	const added = igd.mappings.get(external)!;
	t.regex(added, /<NewInternalPort>40006<\/NewInternalPort><NewInternalClient>127\.0\.0\.1<\/NewInternalClient><NewEnabled>1<\/NewEnabled><NewPortMappingDescription>testbed alice alice\.1<\/NewPortMappingDescription><NewLeaseDuration>300</);
	t.deepEqual(
		igd.actions.map((entry) => entry.action).filter((action) => action === "AddPortMapping").length,
		2,
		"the taken port, then another",
	);
	t.deepEqual(await deleteMapping(outcome.mapping), { ok: true });
	t.false(igd.mappings.has(external));
});

test("UPnP: SSDP answers from another host than the gateway are ignored, and a LOCATION off the gateway is refused", async (t) => {
	const stranger = await fakeIgd({ address: "127.0.0.2" });
	t.teardown(stranger.close);
	const fromStranger = await discover("127.0.0.1", { methods: ["upnp"], ssdpWaitMs: 400, targets: { ssdp: stranger.ssdp } });
	t.like(fromStranger.methods[0], { ok: false, answered: false });
	if (!fromStranger.methods[0].ok) t.regex(fromStranger.methods[0].reason, /\(2 answers from other hosts ignored\)$/);
	const elsewhere = await fakeIgd({ location: () => "http://10.9.9.9:2869/rootDesc.xml" });
	t.teardown(elsewhere.close);
	const pointed = await discover("127.0.0.1", { methods: ["upnp"], ssdpWaitMs: 400, targets: { ssdp: elsewhere.ssdp } });
	t.like(pointed.methods[0], { ok: false, answered: true });
	if (!pointed.methods[0].ok) t.regex(pointed.methods[0].reason, /refused the gateway's answer: LOCATION: on 10\.9\.9\.9, not on the gateway 127\.0\.0\.1/);
	t.deepEqual(elsewhere.actions, [], "nothing was asked of it");
});
