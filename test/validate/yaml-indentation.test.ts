// Indentation mistakes: the line that is off, the keys it could line up with, and the rest of the file still checked.
import test from "ava";
import { checkSource } from "../../src/load.ts";
import { parseSource } from "../../src/parse/source.ts";
import { formatProblem } from "../../src/vocabulary/problems.ts";

const check = (text: string) => {
	const checked = checkSource(parseSource("t.yml", text));
	return checked.problems.map((problem) => formatProblem("t.yml", text, problem)).join("\n");
};

test("a key indented between two levels: its own line and column, and both columns it could mean", (t) => {
	t.is(
		check("name: t\nnodes:\n  a: {}\n  b:\n    kind: router\n   routes: []\nlinks: []\n"),
		"t.yml:6:4: YAML_SYNTAX: `routes:` is indented 3 spaces, which lines up with no key above it\n  6 |    routes: []\n    |    ^\n  fix: indent it 4 spaces like `kind:` (line 5), or indent it 2 spaces like `b:` (line 4)",
	);
});

test("a key indented deeper than the key: value above it: the deeper line, not the one yaml names", (t) => {
	t.is(
		check("name: t\nnodes:\n  b:\n    kind: router\n      routes: []\nlinks: []\n"),
		"t.yml:5:7: YAML_SYNTAX: `routes:` is indented 6 spaces, deeper than `kind: router` on line 4 (4), so YAML reads it as part of that value\n  5 |       routes: []\n    |       ^\n  fix: indent `routes:` by 4 spaces, like `kind:`",
	);
});

test("a top-level key indented by one space", (t) => {
	t.regex(check("name: t\nnodes:\n  a: {}\n links: []\n"), /^t\.yml:4:2: YAML_SYNTAX: `links:` is indented 1 space, which lines up with no key above it\n[^]*fix: indent it 2 spaces like `a:` \(line 3\), or indent it 0 spaces like `nodes:` \(line 2\)$/);
});

test("a tab in the indentation says to use spaces", (t) => {
	t.regex(check("name: t\nnodes:\n\ta: {}\nlinks: []\n"), /YAML_SYNTAX: a tab in the indentation: YAML indents with spaces only[^]*fix: replace the tab with spaces/);
});

test("problems outside the damaged section are still reported; echoes inside it are not", (t) => {
	const text = "name: t\nnodes:\n  a: {}\n  b:\n    kind: router\n   routes: []\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n    subnet: 10.0.0.0/33\n";
	const { problems, lab } = checkSource(parseSource("t.yml", text));
	t.is(lab, undefined);
	t.deepEqual(problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col}`), ["YAML_SYNTAX 6:4", "BAD_CIDR 9:13"]);
});
