// Held hole-punched sessions survive faults injected into a running lab (issue 7): a NAT reboot
// (every mapping and all connection state flushed), a home uplink down for 2 s (and short flaps),
// NAT rebinding (one host's mappings forgotten, so its next packet gets a new public port) behind
// a full-cone peer (the session migrates) and behind a port-restricted one (lost, re-punched), a
// peer moving to another network, and a peer's process restart. Faults are injected here with
// plain commands in the NAT's or host's namespace (`nsenter --net=/run/netns/NS …`); each test
// checks that the agents noticed what they must (lost, rebound, migrated, reconnected) and that
// the pair exchanged keepalives again within a bound, and logs the measured reconnection time.
import type { ExecutionContext } from "ava";
import { execa } from "execa";
import { withLab, type RunningLab } from "../../src/lab-handle.ts";
import { HeldSession, type HeldEvent } from "../../src/drivers/held-session.ts";
import { PunchSession } from "../../src/drivers/punch.ts";
import { holdAndReport, type HoldReport } from "../../src/cli/commands/punch.ts";
import { leftovers, rootTest } from "../helpers/host.ts";
import { twoHomesText } from "../helpers/topologies.ts";

const twoHomes = twoHomesText;

const ALICE = "192.168.1.2";

/**
 * How long a test waits for a reconnection before calling it "never": a guard against hangs, not a
 * measure (a loaded machine is slow; the measured times are logged, and bench:events reports them).
 */
const reconnectGuardMs = 30_000;

/** Run a command in a namespace; throws with its output when it fails (unless `allowFail`). */
async function nsenter(netns: string, argv: string[], allowFail = false): Promise<string> {
	const result = await execa("nsenter", [`--net=/run/netns/${netns}`, ...argv], { reject: false });
	if (result.exitCode !== 0 && !allowFail) throw new Error(`${argv.join(" ")} in ${netns}: ${result.stderr || result.stdout}`);
	return result.stdout;
}

/**
 * While `change` runs, the NAT forwards nothing (a table of our own with a drop chain ahead of
 * the NAT's): no packet can re-create a mapping half-way through.
 */
async function frozen(netns: string, change: () => Promise<void>): Promise<void> {
	await nsenter(netns, ["nft", "add table ip tbfault; add chain ip tbfault hold { type filter hook forward priority -10; policy drop; }"]);
	try {
		await change();
	} finally {
		await nsenter(netns, ["nft", "delete", "table", "ip", "tbfault"]);
	}
}

/** The NAT's dynamic maps and sets (all but the constant port pool). */
async function natMaps(netns: string): Promise<{ kind: "map" | "set"; name: string }[]> {
	const table = JSON.parse(await nsenter(netns, ["nft", "-j", "list", "table", "ip", "testbed"])).nftables as { map?: { name: string }; set?: { name: string } }[];
	const named = table.flatMap<{ kind: "map" | "set"; name: string }>((entry) => (entry.map ? [{ kind: "map", name: entry.map.name }] : entry.set ? [{ kind: "set", name: entry.set.name }] : []));
	return named.filter((entry) => entry.name !== "remap-pool");
}

/** NAT reboot: every mapping and all connection state gone. */
async function natReboot(netns: string): Promise<void> {
	const maps = await natMaps(netns);
	await frozen(netns, async () => {
		await nsenter(netns, ["conntrack", "-F"], true);
		await nsenter(netns, ["nft", maps.map((entry) => `flush ${entry.kind} ip testbed ${entry.name}`).join("; ")]);
	});
}

/** NAT rebinding of one inside host: its mappings and flows are forgotten; its public ports stay in @used, so the next packet gets a fresh one. */
async function rebind(netns: string, inside: string): Promise<void> {
	type Element = [unknown, unknown];
	const elements = async (map: string): Promise<Element[]> => JSON.parse(await nsenter(netns, ["nft", "-j", "list", "map", "ip", "testbed", map])).nftables.find((entry: { map?: unknown }) => entry.map)?.map.elem ?? [];
	const bare = (value: unknown): unknown => (value as { elem?: { val: unknown } })?.elem?.val ?? value;
	const concat = (value: unknown) => ((bare(value) as { concat?: unknown[] })?.concat ?? []) as [string, number];
	await frozen(netns, async () => {
		const deletions: string[] = [];
		for (const [key] of await elements("eim")) if (concat(key)[0] === inside) deletions.push(`delete element ip testbed eim { ${concat(key).join(" . ")} }`);
		// @public's key is the protocol and the public port (a concatenation since NAT rules cover TCP too).
		const keyText = (key: unknown) => (concat(key).length ? concat(key).join(" . ") : String(bare(key)));
		for (const [key, value] of await elements("public")) if (concat(value)[0] === inside) deletions.push(`delete element ip testbed public { ${keyText(key)} }`);
		if (deletions.length) await nsenter(netns, ["nft", deletions.join("; ")]);
		await nsenter(netns, ["conntrack", "-D", "-p", "udp", "-s", inside], true);
	});
}

/** Take an interface down (which removes its IPv4 routes), and a function that brings it up and restores the routes. */
async function linkDown(netns: string, iface: string): Promise<() => Promise<void>> {
	const routes = (JSON.parse(await nsenter(netns, ["ip", "-j", "route", "show"])) as { dst: string; gateway?: string; dev: string; protocol?: string }[]).filter((route) => route.dev === iface && route.protocol !== "kernel");
	await nsenter(netns, ["ip", "link", "set", "dev", iface, "down"]);
	return async () => {
		await nsenter(netns, ["ip", "link", "set", "dev", iface, "up"]);
		for (const route of routes) await nsenter(netns, ["ip", "route", "replace", route.dst, ...(route.gateway ? ["via", route.gateway] : []), "dev", iface]);
	};
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const since = (events: readonly HeldEvent[], at: number) => events.filter((event) => event.at >= at);
const describe = (events: readonly HeldEvent[], origin: number) => events.map((event) => `${Math.round(event.at - origin)} ms ${event.side ?? "pair"} ${event.kind}${event.detail ? ` (${event.detail})` : ""}`).join("; ");

/** A lab, a punch session and a held pair alice ↔ bob; always torn down, and nothing may be left. */
async function held(t: ExecutionContext, text: string, options: { keepaliveMs?: number }, body: (session: HeldSession, lab: RunningLab) => Promise<void>): Promise<void> {
	const name = /^name: (.*)$/m.exec(text)![1];
	let namespaces: string[] = [];
	await withLab({ text }, async (lab) => {
		namespaces = lab.lab.nodes.map((node) => node.netns);
		const punch = await PunchSession.start(lab.lab);
		let session: HeldSession | undefined;
		try {
			session = await HeldSession.open(punch, "alice", "bob", options);
			t.is(session.state, "connected", describe(session.events, 0));
			t.is(session.path, "direct");
			await body(session, lab);
		} finally {
			await session?.close();
			await punch.close();
		}
	});
	t.deepEqual(leftovers(name, namespaces), []);
}

rootTest("NAT reboot of a port-restricted home NAT (all mappings and flows flushed; its ports are not preserved): lost, rebound, reconnected", async (t) => {
	await held(t, twoHomes("tb-res-reboot", "{ type: port-restricted, port-preservation: false }", "{ type: port-restricted }"), {}, async (session, lab) => {
		t.deepEqual(session.timing, { keepaliveMs: 1000, lossAfterMs: 3000 }, "the NATs' udp-timeout is 120 s: keepalives every second");
		await sleep(500);
		const before = session.endpoints[1].remote;
		const at = performance.now();
		await natReboot(lab.node("nat1").netns);
		const connected = await session.waitConnected(performance.now(), reconnectGuardMs);
		const events = since(session.events, at);
		t.log(`reconnected ${connected === undefined ? "never" : `${Math.round(connected - at)} ms`} after the reboot: ${describe(events, at)}`);
		t.truthy(connected, "both sides connected and heard each other again");
		t.true(events.some((event) => event.kind === "lost"), "the loss was noticed");
		const rebound = events.find((event) => event.kind === "rebound" && event.side === "alice");
		t.truthy(rebound, "alice's re-registration found her new public endpoint");
		t.regex(rebound?.detail ?? "", /^198\.51\.100\.2:\d+ → 198\.51\.100\.2:\d+$/);
		for (const side of ["alice", "bob"]) t.truthy(events.find((event) => event.kind === "reconnected" && event.side === side), `${side} reconnected`);
		t.is(session.state, "connected");
		t.is(session.path, "direct");
		t.not(session.endpoints[1].remote, before, "bob now sends to alice's new public endpoint");
		const outage = session.outages.at(-1);
		t.truthy(outage?.ms, "the interruption is measured");
		t.log(`interruption (lost → both reconnected): ${outage?.ms} ms`);
	});
});

rootTest("home uplink: short flaps stay below the loss timeout; down for 2 s, the pair notices and reconnects soon after the link is up", async (t) => {
	await held(t, twoHomes("tb-res-link", "{ type: port-restricted }", "{ type: port-restricted }"), { keepaliveMs: 250 }, async (session, lab) => {
		t.deepEqual(session.timing, { keepaliveMs: 250, lossAfterMs: 1500 });
		const nat1 = lab.node("nat1").netns;
		// Three flaps of 400 ms: a keepalive or two lost, but no loss declared.
		const flapsAt = performance.now();
		for (let flap = 0; flap < 3; flap++) {
			const up = await linkDown(nat1, "wan");
			await sleep(400);
			await up();
			await sleep(600);
		}
		t.deepEqual(since(session.events, flapsAt), [], "nothing happened to the session");
		t.truthy(await session.waitConnected(performance.now(), 1000));
		// Down for 2 s.
		const downAt = performance.now();
		const up = await linkDown(nat1, "wan");
		await sleep(2000);
		await up();
		const upAt = performance.now();
		const connected = await session.waitConnected(upAt, reconnectGuardMs);
		const events = since(session.events, downAt);
		t.log(`link down 2 s: reconnected ${connected === undefined ? "never" : `${Math.round(connected - upAt)} ms after the link came up`}: ${describe(events, downAt)}`);
		t.truthy(connected, "connected again after the link came up");
		t.deepEqual(
			["alice", "bob"].map((side) => events.some((event) => event.kind === "lost" && event.side === side && event.at < upAt)),
			[true, true],
			"both sides noticed the loss during the outage",
		);
		t.true(events.some((event) => event.kind === "reconnected" && event.at >= upAt));
		t.is(session.state, "connected");
	});
});

rootTest("NAT rebinding behind a full-cone peer: the peer migrates to the new source, without a loss", async (t) => {
	await held(t, twoHomes("tb-res-migrate", "{ type: port-restricted }", "{ type: full-cone }"), {}, async (session, lab) => {
		await sleep(300);
		const old = session.endpoints[1].remote!;
		const at = performance.now();
		await rebind(lab.node("nat1").netns, ALICE);
		const migrated = await session.waitFor((event) => event.kind === "migrated", reconnectGuardMs, at);
		const rebound = await session.waitFor((event) => event.kind === "rebound", reconnectGuardMs, at);
		const connected = await session.waitConnected(at, reconnectGuardMs);
		const events = since(session.events, at);
		t.log(`rebinding: migrated ${migrated ? `${Math.round(migrated.at - at)} ms` : "never"}, keepalives both ways again ${connected === undefined ? "never" : `${Math.round(connected - at)} ms`} after it: ${describe(events, at)}`);
		t.is(migrated?.side, "bob", "bob's side moved to alice's new source");
		t.is(migrated?.detail?.split(" → ")[0], old);
		t.regex(migrated?.remote ?? "", /^198\.51\.100\.2:\d+$/);
		t.not(migrated?.remote, old);
		t.is(rebound?.side, "alice");
		t.is(rebound?.remote, migrated?.remote, "the rendezvous sees the same new endpoint");
		t.truthy(connected);
		t.false(events.some((event) => event.kind === "lost"), "no loss declared");
		t.is(session.state, "connected");
	});
});

rootTest("NAT rebinding behind a port-restricted peer: lost, alice re-registers from her new port (rebound), and the re-punch reconnects", async (t) => {
	await held(t, twoHomes("tb-res-rebind", "{ type: port-restricted }", "{ type: port-restricted }"), { keepaliveMs: 300 }, async (session, lab) => {
		await sleep(300);
		const at = performance.now();
		await rebind(lab.node("nat1").netns, ALICE);
		// Heard after the fault took effect: a keepalive that crossed while it was being applied does not count.
		const connected = await session.waitConnected(performance.now(), reconnectGuardMs);
		const events = since(session.events, at);
		t.log(`rebinding: reconnected ${connected === undefined ? "never" : `${Math.round(connected - at)} ms`} after it: ${describe(events, at)}`);
		t.truthy(connected);
		t.true(events.some((event) => event.kind === "lost"));
		t.true(events.some((event) => event.kind === "rebound" && event.side === "alice"));
		t.true(events.some((event) => event.kind === "reconnected"));
		t.is(session.state, "connected");
		t.is(session.endpoints[1].remote, events.find((event) => event.kind === "rebound")?.remote, "bob talks to alice's new endpoint");
	});
});

rootTest("a peer moves to another network (another interface, another NAT): lost, rebound, reconnected", async (t) => {
	const text = `
name: tb-res-move
nodes:
  internet: { kind: router }
  rdv: {}
  nat1: { kind: nat, nat: { type: port-restricted } }
  nat2: { kind: nat, nat: { type: port-restricted } }
  nat3: { kind: nat, nat: { type: port-restricted } }
  alice: { routes: [{ to: default, via: 192.168.1.1 }] }
  bob: {}
links:
  - { endpoints: [alice:eth0, nat1:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [alice:eth1, nat3:lan], subnet: 192.168.3.0/24 }
  - { endpoints: [bob:eth0, nat2:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [nat1:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [nat2:wan, internet:e2], subnet: 198.51.100.4/30 }
  - { endpoints: [nat3:wan, internet:e4], subnet: 198.51.100.8/30 }
  - { endpoints: [rdv:eth0, internet:e3], subnet: 203.0.113.0/24 }
`;
	await held(t, text, { keepaliveMs: 300 }, async (session, lab) => {
		await sleep(300);
		const alice = lab.node("alice").netns;
		const at = performance.now();
		await nsenter(alice, ["ip", "link", "set", "dev", "eth0", "down"]);
		await nsenter(alice, ["ip", "route", "replace", "default", "via", "192.168.3.1", "dev", "eth1"]);
		const connected = await session.waitConnected(performance.now(), reconnectGuardMs);
		const events = since(session.events, at);
		t.log(`move: reconnected ${connected === undefined ? "never" : `${Math.round(connected - at)} ms`} after it: ${describe(events, at)}`);
		t.truthy(connected);
		t.true(events.some((event) => event.kind === "lost"));
		t.regex(events.find((event) => event.kind === "rebound")?.detail ?? "", /^198\.51\.100\.2:\d+ → 198\.51\.100\.10:\d+$/, "alice is now behind nat3");
		t.true(events.some((event) => event.kind === "reconnected"));
		t.regex(session.endpoints[1].remote ?? "", /^198\.51\.100\.10:\d+$/);
		t.is(session.path, "direct");
	});
});

rootTest("a peer's process restarts: the new one takes the endpoint over with its claim and connects again; the survivor reconnects", async (t) => {
	await held(t, twoHomes("tb-res-restart", "{ type: port-restricted }", "{ type: port-restricted }"), {}, async (session) => {
		await sleep(300);
		const at = performance.now();
		await session.restart("bob");
		const restartedIn = performance.now() - at;
		const connected = await session.waitConnected(at, reconnectGuardMs);
		const events = since(session.events, at);
		t.log(`restart (${Math.round(restartedIn)} ms for the new agent to take over and ask): reconnected ${connected === undefined ? "never" : `${Math.round(connected - at)} ms`} after it began: ${describe(events, at)}`);
		t.truthy(connected);
		t.is(events[0]?.kind, "restarted");
		for (const side of ["alice", "bob"]) t.truthy(events.find((event) => event.kind === "reconnected" && event.side === side), `${side} reconnected`);
		t.is(session.state, "connected");
		const stats = await session.session.rendezvousStats();
		t.is(stats.takeovers, 1, "the rendezvous let the new process take the id over");
		t.is(session.path, "direct");
	});
});

rootTest("testbed punch --hold: the session's events and its interruptions, with the time from an injected fault to reconnection", async (t) => {
	await withLab({ text: twoHomes("tb-res-cli", "{ type: port-restricted }", "{ type: port-restricted }") }, async (lab) => {
		// In-process, with a fault injected while it holds (the hook `testbed punch --event` builds on).
		const printed: unknown[] = [];
		const io = { out: (text: string) => printed.push(text), err: () => undefined, json: (value: unknown) => printed.push(value), color: false };
		const code = await holdAndReport(
			lab.lab,
			"alice",
			"bob",
			{
				holdMs: 3500,
				keepaliveMs: 300,
				json: true,
				during: async (session) => {
					await sleep(500);
					session.mark("rebind nat1");
					await rebind(lab.node("nat1").netns, ALICE);
				},
			},
			io,
		);
		const report = printed[0] as HoldReport;
		t.log(`--hold report: ${JSON.stringify({ marks: report.marks, outages: report.outages })}`);
		t.is(code, 0);
		t.like(report, { a: "alice", b: "bob", holdMs: 3500, keepaliveMs: 300, lossAfterMs: 1500, path: "direct", finalPath: "direct", state: "connected" });
		t.is(report.events[0].kind, "connected");
		t.is(report.events[0].atMs, 0, "times count from the connection");
		t.is(report.marks.length, 1);
		t.true(report.marks[0].atMs >= 500);
		t.true(report.marks[0].interrupted);
		t.true(report.marks[0].reconnectMs !== null && report.marks[0].reconnectMs > 0, `reconnected ${report.marks[0].reconnectMs} ms after the fault`);
		t.is(report.outages.length, 1);
		t.true(report.outages[0].reconnectMs !== null && report.outages[0].reconnectMs >= 0, "from the loss to both reconnected, measured");
		t.deepEqual([...new Set(report.events.map((event) => event.kind))].sort(), ["connected", "lost", "rebound", "reconnected"]);

		// As users run it: text, exit code 0 when connected at the end.
		const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });
		const held = await testbed(["punch", "tb-res-cli", "alice", "bob", "--hold", "1s"]);
		t.is(held.exitCode, 0, held.stderr);
		t.regex(held.stdout, /^held alice ↔ bob in lab "tb-res-cli" for 1\.000 s: direct; keepalive 1000 ms, loss after 3000 ms$/m);
		t.regex(held.stdout, /^0 ms +both +connected +direct/m);
		t.regex(held.stdout, /^no interruption$/m);
		t.regex(held.stdout, /^at the end: connected \(direct\)$/m);
		const usage = await testbed(["punch", "tb-res-cli", "alice", "bob", "--hold", "1s", "--runs", "3"]);
		t.is(usage.exitCode, 2);
		t.regex(usage.stderr, /--hold .* does not go with --runs/);
		t.is((await testbed(["punch", "tb-res-cli", "alice", "bob", "--hold", "soon"])).exitCode, 2);
	});
	t.deepEqual(leftovers("tb-res-cli", []), []);
});
