#!/usr/bin/env node
// Compile the CLI and the library to JavaScript in dist/ (esbuild: bundled, split per command, so a
// command loads only its own code). `npm ci` runs it (`prepare`); so do `make` and the test runner.
// bin/testbed.js runs dist/ when it is at least as new as every source file, the sources through
// tsx otherwise — an edited checkout is never run stale.
import { rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { newestSource } from "./sources.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}dist`;
const started = performance.now();
const newest = newestSource(root);
rmSync(outdir, { recursive: true, force: true });
await build({
	absWorkingDir: root,
	entryPoints: { cli: "src/cli/main.ts", index: "src/index.ts" },
	outdir,
	bundle: true,
	splitting: true,
	format: "esm",
	platform: "node",
	target: "node20",
	// Packages whose files must stay where they are: esbuild builds the agents at run time, and
	// Graphviz (only `graph` loads it) is 1.4 MB of WebAssembly.
	external: ["esbuild", "@viz-js/viz"],
	chunkNames: "chunks/[name]-[hash]",
	sourcemap: "linked",
	logLevel: "warning",
	// Some dependencies are CommonJS and call require() for Node's modules (execa's cross-spawn).
	banner: { js: 'import { createRequire as __testbedRequire } from "node:module"; const require = __testbedRequire(import.meta.url); // built by scripts/build.js from src/' },
});
writeFileSync(`${outdir}/build.json`, `${JSON.stringify({ newestSourceMs: newest.mtimeMs, newestSource: newest.path, builtAt: new Date().toISOString() })}\n`);
if (!process.argv.includes("--quiet")) process.stderr.write(`built dist/ in ${Math.round(performance.now() - started)} ms\n`);
