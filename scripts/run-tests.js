#!/usr/bin/env node
// Runs the ava suite (TAP output) and ends with the line CI reads: "N passed, N failed, N skipped".
import { spawn, spawnSync } from "node:child_process";

// The CLI the tests run is the compiled one in dist/: build it from the sources being tested.
const build = spawnSync(process.execPath, ["scripts/build.js", "--quiet"], { stdio: "inherit" });
if (build.status !== 0) {
	process.stdout.write("\n0 passed, 1 failed, 0 skipped\n");
	process.exit(1);
}

const child = spawn(process.execPath, ["node_modules/ava/entrypoints/cli.mjs", "--tap", ...process.argv.slice(2)], { stdio: ["inherit", "pipe", "inherit"] });
let output = "";
// Where the time goes: each test's share (from the previous result line to its own), summed per file.
const perFile = new Map();
let last = performance.now();
let pending = "";
child.stdout.on("data", (chunk) => {
	output += chunk;
	process.stdout.write(chunk);
	pending += chunk;
	const lines = pending.split("\n");
	pending = lines.pop();
	for (const line of lines) {
		const file = /^(?:not )?ok \d+ - (.+?) › (.+?) › /.exec(line);
		if (!file) continue;
		const now = performance.now();
		const key = `${file[1]}/${file[2]}`;
		perFile.set(key, (perFile.get(key) ?? 0) + (now - last));
		last = now;
	}
});
child.on("close", (code) => {
	const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, "m").exec(output)?.[1] ?? 0);
	const passed = count("pass");
	let failed = count("fail");
	const skipped = count("skip") + count("todo");
	if (code !== 0 && failed === 0) failed = 1; // a crash or timeout that ava did not count as a test
	const slowest = [...perFile].sort((x, y) => y[1] - x[1]).slice(0, 12);
	process.stdout.write(`\n# slowest test files: ${slowest.map(([file, ms]) => `${file} ${(ms / 1000).toFixed(1)} s`).join(", ")}\n`);
	process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
	process.exitCode = code ?? 1;
});
