// One fixture per problem code: each file names the codes and positions it must produce (`# expect:` lines).
import { readdirSync, readFileSync } from "node:fs";
import test from "ava";
import { checkFile, checkSource } from "../../src/load.ts";
import { parseSource } from "../../src/parse/source.ts";
import { formatProblem, problemCodes, warningCodes, type ProblemCode } from "../../src/vocabulary/problems.ts";

const dir = new URL("../fixtures/invalid/", import.meta.url);
const fixtures = readdirSync(dir).filter((name) => name.endsWith(".yml"));

for (const name of fixtures) {
	test(`invalid/${name}`, (t) => {
		const path = new URL(name, dir).pathname;
		const expected = [...readFileSync(path, "utf8").matchAll(/^# expect: (\S+) (\d+):(\d+)$/gm)].map((m) => `${m[1]} ${m[2]}:${m[3]}`);
		t.true(expected.length > 0, "fixture declares its expected problems");
		const { problems, lab } = checkFile(path);
		t.is(lab, undefined);
		t.deepEqual(
			problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col}`),
			expected,
		);
	});
}

test("every problem code has a fixture", (t) => {
	const codes: readonly ProblemCode[] = problemCodes;
	const covered = new Set(fixtures.flatMap((name) => [...readFileSync(new URL(name, dir), "utf8").matchAll(/^# expect: (\S+)/gm)].map((m) => m[1])));
	t.deepEqual(
		codes.filter((code) => !covered.has(code) && !warningCodes.includes(code)),
		[],
	);
});

test("a node without links is a warning with its position and a fix: the lab still loads", (t) => {
	const checked = checkSource(parseSource("lonely.yml", "name: lonely\nnodes:\n  a: {}\n  b: {}\n  c: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n"));
	t.truthy(checked.lab);
	t.deepEqual(checked.problems, []);
	t.deepEqual(checked.warnings.map((warning) => `${warning.code} ${warning.pos.line}:${warning.pos.col}`), ["NODE_WITHOUT_LINKS 5:3"]);
	t.is(
		formatProblem("lonely.yml", checked.source.text, checked.warnings[0]!, "warning"),
		'lonely.yml:5:3: warning: NODE_WITHOUT_LINKS: node "c" has no links: it can reach nothing and nothing can reach it\n  5 |   c: {}\n    |   ^\n  fix: add a link, e.g. `- endpoints: [c:eth0, OTHER:eth1]`, or remove the node',
	);
});

test("all problems of a file are reported at once, in file order", (t) => {
	const { problems } = checkFile(new URL("../fixtures/many-problems.yml", import.meta.url).pathname);
	t.deepEqual(
		problems.map((problem) => problem.code),
		["BAD_LAB_NAME", "UNKNOWN_KEY", "BAD_INTERFACE_NAME", "UNKNOWN_NODE", "BAD_CIDR"],
	);
});

test("unknown keys suggest the closest known key", (t) => {
	const { problems } = checkFile(new URL("../fixtures/typo.yml", import.meta.url).pathname);
	t.is(problems.length, 2);
	t.regex(problems[0].message, /did you mean "kind"\?/);
	t.regex(problems[1].message, /did you mean "subnet"\?/);
	t.is(problems[1].fix, "rename it to `subnet`");
});

test("the message shows file:line:col, code, the source line and a caret under the column", (t) => {
	const text = "name: demo\nnodes:\n  alice: { knd: host }\n";
	const out = formatProblem("topo.yml", text, { code: "UNKNOWN_KEY", message: 'unknown key "knd"', pos: { line: 3, col: 12 }, fix: "rename it to `kind`" });
	t.is(out, ['topo.yml:3:12: UNKNOWN_KEY: unknown key "knd"', "  3 |   alice: { knd: host }", "    |            ^", "  fix: rename it to `kind`"].join("\n"));
});

test("every example topology is valid", (t) => {
	const examples = readdirSync(new URL("../../topologies/", import.meta.url)).filter((name) => name.endsWith(".yml"));
	t.true(examples.length >= 4);
	for (const name of examples) {
		const { problems } = checkFile(new URL(`../../topologies/${name}`, import.meta.url).pathname);
		t.deepEqual(problems, [], name);
	}
});

test("an alias bomb is refused instead of expanding", (t) => {
	// Expanded, it would be 10^9 checks: the test would not end. Not expanded, one problem per alias.
	const path = new URL("../fixtures/alias-bomb.yml", import.meta.url).pathname;
	const { problems } = checkFile(path);
	t.is(problems.length, 10, "one problem per (unknown) check, nothing expanded");
	t.true(problems.every((problem) => problem.code === "BAD_EXPECT"));
});

test("default-route: a boolean; false is read, anything else is a problem at its position", (t) => {
	const check = (node: string) => checkSource(parseSource("routes.yml", `name: routes\nnodes:\n  r: { kind: router }\n  a: ${node}\nlinks:\n  - endpoints: [a:eth0, r:eth0]\n`));
	const off = check("{ default-route: false }");
	t.deepEqual(off.problems, []);
	t.deepEqual(off.lab?.nodes.find((node) => node.name === "a")?.routes, [], "no automatic default route");
	t.deepEqual(check("{ default-route: true }").problems, []);
	t.deepEqual(check("{ default-route: no-thanks }").problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col}`), ["WRONG_TYPE 4:23"]);
	const typo = check("{ default-routes: false }").problems;
	t.deepEqual(typo.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col}`), ["UNKNOWN_KEY 4:8"]);
	t.regex(typo[0].message, /did you mean "default-route"\?/);
});
