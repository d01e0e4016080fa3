#!/usr/bin/env node
// Compile the CLI and the library to JavaScript in dist/ (esbuild). `npm ci` runs it (`prepare`);
// so do `make`, the test runner and `npm run build`.
//
// The CLI is CommonJS, one file per command: Node starts a CommonJS program about 12 ms sooner than
// an ES module one, and a command loads only its own file (`testbed ls` does not load YAML, the
// planner or execa). dist/cli.cjs is the dispatcher; dist/commands/NAME.cjs are the commands, each
// bundled whole; dist/shared/errors.cjs is the one module they share, so that an error thrown in a
// command is an instance of the classes the dispatcher checks. The library is one ES module,
// dist/index.js. bin/testbed.js runs dist/ when it is at least as new as every source file, the
// sources through tsx otherwise, so an edited checkout is never run stale.
//
// The library's types are declarations in dist/types/ (tsc, about 5 s, alongside esbuild): an outside
// suite's TypeScript reads them, not our sources, so its compiler options need not match ours.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import sources from "./sources.cjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}dist`;
const started = performance.now();
const newest = sources.newestSource(root);
/** Declarations from sources no older than the newest source are kept (tsc is most of the build's time). */
const typesCurrent = (() => {
	try {
		return JSON.parse(readFileSync(`${outdir}/types/build.json`, "utf8")).newestSourceMs >= newest.mtimeMs;
	} catch {
		return false;
	}
})();
for (const entry of existsSync(outdir) ? readdirSync(outdir) : []) if (!(typesCurrent && entry === "types")) rmSync(`${outdir}/${entry}`, { recursive: true, force: true });

const common = {
	absWorkingDir: root,
	bundle: true,
	platform: "node",
	target: "node20",
	// esbuild builds the agents at run time; Graphviz (only `graph` loads it) is 1.4 MB of WebAssembly.
	external: ["esbuild", "@viz-js/viz"],
	sourcemap: "linked",
	logLevel: "warning",
};

/** CommonJS has no import.meta: give project.ts the file's URL the way CommonJS knows it. */
const commonjs = {
	...common,
	format: "cjs",
	outExtension: { ".js": ".cjs" },
	define: { "import.meta.url": "__testbedModuleUrl" },
	banner: { js: '"use strict"; var __testbedModuleUrl = require("node:url").pathToFileURL(__filename).href; // built by scripts/build.js from src/' },
	// import() of a command becomes require(): no ES module loader at all.
	supported: { "dynamic-import": false },
};

/** Imports of src/errors.ts go to dist/shared/errors.cjs; imports of commands (from main.ts) to their own files. */
const shared = (fromDir) => ({
	name: "testbed-shared",
	setup(build) {
		build.onResolve({ filter: /(^|\/)errors\.ts$/ }, (args) => (args.importer.endsWith("errors.ts") ? undefined : { path: `${fromDir}shared/errors.cjs`, external: true }));
		build.onResolve({ filter: /^\.\/commands\/[a-z-]+\.ts$/ }, (args) => ({ path: `${fromDir}${args.path.replace(/\.ts$/, ".cjs")}`, external: true }));
	},
});

/** Commands that load a dependency only in a rare case: it stays in node_modules (`down FILE.yml` reads the file's name with YAML). */
const lean = { down: ["yaml"] };

const commands = readdirSync(`${root}src/cli/commands`)
	.filter((name) => name.endsWith(".ts"))
	.map((name) => name.slice(0, -3));

/** Declarations of the library (the package's "types"); skipped, and said, where TypeScript is not installed. */
async function declarations() {
	if (typesCurrent) return;
	const tsc = `${root}node_modules/typescript/bin/tsc`;
	if (!existsSync(tsc)) return process.stderr.write("note: TypeScript is not installed (npm ci installs it): no declarations in dist/types\n");
	const flags = ["--declaration", "--emitDeclarationOnly", "--outDir", "dist/types", "--rootDir", ".", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--target", "ES2022", "--strict", "--allowImportingTsExtensions", "--skipLibCheck", "--types", "node", "--resolveJsonModule"];
	await promisify(execFile)(process.execPath, [tsc, "src/index.ts", ...flags], { cwd: root }).catch((error) => {
		throw new Error(`declarations of the library (tsc) failed:\n${error.stdout}${error.stderr}`);
	});
	writeFileSync(`${outdir}/types/build.json`, `${JSON.stringify({ newestSourceMs: newest.mtimeMs, newestSource: newest.path })}\n`);
}

await Promise.all([
	declarations(),
	build({ ...commonjs, entryPoints: { cli: "src/cli/main.ts" }, outdir, plugins: [shared("./")] }),
	build({ ...commonjs, entryPoints: Object.fromEntries(commands.filter((name) => !lean[name]).map((name) => [name, `src/cli/commands/${name}.ts`])), outdir: `${outdir}/commands`, plugins: [shared("../")] }),
	...Object.entries(lean).map(([name, external]) => build({ ...commonjs, external: [...common.external, ...external], entryPoints: { [name]: `src/cli/commands/${name}.ts` }, outdir: `${outdir}/commands`, plugins: [shared("../")] })),
	build({ ...commonjs, entryPoints: { errors: "src/errors.ts" }, outdir: `${outdir}/shared` }),
	build({ ...common, format: "esm", entryPoints: { index: "src/index.ts" }, outdir, banner: { js: 'import { createRequire as __testbedRequire } from "node:module"; const require = __testbedRequire(import.meta.url); // built by scripts/build.js from src/' } }),
]);
writeFileSync(`${outdir}/build.json`, `${JSON.stringify({ newestSourceMs: newest.mtimeMs, newestSource: newest.path, builtAt: new Date().toISOString() })}\n`);
if (!process.argv.includes("--quiet")) process.stderr.write(`built dist/ in ${Math.round(performance.now() - started)} ms\n`);
