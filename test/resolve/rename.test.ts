// A lab under another name (up --name, init --name, loadLab(file, { name })): its namespaces follow the name.
import { readFileSync } from "node:fs";
import test from "ava";
import { TopologyError, UsageError } from "../../src/errors.ts";
import { loadLab, loadLabText } from "../../src/load.ts";
import { renamedNamespace, renameText } from "../../src/resolve/rename.ts";

const path = (name: string) => new URL(`../../topologies/${name}.yml`, import.meta.url).pathname;
const namespaces = (lab: { nodes: { name: string; netns: string }[] }) => Object.fromEntries(lab.nodes.map((node) => [node.name, node.netns]));

test("the rule: the file's <name>- becomes NAME-, anything else gets NAME- in front, the same name changes nothing", (t) => {
	t.is(renamedNamespace("seed-host", "seed", "alice"), "alice-host");
	t.is(renamedNamespace("unr", "seed", "alice"), "alice-unr");
	t.is(renamedNamespace("seedling", "seed", "alice"), "alice-seedling", "only the whole name and its dash are replaced");
	t.is(renamedNamespace("", "seed", "alice"), "alice-", "an empty prefix");
	t.is(renamedNamespace("unr", "seed", "seed"), "unr");
});

test("--name renames the lab; default namespaces and a fixed netns: both follow it (seed-p2p's `netns: unr`)", (t) => {
	t.deepEqual(namespaces(loadLab(path("seed-p2p"))), { unr: "unr", host: "seed-host" });
	const alice = loadLab(path("seed-p2p"), { name: "alice" });
	t.is(alice.name, "alice");
	t.deepEqual(namespaces(alice), { unr: "alice-unr", host: "alice-host" });
	const bob = loadLab(path("seed-p2p"), { name: "bob" });
	t.deepEqual(namespaces(bob), { unr: "bob-unr", host: "bob-host" });
	t.deepEqual(
		alice.nodes.map((node) => node.netns).filter((netns) => bob.nodes.some((other) => other.netns === netns)),
		[],
		"two students' copies share no namespace",
	);
	t.deepEqual(namespaces(loadLab(path("seed-p2p"), { name: "seed" })), { unr: "unr", host: "seed-host" }, "its own name: unchanged");
});

test("--name with a prefix: and with netns: values that start with the file's name", (t) => {
	const text = 'name: class\nprefix: "c-"\nnodes:\n  a: {}\n  b: { netns: class-bee }\n  r: { kind: router, netns: gw }\nlinks:\n  - { endpoints: [a:eth0, r:e1], subnet: 10.0.1.0/24 }\n  - { endpoints: [b:eth0, r:e2], subnet: 10.0.2.0/24 }\n';
	t.deepEqual(namespaces(loadLabText(text)), { a: "c-a", b: "class-bee", r: "gw" });
	t.deepEqual(namespaces(loadLabText(text, "<inline>", { name: "s7" })), { a: "s7-c-a", b: "s7-bee", r: "s7-gw" });
});

test("the rest of the lab is the file's: nodes, addresses, routes, events", (t) => {
	const original = loadLab(path("roaming"));
	const renamed = loadLab(path("roaming"), { name: "own-x" });
	const strip = (lab: typeof original) => JSON.stringify({ ...lab, name: "", nodes: lab.nodes.map((node) => ({ ...node, netns: "" })) }).replaceAll(/"netns":"[^"]*"/g, '"netns":""');
	t.is(strip(renamed), strip(original));
	t.true(renamed.nodes.every((node) => node.netns.startsWith("own-x-")));
});

test("a bad --name is a usage error (exit 2) with the rule", (t) => {
	for (const bad of ["Alice", "a_b", "-x", "x-", "1lab", "", "a-very-long-name-for-a-lab-x"]) {
		const error = t.throws(() => loadLab(path("seed-p2p"), { name: bad }), { instanceOf: UsageError }, bad);
		t.is(error!.exitCode, 2);
		t.is(error!.message, `--name "${bad}" is not a valid lab name: use 1-24 characters: a-z, 0-9 and -, starting with a letter, not ending with -`);
	}
});

test("a --name that makes a namespace too long points at the name and says to shorten --name", (t) => {
	const text = "name: s\nnodes:\n  a-rather-long-node-name-here: {}\n";
	t.notThrows(() => loadLabText(text));
	const error = t.throws(() => loadLabText(text, "lab.yml", { name: "a-long-student-name" }), { instanceOf: TopologyError });
	t.regex(error!.message, /^lab\.yml:1:7: NAMESPACE_TOO_LONG: namespace name "a-long-student-name-a-rather-long-node-name-here" is 48 characters; the limit is 32/m);
	t.regex(error!.message, /use a shorter --name: every namespace of lab "a-long-student-name" starts with "a-long-student-name-"/);
});

test("the file's text under another name: name:, prefix: and netns: rewritten, comments and layout kept", (t) => {
	const original = readFileSync(path("seed-p2p"), "utf8");
	const renamed = renameText(original, "alice");
	const changed = original.split("\n").flatMap((line, index) => (line === renamed.split("\n")[index] ? [] : [`${line} → ${renamed.split("\n")[index]}`]));
	t.deepEqual(changed, ["name: seed → name: alice", "    netns: unr →     netns: alice-unr"]);
	t.deepEqual(namespaces(loadLabText(renamed)), namespaces(loadLab(path("seed-p2p"), { name: "alice" })), "the file written loads as --name loads the original");
	const flow = renameText('name: "class"   # the lab\nprefix: c-\nnodes: { a: { netns: class-a }, b: {netns: "x"} }\n', "true");
	t.is(flow, 'name: "true"   # the lab\nprefix: true-c-\nnodes: { a: { netns: true-a }, b: {netns: true-x} }\n', "quoted where YAML would read another type");
});
