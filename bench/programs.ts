// Benchmark for the user's programs as checks (not a test), ours against a naive baseline in one run:
//   1. The UDP echo matrix (examples/udp-echo: a Python listen/dial pair) over the 7 peers of
//      nat-matrix.yml, 42 ordered pairs, up and down included: `testbed test echo-matrix.yml` against
//      the harness a user writes around `testbed exec` (a bash loop: a listener in the background,
//      a pause for it to bind, the dialer, kill the listener), which builds and removes the same lab.
//   2. What a check costs beyond the program's own time: `run` checks of `true`, and `pair` checks of
//      a listener that binds a UDP socket and a dialer `true` (wall time minus the dialer's time; that
//      includes the listener's start to its bound socket).
//
//   npm run bench:programs [-- --checks 40] [--no-naive]
//
// Labs are named echo-matrix (the example) and bench-progs; each is brought down in `finally`.
// Nothing touches the root namespace.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { downLab } from "../src/apply/down.ts";
import { readLedger } from "../src/apply/ledger.ts";
import { systemPath } from "../src/apply/which.ts";
import { upLab } from "../src/apply/up.ts";
import { runChecks } from "../src/expect/run.ts";
import { labPeers } from "../src/expect/theory.ts";
import { loadLab, loadLabText } from "../src/load.ts";

const { values } = parseArgs({ options: { checks: { type: "string", default: "40" }, "no-naive": { type: "boolean", default: false } } });
const checks = Number(values.checks);
if (!Number.isInteger(checks) || checks < 1 || checks > 1000) throw new Error(`--checks ${values.checks}: use 1..1000`);
if (process.getuid?.() !== 0) throw new Error("bench: run as root (it builds network namespaces)");
process.env.PATH = systemPath();

const testbed = resolve("bin/testbed.js");
const echoFile = resolve("examples/udp-echo/echo-matrix.yml");
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function timed(argv: string[], input?: string): { ms: number; code: number; stdout: string; stderr: string } {
	const started = performance.now();
	const result = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", input, maxBuffer: 64 << 20 });
	return { ms: performance.now() - started, code: result.status ?? 1, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

/** The harness a user writes around `testbed exec`: one pair at a time, a pause for the listener to bind. */
function naiveHarness(pairs: [string, string][]): string {
	const lines = [
		"set -u",
		`tb() { node ${testbed} "$@"; }`,
		// The listener is started without the function, so that $! is testbed exec itself and `kill` reaches it.
		`tb up ${echoFile} > /dev/null || exit 1`,
		"passed=0; failed=0",
		"run_pair() { # dialer listener",
		'  local dial=$1 listen=$2 listen_addr dial_addr',
		'  listen_addr=$(tb addr echo-matrix "$listen"); dial_addr=$(tb addr echo-matrix "$dial")',
		`  node ${testbed} exec echo-matrix "$listen" --env TESTBED_ROLE=listen --env TESTBED_PEER="$dial" --env TESTBED_PEER_ADDR="$dial_addr" -- python3 examples/udp-echo/peer.py & local listener=$!`,
		"  sleep 0.3",
		'  if tb exec echo-matrix "$dial" --env TESTBED_ROLE=dial --env TESTBED_PEER="$listen" --env TESTBED_PEER_ADDR="$listen_addr" --env ECHO_TIMEOUT=0.5 -- python3 examples/udp-echo/peer.py > /dev/null 2>&1; then passed=$((passed+1)); else failed=$((failed+1)); fi',
		'  kill "$listener"; wait "$listener" 2> /dev/null',
		"}",
		...pairs.map(([dial, listen]) => `run_pair ${dial} ${listen}`),
		"tb down echo-matrix > /dev/null",
		'echo "$passed $failed"',
	];
	return `${lines.join("\n")}\n`;
}

async function echoMatrix(): Promise<void> {
	if (readLedger("echo-matrix")) throw new Error('a lab "echo-matrix" is up already: testbed down echo-matrix');
	const ours = timed([process.execPath, testbed, "test", echoFile, "--json"]);
	const report = JSON.parse(ours.stdout || "{}") as { passed?: number; failed?: number; checks?: { programs?: { role: string; durationMs: number }[] }[] };
	const dialerMs = (report.checks ?? []).map((check) => check.programs?.find((program) => program.role === "dial")?.durationMs ?? 0);
	console.log(`1. UDP echo matrix over nat-matrix.yml's 7 peers, 42 ordered pairs, up and down included`);
	console.log(`   testbed test echo-matrix.yml   ${seconds(ours.ms)}   ${report.passed} passed, ${report.failed} failed (exit ${ours.code}); the dialers alone ran ${seconds(dialerMs.reduce((a, b) => a + b, 0))} in sum`);
	if (values["no-naive"]) return;
	const lab = loadLab(echoFile);
	const peers = labPeers(lab);
	const pairs = peers.flatMap((a) => peers.filter((b) => b !== a).map((b): [string, string] => [a, b]));
	const naive = timed(["bash", "-s"], naiveHarness(pairs));
	if (readLedger("echo-matrix")) await downLab("echo-matrix");
	const [passed, failed] = naive.stdout.trim().split(" ").map(Number);
	console.log(`   bash loop around testbed exec  ${seconds(naive.ms)}   ${passed} connected, ${failed} did not (exit ${naive.code})   → testbed ${(naive.ms / ours.ms).toFixed(1)}× faster`);
}

async function overhead(): Promise<void> {
	const dir = mkdtempSync(join(tmpdir(), "testbed-bench-"));
	const bind = 'import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999)); time.sleep(60)';
	const bindOnly = 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999))';
	// `run` checks of `true`; then the listener's own start-to-bound time (the same script, ending once bound).
	const runChecksYaml = [...Array.from({ length: checks }, () => "  - { run: a, command: [\"true\"] }"), ...Array.from({ length: 10 }, () => `  - { run: b, command: [python3, -c, ${JSON.stringify(bindOnly)}] }`)].join("\n");
	const pairChecksYaml = Array.from({ length: Math.max(1, Math.round(checks / 4)) }, () => `  - { pair: [a, b], listen: [python3, -c, ${JSON.stringify(bind)}], dial: ["true"] }`).join("\n");
	const lab = loadLabText(`name: bench-progs\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - { endpoints: [a:eth0, b:eth0], subnet: 10.77.0.0/24 }\nexpect:\n${runChecksYaml}\n${pairChecksYaml}\n`, join(dir, "bench.yml"));
	if (readLedger(lab.name)) throw new Error(`a lab "${lab.name}" is up already: testbed down ${lab.name}`);
	try {
		await upLab(lab);
		const perCheck: { kind: string; wallMs: number; programMs: number }[] = [];
		// Warm the node's namespaces (made on first use) and the page cache, then measure each check alone.
		await runChecks(lab, lab.expect!.slice(0, 1));
		for (const check of lab.expect!) {
			const started = performance.now();
			const [result] = await runChecks(lab, [check]);
			const wallMs = performance.now() - started;
			const dial = result.programs?.find((program) => program.role !== "listen");
			if (!result.ok) throw new Error(`${result.name}: ${result.why}`);
			perCheck.push({ kind: result.kind === "run" && /python3/.test(result.name) ? "bind" : result.kind, wallMs, programMs: dial?.durationMs ?? 0 });
		}
		const of = (kind: string) => perCheck.filter((row) => row.kind === kind);
		const runs = of("run");
		const pairs = of("pair");
		const bindMs = median(of("bind").map((row) => row.programMs));
		const runExtra = runs.map((row) => row.wallMs - row.programMs);
		const pairExtra = pairs.map((row) => row.wallMs - row.programMs - bindMs);
		console.log(`\n2. what a check costs beyond the programs' own time (medians; ${runs.length} run checks, ${pairs.length} pair checks)`);
		console.log(`   run   check ${median(runs.map((row) => row.wallMs)).toFixed(1)} ms − \`true\` ${median(runs.map((row) => row.programMs)).toFixed(1)} ms → overhead ${median(runExtra).toFixed(1)} ms (max ${Math.max(...runExtra).toFixed(1)} ms)`);
		console.log(`   pair  check ${median(pairs.map((row) => row.wallMs)).toFixed(1)} ms − dialer \`true\` ${median(pairs.map((row) => row.programMs)).toFixed(1)} ms − the listener's start until bound ${bindMs.toFixed(1)} ms → overhead ${median(pairExtra).toFixed(1)} ms (max ${Math.max(...pairExtra).toFixed(1)} ms)`);
	} finally {
		await downLab(lab.name);
		rmSync(dir, { recursive: true, force: true });
	}
}

console.log(`bench:programs on ${availableParallelism()} CPUs, Linux ${release()}, Node ${process.version}\n`);
await echoMatrix();
await overhead();
console.log("\ntargets: the echo matrix ≤ 20 s; overhead per check ≤ 100 ms");
