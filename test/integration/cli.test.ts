// The CLI as users run it: exit codes, stdio pass-through, Ctrl-C during up.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { downLab, loadLabText, upLab } from "../../src/index.ts";
import { unitsTopology } from "../helpers/generate.ts";
import { hostChanges, hostSnapshot, inLab, leftovers, rootTest } from "../helpers/host.ts";
import { netnsInode, pidsInNamespaces } from "../../src/apply/namespaces.ts";

const testbed = (args: string[], options: { input?: string } = {}) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false, ...options });

rootTest("exec passes stdin, stdout, stderr and the exit code through; unknown nodes are refused", async (t) => {
	const lab = loadLabText("name: tb-exec\nnodes:\n  a: {}\n");
	await inLab(t, lab, async () => {
		const result = await testbed(["exec", "tb-exec", "a", "--", "sh", "-c", "cat; echo out; echo err >&2; exit 5"], { input: "from stdin\n" });
		t.is(result.exitCode, 5);
		t.is(result.stdout, "from stdin\nout");
		t.is(result.stderr, "err");
		const inside = await testbed(["exec", "tb-exec", "a", "--", "sh", "-c", "readlink /proc/self/ns/net"]);
		t.not(inside.stdout, (await execa("readlink", ["/proc/self/ns/net"])).stdout, "the command ran in the node's namespace");
		const unknown = await testbed(["exec", "tb-exec", "zed", "--", "true"]);
		t.is(unknown.exitCode, 2, "an unknown node is a usage mistake");
		t.regex(unknown.stderr, /lab "tb-exec" has no node "zed"; nodes: a/);
	});
});

rootTest("exec passes SIGTERM and SIGHUP on and exits with the program's status; killing exec never leaves the program behind", async (t) => {
	const lab = loadLabText("name: tb-sig\nnodes:\n  a: {}\n");
	await inLab(t, lab, async () => {
		const inode = netnsInode("tb-sig-a")!;
		const inNode = () => pidsInNamespaces(new Set([inode]));
		for (const signal of ["SIGTERM", "SIGHUP"] as const) {
			const script = `trap 'echo got ${signal}; exit 7' ${signal.slice(3)}; echo ready; while :; do sleep 0.05; done`;
			const child = testbed(["exec", "tb-sig", "a", "--", "sh", "-c", script]);
			let output = "";
			child.stdout!.on("data", (chunk: Buffer) => (output += chunk));
			await waitFor(() => output.includes("ready")); // the trap is set
			child.kill(signal);
			const result = await child;
			t.is(result.exitCode, 7, `${signal}: ${result.stderr}`);
			t.regex(result.stdout, new RegExp(`got ${signal}`));
			await waitFor(() => inNode().length === 0);
			t.deepEqual(inNode(), [], `${signal}: nothing left running in the node`);
		}
		// A program that ignores SIGTERM still ends with exec's own end, even a SIGKILL (which exec cannot pass on).
		const stubborn = testbed(["exec", "tb-sig", "a", "--", "sleep", "1000"]);
		await waitFor(() => inNode().length > 0);
		stubborn.kill("SIGKILL");
		await stubborn;
		await waitFor(() => inNode().length === 0);
		t.deepEqual(inNode(), [], "SIGKILL of exec: the program died with it (no orphan, no zombie)");
	});
});

/** Wait until `ready()` holds, checking every 10 ms, for at most 10 s (a guard against hangs). */
async function waitFor(ready: () => boolean): Promise<void> {
	for (let i = 0; i < 1000 && !ready(); i++) await sleep(10);
}

rootTest("ls --json and down --json report labs as one JSON document", async (t) => {
	await upLab(loadLabText("name: tb-ls\nnodes:\n  a: {}\n  b: {}\n"));
	try {
		const ls = await testbed(["ls", "--json"]);
		const labs = JSON.parse(ls.stdout);
		const mine = labs.find((lab: { lab: string }) => lab.lab === "tb-ls");
		t.like(mine, { state: "up", nodes: 2, namespaces: { present: 2, expected: 2 } });
	} finally {
		const down = await testbed(["down", "tb-ls", "--json"]);
		t.deepEqual(JSON.parse(down.stdout).namespaces, ["tb-ls-a", "tb-ls-b"]);
	}
});

rootTest("up exits 3 for an invalid file and creates nothing", async (t) => {
	const before = await hostSnapshot();
	const result = await testbed(["up", "test/fixtures/typo.yml"]);
	t.is(result.exitCode, 3);
	t.regex(result.stderr, /typo\.yml:3:12: UNKNOWN_KEY/);
	t.false(existsSync("/run/testbed/typo.json"));
	t.deepEqual(hostChanges(before, await hostSnapshot()), []);
});

rootTest("Ctrl-C during up rolls back everything it had created", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	const file = join(dir, "big.yml");
	writeFileSync(file, unitsTopology("tb-sigint", 60));
	const namespaces = ["tb-sigint-internet", ...Array.from({ length: 60 }, (_, i) => [`tb-sigint-nat${i}`, `tb-sigint-peer${i}`]).flat()];
	const before = await hostSnapshot();
	const child = testbed(["up", file]);
	try {
		// Interrupt as soon as the ledger exists, i.e. while namespaces are being made.
		const deadline = Date.now() + 10_000;
		while (!existsSync("/run/testbed/tb-sigint.json") && Date.now() < deadline) await sleep(2);
		child.kill("SIGINT");
		const result = await child;
		t.is(result.exitCode, 1, result.stdout);
		t.regex(result.stderr, /interrupted: everything `up` had created was removed/);
	} finally {
		await downLab("tb-sigint").catch(() => undefined);
		rmSync(dir, { recursive: true });
	}
	t.deepEqual(leftovers("tb-sigint", namespaces), []);
	t.deepEqual(hostChanges(before, await hostSnapshot()), []);
});

rootTest("shell runs an interactive shell inside the node and passes its exit code back", async (t) => {
	await inLab(t, loadLabText("name: tb-shell\nnodes:\n  a: {}\n"), async () => {
		const result = await testbed(["shell", "tb-shell", "a"], { input: "echo node=$TESTBED_NODE; readlink /proc/self/ns/net; exit 3\n" });
		t.is(result.exitCode, 3);
		t.regex(result.stdout, /^node=a$/m);
		t.notRegex(result.stdout, new RegExp((await execa("readlink", ["/proc/self/ns/net"])).stdout.replace(/[[\]]/g, "\\$&")));
	});
});

rootTest("without root: validate and plan work, up says it needs root and exits 4", async (t) => {
	const asNobody = (args: string[]) => execa("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "bin/testbed.js", ...args], { reject: false, env: { HOME: "/tmp" } });
	const validate = await asNobody(["validate", "topologies/two-nats.yml"]);
	t.is(validate.exitCode, 0, validate.stderr);
	const plan = await asNobody(["plan", "topologies/two-nats.yml"]);
	t.is(plan.exitCode, 0, plan.stderr);
	t.regex(plan.stdout, /^ip netns add two-nats-alice$/m);
	const up = await asNobody(["up", "topologies/two-nats.yml"]);
	t.is(up.exitCode, 4);
	t.regex(up.stderr, /^testbed: `testbed up` changes network namespaces and needs root; run it with sudo/);
	t.false(existsSync("/run/netns/two-nats-alice"));
});

rootTest("doctor reports what this host has, with fixes, as text and JSON", async (t) => {
	const json = await testbed(["doctor", "--json"]);
	t.is(json.exitCode, 0, json.stdout);
	const report = JSON.parse(json.stdout);
	const check = (name: string) => report.checks.find((entry: { name: string }) => entry.name === name);
	for (const name of ["root", "ip", "nft", "sysctl", "nsenter", "setpriv", "netns", "veth", "bridge", "nftNat"]) t.true(check(name)?.ok, name);
	t.is(typeof check("dummy")?.ok, "boolean");
	if (!check("dummy").ok) t.regex(check("dummy").fix, /empty bridge/);
	const text = await testbed(["doctor"]);
	t.regex(text.stdout, /this host can run testbed labs/);
});

rootTest("a lab name that is not one never becomes a path (down ../x, a file naming ../x)", async (t) => {
	const bad = await testbed(["down", "../../tmp/x"]);
	t.is(bad.exitCode, 2);
	t.regex(bad.stderr, /"\.\.\/\.\.\/tmp\/x" is not a lab name/);
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	try {
		writeFileSync(join(dir, "evil.yml"), "name: ../../tmp/x\nnodes: {}\n");
		const viaFile = await testbed(["down", join(dir, "evil.yml")]);
		t.is(viaFile.exitCode, 2, viaFile.stderr);
	} finally {
		rmSync(dir, { recursive: true });
	}
});

rootTest("output: progress and colours only on a terminal, never with NO_COLOR; pipes get plain lines", async (t) => {
	const piped = await testbed(["up", "topologies/two-nats.yml"]);
	try {
		t.is(piped.exitCode, 0, piped.stderr);
		t.notRegex(piped.stderr + piped.stdout, /\r|\x1b\[/, "no progress redraws or colours into a pipe");
		// A terminal, through script(1).
		const onTty = (env: Record<string, string>) => execa("script", ["-qec", `${process.execPath} bin/testbed.js reach two-nats --timeout 300`, "/dev/null"], { reject: false, env: { ...process.env, TERM: "xterm", ...env } });
		const coloured = await onTty({});
		t.regex(coloured.stdout, /\x1b\[32m✓/, "colours on a terminal");
		const plain = await onTty({ NO_COLOR: "1" });
		t.notRegex(plain.stdout, /\x1b\[3\dm/, "never with NO_COLOR");
		t.regex(plain.stdout, /✓/);
	} finally {
		await testbed(["down", "two-nats"]);
	}
});
