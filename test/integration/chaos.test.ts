// Leak-proof: testbed killed anywhere, labs built and removed again and again, foreign objects with
// look-alike names, two labs and two commands at once — nothing stranded, nothing of others touched.
// SOAK_CYCLES and CRASH_POINTS raise the counts (`npm run soak`).
import { readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { execa } from "execa";
import { ApplyError, downAll, downLab, labStatuses, loadLab, loadLabText, upLab } from "../../src/index.ts";
import { pidsInNamespaces, netnsInode } from "../../src/apply/namespaces.ts";
import { UdpTool } from "../../src/drivers/udp-tool.ts";
import { unitsTopology } from "../helpers/generate.ts";
import { leftovers, namespaceExists, rootTest } from "../helpers/host.ts";

setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;

// Every lab of this file is brought up (and `down --all` run) as a user of its own: `down --all` takes
// down only the caller's labs, so labs of other tests running at the same time are left alone.
process.env.SUDO_USER = "tb-chaos-tester";

// 14 kill points over a build of about 0.8 s: one every ~60 ms, several in each of its phases (the
// root batch, the namespaces' batches, containers' mounts and cgroups, the ledger). CRASH_POINTS raises it.
const crashPoints = Number(process.env.CRASH_POINTS ?? 14);
// 20 cycles: anything each cycle leaves behind (a namespace, a run file, a conntrack entry; an fd
// after three) fails as it did over 50, the heap allowance is per cycle, and the slowdown check compares the
// first and the last four cycles. `npm run soak` runs 500.
const soakCycles = Number(process.env.SOAK_CYCLES ?? 20);
const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });
const unitNamespaces = (lab: string, units: number) => [`${lab}-internet`, ...Array.from({ length: units }, (_, i) => [`${lab}-nat${i}`, `${lab}-peer${i}`]).flat()];

function withFile<T>(text: string, body: (file: string) => Promise<T>): Promise<T> {
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	const file = join(dir, "lab.yml");
	writeFileSync(file, text);
	return body(file).finally(() => rmSync(dir, { recursive: true }));
}

rootTest(`SIGKILL of up at ${crashPoints} points of a build (half the peers containers: overlays, files, cgroups), then down (or down --all): nothing left`, async (t) => {
	const units = 30;
	const namespaces = unitNamespaces("tb-crash", units);
	await withFile(unitsTopology("tb-crash", units, { containers: true }), async (file) => {
		// A full CLI up, timed from the moment its ledger appears (Node's start-up comes before that):
		// the kill points are spread over the build itself.
		const poll = async () => {
			while (!labStatuses().some((status) => status.lab === "tb-crash")) await sleep(2);
			return performance.now();
		};
		const first = testbed(["up", file]);
		const ledgerAt = await poll();
		t.is((await first).exitCode, 0);
		const build = performance.now() - ledgerAt;
		t.is((await testbed(["down", "tb-crash"])).exitCode, 0);
		const outcomes = new Map<string, number>();
		for (let point = 0; point < crashPoints; point++) {
			const delay = Math.round((build * point) / crashPoints);
			const child = testbed(["up", file]);
			await Promise.race([poll(), child]);
			await sleep(delay);
			child.kill("SIGKILL");
			await child;
			const state = labStatuses().find((status) => status.lab === "tb-crash")?.state ?? "finished";
			outcomes.set(state, (outcomes.get(state) ?? 0) + 1);
			const down = point % 4 === 3 ? await testbed(["down", "--all"]) : await testbed(["down", "tb-crash"]);
			t.true(down.exitCode === 0 || /no lab named "tb-crash"/.test(down.stderr), `point ${point} (${delay} ms): ${down.stderr}`);
			t.deepEqual(leftovers("tb-crash", namespaces), [], `point ${point} (${delay} ms)`);
		}
		t.log(`kill points: ${crashPoints} spread over a ${Math.round(build)} ms build; lab state when killed: ${[...outcomes].map(([state, count]) => `${state} ×${count}`).join(", ")}`);
		t.true((outcomes.get("crashed") ?? 0) > 0, "some kills landed mid-build");
	});
});

rootTest("SIGKILL of testbed reach and of testbed test mid-run: no agent survives, down removes the rest", async (t) => {
	const lab = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	await upLab(lab);
	try {
		const reach = testbed(["reach", "two-nats"]);
		await sleep(700); // agents are running
		reach.kill("SIGKILL");
		await reach;
		await sleep(200);
		const inodes = new Set(lab.nodes.map((node) => netnsInode(node.netns)!));
		t.deepEqual(pidsInNamespaces(inodes), [], "agents die with the testbed that started them");
	} finally {
		await downLab("two-nats");
	}
	const matrix = loadLab(new URL("../../topologies/nat-matrix.yml", import.meta.url).pathname);
	const test = testbed(["test", "topologies/nat-matrix.yml"]);
	for (let i = 0; i < 100 && !labStatuses().some((status) => status.lab === "nat-matrix" && status.state === "up"); i++) await sleep(50);
	await sleep(1500); // punching
	test.kill("SIGKILL");
	await test;
	const inodes = new Set(matrix.nodes.map((node) => netnsInode(node.netns)).filter((inode): inode is number => inode !== null));
	await sleep(200);
	t.deepEqual(pidsInNamespaces(inodes), [], "no peer or rendezvous agent outlives testbed test");
	t.is((await testbed(["down", "nat-matrix"])).exitCode, 0);
	t.deepEqual(leftovers("nat-matrix", matrix.nodes.map((node) => node.netns)), []);
});

rootTest(`soak: ${soakCycles} up/down cycles of nat-matrix.yml without growth or slowdown`, async (t) => {
	const text = readFileSync(new URL("../../topologies/nat-matrix.yml", import.meta.url), "utf8").replace("name: nat-matrix", "name: tb-soak");
	const lab = loadLabText(text);
	const count = async () => ({
		namespaces: readdirSync("/run/netns").length,
		runFiles: readdirSync("/run/testbed").length,
		fds: readdirSync("/proc/self/fd").length,
		conntrack: Number((await execa("conntrack", ["-C"], { reject: false })).stdout || 0),
		heapMb: (collect(), process.memoryUsage().heapUsed / 1e6),
	});
	await upLab(lab); // warm-up: module loading and first-use caches are not growth
	await downLab(lab.name);
	const before = await count();
	const times: number[] = [];
	for (let cycle = 0; cycle < soakCycles; cycle++) {
		const started = performance.now();
		await upLab(lab);
		await downLab(lab.name);
		times.push(performance.now() - started);
	}
	const after = await count();
	// Medians of the first and the last fifth: one cycle slowed by another process does not count.
	const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];
	const fifth = Math.max(1, Math.floor(soakCycles / 5));
	const first = median(times.slice(0, fifth));
	const last = median(times.slice(-fifth));
	t.log(`${soakCycles} cycles: first ${first.toFixed(0)} ms, last ${last.toFixed(0)} ms per cycle; fds ${before.fds}→${after.fds}, heap ${before.heapMb.toFixed(1)}→${after.heapMb.toFixed(1)} MB, conntrack ${before.conntrack}→${after.conntrack}`);
	t.is(after.namespaces, before.namespaces, "namespaces");
	t.is(after.runFiles, before.runFiles, "/run/testbed files");
	t.true(after.fds <= before.fds + 2, `open fds ${before.fds} → ${after.fds}`);
	t.true(after.conntrack <= before.conntrack, `root conntrack entries ${before.conntrack} → ${after.conntrack}`);
	// 0.2 MB a cycle (at most 10 MB, at least 2): a leak of 0.2 MB per cycle fails at any count, as
	// 10 MB did over 50 (measured here: the heap after GC grew 0.0–0.3 MB over 20 cycles, 0.3 MB over 50).
	const heapAllowanceMb = Math.min(10, Math.max(2, 0.2 * soakCycles));
	t.true(after.heapMb < before.heapMb + heapAllowanceMb, `heap after GC ${before.heapMb.toFixed(1)} → ${after.heapMb.toFixed(1)} MB (allowed: +${heapAllowanceMb} MB)`);
	t.true(last < first * 1.5 + 100, `cycle time crept from ${first.toFixed(0)} to ${last.toFixed(0)} ms`);
});

rootTest("only its own: look-alike namespaces, veths, bridges and nft tables survive down, down --all and rollback", async (t) => {
	const foreign = "tb-own-a-x";
	await execa("ip", ["netns", "add", foreign]);
	await execa("ip", ["-n", foreign, "link", "add", "eth0", "type", "veth", "peer", "name", "e1"]);
	await execa("ip", ["-n", foreign, "link", "add", "lan", "type", "bridge"]);
	await execa("ip", ["netns", "exec", foreign, "nft", "add table ip testbed"]);
	const intact = async () => {
		const links = (await execa("ip", ["-n", foreign, "-br", "link"])).stdout;
		const nft = (await execa("ip", ["netns", "exec", foreign, "nft", "list", "tables"])).stdout;
		return namespaceExists(foreign) && /eth0@e1/.test(links) && /\blan\b/.test(links) && /table ip testbed/.test(nft);
	};
	try {
		const small = (name: string, extra = "") => loadLabText(`name: ${name}\nnodes:\n  r: { kind: router }\n  a: {${extra}}\n  lan: { kind: switch }\nlinks:\n  - { endpoints: [a:eth0, lan:p1] }\n  - { endpoints: [lan:up, r:e1], subnet: 10.0.1.0/24 }\n`);
		await upLab(small("tb-own"));
		await downLab("tb-own");
		t.true(await intact(), "after down");
		await upLab(small("tb-own"));
		await downAll();
		t.true(await intact(), "after down --all");
		const rejected = small("tb-own", " routes: [{ to: 10.9.0.0/16, via: 10.0.1.1 }, { to: 10.0.1.0/24, via: 10.0.1.1 }] ");
		await t.throwsAsync(upLab(rejected), { instanceOf: ApplyError });
		t.true(await intact(), "after a rollback");
		t.deepEqual(leftovers("tb-own", ["tb-own-a", "tb-own-r", "tb-own-lan"]), []);
	} finally {
		await execa("ip", ["netns", "del", foreign]);
	}
});

rootTest("two labs at once are independent: same addresses, no crossing traffic", async (t) => {
	const text = readFileSync(new URL("../../topologies/two-nats.yml", import.meta.url), "utf8");
	const [one, two] = ["tb-one", "tb-two"].map((name) => loadLabText(text.replace("name: two-nats", `name: ${name}`)));
	await Promise.all([upLab(one), upLab(two)]);
	const tools: UdpTool[] = [];
	try {
		const node = (lab: typeof one, name: string) => lab.nodes.find((candidate) => candidate.name === name)!;
		const [stunOne, stunTwo, alice] = await Promise.all([UdpTool.start(node(one, "stun")), UdpTool.start(node(two, "stun")), UdpTool.start(node(two, "alice"))]);
		tools.push(stunOne, stunTwo, alice);
		await stunOne.bind("s", 4000, { echo: true });
		await stunTwo.bind("s", 4000, { echo: true });
		await alice.bind("x", 5000);
		t.is(await alice.mappedEndpoint("x", "203.0.113.10:4000"), "198.51.100.2:5000", "lab two's alice reaches lab two's stun");
		t.truthy(await stunTwo.receive("s"));
		t.is(await stunOne.receive("s", { timeoutMs: 300 }), undefined, "lab one's stun heard nothing");
	} finally {
		await Promise.all(tools.map((tool) => tool.stop()));
		await Promise.all([downLab("tb-one"), downLab("tb-two")]);
	}
});

rootTest("down during up waits for the build, then removes the lab", async (t) => {
	const units = 40;
	await withFile(unitsTopology("tb-race2", units), async (file) => {
		const up = testbed(["up", file]);
		for (let i = 0; i < 400 && !labStatuses().some((status) => status.lab === "tb-race2"); i++) await sleep(5);
		const down = await testbed(["down", "tb-race2"]);
		const upResult = await up;
		t.is(upResult.exitCode, 0, upResult.stderr);
		t.is(down.exitCode, 0, down.stderr);
		t.deepEqual(leftovers("tb-race2", unitNamespaces("tb-race2", units)), []);
	});
});

rootTest("permissions: the run directory and ledgers are root-only; the feature cache is readable", async (t) => {
	await upLab(loadLabText("name: tb-perm\nnodes:\n  a: {}\n"));
	try {
		t.is(statSync("/run/testbed").mode & 0o777, 0o700);
		t.is(statSync("/run/testbed/tb-perm.json").mode & 0o777, 0o600);
		t.is(statSync("/run/testbed/tb-perm.json").uid, 0);
		t.is(statSync("/run/testbed.features.json").mode & 0o777, 0o644);
	} finally {
		await downLab("tb-perm");
	}
});
