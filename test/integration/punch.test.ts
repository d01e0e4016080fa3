// UDP hole punching on real NATs: two port-restricted homes connect directly, peers on one switch
// over the LAN, two homes behind one hairpinning NAT through it, symmetric NATs only through the
// relay (or not at all without it), 100 pairs at once; hostile datagrams to the rendezvous and to a
// peer are dropped and counted and the agents keep working; a temporary rendezvous host is
// attached when the lab has no public host, and removed.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadLabText } from "../../src/index.ts";
import { PunchSession, punch, type PunchResult } from "../../src/drivers/punch.ts";
import { UdpTool } from "../../src/drivers/udp-tool.ts";
import { readLedger } from "../../src/apply/ledger.ts";
import { encode } from "../../agents/punch/protocol.ts";
import { inLab, namespaceExists, rootTest, settle } from "../helpers/host.ts";
import { twoHomesText } from "../helpers/topologies.ts";

const topology = (file: string, name: string) =>
	loadLabText(readFileSync(new URL(`../../topologies/${file}`, import.meta.url), "utf8").replace(/^name: .*$/m, `name: ${name}`), file);

/** Two homes with the given NATs, a public rendezvous host. */
const twoHomes = (name: string, nat1: string, nat2: string) => loadLabText(twoHomesText(name, nat1, nat2));

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))];
const describe = (results: PunchResult[]) => results.map((result) => `${result.outcome} in ${result.timeToConnectMs} ms, RTT ${result.rttMs} ms, ${result.packetsSent} packets`).join("; ");

rootTest("two port-restricted homes (two-nats.yml): direct, with time to connect and RTT", async (t) => {
	await inLab(t, topology("two-nats.yml", "tb-punch-direct"), async (lab) => {
		const results = await punch(lab, "alice", "bob", { runs: 10 });
		t.log(describe(results.slice(0, 3)));
		t.deepEqual(
			results.map((result) => result.run),
			[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
		);
		for (const result of results) {
			t.is(result.outcome, "direct", result.error);
			t.is(typeof result.timeToConnectMs, "number");
			t.is(typeof result.rttMs, "number");
			t.true(result.packetsSent > 0);
			t.regex(result.remote!.a, /^198\.51\.100\.6:\d+$/, "alice talks to bob's public endpoint");
			t.regex(result.remote!.b, /^198\.51\.100\.2:\d+$/, "and bob to alice's");
		}
		const p50 = percentile(results.map((result) => result.timeToConnectMs!), 50);
		t.log(`time to connect p50 ${p50} ms, RTT p50 ${percentile(results.map((result) => result.rttMs!), 50)} ms`);
	});
});

rootTest("100 pairs punch at once in one lab, and all connect", async (t) => {
	await inLab(t, topology("two-nats.yml", "tb-punch-many"), async (lab) => {
		const session = await PunchSession.start(lab);
		try {
			const started = performance.now();
			const results = await session.punchMany(Array.from({ length: 100 }, () => ["alice", "bob"] as [string, string]));
			const took = Math.round(performance.now() - started);
			t.is(results.length, 100);
			t.deepEqual(results.filter((result) => result.outcome !== "direct"), []);
			const times = results.map((result) => result.timeToConnectMs!);
			t.log(`100 pairs in ${took} ms; time to connect p50 ${percentile(times, 50)} ms, p95 ${percentile(times, 95)} ms, max ${Math.max(...times)} ms`);
			const stats = await session.rendezvousStats();
			t.is(stats.starts, 100);
			t.is(stats.droppedTotal, 0);
		} finally {
			await session.close();
		}
	});
});

rootTest("two peers on one switch (lan.yml): lan", async (t) => {
	await inLab(t, topology("lan.yml", "tb-punch-lan"), async (lab) => {
		const [result] = await punch(lab, "alice", "bob");
		t.log(describe([result]));
		t.is(result.outcome, "lan", result.error);
		t.regex(result.remote!.a, /^192\.168\.0\.3:\d+$/);
		t.regex(result.remote!.b, /^192\.168\.0\.2:\d+$/);
	});
});

rootTest("two homes behind one hairpinning NAT: hairpin, through its public address", async (t) => {
	const lab = loadLabText(`
name: tb-punch-hairpin
nodes:
  internet: { kind: router }
  rdv: {}
  isp: { kind: nat, nat: { type: port-restricted } }
  home1: { kind: nat, nat: { type: home-router } }
  home2: { kind: nat, nat: { type: home-router } }
  alice: {}
  bob: {}
links:
  - { endpoints: [alice:eth0, home1:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [bob:eth0, home2:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [home1:wan, isp:lan1], subnet: 100.64.0.0/30 }
  - { endpoints: [home2:wan, isp:lan2], subnet: 100.64.0.4/30 }
  - { endpoints: [isp:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [rdv:eth0, internet:e2], subnet: 203.0.113.0/24 }
`);
	await inLab(t, lab, async () => {
		const [result] = await punch(lab, "alice", "bob");
		t.log(describe([result]));
		t.is(result.outcome, "hairpin", result.error);
		t.regex(result.remote!.a, /^198\.51\.100\.2:\d+$/);
	});
});

rootTest("symmetric NATs on both sides: relayed with the relay, failed without", async (t) => {
	await inLab(t, twoHomes("tb-punch-sym", "{ type: symmetric }", "{ type: symmetric }"), async (lab) => {
		const session = await PunchSession.start(lab);
		try {
			const relayed = await session.punch("alice", "bob", { deadlineMs: 800 });
			t.log(`relay on: ${describe([relayed])}`);
			t.is(relayed.outcome, "relayed", relayed.error);
			t.true(relayed.timeToConnectMs! >= 800, "the relay is tried only after the deadline");
			t.is(typeof relayed.rttMs, "number", "RTT measured through the relay");
			t.deepEqual(relayed.remote, { a: session.rendezvous.endpoint, b: session.rendezvous.endpoint });
			const failed = await session.punch("alice", "bob", { deadlineMs: 800, relay: false });
			t.log(`relay off: ${failed.outcome}: ${failed.error}`);
			t.is(failed.outcome, "failed");
			t.is(failed.timeToConnectMs, null);
			t.regex(failed.error ?? "", /no path confirmed within 800 ms/);
			t.true(failed.packetsSent > 0);
			t.true(Number((await session.rendezvousStats()).relayed) > 0);
		} finally {
			await session.close();
		}
	});
});

/** The difference of two drop counters. */
function dropDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
	const delta: Record<string, number> = {};
	for (const [reason, count] of Object.entries(after)) if (count !== (before[reason] ?? 0)) delta[reason] = count - (before[reason] ?? 0);
	return delta;
}


/** Send many datagrams from the tool, 200 at a time. */
async function flood(tool: UdpTool, to: string, count: number): Promise<void> {
	for (let sent = 0; sent < count; sent += 200) await Promise.all(Array.from({ length: Math.min(200, count - sent) }, (_, i) => tool.send("h", to, `flood ${sent + i} ${randomBytes(8).toString("hex")}`)));
}

const randomText = (length: number) => randomBytes(length).toString("latin1");

rootTest("hostile datagrams to the rendezvous and to a peer are dropped and counted; both keep working", async (t) => {
	await inLab(t, topology("two-nats.yml", "tb-punch-hostile"), async (lab) => {
		const node = (name: string) => lab.nodes.find((candidate) => candidate.name === name)!;
		const session = await PunchSession.start(lab);
		const tools: UdpTool[] = [];
		try {
			const rendezvous = session.rendezvous.endpoint;
			const [alice, bob] = await Promise.all([session.peer("alice"), session.peer("bob")]);
			// A live session between two endpoints (kept open), and endpoints with none.
			const [, bobLive, , bobIdle] = await Promise.all([alice.open("alice.live"), bob.open("bob.live"), alice.open("alice.idle"), bob.open("bob.idle")]);
			const started = await alice.connect("alice.live", "bob.live", { intervalMs: 20, deadlineMs: 2000, relay: false });
			t.is(started.event, "started");
			t.is((await bob.outcome("bob.live", 5000))?.event, "connected");

			// ── the rendezvous, from a host on the public side ──
			const attacker = await UdpTool.start(node("internet"));
			tools.push(attacker);
			await attacker.bind("h");
			const serverBefore = (await session.rendezvousStats()).dropped as Record<string, number>;
			const register = encode({ t: "register", tx: "0123456789abcdef", id: "alice.idle", host: [] })!.toString();
			const relay = encode({ t: "relay", id: "alice.live", token: "f".repeat(32), n: "e".repeat(32), data: { t: "ka", n: "e".repeat(32), from: "alice.live" } })!.toString();
			const unknown = await alice.connect("alice.idle", "nobody.1", { intervalMs: 20, deadlineMs: 1000, relay: true });
			t.is(unknown.event, "error");
			t.regex(String(unknown.error), /no peer registered as "nobody\.1"/);
			await attacker.send("h", rendezvous, register); // a spoofed id: registered by alice from another endpoint
			await attacker.send("h", rendezvous, relay); // a spoofed relay
			for (let i = 0; i < 20; i++) await attacker.send("h", rendezvous, randomText(1 + (i * 37) % 500));
			for (let i = 1; i < 10; i++) await attacker.send("h", rendezvous, register.slice(0, i * 6));
			await attacker.send("h", rendezvous, `{"tbp":9,"t":"ka"}`);
			await flood(attacker, rendezvous, 2000);
			const sent = 2 + 20 + 9 + 1 + 2000;
			const serverAfter = await settle(
				() => session.rendezvousStats(),
				(stats) => Object.values(dropDelta(serverBefore, stats.dropped as Record<string, number>)).reduce((sum, count) => sum + count, 0) >= sent,
			);
			const serverDrops = dropDelta(serverBefore, serverAfter.dropped as Record<string, number>);
			t.log(`rendezvous dropped: ${JSON.stringify(serverDrops)}`);
			t.is(Object.values(serverDrops).reduce((sum, count) => sum + count, 0), sent, "every hostile datagram counted once");
			t.is(serverDrops["spoofed-id"], 2);
			t.is(serverDrops["bad-version"], 1);
			t.true(serverDrops["rate-limited"] > 0, "the flood is rate-limited");

			// ── a peer, from a device on its LAN (the NAT box's inside) ──
			const neighbour = await UdpTool.start(node("home2"));
			tools.push(neighbour);
			await neighbour.bind("h");
			const peerBefore = (await bob.stats()).dropped as Record<string, number>;
			const probe = (n: string) => encode({ t: "probe", n, from: "alice.live", tx: "0123456789abcdef" })!.toString();
			await neighbour.send("h", bobLive.local, probe("d".repeat(32))); // wrong nonce
			await neighbour.send("h", bobIdle.local, probe("d".repeat(32))); // no session there
			await neighbour.send("h", bobLive.local, encode({ t: "start", n: "d".repeat(32), id: "bob.live", peer: "mallory", host: [], srflx: "198.51.100.99:1", role: "responder", interval: 1, deadline: 1, relay: true, at: 0 })!.toString()); // a fake "start", not from the rendezvous
			for (let i = 0; i < 20; i++) await neighbour.send("h", bobLive.local, randomText(1 + (i * 37) % 500));
			for (let i = 1; i < 10; i++) await neighbour.send("h", bobLive.local, probe("d".repeat(32)).slice(0, i * 7));
			await flood(neighbour, bobLive.local, 2000);
			const peerSent = 1 + 1 + 1 + 20 + 9 + 2000;
			const peerAfter = await settle(
				() => bob.stats(),
				(stats) => Object.values(dropDelta(peerBefore, stats.dropped as Record<string, number>)).reduce((sum, count) => sum + count, 0) >= peerSent,
			);
			const peerDrops = dropDelta(peerBefore, peerAfter.dropped as Record<string, number>);
			t.log(`peer dropped: ${JSON.stringify(peerDrops)}`);
			t.is(Object.values(peerDrops).reduce((sum, count) => sum + count, 0), peerSent, "every hostile datagram counted once");
			t.is(peerDrops["wrong-nonce"], 1);
			t.is(peerDrops["unknown-session"], 1);
			t.is(peerDrops["unexpected-source"], 1);
			t.true(peerDrops["not-protocol"] >= 2000);

			// The live session survived (still connected, keepalives flowing), and new punches work.
			const survivor = await bob.stats();
			t.like(survivor, { endpoints: 2, sessions: 1, connected: 1 });
			const after = await session.punch("alice", "bob");
			t.is(after.outcome, "direct", after.error);
		} finally {
			await Promise.all(tools.map((tool) => tool.stop()));
			await session.close();
		}
	});
});

rootTest("without a public host, a temporary rendezvous host is attached and removed", async (t) => {
	const lab = loadLabText(`
name: tb-punch-attach
nodes:
  internet: { kind: router }
  nat1: { kind: nat, nat: { type: port-restricted } }
  nat2: { kind: nat, nat: { type: full-cone } }
  alice: {}
  bob: {}
links:
  - { endpoints: [alice:eth0, nat1:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [bob:eth0, nat2:lan], subnet: 192.168.2.0/24 }
  - { endpoints: [nat1:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [nat2:wan, internet:e2], subnet: 198.51.100.4/30 }
`);
	const temporary = "tb-punch-attach-tb-rdv";
	await inLab(
		t,
		lab,
		async () => {
			const session = await PunchSession.start(lab);
			try {
				t.true(session.rendezvous.temporary);
				t.true(namespaceExists(temporary));
				const result = await session.punch("alice", "bob");
				t.is(result.outcome, "direct", result.error);
			} finally {
				await session.close();
			}
			t.false(namespaceExists(temporary), "the temporary host is gone");
			t.is(readLedger(lab.name)!.namespaces.length, lab.nodes.length, "and so is its ledger entry");
		},
		{ extraNamespaces: [temporary] },
	);
});
