// The examples/ folder, run as its README says: programs nobody here wrote, as the user's checks.
// - webrtc-ice: werift (an independent WebRTC stack from npm) with coturn's turnserver as STUN server,
//   on one pair that must connect (full cone → port-restricted) and one that must not without a relay
//   (symmetric → port-restricted), ICE timeouts short;
// - lecture-nc: the lecture's `nc -l -p 8000` as a program, a client reaching it by name;
// - udp-echo: a Python listen/dial pair over pairs of nat-matrix.yml's peers, both ways.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { which } from "../../src/apply/which.ts";
import { leftovers, rootTest } from "../helpers/host.ts";

const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });

interface Check {
	name: string;
	ok: boolean;
	measured: string;
	result?: Record<string, unknown>;
	programs?: { role: string; tail: string[] }[];
}

/** A skip that says why, for a program the host lacks (`make test` installs it). */
function lacks(t: { log(message: string): void; pass(): void }, program: string, debianPackage: string): boolean {
	if (which(program)) return false;
	t.log(`skipped: ${program} is not installed (Debian package ${debianPackage}; \`make test\` installs it)`);
	t.pass();
	return true;
}

rootTest("examples/webrtc-ice: werift with coturn as STUN connects full cone → port-restricted, and cannot connect symmetric → port-restricted", async (t) => {
	if (lacks(t, "turnserver", "coturn")) return;
	const example = resolve("examples/webrtc-ice");
	const dir = mkdtempSync(join(tmpdir(), "testbed-ice-"));
	const file = join(dir, "ice-pairs.yml");
	// The example's programs and checks on three of nat-matrix.yml's peers (its own file runs all 42 pairs).
	writeFileSync(
		file,
		`
name: tb-ice
nodes:
  internet: { kind: router }
  stun:
    programs:
      turn:
        run: [turnserver, -n, --stun-only, --no-auth, --no-cli, --no-tls, --no-dtls, --listening-ip, "\${stun}", --listening-port, "3478", --log-file, stdout, --pidfile, /dev/null]
        ready: { udp: 3478, within: 5s }
      signal:
        run: [node, ${example}/signal.mjs]
        ready: { tcp: 8080, within: 5s }
  full-cone: { kind: nat, nat: { type: full-cone } }
  port-restr: { kind: nat, nat: { type: port-restricted } }
  symmetric: { kind: nat, nat: { type: symmetric } }
  p-full: {}
  p-port: {}
  p-sym: {}
links:
  - { endpoints: [stun:eth0, internet:e0], subnet: 203.0.113.0/24 }
  - { endpoints: [p-full:eth0, full-cone:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [full-cone:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [p-port:eth0, port-restr:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [port-restr:wan, internet:e3], subnet: 198.51.100.8/30 }
  - { endpoints: [p-sym:eth0, symmetric:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [symmetric:wan, internet:e4], subnet: 198.51.100.12/30 }
expect:
  - pair: [p-full, p-port]
    listen: [node, ${example}/peer.mjs]
    dial: [node, ${example}/peer.mjs]
    env: { SIGNAL: "\${stun}:8080", STUN: "\${stun}:3478", ICE_TIMEOUT: "8" }
    result: pass
    within: 20s
  - pair: [p-sym, p-port]
    listen: [node, ${example}/peer.mjs]
    dial: [node, ${example}/peer.mjs]
    env: { SIGNAL: "\${stun}:8080", STUN: "\${stun}:3478", ICE_TIMEOUT: "3" }
    result: fail
    within: 20s
`,
	);
	try {
		const run = await testbed(["test", file, "--json"]);
		const report = JSON.parse(run.stdout || "{}") as { checks?: Check[] };
		t.is(run.exitCode, 0, `${run.stderr}\n${JSON.stringify(report.checks, null, 1)}`);
		const [connects, cannot] = report.checks!;
		t.true(connects.ok);
		// What werift reported: a data channel through the two NATs, with server-reflexive or peer-reflexive candidates.
		t.like(connects.result, { peer: "p-port", path: "direct" });
		t.is(typeof connects.result!.rtt_ms, "number");
		t.regex(String(connects.result!.remote), /^(srflx|prflx) 198\.51\.100\.10:\d+$/, "p-port seen at its NAT's public address");
		t.true(cannot.ok);
		const dial = cannot.programs!.find((program) => program.role === "dial")!;
		t.true(dial.tail.some((line) => /no data channel to p-port within 3 s|ICE failed between p-sym and p-port/.test(line)), dial.tail.join("\n"));
	} finally {
		await testbed(["down", "tb-ice"]);
		rmSync(dir, { recursive: true, force: true });
	}
	t.deepEqual(leftovers("tb-ice", ["tb-ice-stun", "tb-ice-p-full", "tb-ice-p-port", "tb-ice-p-sym"]), []);
});

rootTest("examples/lecture-nc: the lecture's nc -l -p 8000 as a program; the host side reaches it by name, and the server's log has what it sent", async (t) => {
	if (lacks(t, "nc", "netcat-openbsd")) return;
	try {
		const up = await testbed(["up", "examples/lecture-nc/lecture.yml"]);
		t.is(up.exitCode, 0, up.stderr);
		const test = await testbed(["test", "lecture"]);
		t.is(test.exitCode, 0, test.stdout + test.stderr);
		t.regex(test.stdout, /2 passed, 0 failed/);
		// nc -l serves one connection: what the check sent is in the server's log.
		t.regex((await testbed(["logs", "lecture", "testnet:server"])).stdout, /^hello from the lecture$/m);
	} finally {
		await testbed(["down", "lecture"]);
	}
	t.deepEqual(leftovers("lecture", ["testnet", "host"]), []);
});

rootTest("examples/udp-echo: a Python listen/dial pair over pairs of nat-matrix.yml's peers, both ways — only the LAN pair connects, as the file expects", async (t) => {
	// The example's own file, on three of its 21 pairs (npm run bench:programs runs all 42 ordered pairs).
	const example = resolve("examples/udp-echo");
	const text = readFileSync(join(example, "echo-matrix.yml"), "utf8");
	const dir = mkdtempSync(join(tmpdir(), "testbed-echo-"));
	const file = join(dir, "echo-matrix.yml");
	const pairs = "pairs: [[lan1, lan2], [p-full, p-port], [p-sym, p-cg]]";
	t.true(text.includes("pairs: all") && text.includes("[python3, peer.py]"), "the example still has the lines this test narrows");
	writeFileSync(file, text.replace("pairs: all", pairs).replaceAll("[python3, peer.py]", `[python3, ${join(example, "peer.py")}]`));
	try {
		const run = await testbed(["test", file, "--json"]);
		const report = JSON.parse(run.stdout || "{}") as { checks?: Check[]; passed?: number; failed?: number };
		t.is(run.exitCode, 0, run.stderr);
		t.like(report, { passed: 6, failed: 0 });
		const connected = report.checks!.filter((check) => check.measured.startsWith("pass")).map((check) => check.name);
		t.deepEqual(connected, ["matrix lan1 → lan2", "matrix lan2 → lan1"]);
		t.like(report.checks!.find((check) => check.name === "matrix lan1 → lan2")!.result, { peer: "lan2" });
		t.deepEqual(report.checks!.map((check) => check.name).sort(), ["matrix lan1 → lan2", "matrix lan2 → lan1", "matrix p-cg → p-sym", "matrix p-full → p-port", "matrix p-port → p-full", "matrix p-sym → p-cg"]);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
	t.deepEqual(leftovers("echo-matrix", ["echo-matrix-stun", "echo-matrix-p-full", "echo-matrix-lan1"]), []);
});
