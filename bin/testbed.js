#!/usr/bin/env node
// testbed CLI entry (CommonJS: bin/package.json). Runs the compiled CLI in dist/ (built by `npm ci`,
// `make` or `npm run build`); where dist/ is missing or older than a source file, the TypeScript
// sources through tsx instead, so an edited checkout never runs stale code.
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { newestSource } = require("../scripts/sources.cjs");

const root = join(__dirname, "..");

function built() {
	try {
		const stamp = JSON.parse(readFileSync(join(root, "dist", "build.json"), "utf8"));
		return stamp.newestSourceMs >= newestSource(root).mtimeMs;
	} catch {
		return false;
	}
}

// Node 22.1 and later keep compiled code between runs (in the OS temp folder); Node 20 has no such cache.
require("node:module").enableCompileCache?.();

async function start() {
	if (!process.env.TESTBED_FROM_SOURCE && built()) return require("../dist/cli.cjs").main;
	const { register } = await import("tsx/esm/api");
	register();
	return (await import("../src/cli/main.ts")).main;
}

start().then(
	async (main) => {
		process.exitCode = await main(process.argv.slice(2));
	},
	(error) => {
		process.stderr.write(`testbed: cannot start: ${error?.stack ?? error}\n`);
		process.exitCode = 1;
	},
);
