#!/usr/bin/env node
// testbed CLI entry. Runs the compiled CLI in dist/ (built by `npm ci`, `make` or `npm run build`);
// where dist/ is missing or older than a source file, the TypeScript sources through tsx instead.
import { readFileSync } from "node:fs";
import module from "node:module";
import { fileURLToPath } from "node:url";
import { newestSource } from "../scripts/sources.js";

const root = new URL("../", import.meta.url);

function built() {
	try {
		const stamp = JSON.parse(readFileSync(new URL("dist/build.json", root), "utf8"));
		return stamp.newestSourceMs >= newestSource(fileURLToPath(root)).mtimeMs;
	} catch {
		return false;
	}
}

// Node 22.1 and later keep compiled code between runs (in the OS temp folder); Node 20 has no such cache.
module.enableCompileCache?.();

let main;
if (!process.env.TESTBED_FROM_SOURCE && built()) ({ main } = await import("../dist/cli.js"));
else {
	const { register } = await import("tsx/esm/api");
	register();
	({ main } = await import("../src/cli/main.ts"));
}
process.exitCode = await main(process.argv.slice(2));
