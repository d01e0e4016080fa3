// Nodes as lightweight containers on the real kernel: private directories (OverlayFS over the host's,
// files placed, the host's files never change, `diff` shows the upper layers, a disk cap), limits
// (a CPU quota measured by the cgroup's own counters, the OOM killer inside one node only, a fork
// bomb stopped at pids), the path without python3, and a missing controller refused before anything.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { loadLab, loadLabText, MissingFeatureError, upLab } from "../../src/index.ts";
import { cgroupLayout, nodeUsage } from "../../src/apply/cgroups.ts";
import { cgroupDirs } from "../../src/plan/container.ts";
import { startInNode } from "../../src/apply/programs.ts";
import { inLab, leftovers, namespaceExists, rootTest } from "../helpers/host.ts";

const testbed = (args: string[], env: Record<string, string> = {}) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false, env });

/** Ask again every 100 ms until `done` (or 15 s have passed: the last answer is returned either way). */
async function until<T>(ask: () => Promise<T>, done: (answer: T) => boolean): Promise<T> {
	const started = Date.now();
	let answer = await ask();
	while (!done(answer) && Date.now() - started < 15_000) {
		await sleep(100);
		answer = await ask();
	}
	return answer;
}

/** Every file, directory and link under `root` with its content's hash (what a node must never change on the host). */
function treeDigest(root: string): string {
	const hash = createHash("sha256");
	const walk = (dir: string) => {
		let entries: string[] = [];
		try {
			entries = readdirSync(dir).sort();
		} catch {
			return;
		}
		for (const name of entries) {
			const path = join(dir, name);
			const stat = lstatSync(path);
			hash.update(`${path} ${stat.mode} ${stat.size}\n`);
			if (stat.isDirectory()) walk(path);
			else if (stat.isSymbolicLink()) hash.update(readlinkSync(path));
			else if (stat.isFile()) {
				try {
					hash.update(readFileSync(path));
				} catch {}
			}
		}
	};
	walk(root);
	return hash.digest("hex");
}

rootTest("examples/phones: each phone reads its own /etc/peer.conf and writes its own /srv and /tmp; diff shows A/M/D/R; the disk cap holds; the host's /etc and /srv never change", async (t) => {
	const lab = loadLab("examples/phones/phones.yml");
	const before = { etc: treeDigest("/etc"), srv: treeDigest("/srv") };
	await inLab(t, lab, async () => {
		// The same program, the same paths, four different files.
		for (const [phone, next] of [["phone1", "10.20.0.3"], ["phone4", "10.20.0.2"]]) {
			const conf = await testbed(["exec", "phones", phone, "--", "cat", "/etc/peer.conf"]);
			t.is(conf.stdout, `name = ${phone}\npeer = ${next}`, `${phone}'s own config, with its peer's address`);
		}
		const received = await until(() => testbed(["exec", "phones", "phone2", "--", "cat", "/srv/peer/received"]), (result) => /hello from phone1/.test(result.stdout));
		t.regex(received.stdout, /^hello from phone1 #\d+ \(10\.20\.0\.2\)$/m, "phone2 heard phone1 and wrote it to its own /srv");
		t.notRegex(received.stdout, /from phone[234]/, "only phone1 greets phone2");
		t.false(existsSync("/srv/peer"), "the host's /srv has no peer folder");
		t.regex((await testbed(["exec", "phones", "phone1", "--", "cat", "/tmp/peer.pid"])).stdout, /^\d+$/, "phone1 wrote its pid to its /tmp");
		t.false(existsSync("/tmp/peer.pid"), "which is not the host's");
		// Changes of every kind: a modified file, a deleted one, a replaced directory; each on this host's /etc.
		const replaced = ["/etc/default", "/etc/ssl", "/etc/apt"].find((dir) => existsSync(dir))!;
		const deleted = ["/etc/shells", "/etc/issue", "/etc/issue.net"].find((file) => existsSync(file))!;
		const change = await testbed(["exec", "phones", "phone1", "--", "sh", "-c", `echo 'mallory:x:0:0::/:/bin/sh' >> /etc/passwd && rm ${deleted} && rm -rf ${replaced} && mkdir ${replaced} && touch ${replaced}/new`]);
		t.is(change.exitCode, 0, change.stderr);
		t.regex((await testbed(["exec", "phones", "phone1", "--", "grep", "-c", "mallory", "/etc/passwd"])).stdout, /^1$/, "phone1 sees its change");
		t.is((await testbed(["exec", "phones", "phone2", "--", "grep", "-c", "mallory", "/etc/passwd"])).stdout, "0", "phone2 does not");
		const diff = await testbed(["diff", "phones", "phone1"]);
		t.is(diff.exitCode, 0, diff.stderr);
		t.log(diff.stdout);
		for (const line of ["M /etc/passwd", `D ${deleted}`, `R ${replaced}/   (the host's contents are hidden)`, `A ${replaced}/new`, "A /etc/peer.conf   (placed by the topology)", "A /srv/peer/", "A /srv/peer/received", "A /tmp/peer.pid"]) t.true(diff.stdout.split("\n").includes(line), `diff lists "${line}"`);
		const json = JSON.parse((await testbed(["diff", "phones", "phone1", "--json"])).stdout) as { changes: { path: string; change: string }[]; disk: { usedBytes: number; sizeBytes: number } };
		t.deepEqual(json.changes.find((entry) => entry.path === "/etc/passwd")?.change, "modified");
		t.is(json.disk.sizeBytes, 16 * 1024 ** 2, "the tmpfs has the file's `disk: 16M`");
		// The disk cap: 40 MB into a 16M upper layer stops at ENOSPC; the host's disk is not touched.
		const filled = await testbed(["exec", "phones", "phone3", "--", "dd", "if=/dev/zero", "of=/tmp/big", "bs=1M", "count=40"]);
		t.not(filled.exitCode, 0);
		t.regex(filled.stderr, /No space left on device/);
		const after = JSON.parse((await testbed(["diff", "phones", "phone3", "--json"])).stdout) as { disk: { usedBytes: number } };
		t.true(after.disk.usedBytes <= 16 * 1024 ** 2, `phone3's writes stayed within 16M (${after.disk.usedBytes} bytes)`);
		t.false(existsSync("/tmp/big"), "not on the host");
		t.is((await testbed(["diff", "phones", "tower"])).exitCode, 1, "a node without private directories says so");
	});
	t.is(treeDigest("/etc"), before.etc, "the host's /etc is byte for byte as before");
	t.is(treeDigest("/srv"), before.srv, "the host's /srv too");
});

/** What the node's cgroup counted: CPU microseconds. */
const cpuUs = (lab: string, node: Parameters<typeof nodeUsage>[1]) => nodeUsage(lab, node)?.cpuUs ?? 0;

rootTest("limits: a busy loop with cpu 0.25 gets 20–30% of one core; past memory the OOM killer ends it in that node only (ps, logs, exec say so); pids stops a fork bomb while the other node goes on", async (t) => {
	const text = `name: tb-limits
nodes:
  r: { kind: router }
  small: { limits: { cpu: 0.25 } }
  tiny: { limits: { memory: 48M, pids: 24 } }
  other: {}
links:
  - { endpoints: [small:eth0, r:e0], subnet: 10.9.0.0/24 }
  - { endpoints: [other:eth0, r:e1], subnet: 10.9.1.0/24 }
  - { endpoints: [tiny:eth0, r:e2], subnet: 10.9.2.0/24 }
`;
	const lab = loadLabText(text, "limits.yml");
	const small = lab.nodes.find((node) => node.name === "small")!;
	const tiny = lab.nodes.find((node) => node.name === "tiny")!;
	await inLab(t, lab, async () => {
		// CPU: the cgroup's own counter over the loop's run — not a clock of ours.
		const loopSeconds = 2;
		const used = cpuUs(lab.name, small);
		const throttledBefore = nodeUsage(lab.name, small)?.throttled ?? 0;
		const started = performance.now();
		const loop = await startInNode(lab, "small", { argv: ["timeout", String(loopSeconds), "sh", "-c", "while :; do :; done"], env: {}, cwd: "/" });
		await loop.exit();
		const wallUs = (performance.now() - started) * 1000;
		const share = (cpuUs(lab.name, small) - used) / wallUs;
		const throttled = (nodeUsage(lab.name, small)?.throttled ?? 0) - throttledBefore;
		t.log(`busy loop in a node with cpu 0.25: ${(share * 100).toFixed(1)}% of one core over ${(wallUs / 1e6).toFixed(2)} s, throttled in ${throttled} periods`);
		t.true(share <= 0.3, `at most the quota (${(share * 100).toFixed(1)}%)`);
		t.true(share >= 0.2, `and about all of it (${(share * 100).toFixed(1)}%)`);
		t.true(throttled > 0, "the kernel throttled it");

		// Memory: a program under the supervisor and one from exec, each past 48M.
		const keeper = await testbed(["exec", "--detach", "tb-limits", "other", "--", "sleep", "60"]);
		t.is(keeper.exitCode, 0, keeper.stderr);
		const hog = ["python3", "-c", "a = bytearray(200 * 1024 * 1024)"];
		const attached = await testbed(["exec", "tb-limits", "tiny", "--", ...hog]);
		t.is(attached.exitCode, 137, "killed by SIGKILL");
		t.regex(attached.stderr, /killed by the kernel's OOM killer: node tiny reached its memory limit \(48M\)/);
		t.is((await testbed(["exec", "--detach", "tb-limits", "tiny", "--", ...hog])).exitCode, 0);
		// The supervisor writes the verdict into the program's log as the program ends.
		t.regex((await until(() => testbed(["logs", "tb-limits", "tiny"]), (result) => /OOM killer/.test(result.stdout))).stdout, /testbed: killed by the kernel's OOM killer: node tiny reached its memory limit \(48M\)/);
		const ps = JSON.parse((await testbed(["ps", "tb-limits", "--json"])).stdout) as { programs: { node: string; status: string; oomKilled?: string }[]; nodes: { node: string; usage?: { oomKills?: number; memoryLimitBytes?: number } }[] };
		t.regex(ps.programs.find((program) => program.node === "tiny")?.oomKilled ?? "", /OOM killer/, "ps marks the program OOM");
		t.is(ps.programs.find((program) => program.node === "tiny")?.status, "exited");
		t.is(ps.programs.find((program) => program.node === "other")?.status, "running", "the other node's program goes on");
		t.true((ps.nodes.find((node) => node.node === "tiny")?.usage?.oomKills ?? 0) >= 2, "the node's cgroup counted both kills");
		t.is(ps.nodes.find((node) => node.node === "tiny")?.usage?.memoryLimitBytes, 48 * 1024 ** 2);
		t.regex((await testbed(["ps", "tb-limits"])).stdout, /exited \(SIGKILL, OOM\)[\s\S]*small +[\d.]+% of 25%[\s\S]*tiny +[\d.]+% +[\d.]+[KM]? of 48M +\d+ of 24 +2/);

		// pids: 100 sleeps from one shell stop at 24 processes in the node; the other node and the host fork on.
		const bomb = await testbed(["exec", "tb-limits", "tiny", "--", "sh", "-c", "for i in $(seq 100); do sleep 30 </dev/null >/dev/null 2>&1 & done"]);
		t.not(bomb.exitCode, 0);
		t.regex(bomb.stderr, /fork|Resource temporarily unavailable/i);
		const pids = cgroupDirs(cgroupLayout(), lab.name, tiny).find((cgroup) => cgroup.controllers.includes("pids"))!;
		t.true(Number(readFileSync(`${pids.dir}/pids.current`, "utf8")) <= 24, "at most 24 processes");
		t.regex(readFileSync(`${pids.dir}/pids.events`, "utf8"), /max [1-9]/, "the kernel refused forks");
		t.is((await testbed(["exec", "tb-limits", "other", "--", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do true & done; wait; echo ok"])).stdout, "ok");
		// down kills what the fork bomb left (cgroup.kill, or SIGKILL per pid) and removes the cgroups: inLab checks.
	});
});

rootTest("without python3 (the tools path): a container node gets its overlays, files and cgroups all the same; a missing controller is refused before anything is created; a kernel error midway rolls back mounts and cgroups", async (t) => {
	const text = `name: tb-nopy
nodes:
  a:
    private: [/etc]
    files: { /etc/tb-nopy.conf: "peer = \${b}\\n", /etc/tb-nopy/deep/key: { text: "k", mode: "0600" } }
    limits: { cpu: 0.5, pids: 32 }
  b: {}
links:
  - { endpoints: [a:eth0, b:eth0], subnet: 10.9.2.0/24 }
`;
	const dir = await execa("mktemp", ["-d"]);
	const file = join(dir.stdout, "lab.yml");
	await execa("sh", ["-c", 'printf "%s" "$1" > "$2"', "sh", text, file]);
	try {
		const env = { TESTBED_HIDE_TOOLS: "python3" };
		const up = await testbed(["up", file], env);
		t.is(up.exitCode, 0, up.stderr);
		try {
			t.is((await testbed(["exec", "tb-nopy", "a", "--", "cat", "/etc/tb-nopy.conf"], env)).stdout, "peer = 10.9.2.2");
			t.is((await testbed(["exec", "tb-nopy", "a", "--", "stat", "-c", "%a", "/etc/tb-nopy/deep/key"], env)).stdout, "600");
			t.regex((await testbed(["exec", "tb-nopy", "a", "--", "cat", "/proc/self/cgroup"], env)).stdout, /testbed\/tb-nopy\/a/);
			t.false(existsSync("/etc/tb-nopy.conf"));
			const diff = await testbed(["diff", "tb-nopy", "a"], env);
			t.regex(diff.stdout, /^A \/etc\/tb-nopy\.conf {3}\(placed by the topology\)$/m);
		} finally {
			t.is((await testbed(["down", "tb-nopy"], env)).exitCode, 0);
		}
		t.deepEqual(leftovers("tb-nopy", ["tb-nopy-a", "tb-nopy-b"]), []);
	} finally {
		await execa("rm", ["-rf", dir.stdout]);
	}
	// A host whose cgroups lack the memory controller: exit 4 naming it and the fix, nothing created.
	const lab = loadLabText("name: tb-nomem\nnodes:\n  a: { limits: { memory: 64M } }\n  b: {}\nlinks:\n  - { endpoints: [a:eth0, b:eth0], subnet: 10.9.3.0/24 }\n", "nomem.yml");
	const layout = cgroupLayout();
	const error = await t.throwsAsync(upLab(lab, { features: { dummy: true, netem: false, tbf: true, cgroups: { ...layout, controllers: { cpu: layout.controllers.cpu } } } }), { instanceOf: MissingFeatureError });
	t.regex(error!.message, /nomem\.yml:3:8: this host has no cgroup memory controller, needed for node a's `memory:` limit/);
	t.regex((error as MissingFeatureError).fix ?? "", /memory controller/);
	t.false(namespaceExists("tb-nomem-a"));
	// The kernel refuses a route while the container nodes' namespaces and cgroups are being made: all of it goes.
	const rejected = readFileSync("test/fixtures/rejected-midway.yml", "utf8")
		.replace("  b: {}", '  b: { private: [/etc], files: { /etc/x: "y" }, limits: { cpu: 0.5, pids: 16 } }')
		.replace("  r: { kind: router }", "  r: { kind: router, private: [/tmp], limits: { memory: 32M } }");
	const midway = loadLabText(rejected, "rejected.yml");
	t.truthy(midway.nodes.find((node) => node.name === "b")!.private);
	await t.throwsAsync(upLab(midway), { message: /File exists[\s\S]*everything `up` had created was removed/ });
	t.deepEqual(leftovers("tb-reject", midway.nodes.map((node) => node.netns)), []);
});
