// Declared NAT behaviours hold on the real kernel, including the hard cases: port collisions under
// endpoint-independent mapping, ADM vs APDM, filters before and after the first outbound packet,
// hairpinning, port preservation, and udp-timeout expiry and refresh.
import type { ExecutionContext } from "ava";
import { loadLabText, type Lab } from "../../src/index.ts";
import { UdpTool } from "../../src/drivers/udp-tool.ts";
import { inLab, rootTest } from "../helpers/host.ts";

const PUB = "198.51.100.2";
const S = "203.0.113.10"; // the server's first address
const S2 = "203.0.113.11"; // its second address

let serial = 0;

interface Tools {
	lab: Lab;
	a: UdpTool;
	b: UdpTool;
	server: UdpTool;
	nat: UdpTool;
}

/** A NAT with two hosts behind it (on a switch) and a server with two addresses outside. */
async function withNat(t: ExecutionContext, natBlock: string, body: (tools: Tools) => Promise<void>, prefix = "tb-nat"): Promise<void> {
	const name = `${prefix}${++serial}`;
	const lab = loadLabText(`
name: ${name}
nodes:
  internet: { kind: router }
  server:
    interfaces: [{ name: alt0, type: dummy, address: ${S2}/24 }]
  nat: { kind: nat, nat: ${natBlock} }
  lan: { kind: switch }
  a: {}
  b: {}
links:
  - { endpoints: [lan:up, nat:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [a:eth0, lan:p1] }
  - { endpoints: [b:eth0, lan:p2] }
  - { endpoints: [nat:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [server:eth0, internet:e2], addresses: [${S}/24, 203.0.113.1/24] }
`);
	const node = (n: string) => lab.nodes.find((candidate) => candidate.name === n)!;
	await inLab(t, lab, async () => {
		let tools: UdpTool[] = [];
		try {
			const [a, b, server, nat] = await Promise.all(["a", "b", "server", "nat"].map((n) => UdpTool.start(node(n))));
			tools = [a, b, server, nat];
			await Promise.all([server.bind("s1", 3000, { echo: true, address: S }), server.bind("s2", 3001, { echo: true, address: S }), server.bind("s3", 3000, { echo: true, address: S2 })]);
			await body({ lab, a, b, server, nat });
		} finally {
			await Promise.all(tools.map((tool) => tool.stop()));
		}
	});
}

const port = (endpoint: string | undefined) => Number(endpoint?.split(":")[1]);

/**
 * Both at once, and both to their end before the first failure is reported (a failure in one still
 * lets the other take its lab down). Separate labs, the same addresses in other namespaces, are independent.
 */
async function together(...runs: Promise<void>[]): Promise<void> {
	for (const result of await Promise.allSettled(runs)) if (result.status === "rejected") throw result.reason;
}

rootTest("EIM keeps one public port per inside endpoint even when two hosts use the same source port", async (t) => {
	await withNat(t, "{ type: home-router }", async ({ a, b }) => {
		await a.bind("x", 5000);
		await b.bind("x", 5000);
		t.is(await a.mappedEndpoint("x", `${S}:3000`), `${PUB}:5000`, "a keeps its port");
		const first = await b.mappedEndpoint("x", `${S}:3000`);
		t.not(port(first), 5000, "b cannot have 5000 too");
		t.is(await b.mappedEndpoint("x", `${S}:3001`), first, "same mapping to another port");
		t.is(await b.mappedEndpoint("x", `${S2}:3000`), first, "same mapping to another address");
		t.is(await a.mappedEndpoint("x", `${S2}:3000`), `${PUB}:5000`);
	});
});

rootTest("masquerade (the lecture's iptables MASQUERADE) is endpoint-independent only while ports do not collide", async (t) => {
	await withNat(
		t,
		"{ type: masquerade }",
		async ({ a, b }) => {
			await a.bind("x", 5000);
			await b.bind("x", 5000);
			t.is(await a.mappedEndpoint("x", `${S}:3000`), `${PUB}:5000`, "a keeps its port");
			t.is(await a.mappedEndpoint("x", `${S}:3001`), `${PUB}:5000`, "and keeps it to another port of the server: endpoint-independent");
			t.is(await b.mappedEndpoint("x", `${S2}:3000`), `${PUB}:5000`, "b's 5000 to another server collides with nothing: b keeps its port too");
			const colliding = await b.mappedEndpoint("x", `${S}:3000`);
			t.truthy(colliding);
			t.not(port(colliding), 5000, "to a's server, b's 5000 would collide with a's mapping: the kernel picks another port");
			t.is(await b.mappedEndpoint("x", `${S2}:3000`), `${PUB}:5000`, "so b has two public ports, one per destination: not endpoint-independent");
		},
		"masq-nat",
	);
});

rootTest("EIM holds when the NAT box itself already uses the port", async (t) => {
	await withNat(t, "{ type: full-cone }", async ({ a, nat }) => {
		await nat.bind("own", 6000);
		t.is(await nat.mappedEndpoint("own", `${S}:3001`), `${PUB}:6000`, "the NAT's own socket talks to the server");
		await a.bind("x", 6000);
		const mapped = await a.mappedEndpoint("x", `${S}:3001`);
		t.truthy(mapped);
		t.not(port(mapped), 6000, "not the NAT's own port");
		t.is(await a.mappedEndpoint("x", `${S}:3000`), mapped);
		t.is(await a.mappedEndpoint("x", `${S2}:3000`), mapped);
	});
});

rootTest("ADM: one public port per remote address; APDM: one per remote address and port", async (t) => {
	await together(
		withNat(t, "{ mapping: address-dependent, filtering: address-and-port-dependent }", async ({ a }) => {
			await a.bind("x", 5000);
			const one = await a.mappedEndpoint("x", `${S}:3000`);
			t.is(await a.mappedEndpoint("x", `${S}:3001`), one, "same address, other port: same mapping");
			const other = await a.mappedEndpoint("x", `${S2}:3000`);
			t.truthy(other);
			t.not(other, one, "another address: another mapping");
		}),
		withNat(t, "{ type: symmetric }", async ({ a }) => {
			await a.bind("x", 5000);
			const seen = new Set([await a.mappedEndpoint("x", `${S}:3000`), await a.mappedEndpoint("x", `${S}:3001`), await a.mappedEndpoint("x", `${S2}:3000`)]);
			t.is(seen.size, 3, [...seen].join(" "));
			t.false(seen.has(undefined));
		}),
	);
});

rootTest("EIF lets anyone in, but only after the inside host has sent", async (t) => {
	await withNat(t, "{ type: full-cone }", async ({ a, server }) => {
		await a.bind("x", 5000);
		await server.send("s3", `${PUB}:5000`, "too early");
		t.is(await a.receive("x", { data: "too early", timeoutMs: 400 }), undefined, "nothing gets in before the first outbound packet");
		await a.mappedEndpoint("x", `${S}:3000`);
		await server.send("s3", `${PUB}:5000`, "from anyone");
		t.like(await a.receive("x", { data: "from anyone" }), { from: `${S2}:3000` });
	});
});

rootTest("ADF and APDF let nothing in before the first outbound packet; then ADF the addresses sent to (any port), APDF only the exact address and port", async (t) => {
	await together(
		withNat(t, "{ type: restricted-cone }", async ({ a, server }) => {
			await a.bind("x", 5000);
			await server.send("s1", `${PUB}:5000`, "before");
			t.is(await a.receive("x", { data: "before", timeoutMs: 400 }), undefined, "ADF: nothing before the first outbound packet");
			await a.mappedEndpoint("x", `${S}:3000`);
			await server.send("s2", `${PUB}:5000`, "same address, other port");
			t.truthy(await a.receive("x", { data: "same address, other port" }));
			await server.send("s3", `${PUB}:5000`, "other address");
			t.is(await a.receive("x", { data: "other address", timeoutMs: 400 }), undefined);
		}),
		withNat(t, "{ type: port-restricted }", async ({ a, server }) => {
			await a.bind("x", 5000);
			await server.send("s1", `${PUB}:5000`, "before");
			t.is(await a.receive("x", { data: "before", timeoutMs: 400 }), undefined, "APDF: nothing before the first outbound packet");
			await a.mappedEndpoint("x", `${S}:3000`);
			await server.send("s2", `${PUB}:5000`, "same address, other port");
			t.is(await a.receive("x", { data: "same address, other port", timeoutMs: 400 }), undefined);
			await server.send("s1", `${PUB}:5000`, "exact");
			t.truthy(await a.receive("x", { data: "exact" }));
		}),
	);
});

rootTest("hairpin: on, an inside host reaches another through its public mapping; off, it does not", async (t) => {
	await together(
		withNat(t, "{ type: home-router }", async ({ a, b }) => {
			await a.bind("x", 5000);
			await b.bind("y", 7000);
			const aPublic = await a.mappedEndpoint("x", `${S}:3000`);
			const bPublic = await b.mappedEndpoint("y", `${S}:3000`);
			await b.send("y", aPublic!, "via the public address");
			t.like(await a.receive("x", { data: "via the public address" }), { from: bPublic }, "a sees b's public endpoint");
		}),
		withNat(t, "{ type: home-router, hairpin: false }", async ({ a, b }) => {
			await a.bind("x", 5000);
			await b.bind("y", 7000);
			const aPublic = await a.mappedEndpoint("x", `${S}:3000`);
			await b.send("y", aPublic!, "via the public address");
			t.is(await a.receive("x", { data: "via the public address", timeoutMs: 400 }), undefined);
		}),
	);
});

rootTest("port preservation on keeps the inside port; off hands out another", async (t) => {
	await withNat(t, "{ type: home-router, port-preservation: false }", async ({ a }) => {
		await a.bind("x", 5000);
		const mapped = port(await a.mappedEndpoint("x", `${S}:3000`));
		t.true(mapped >= 20000 && mapped < 30000, String(mapped));
	});
});

rootTest("a mapping disappears after udp-timeout of idleness, and outbound packets refresh it", async (t) => {
	await withNat(t, "{ type: full-cone, udp-timeout: 2s }", async ({ a, server }) => {
		await a.bind("x", 5000);
		await a.mappedEndpoint("x", `${S}:3000`);
		for (let i = 0; i < 3; i++) {
			await new Promise((resolve) => setTimeout(resolve, 1000));
			await a.send("x", `${S}:3001`, "keepalive"); // outbound refreshes
		}
		await server.send("s3", `${PUB}:5000`, "after 3 s of refreshes");
		t.truthy(await a.receive("x", { data: "after 3 s of refreshes" }), "alive: refreshed by outbound packets");
		await new Promise((resolve) => setTimeout(resolve, 2600));
		await server.send("s3", `${PUB}:5000`, "after 2.6 s idle");
		t.is(await a.receive("x", { data: "after 2.6 s idle", timeoutMs: 400 }), undefined, "expired");
	});
});
