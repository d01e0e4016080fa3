#!/usr/bin/env node
// Runs the ava suite (TAP output) and ends with the line CI reads: "N passed, N failed, N skipped".
//
// With no arguments, two ava processes run side by side: the integration tests (test/integration/:
// root, real namespaces; one file at a time, since each checks that the root namespace is as it
// found it) and the pure tests (everything else: no root, no kernel state, no shared files). The
// integration tests mostly wait on the kernel and on timers, so the pure tests — at the lowest
// priority (nice 19) — use the CPU they leave idle; both are written to be steady on a loaded machine. The integration output streams
// live; the pure tests' output follows when they are done. With arguments: those files, one at a time.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

// The CLI the tests run is the compiled one in dist/: build it from the sources being tested.
const build = spawnSync(process.execPath, ["scripts/build.js", "--quiet"], { stdio: "inherit" });
if (build.status !== 0) {
	process.stdout.write("\n0 passed, 1 failed, 0 skipped\n");
	process.exit(1);
}

/** Every *.test.ts under `dir`, sorted. */
function testFiles(dir) {
	return readdirSync(dir, { withFileTypes: true })
		.flatMap((entry) => (entry.isDirectory() ? testFiles(join(dir, entry.name)) : entry.name.endsWith(".test.ts") ? [join(dir, entry.name)] : []))
		.sort();
}

const given = process.argv.slice(2);
const all = testFiles("test");
const runs = given.length
	? [{ files: given, live: true }]
	: [
			{ files: all.filter((file) => file.startsWith("test/integration/")), live: true, lane: "integration tests" },
			{ files: all.filter((file) => !file.startsWith("test/integration/")), live: false, lane: "other tests" },
		];

// Where the time goes: each test's share (from the previous result line to its own), summed per file.
const perFile = new Map();
const totals = { passed: 0, failed: 0, skipped: 0 };
let exitCode = 0;

// Each lane's wall time (with no arguments): which one the run waited for.
const laneSeconds = [];

function runAva({ files, live, lane }) {
	const started = performance.now();
	return new Promise((resolve) => {
		const ava = [process.execPath, "node_modules/ava/entrypoints/cli.mjs", "--tap", ...files];
		// The pure tests at the lowest priority: they take only the CPU the kernel tests leave idle.
		const argv = live ? ava : ["nice", "-n", "19", ...ava];
		const child = spawn(argv[0], argv.slice(1), { stdio: ["inherit", "pipe", "inherit"] });
		let output = "";
		let last = performance.now();
		let pending = "";
		child.stdout.on("data", (chunk) => {
			output += chunk;
			if (live) process.stdout.write(chunk);
			pending += chunk;
			const lines = pending.split("\n");
			pending = lines.pop();
			for (const line of lines) {
				// "ok 12 - validate › fuzz-topology › title" (ava drops the folder when all files share it).
				const title = /^(?:not )?ok \d+ - (.+)$/.exec(line)?.[1];
				const cut = title?.lastIndexOf(" › ") ?? -1;
				if (cut < 0) continue;
				const now = performance.now();
				const key = `${live && !given.length ? "integration/" : ""}${title.slice(0, cut).replaceAll(" › ", "/")}`;
				perFile.set(key, (perFile.get(key) ?? 0) + (now - last));
				last = now;
			}
		});
		child.on("close", (code) => {
			const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(output)?.[1] ?? 0);
			let failed = count("fail");
			if (code !== 0 && failed === 0) failed = 1; // a crash or timeout that ava did not count as a test
			totals.passed += count("pass");
			totals.failed += failed;
			totals.skipped += count("skip") + count("todo");
			if (code !== 0) exitCode = code ?? 1;
			if (lane) laneSeconds.push(`${lane} ${((performance.now() - started) / 1000).toFixed(0)} s`);
			resolve(live ? "" : output);
		});
	});
}

const outputs = await Promise.all(runs.filter((run) => run.files.length).map(runAva));
for (const output of outputs) if (output) process.stdout.write(`\n${output}`);
const slowest = [...perFile].sort((x, y) => y[1] - x[1]).slice(0, 12);
process.stdout.write(`\n# slowest test files: ${slowest.map(([file, ms]) => `${file} ${(ms / 1000).toFixed(1)} s`).join(", ")}\n`);
if (laneSeconds.length) process.stdout.write(`# wall time: ${laneSeconds.join(", ")}\n`);
process.stdout.write(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
process.exitCode = exitCode;
