// The code's shape, checked: src/ reads as its pipeline. Each stage imports only itself and the
// stages before it; nothing below the CLI imports the CLI; processes start in one place; the library
// never ends the process. Imports are read with TypeScript's own parser (ts.preProcessFile).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import ts from "typescript";

const src = fileURLToPath(new URL("../src/", import.meta.url));

/**
 * The stages, lowest first: a module may import its own stage and those listed before it. `vocabulary`
 * holds the words every stage shares (names, problem codes, outcomes); `load`, the library
 * (`lab-handle`, `index`) and the CLI sit on top of the pipeline.
 */
const stages = ["vocabulary", "errors", "project", "parse", "validate", "resolve", "plan", "render", "apply", "drivers", "inspect", "expect", "report", "load", "lab-handle", "index", "cli"] as const;

/** The modules that start processes (node:child_process, execa): everything else goes through them. */
const processModules = ["apply/run.ts", "apply/spawn.ts", "apply/terminal.ts"];
/** The modules that may end the process: the CLI, and the supervisor daemon (a process of its own). */
const exitModules = (path: string) => path.startsWith("cli/") || path === "apply/supervisor.ts";

function sources(dir = src): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : []));
}

/** What a module imports for its values (not `import type`), including `import()` of a module. */
function valueImports(text: string): string[] {
	const file = ts.createSourceFile("module.ts", text, ts.ScriptTarget.ES2022, true);
	const found: string[] = [];
	const visit = (node: ts.Node) => {
		if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && !node.importClause?.isTypeOnly) found.push(node.moduleSpecifier.text);
		if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier) && !node.isTypeOnly) found.push(node.moduleSpecifier.text);
		if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) found.push(node.arguments[0].text);
		ts.forEachChild(node, visit);
	};
	visit(file);
	return found;
}

const modules = sources().map((path) => {
	const text = readFileSync(path, "utf8");
	const imports = ts.preProcessFile(text, true, true).importedFiles.map((file) => file.fileName);
	return { path: relative(src, path), text, imports, values: valueImports(text), local: imports.filter((name) => name.startsWith(".")).map((name) => relative(src, resolve(dirname(path), name))) };
});
const stageOf = (path: string) => path.split("/")[0].replace(/\.ts$/, "");

test("every module of src/ belongs to a stage", (t) => {
	t.true(modules.length > 50, `${modules.length} modules read`);
	t.deepEqual(
		modules.filter((module) => !(stages as readonly string[]).includes(stageOf(module.path))).map((module) => module.path),
		[],
	);
});

test("no module outside src/cli/ imports src/cli/", (t) => {
	const found = modules.flatMap((module) => (module.path.startsWith("cli/") ? [] : module.local.filter((target) => target.startsWith("cli/")).map((target) => `${module.path} → ${target}`)));
	t.deepEqual(found, []);
});

test("stages import downward only (parse → validate → resolve → plan → render → apply → drivers → inspect → expect → report)", (t) => {
	const rank = (path: string) => (stages as readonly string[]).indexOf(stageOf(path));
	const upward = modules.flatMap((module) => module.local.filter((target) => !target.startsWith("..") && rank(target) > rank(module.path)).map((target) => `${module.path} (${stageOf(module.path)}) → ${target} (${stageOf(target)})`));
	t.deepEqual(upward, []);
});

test("plan and render are pure: they start no process and read no file", (t) => {
	const impure = modules
		.filter((module) => ["plan", "render"].includes(stageOf(module.path)))
		.flatMap((module) => module.values.filter((name) => /^(node:)?(child_process|fs|fs\/promises)$|^execa$/.test(name) || /\/apply\//.test(name)).map((name) => `${module.path} → ${name}`));
	t.deepEqual(impure, []);
});

test("processes start only in the process modules (apply/run.ts, spawn.ts, terminal.ts)", (t) => {
	const starters = modules.filter((module) => module.values.some((name) => /^(node:)?child_process$|^execa$/.test(name))).map((module) => module.path);
	t.deepEqual(starters.filter((path) => !processModules.includes(path)), []);
	t.deepEqual(processModules.filter((path) => !starters.includes(path)), [], "each process module starts processes");
});

test("the library never ends the process: only the CLI and the supervisor daemon call process.exit", (t) => {
	const exits = modules.filter((module) => !exitModules(module.path) && /\bprocess\.exit\(/.test(module.text.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ""))).map((module) => module.path);
	t.deepEqual(exits, []);
});
