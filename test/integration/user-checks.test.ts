// The user's programs as checks: `run` (exit status, output, deadline), `pair` (listen/dial, the
// dialer's exit decides, its last JSON line kept) and `matrix` (both directions, beside theory),
// through `testbed up` and `testbed test LAB` on a lab that is already up, as a CI job runs them.
// Reports (text, JSON, JUnit, HTML) carry command, exit, duration and both sides' last lines.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { leftovers, namespaceExists, rootTest } from "../helpers/host.ts";

const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });
const peer = resolve("examples/udp-echo/peer.py");

interface Program {
	role: string;
	node: string;
	command: string;
	exitCode: number | null;
	durationMs: number;
	timedOut: boolean;
	tail: string[];
}
interface Check {
	name: string;
	kind: string;
	ok: boolean;
	expected: string;
	measured: string;
	why?: string;
	theory?: string;
	result?: Record<string, unknown>;
	pair?: { dialer: string; listener: string };
	programs?: Program[];
}

rootTest("run, pair and matrix checks against a lab that is up: outcomes, JSON results, failures with both sides' output in every report", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "testbed-checks-"));
	const file = join(dir, "checks.yml");
	writeFileSync(
		file,
		`
name: tb-checks
nodes:
  internet: { kind: router }
  home: { kind: nat, nat: { type: port-restricted } }
  alice: {}
  server: {}
links:
  - { endpoints: [alice:eth0, home:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [home:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [server:eth0, internet:e2], subnet: 203.0.113.0/24 }
expect:
  - run: alice
    command: [hostname]
    output: "^alice$"
  - run: alice
    command: "echo about to fail >&2; exit 3"
    exit: 3
  - run: alice
    command: [sleep, "30"]
    within: 500ms
  - run: server
    command: "echo the wrong words"
    output: "^right$"
  - pair: [alice, server]
    listen: [python3, ${peer}]
    dial: [python3, ${peer}]
    env: { ECHO_TIMEOUT: "0.5" }
    result: pass
  - pair: [server, alice]
    listen: [python3, ${peer}]
    dial: [python3, ${peer}]
    env: { ECHO_TIMEOUT: "0.5" }
    result: fail
  - matrix:
      listen: [python3, ${peer}]
      dial: [python3, ${peer}]
      env: { ECHO_TIMEOUT: "0.5" }
      pairs: [[alice, server]]
      result: pass
`,
	);
	const junit = join(dir, "report.xml");
	const html = join(dir, "report.html");
	try {
		const up = await testbed(["up", file]);
		t.is(up.exitCode, 0, up.stderr);

		const json = await testbed(["test", "tb-checks", "--json", "--junit", junit, "--html", html]);
		t.is(json.exitCode, 1, "three checks fail as written: the timeout, the output mismatch, server → alice in the matrix");
		const report = JSON.parse(json.stdout) as { checks: Check[]; passed: number; failed: number };
		const byName = (name: string) => report.checks.find((check) => check.name === name)!;
		t.deepEqual(
			report.checks.map((check) => [check.name, check.ok]),
			[
				["run alice: hostname", true],
				["run alice: echo about to fail >&2; exit 3", true],
				["run alice: sleep 30", false],
				["run server: echo the wrong words", false],
				["pair alice → server", true],
				["pair server → alice", true],
				["matrix alice → server", true],
				["matrix server → alice", false],
			],
		);
		t.like(report, { passed: 5, failed: 3 });

		const timeout = byName("run alice: sleep 30");
		t.is(timeout.why, "not done within 0.50 s");
		t.like(timeout.programs![0], { role: "run", node: "alice", command: "sleep 30", timedOut: true });
		t.true(timeout.programs![0].durationMs >= 500, `stopped after its deadline, not before (${timeout.programs![0].durationMs} ms)`);
		const mismatch = byName("run server: echo the wrong words");
		t.is(mismatch.why, "its output has no match for /^right$/");
		t.deepEqual(mismatch.programs![0].tail, ["stdout: the wrong words"]);
		t.deepEqual(byName("run alice: echo about to fail >&2; exit 3").programs![0].tail, ["stderr: about to fail"]);

		// The dialer's last JSON line is the pair's result; the reply came back from the NAT's public side.
		const through = byName("pair alice → server");
		t.like(through.result, { peer: "server" });
		t.is(typeof through.result!.rtt_ms, "number");
		t.deepEqual(through.pair, { dialer: "alice", listener: "server" });
		t.is(through.theory, "direct");

		// The failed matrix cell: both sides' command, exit status, duration and output.
		const cell = byName("matrix server → alice");
		t.is(cell.expected, "pass");
		t.regex(cell.measured, /^fail \(dialer exit 1, \d+\.\d\d s\)$/);
		t.regex(cell.why!, /^expected pass, the dialer ended with exit 1; theory for the two NATs says /);
		const [listen, dial] = cell.programs!;
		t.like(listen, { role: "listen", node: "alice", command: `python3 ${peer}` });
		t.like(dial, { role: "dial", node: "server", exitCode: 1, timedOut: false });
		t.true(dial.tail.includes("stderr: no echo from alice at 192.168.1.2:9999"), dial.tail.join("\n"));

		const xml = readFileSync(junit, "utf8");
		t.is((xml.match(/<testcase /g) ?? []).length, 8);
		t.regex(xml, /failures="3"/);
		t.regex(xml, /dial on server: python3 \S+peer\.py/);
		t.regex(xml, /no echo from alice at 192\.168\.1\.2:9999/);
		const page = readFileSync(html, "utf8");
		t.regex(page, /no echo from alice at 192\.168\.1\.2:9999/);
		t.regex(page, /matrix server → alice/);

		// The text report: failures with their details, and the dialer × listener matrix.
		const text = await testbed(["test", "tb-checks"]);
		t.is(text.exitCode, 1);
		t.regex(text.stdout, /5 passed, 3 failed/);
		t.regex(text.stdout, /your program, dialer × listener/);
		t.regex(text.stdout, /fail≠pass ✗/);
		t.regex(text.stdout, /no echo from alice at 192\.168\.1\.2:9999/);
		// `testbed test LAB` leaves the lab as it found it: up.
		t.true(namespaceExists("tb-checks-alice"));
	} finally {
		await testbed(["down", "tb-checks"]);
		rmSync(dir, { recursive: true, force: true });
	}
	t.deepEqual(leftovers("tb-checks", ["tb-checks-internet", "tb-checks-home", "tb-checks-alice", "tb-checks-server"]), []);
});
