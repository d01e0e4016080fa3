// Ownership and teardown: ledger, rollback, locks, --force, down without the file, down --all.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { ApplyError, LabStateError, MissingFeatureError, downAll, downLab, labStatuses, loadLab, loadLabText, upLab } from "../../src/index.ts";
import { detectFeatures } from "../../src/apply/features.ts";
import { unitsTopology } from "../helpers/generate.ts";
import { hostChanges, hostSnapshot, ipJson, leftovers, namespaceExists, rootTest } from "../helpers/host.ts";
import { netnsInode } from "../../src/apply/namespaces.ts";

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;

const small = (name: string, prefix?: string) =>
	loadLabText(`
name: ${name}
${prefix === undefined ? "" : `prefix: "${prefix}"`}
nodes:
  r: { kind: router }
  a: {}
links:
  - { endpoints: [a:eth0, r:e1], subnet: 10.0.1.0/24 }
`);

rootTest("a kernel error midway rolls back everything and names the command, the kernel's words and the YAML line", async (t) => {
	const lab = loadLab(fixture("rejected-midway.yml"));
	const before = await hostSnapshot();
	const error = await t.throwsAsync(upLab(lab), { instanceOf: ApplyError });
	t.regex(error!.message, /rejected-midway\.yml:9:\d+: building node "a" failed in namespace tb-reject-a/);
	t.regex(error!.message, /command: ip -n tb-reject-a route add 10\.0\.1\.0\/24 via 10\.0\.1\.1 dev eth0/);
	t.regex(error!.message, /kernel: {2}.*File exists/);
	t.true((error as ApplyError).facts.rolledBack);
	t.deepEqual(leftovers(lab.name, lab.nodes.map((node) => node.netns)), []);
	t.deepEqual(hostChanges(before, await hostSnapshot()), []);
});

rootTest("up of a lab that is up says so; --force replaces it", async (t) => {
	const lab = small("tb-twice");
	try {
		const first = await upLab(lab);
		await t.throwsAsync(upLab(lab), { instanceOf: LabStateError, code: "LAB_EXISTS", message: /^lab "tb-twice" is already up, brought up by you \(\S+\) at .*\n.*--name NAME .*`testbed up … --force`/ });
		const second = await upLab(lab, { force: true });
		// New namespaces: the inode number may be the old one again (the kernel reuses them), the inode's birth is not.
		t.not(`${second.ledger.namespaces[0].inode} ${second.ledger.namespaces[0].born}`, `${first.ledger.namespaces[0].inode} ${first.ledger.namespaces[0].born}`, "the namespaces are new");
		t.truthy(second.ledger.namespaces[0].born);
		t.is(labStatuses().find((status) => status.lab === "tb-twice")?.state, "up");
	} finally {
		await downLab("tb-twice").catch(() => undefined);
	}
	t.deepEqual(leftovers("tb-twice", ["tb-twice-r", "tb-twice-a"]), []);
});

rootTest("down works from the ledger after the topology file is gone", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	const file = join(dir, "lab.yml");
	copyFileSync(new URL("../../topologies/two-nats.yml", import.meta.url), file);
	writeFileSync(file, (await import("node:fs")).readFileSync(file, "utf8").replace("name: two-nats", "name: tb-nofile"));
	const lab = loadLab(file);
	await upLab(lab);
	rmSync(dir, { recursive: true });
	const result = await execa(process.execPath, ["bin/testbed.js", "down", "tb-nofile"], { reject: false });
	t.is(result.exitCode, 0, result.stderr);
	t.regex(result.stdout, /lab "tb-nofile" is down: 6 namespaces removed/);
	t.deepEqual(leftovers("tb-nofile", lab.nodes.map((node) => node.netns)), []);
});

rootTest("an existing namespace testbed did not create stops up, says it is foreign, and is left alone", async (t) => {
	await execa("ip", ["netns", "add", "tb-foreign-a"]);
	try {
		const error = await t.throwsAsync(upLab(small("tb-foreign")), { instanceOf: LabStateError, code: "NAMESPACE_EXISTS" });
		t.regex(error!.message, /^namespace tb-foreign-a already exists and testbed did not create it: no lab on this host owns it$/m);
		t.regex(error!.message, /--name NAME .*ip netns del tb-foreign-a/);
		t.true(namespaceExists("tb-foreign-a"));
		t.false(namespaceExists("tb-foreign-r"));
	} finally {
		await execa("ip", ["netns", "del", "tb-foreign-a"]);
	}
});

/** Run `body` as another user (SUDO_USER), as the owner checks see it. */
async function asUser<T>(user: string, body: () => Promise<T>): Promise<T> {
	const before = process.env.SUDO_USER;
	process.env.SUDO_USER = user;
	try {
		return await body();
	} finally {
		if (before === undefined) delete process.env.SUDO_USER;
		else process.env.SUDO_USER = before;
	}
}

rootTest("down --all removes every lab of the caller in the ledger and nothing else", async (t) => {
	// As a user of its own, so labs of other users on this host (other tests running now) are left alone.
	await execa("ip", ["netns", "add", "tb-all-x-a"]); // looks like a lab's namespace, but is not in any ledger
	try {
		await asUser("tb-all-tester", async () => {
			await upLab(small("tb-all-1"));
			await upLab(small("tb-all-2"));
		});
		await asUser("tb-all-other", () => upLab(small("tb-all-3")));
		const { removed, leftAlone } = await asUser("tb-all-tester", () => downAll());
		t.deepEqual(removed.map((result) => result.lab).filter((lab) => lab.startsWith("tb-all-")), ["tb-all-1", "tb-all-2"]);
		t.deepEqual(leftAlone.filter((other) => other.lab.startsWith("tb-all-")), [{ lab: "tb-all-3", owner: "tb-all-other" }]);
		t.true(namespaceExists("tb-all-3-a"), "another user's lab is left up");
		t.true(namespaceExists("tb-all-x-a"));
		t.deepEqual([...leftovers("tb-all-1", ["tb-all-1-a", "tb-all-1-r"]), ...leftovers("tb-all-2", ["tb-all-2-a", "tb-all-2-r"])], []);
	} finally {
		await Promise.all(["tb-all-1", "tb-all-2", "tb-all-3"].map((lab) => downLab(lab, { force: true }).catch(() => undefined)));
		await execa("ip", ["netns", "del", "tb-all-x-a"]);
	}
	t.deepEqual(leftovers("tb-all-3", ["tb-all-3-a", "tb-all-3-r"]), []);
});

rootTest("a namespace replaced behind testbed's back is not deleted by down, also when the kernel gave it the old inode number", async (t) => {
	const up = await upLab(small("tb-swap"));
	const original = up.ledger.namespaces.find((entry) => entry.name === "tb-swap-a")!.inode;
	// Same name, someone else's. The kernel gives a freed namespace's inode number to the next one:
	// replace it until that happens (the old one is freed in the background), so the case is tested.
	let reused = false;
	for (let attempt = 0; attempt < 50 && !reused; attempt++) {
		await execa("ip", ["netns", "del", "tb-swap-a"]);
		await new Promise((resolve) => setTimeout(resolve, 20));
		await execa("ip", ["netns", "add", "tb-swap-a"]);
		reused = netnsInode("tb-swap-a") === original;
	}
	t.log(reused ? "the replacement has the original's inode number" : "the kernel did not reuse the inode number in 50 tries");
	try {
		const result = await downLab("tb-swap");
		t.deepEqual(result.foreign, ["tb-swap-a"]);
		t.true(namespaceExists("tb-swap-a"));
		t.false(namespaceExists("tb-swap-r"));
	} finally {
		await execa("ip", ["netns", "del", "tb-swap-a"]).catch(() => undefined);
	}
});

rootTest("a lock held by a live process makes up wait, then fail clearly; a dead owner's lock is taken over", async (t) => {
	const sleeper = execa("sleep", ["30"]);
	try {
		writeFileSync("/run/testbed/tb-locked.lock", String(sleeper.pid));
		await t.throwsAsync(upLab(small("tb-locked"), { lockWaitMs: 300 }), { instanceOf: LabStateError, code: "LAB_BUSY", message: new RegExp(`lab "tb-locked" is busy: testbed process ${sleeper.pid}`) });
		t.false(namespaceExists("tb-locked-a"));
	} finally {
		sleeper.kill();
		await sleeper.catch(() => undefined);
	}
	writeFileSync("/run/testbed/tb-locked.lock", "999999999"); // no such process
	await upLab(small("tb-locked"), { lockWaitMs: 300 });
	await downLab("tb-locked");
	t.deepEqual(leftovers("tb-locked", ["tb-locked-a", "tb-locked-r"]), []);
});

rootTest("two ups of one lab at once: one wins, the other is told the lab exists", async (t) => {
	const lab = small("tb-race");
	const results = await Promise.allSettled([upLab(lab), upLab(lab)]);
	try {
		t.is(results.filter((result) => result.status === "fulfilled").length, 1);
		const loser = results.find((result) => result.status === "rejected") as PromiseRejectedResult;
		t.regex(loser.reason.message, /already up|busy/);
	} finally {
		await downLab("tb-race").catch(() => undefined);
	}
	t.deepEqual(leftovers("tb-race", ["tb-race-a", "tb-race-r"]), []);
});

rootTest("a damaged ledger is refused, not acted on", async (t) => {
	await upLab(small("tb-damaged"));
	const path = "/run/testbed/tb-damaged.json";
	const original = (await import("node:fs")).readFileSync(path, "utf8");
	try {
		writeFileSync(path, original.replace('"tb-damaged-a"', '"some-other-namespace"'));
		await t.throwsAsync(downLab("tb-damaged"), { instanceOf: LabStateError, code: "LEDGER_DAMAGED", message: /ledger of lab "tb-damaged" .* is damaged/ });
		t.true(namespaceExists("tb-damaged-a"));
	} finally {
		writeFileSync(path, original);
		await downLab("tb-damaged");
	}
	t.deepEqual(leftovers("tb-damaged", ["tb-damaged-a", "tb-damaged-r"]), []);
});

rootTest("impairments: rate via tbf works here; delay without netem stops with exit 4 before anything is built", async (t) => {
	const features = (await detectFeatures()).features;
	const lab = loadLab(fixture("impaired.yml"));
	if (!features.netem) {
		const error = await t.throwsAsync(upLab(lab), { instanceOf: MissingFeatureError, code: "MISSING_FEATURE", message: /impaired\.yml:13:\d+: this kernel has no netem, needed for impairments on r:e2/ });
		t.is(error!.exitCode, 4);
		t.deepEqual(leftovers(lab.name, lab.nodes.map((node) => node.netns)), []);
		t.log("this kernel has no netem: checked the refusal; the rate-only link is checked below");
	}
	const rateOnly = loadLabText(`
name: tb-rate
nodes:
  r: { kind: router }
  a: {}
links:
  - { endpoints: [a:eth0, r:e1], subnet: 10.0.1.0/24, impair: { rate: 1mbit${features.netem ? ", delay: 20ms" : ""} } }
`);
	try {
		await upLab(rateOnly);
		const qdiscs = await ipJson<{ kind: string; options?: Record<string, unknown> }[]>("tb-rate-a", ["-details", "link", "show", "eth0"]).then(async () => (await execa("tc", ["-n", "tb-rate-a", "-j", "qdisc", "show", "dev", "eth0"])).stdout);
		t.regex(qdiscs, features.netem ? /"kind":"netem"/ : /"kind":"tbf"/);
	} finally {
		await downLab("tb-rate").catch(() => undefined);
	}
	t.deepEqual(leftovers("tb-rate", ["tb-rate-a", "tb-rate-r"]), []);
});

rootTest("down stops processes still running inside the lab", async (t) => {
	const lab = small("tb-procs");
	await upLab(lab);
	const sleeper = execa("ip", ["netns", "exec", "tb-procs-a", "sleep", "60"], { reject: false });
	try {
		await new Promise((resolve) => setTimeout(resolve, 200));
		const result = await downLab("tb-procs");
		t.is(result.processes, 1);
		const exit = await sleeper;
		t.is(exit.signal, "SIGTERM");
	} finally {
		sleeper.kill("SIGKILL");
	}
	t.deepEqual(leftovers("tb-procs", ["tb-procs-a", "tb-procs-r"]), []);
});

rootTest("after `up` is killed with SIGKILL, ls shows the lab as crashed and down removes everything", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	const file = join(dir, "big.yml");
	writeFileSync(file, unitsTopology("tb-sigkill", 40));
	const namespaces = ["tb-sigkill-internet", ...Array.from({ length: 40 }, (_, i) => [`tb-sigkill-nat${i}`, `tb-sigkill-peer${i}`]).flat()];
	const before = await hostSnapshot();
	const child = execa(process.execPath, ["bin/testbed.js", "up", file], { reject: false });
	try {
		const deadline = Date.now() + 10_000;
		while (!namespaceExists("tb-sigkill-internet") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
		child.kill("SIGKILL");
		await child;
		t.is(labStatuses().find((status) => status.lab === "tb-sigkill")?.state, "crashed");
		const result = await downLab("tb-sigkill");
		t.true(result.namespaces.length > 0);
	} finally {
		await downLab("tb-sigkill").catch(() => undefined);
		rmSync(dir, { recursive: true });
	}
	t.deepEqual(leftovers("tb-sigkill", namespaces), []);
	t.deepEqual(hostChanges(before, await hostSnapshot()), []);
});
