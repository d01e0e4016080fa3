// The CLI layer: argument parsing is pure; commands run in-process with a captured Io.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import test from "ava";
import { createRequire } from "node:module";
import { commandHelpText, commands, parseCommandLine, type CommandName } from "../../src/cli/args.ts";
import { golden } from "../helpers/golden.ts";
import type { Io } from "../../src/cli/io.ts";
import { main } from "../../src/cli/main.ts";
import { UsageError } from "../../src/errors.ts";

function capture(): Io & { stdout: string; stderr: string } {
	const io = {
		stdout: "",
		stderr: "",
		color: false,
		out: (text: string) => void (io.stdout += text.endsWith("\n") ? text : `${text}\n`),
		err: (text: string) => void (io.stderr += text.endsWith("\n") ? text : `${text}\n`),
		json: (value: unknown) => void (io.stdout += `${JSON.stringify(value)}\n`),
	};
	return io;
}

test("parses commands, options and positionals", (t) => {
	t.deepEqual(parseCommandLine(["up", "topo.yml", "--force"]), { command: "up", positionals: ["topo.yml"], options: { force: true }, rest: [] });
	t.deepEqual(parseCommandLine(["down", "--all"]), { command: "down", positionals: [], options: { all: true }, rest: [] });
	t.is(parseCommandLine([]), "help");
	t.deepEqual(parseCommandLine(["plan", "--help"]), { help: "plan" });
	t.deepEqual(parseCommandLine(["help", "capture"]), { help: "capture" });
	t.deepEqual(parseCommandLine(["exec", "lab", "alice", "-h"]), { help: "exec" }, "help before the missing `--` complaint");
	t.deepEqual(parseCommandLine(["exec", "lab", "alice", "--", "ls", "--help"]), { command: "exec", positionals: ["lab", "alice"], options: {}, rest: ["ls", "--help"] }, "the command's own --help passes through");
});

test("every command has help of its own with examples (golden: test/golden/help.txt)", async (t) => {
	const names = (Object.keys(commands) as CommandName[]).filter((name) => !(commands[name] as { hidden?: boolean }).hidden);
	for (const name of names) t.true(((commands[name] as { examples?: unknown[] }).examples?.length ?? 0) > 0, `${name} has examples`);
	golden(t, "help.txt", names.map((name) => `$ testbed ${name} --help\n${commandHelpText(name)}\n`).join("\n"));
	const io = capture();
	t.is(await main(["capture", "--help"], io), 0);
	t.regex(io.stdout, /^usage: testbed capture LAB NODE:IFACE/);
	t.regex(io.stdout, /examples:\n {2}sudo testbed capture two-nats home1:wan --seconds 5 +# five seconds/);
	t.notRegex(io.stdout, /testbed punch LAB A B \[/, "not the global help");
});

test("exec passes everything after -- through untouched", (t) => {
	const line = parseCommandLine(["exec", "lab", "alice", "--", "ping", "-c", "1", "--json"]);
	t.deepEqual(line, { command: "exec", positionals: ["lab", "alice"], options: {}, rest: ["ping", "-c", "1", "--json"] });
});

for (const [argv, pattern] of [
	[["frobnicate"], /unknown command "frobnicate"/],
	[["up"], /expected 1 argument, got 0/],
	[["up", "a.yml", "--forse"], /Unknown option '--forse'/],
	[["down"], /give a lab \(or its file\) or --all/],
	[["down", "x", "--all"], /give a lab \(or its file\) or --all/],
	[["exec", "lab", "alice"], /give the command after `--`/],
	[["exec", "lab", "alice", "ip", "-4", "a"], /^put `--` before the command: testbed exec lab alice -- ip -4 a\nusage: testbed exec LAB NODE/],
	[["exec", "lab", "alice", "--env", "A=1", "ping", "-c1", "stun"], /^put `--` before the command: testbed exec lab alice --env A=1 -- ping -c1 stun\n/],
] as const) {
	test(`usage error: ${argv.join(" ")}`, (t) => {
		t.throws(() => parseCommandLine([...argv]), { instanceOf: UsageError, message: pattern });
	});
}

test("usage errors exit 2 with one message and no stack trace", async (t) => {
	const io = capture();
	t.is(await main(["up"], io), 2);
	t.regex(io.stderr, /^testbed: expected 1 argument/);
	t.notRegex(io.stderr, /at .*\.ts:\d+/);
});

test("validate: ok exits 0; problems exit 3 with file:line:col, code, caret", async (t) => {
	const ok = capture();
	t.is(await main(["validate", "topologies/two-nats.yml"], ok), 0);
	t.regex(ok.stdout, /two-nats\.yml: ok \(lab "two-nats": 6 nodes, 5 links\)/);
	const bad = capture();
	t.is(await main(["validate", "test/fixtures/typo.yml"], bad), 3);
	t.regex(bad.stderr, /^test\/fixtures\/typo\.yml:3:12: UNKNOWN_KEY: unknown key "knd" in node "alice"; did you mean "kind"\?\n {2}3 \| {3}alice: \{ knd: host \}\n {4}\| {12}\^/);
	t.regex(bad.stderr, /2 problems; nothing was created/);
});

test("validate --json is one JSON document with every problem", async (t) => {
	const io = capture();
	t.is(await main(["validate", "test/fixtures/typo.yml", "--json"], io), 3);
	const report = JSON.parse(io.stdout);
	t.false(report.ok);
	t.deepEqual(
		report.problems.map((problem: { code: string; line: number; col: number }) => `${problem.code} ${problem.line}:${problem.col}`),
		["UNKNOWN_KEY 3:12", "UNKNOWN_KEY 7:5"],
	);
});

test("a missing file is a clear topology error, not a crash", async (t) => {
	const io = capture();
	t.is(await main(["validate", "no/such/file.yml"], io), 3);
	t.regex(io.stderr, /no\/such\/file\.yml:1:1: YAML_SYNTAX: cannot read the file: no such file/);
});

test("plan prints the commands grouped per namespace; an invalid file exits 3", async (t) => {
	const io = capture();
	t.is(await main(["plan", "topologies/two-nats.yml"], io), 0);
	t.regex(io.stdout, /^ip netns add two-nats-alice$/m);
	t.regex(io.stdout, /^ip -n two-nats-alice route add default via 192\.168\.1\.1 dev eth0$/m);
	t.regex(io.stdout, /^ip netns exec two-nats-home1 nft -f - <<'EOF'$/m);
	const bad = capture();
	t.is(await main(["plan", "test/fixtures/typo.yml"], bad), 3);
	t.is(bad.stdout, "");
	const renamed = capture();
	t.is(await main(["plan", "topologies/seed-p2p.yml", "--name", "ada"], renamed), 0);
	t.regex(renamed.stdout, /^ip netns add ada-unr$/m, "the fixed netns: unr follows the name");
	t.notRegex(renamed.stdout, /^ip netns add (unr|seed-host)$/m);
	const badName = capture();
	t.is(await main(["plan", "topologies/seed-p2p.yml", "--name", "Bad_1"], badName), 2);
	t.regex(badName.stderr, /--name "Bad_1" is not a valid lab name/);
});

test("init writes a starter topology that validates, with the schema comment pointing at this schema", async (t) => {
	const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
	const { tmpdir } = await import("node:os");
	const { join } = await import("node:path");
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	try {
		const file = join(dir, "mine.yml");
		const io = capture();
		t.is(await main(["init", "cgnat", "-o", file], io), 0);
		const text = readFileSync(file, "utf8");
		t.regex(text.split("\n")[0], /^# yaml-language-server: \$schema=.*schema\/topology\.schema\.json$/);
		t.is(await main(["validate", file], capture()), 0);
		const again = capture();
		t.is(await main(["init", "cgnat", "-o", file], again), 1);
		t.regex(again.stderr, /exists; use --force/);
		const unknown = capture();
		t.is(await main(["init", "nope"], unknown), 2);
		t.regex(unknown.stderr, /templates: cgnat, dual-stack, flaky-uplink, lan, lecture-nat, nat-matrix, nat-reboot, nat-zoo, port-mapping, roaming, seed-p2p, two-nats/);
	} finally {
		rmSync(dir, { recursive: true });
	}
});

// ── the CLI as a process ───────────────────────────────────────────────────────────────────────

test("`testbed plan … | head -1` ends quietly: no EPIPE stack trace, exit 0", async (t) => {
	// nat-zoo's full plan is about 240 kB, far more than a pipe holds: the writes after `head` exits fail.
	const result = spawnSync("bash", ["-c", `set -o pipefail; ${JSON.stringify(process.execPath)} bin/testbed.js plan topologies/nat-zoo.yml --full | head -1`], { encoding: "utf8" });
	t.is(result.stdout, "# testbed plan for lab \"nat-zoo\" (topologies/nat-zoo.yml)\n");
	t.is(result.stderr, "");
	t.is(result.status, 0);
});

const { newestSource } = createRequire(import.meta.url)("../../scripts/sources.cjs") as { newestSource: (root: string) => { mtimeMs: number } };

test("the CLI runs from dist/ when it is built from the current sources, and from the sources with TESTBED_FROM_SOURCE", (t) => {
	const stamp = JSON.parse(readFileSync("dist/build.json", "utf8")) as { newestSourceMs: number };
	t.true(stamp.newestSourceMs >= newestSource(process.cwd()).mtimeMs, "the test runner built dist/ from these sources");
	for (const env of [{}, { TESTBED_FROM_SOURCE: "1" }]) {
		const result = spawnSync(process.execPath, ["bin/testbed.js", "validate", "topologies/two-nats.yml"], { encoding: "utf8", env: { ...process.env, ...env } });
		t.is(result.status, 0, result.stderr);
		t.regex(result.stdout, /two-nats\.yml: ok \(lab "two-nats"/);
	}
});
