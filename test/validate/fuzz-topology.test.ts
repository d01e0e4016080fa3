// Hostile input to the topology loader (issue 5, point 6), property-based with fast-check: random
// text and unicode, random YAML documents, random topologies with hostile names, mutations of the
// example files, huge files, deep nesting and alias bombs. For every input checkSource() returns
// (never throws), with either a lab or at least one problem — each with a known code, a position
// inside the text and a message — and nothing a loaded lab hands to a process (names, namespaces,
// interfaces, addresses, routes, the rendered batches) can carry a shell metacharacter, a line
// break or a `..` path segment.
//
// FUZZ_RUNS=N raises every property to at least N cases (`npm run soak`); FUZZ_SEED=S replays a run
// (each property prints its seed). Inputs that could take down or hang the process (deep nesting,
// alias amplification, quadratic blow-ups) run in a child process that is killed if it hangs, so a
// failure is a failed test, not a dead worker. "Not quadratic" is checked as a ratio measured in one
// child: the loader's time for k·n against its time for n — never against a wall-clock limit.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import YAML from "yaml";
import { checkSource, type Checked } from "../../src/load.ts";
import { parseSource } from "../../src/parse/source.ts";
import { problemCodes } from "../../src/vocabulary/problems.ts";
import { planLab } from "../../src/plan/plan.ts";
import { allFeatures } from "../../src/plan/operations.ts";
import { renderPlan } from "../../src/render/batch.ts";
import { stateDir } from "../../src/apply/state-files.ts";
import type { Lab } from "../../src/resolve/lab.ts";
import { fcOptions, logSeed, runs } from "../helpers/fuzz.ts";

// ── run counts ───────────────────────────────────────────────────────────────────────────────────


// ── the contract ─────────────────────────────────────────────────────────────────────────────────

const knownCodes = new Set<string>(problemCodes);

/** What may reach a process argument or a path: no shell metacharacter, space, quote or line break. */
const safeText = /^[A-Za-z0-9_.:/-]+$/;
/** Namespace and interface names also become one path component (/run/netns/NAME, /sys/class/net/NAME). */
const safeComponent = /^[A-Za-z0-9_.:-]+$/;
/** argv elements of the rendered steps also carry `--net=…` and `key=value`. */
const safeArgument = /^[A-Za-z0-9_.:/=,+-]+$/;

interface Stats {
	inputs: number;
	labs: number;
	problems: number;
	maxMs: number;
	codes: Map<string, number>;
}

const newStats = (): Stats => ({ inputs: 0, labs: 0, problems: 0, maxMs: 0, codes: new Map() });

const show = (text: string) => JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…(${text.length} characters)` : text);

/** checkSource on one text: throws (failing the property) when the contract is broken. */
function checkContract(text: string, stats?: Stats): Checked {
	const started = performance.now();
	let checked: Checked;
	try {
		checked = checkSource(parseSource("fuzz.yml", text));
	} catch (error) {
		throw new Error(`checkSource threw ${String((error as Error)?.stack ?? error)}\nfor input ${show(text)}`);
	}
	const ms = performance.now() - started;
	const lines = text.split("\n").length;
	if (!checked || !Array.isArray(checked.problems)) throw new Error(`no problems list for ${show(text)}`);
	if (checked.lab && checked.problems.length > 0) throw new Error(`both a lab and problems for ${show(text)}`);
	if (!checked.lab && checked.problems.length === 0) throw new Error(`neither a lab nor a problem for ${show(text)}`);
	for (const problem of checked.problems) {
		const where = `problem ${JSON.stringify(problem)} for input ${show(text)}`;
		if (!knownCodes.has(problem.code)) throw new Error(`unknown code in ${where}`);
		if (typeof problem.message !== "string" || problem.message.trim() === "") throw new Error(`no message in ${where}`);
		if (problem.fix !== undefined && typeof problem.fix !== "string") throw new Error(`fix is not text in ${where}`);
		const { line, col } = problem.pos ?? {};
		if (!Number.isInteger(line) || !Number.isInteger(col)) throw new Error(`no position in ${where}`);
		if (line < 1 || line > lines + 1) throw new Error(`line ${line} outside the text's ${lines} lines in ${where}`);
		if (col < 1) throw new Error(`column ${col} < 1 in ${where}`);
	}
	if (checked.lab) checkLabIsSafe(checked.lab, text);
	if (stats) {
		stats.inputs++;
		stats.maxMs = Math.max(stats.maxMs, ms);
		if (checked.lab) stats.labs++;
		else stats.problems++;
		for (const problem of checked.problems) stats.codes.set(problem.code, (stats.codes.get(problem.code) ?? 0) + 1);
	}
	return checked;
}

/** Everything of a loaded lab that reaches argv, an `ip -batch` line or a path is plain and safe. */
function checkLabIsSafe(lab: Lab, text: string): void {
	const fail = (what: string, value: unknown) => {
		throw new Error(`unsafe ${what} ${JSON.stringify(value)} in a loaded lab, from input ${show(text)}`);
	};
	const pathLike = (what: string, value: unknown) => {
		if (typeof value !== "string" || !safeText.test(value) || value.split("/").includes("..")) fail(what, value);
	};
	const component = (what: string, value: unknown) => {
		// Also never an option: a name that starts with "-" would be read as a flag by ip, nsenter or sysctl.
		if (typeof value !== "string" || !safeComponent.test(value) || value === "." || value === ".." || value.startsWith("-")) fail(what, value);
	};
	component("lab name", lab.name);
	for (const node of lab.nodes) {
		component("node name", node.name);
		component("namespace", node.netns);
		for (const iface of node.interfaces) {
			component("interface", iface.name);
			if (iface.master !== undefined) component("bridge", iface.master);
			if (iface.peer) [component("peer node", iface.peer.node), component("peer interface", iface.peer.iface)];
			for (const address of iface.addresses) for (const value of [address.ip, address.cidr, address.network]) pathLike("address", value);
		}
		for (const route of node.routes) {
			pathLike("route destination", route.to);
			if (route.via !== undefined) pathLike("gateway", route.via);
			component("route device", route.dev);
		}
		if (node.nat) {
			component("nat outside", node.nat.outside);
			for (const inside of node.nat.inside) component("nat inside", inside);
			if (node.nat.publicAddress !== undefined) pathLike("public address", node.nat.publicAddress);
			if (node.nat.oneToOneHost !== undefined) pathLike("one-to-one host", node.nat.oneToOneHost);
		}
	}
	for (const link of lab.links) for (const end of link.endpoints) [component("link node", end.node), component("link interface", end.iface)];
	// The rendered plan: every process argument and every batch line.
	const rendered = renderPlan(planLab(lab, allFeatures), stateDir(lab.name));
	for (const batch of [rendered.root, ...rendered.namespaces]) {
		if (batch.netns !== null) component("batch namespace", batch.netns);
		for (const step of batch.steps) {
			for (const argument of step.argv) if (!safeArgument.test(argument) || argument.split("/").includes("..")) fail(`${step.tool} argument`, argument);
			if (step.file !== undefined) pathLike(`${step.tool} file`, step.file);
			for (const line of step.lines) if (/[\n\r\0]/.test(line.text)) fail(`${step.tool} batch line`, line.text);
			if (step.tool === "ip") for (const line of step.lines) if (/[;|&$`<>\\'"]/.test(line.text)) fail("ip batch line", line.text);
		}
	}
}

function property<T>(t: ExecutionContext, title: string, arbitrary: fc.Arbitrary<T>, toText: (value: T) => string, count: number): Stats {
	const stats = newStats();
	logSeed(t);
	fc.assert(
		fc.property(arbitrary, (value) => {
			checkContract(toText(value), stats);
		}),
		fcOptions(count),
	);
	t.log(`${title}: ${stats.inputs} inputs, ${stats.labs} labs, ${stats.problems} with problems, slowest ${stats.maxMs.toFixed(1)} ms; codes ${[...stats.codes].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([code, count]) => `${code}×${count}`).join(" ")}`);
	t.true(stats.inputs >= runs(count));
	return stats;
}

// ── generators ───────────────────────────────────────────────────────────────────────────────────

const examplesDir = new URL("../../topologies/", import.meta.url);
const examples = readdirSync(examplesDir)
	.filter((name) => name.endsWith(".yml"))
	.map((name) => readFileSync(new URL(name, examplesDir), "utf8"));

/** Strings that must never reach a command line or a path. */
const hostileWords = [
	"a;reboot",
	"$(reboot)",
	"`id`",
	"a|b",
	"a&&b",
	"a||b",
	"a\nb",
	"a\r\nb",
	"../x",
	"..",
	".",
	"../../etc/passwd",
	"a/b",
	"/etc/passwd",
	"a b",
	"a\tb",
	"é",
	"名前",
	"a\u0000b",
	"-rf",
	"--net=/",
	"a'b",
	'a"b',
	"a\\b",
	"*",
	"~",
	"a$b",
	"${IFS}",
	"a>b",
	"a<b",
	"\u202ealice",
	"al\u200bice",
	"ａｌｉｃｅ",
	"alice\n- endpoints: [x:y, z:w]",
	"netns add evil",
	"x\nnetns add evil",
	"eth0 netns 1",
	"10.0.0.0/24;reboot",
	"10.0.0.1/24\naddress add 1.2.3.4/32 dev lo",
	"0x0a.0.0.1/8",
	"010.0.0.1/8",
	"10.0.0.256/24",
	"::1/128",
];
const metacharacters = [..."; $`|&\n\r\t/.'\"\\(){}[]<>*?~#!%^=+,:@\u0000é名\u202e-_"];
const hostile: fc.Arbitrary<string> = fc.oneof(
	{ weight: 3, arbitrary: fc.constantFrom(...hostileWords) },
	{ weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...metacharacters, "a", "b", "0", "1"), minLength: 1, maxLength: 14 }) },
	{ weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 16 }) },
	{ weight: 1, arbitrary: fc.tuple(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), fc.constantFrom(...metacharacters), fc.stringMatching(/^[a-z0-9]{0,5}$/)).map((parts) => parts.join("")) },
);
const plainName = fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/);
/** Mostly a valid value, sometimes a hostile one. */
const maybeHostile = (valid: fc.Arbitrary<string>) => fc.oneof({ weight: 10, arbitrary: valid }, { weight: 1, arbitrary: hostile });
/** Absent most of the time. */
const rarely = <T>(value: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: value });
const octet = fc.integer({ min: 0, max: 255 });
const anyCidr: fc.Arbitrary<string> = fc.oneof(
	fc.tuple(octet, octet, octet, octet, fc.integer({ min: 0, max: 33 })).map(([a, b, c, d, prefix]) => `${a}.${b}.${c}.${d}/${prefix}`),
	hostile,
);

/** A random topology as data: mostly well formed, so that many load; names and values sometimes hostile. */
const topologyObject = fc
	.record({
		name: maybeHostile(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/)),
		prefix: rarely(maybeHostile(fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/))),
		nodes: fc.uniqueArray(
			fc.record({
				name: maybeHostile(plainName),
				kind: fc.oneof({ weight: 12, arbitrary: fc.constantFrom("host", "host", "host", "host", "router", "router", "switch", "nat") }, { weight: 1, arbitrary: hostile }),
				netns: rarely(maybeHostile(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,10}$/))),
				dummy: rarely(fc.record({ name: maybeHostile(plainName.map((name) => `d${name}`)), address: fc.oneof({ weight: 6, arbitrary: octet.map((d) => `172.16.${d}.1/32`) }, { weight: 1, arbitrary: anyCidr }) })),
				route: rarely(fc.record({ to: fc.oneof(fc.constant("default"), fc.constant("10.200.0.0/16"), anyCidr), via: fc.oneof(fc.constant("10.0.0.1"), hostile), dev: rarely(maybeHostile(plainName)) })),
				nat: fc.oneof({ weight: 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.record({ type: fc.constantFrom("port-restricted", "symmetric", "full-cone", "one-to-one"), outside: rarely(maybeHostile(plainName)) }) }),
			}),
			{ minLength: 1, maxLength: 5, selector: (node) => node.name },
		),
		links: fc.array(fc.record({ a: fc.nat(), b: fc.nat(), ifaceA: rarely(maybeHostile(plainName)), ifaceB: rarely(maybeHostile(plainName)), subnet: fc.oneof({ weight: 8, arbitrary: fc.constant("auto") }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: anyCidr }) }), { maxLength: 5 }),
		expect: rarely(fc.array(fc.record({ kind: fc.constantFrom("punch", "reach", "probe"), a: fc.nat(), b: fc.nat() }), { maxLength: 3 })),
	})
	.map((spec) => {
		const names = spec.nodes.map((node) => node.name);
		const nodes: Record<string, unknown> = {};
		for (const node of spec.nodes) {
			const body: Record<string, unknown> = { kind: node.kind };
			if (node.netns !== undefined) body.netns = node.netns;
			if (node.dummy) body.interfaces = [{ name: node.dummy.name, type: "dummy", address: node.dummy.address }];
			if (node.route) body.routes = [node.route.dev === undefined ? { to: node.route.to, via: node.route.via } : { to: node.route.to, dev: node.route.dev }];
			if (node.nat && node.kind === "nat") body.nat = node.nat.outside === undefined ? { type: node.nat.type } : node.nat;
			nodes[node.name] = body;
		}
		const links = spec.links.map((link, index) => {
			// Mostly between two different nodes (a node linked to itself gets two overlapping subnets).
			const a = link.a % names.length;
			const b = names.length > 1 && link.b % 8 !== 0 ? (a + 1 + (link.b % (names.length - 1))) % names.length : link.b % names.length;
			const value: Record<string, unknown> = { endpoints: [`${names[a]}:${link.ifaceA ?? `a${index}`}`, `${names[b]}:${link.ifaceB ?? `b${index}`}`] };
			if (link.subnet !== undefined) value.subnet = link.subnet === "auto" ? `10.${index}.0.0/24` : link.subnet;
			return value;
		});
		const topology: Record<string, unknown> = { name: spec.name, nodes, links };
		if (spec.prefix !== undefined) topology.prefix = spec.prefix;
		if (spec.expect) topology.expect = spec.expect.map((check) => (check.kind === "probe" ? { probe: names[check.a % names.length] } : { [check.kind]: [names[check.a % names.length], names[check.b % names.length]] }));
		return topology;
	});

/** Tokens that YAML (and the loader) treat specially. */
const yamlTokens = ["&a", "*a", "&b", "*b", "<<: *a", "{", "}", "[", "]", ": ", ":", "- ", "-", ",", "?", "? ", "|", ">", "!", "!!str", "!!binary", "!foo", "%YAML 1.2", "---", "...", "#", "'", '"', "\t", "\n", "\r\n", "  ", "\\", "~", "null", "true", "0x1f", ".inf", "1e400", "@", "`", "%", "\u0000", "\ufeff", "é", "名", "😀", "\u2028", "name", "nodes", "links", "kind", "endpoints", "subnet", "a:eth0", "10.0.0.0/24", "$(x)"];
const tokenSoup = fc.array(fc.constantFrom(...yamlTokens), { maxLength: 80 }).map((tokens) => tokens.join(""));

type Mutation =
	| { op: "delete" | "duplicate"; at: number }
	| { op: "swap"; at: number; other: number }
	| { op: "char"; at: number; text: string }
	| { op: "insert"; at: number; text: string }
	| { op: "long"; at: number; length: number }
	| { op: "rename"; at: number; text: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
	fc.record({ op: fc.constantFrom("delete" as const, "duplicate" as const), at: fc.nat() }),
	fc.record({ op: fc.constant("swap" as const), at: fc.nat(), other: fc.nat() }),
	fc.record({ op: fc.constant("char" as const), at: fc.nat(), text: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) }),
	fc.record({ op: fc.constant("insert" as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...yamlTokens), hostile) }),
	fc.record({ op: fc.constant("long" as const), at: fc.nat(), length: fc.integer({ min: 1000, max: 60_000 }) }),
	fc.record({ op: fc.constant("rename" as const), at: fc.nat(), text: hostile }),
);

function mutate(text: string, mutations: Mutation[]): string {
	let current = text;
	for (const m of mutations) {
		const lines = current.split("\n");
		const line = m.at % lines.length;
		const offset = m.at % (current.length + 1);
		switch (m.op) {
			case "delete":
				lines.splice(line, 1);
				current = lines.join("\n");
				break;
			case "duplicate":
				lines.splice(line, 0, lines[line]);
				current = lines.join("\n");
				break;
			case "swap": {
				const other = m.other % lines.length;
				[lines[line], lines[other]] = [lines[other], lines[line]];
				current = lines.join("\n");
				break;
			}
			case "char":
				current = current.slice(0, offset) + m.text + current.slice(offset + 1);
				break;
			case "insert":
				current = current.slice(0, offset) + m.text + current.slice(offset);
				break;
			case "long":
				current = current.slice(0, offset) + "x".repeat(m.length) + current.slice(offset);
				break;
			case "rename": {
				// Replace one name-like word (a node, interface, key, value) everywhere it occurs.
				const words = [...new Set(current.match(/\b[a-z][a-z0-9_-]{0,40}\b/g) ?? [])];
				if (words.length === 0) break;
				const word = words[m.at % words.length];
				current = current.replace(new RegExp(`\\b${word}\\b`, "g"), m.text);
				break;
			}
		}
	}
	return current;
}

const mutatedExample = fc.tuple(fc.constantFrom(...examples), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([text, mutations]) => mutate(text, mutations));

/** two-nats.yml with one name slot replaced by a hostile string, written plain or quoted. */
const twoNats = readFileSync(new URL("two-nats.yml", examplesDir), "utf8");
const slots: [string, (text: string, value: string) => string][] = [
	["lab name", (text, value) => text.replace(/^name: .*$/m, `name: ${value}`)],
	["node name", (text, value) => text.replace(/\balice\b/g, value)],
	["interface name", (text, value) => text.replace(/\beth0\b/g, value)],
	["link interface", (text, value) => text.replace("home1:lan", `home1:${value}`)],
	["dummy interface", (text, value) => text.replace("name: alt0,", `name: ${value},`)],
	["netns", (text, value) => text.replace("  alice: {}", `  alice: { netns: ${value} }`)],
	["prefix", (text, value) => text.replace(/^nodes:$/m, `prefix: ${value}\nnodes:`)],
	["subnet", (text, value) => text.replace("subnet: 192.168.1.0/24", `subnet: ${value}`)],
	["address", (text, value) => text.replace("203.0.113.10/24", value)],
	["nat outside", (text, value) => text.replace("nat: { type: port-restricted }", `nat: { type: port-restricted, outside: ${value} }`)],
	["route", (text, value) => text.replace("  bob: {}", `  bob: { routes: [{ to: ${value}, via: 192.168.1.1 }] }`)],
	["route device", (text, value) => text.replace("  bob: {}", `  bob: { routes: [{ to: 10.9.0.0/16, dev: ${value} }] }`)],
];
const injected = fc.tuple(fc.constantFrom(...slots), hostile, fc.constantFrom("plain", "double", "single")).map(([[, replace], value, quoting]) => {
	const written = quoting === "double" ? JSON.stringify(value) : quoting === "single" ? `'${value.replaceAll("'", "''")}'` : value;
	return replace(twoNats, written);
});

// ── properties ───────────────────────────────────────────────────────────────────────────────────

test.serial("the examples load, and are safe by the same checks", (t) => {
	t.true(examples.length >= 4);
	for (const text of examples) t.truthy(checkContract(text).lab);
});

test.serial("random text (any code points): a problem with a position, never a throw", (t) => {
	const text = fc.oneof(fc.string({ unit: "binary", maxLength: 400 }), fc.string({ unit: "binary-ascii", maxLength: 400 }), fc.string({ unit: "grapheme", maxLength: 200 }));
	property(t, "random text", text, (value) => value, 400);
});

test.serial("random YAML token soup: a problem with a position, never a throw", (t) => {
	property(t, "token soup", tokenSoup, (text) => text, 400);
});

test.serial("random YAML documents (fc.anything → YAML.stringify): a problem or a lab", (t) => {
	const documents = fc
		.anything({ maxDepth: 4, maxKeys: 6, withMap: true, withSet: true, withNullPrototype: true, withSparseArray: true, withUnicodeString: true })
		.map((value) => {
			try {
				return YAML.stringify(value) ?? "";
			} catch {
				return "";
			}
		});
	property(t, "random documents", documents, (text) => text, 300);
});

test.serial("random topologies with hostile names: a lab only when every name is safe for argv and paths", (t) => {
	const stats = property(t, "random topologies", topologyObject, (value) => YAML.stringify(value), 500);
	t.true(stats.labs > 0, "some random topologies load, so the safety checks ran");
});

test.serial("mutated example files (lines deleted, duplicated, swapped; characters changed; tokens, long lines, renames)", (t) => {
	const stats = property(t, "mutated examples", mutatedExample, (text) => text, 400);
	t.true(stats.labs > 0, "some mutations keep the file valid, so the safety checks ran");
});

test.serial("a hostile string in any name slot of two-nats.yml never reaches a loaded lab", (t) => {
	property(t, "name slots", injected, (text) => text, 400);
});

test.serial("every hostile word in every name slot of two-nats.yml, quoted: refused", (t) => {
	let cases = 0;
	for (const [slot, replace] of slots) {
		for (const word of hostileWords) {
			for (const written of [JSON.stringify(word), `'${word.replaceAll("'", "''")}'`]) {
				const text = replace(twoNats, written);
				const checked = checkContract(text);
				cases++;
				// Quoted, the value reaches the loader as it is; nothing of it may load.
				if (checked.lab) t.fail(`${slot} = ${JSON.stringify(word)} loaded as a lab`);
			}
		}
	}
	t.log(`${cases} cases`);
	t.pass();
});

test.serial("a YAML syntax error after a line break inside a flow collection is reported on its own line", (t) => {
	// yaml's LineCounter misses the line break here: the comma on line 2 is reported at 1:7, past the
	// end of line 1 (4 characters), so the caret points at nothing.
	const text = '""[a\na,';
	const problems = checkContract(text).problems;
	for (const problem of problems) {
		const line = text.split("\n")[problem.pos.line - 1];
		t.true(problem.pos.col <= line.length + 1, `${problem.code} at ${problem.pos.line}:${problem.pos.col} is past the end of line ${problem.pos.line} ${JSON.stringify(line)}: ${problem.message}`);
	}
});

// ── big and nested input, in process (the cheap cases) ─────────────────────────────────────────

test.serial("a 5 MB file is refused before it is parsed, with a problem at 1:1", (t) => {
	for (const text of ["# " + "x".repeat(5 * 1024 * 1024), `name: big\nnodes:\n  a: {}\ndescription: ${"y".repeat(5 * 1024 * 1024)}\n`, "a: b\n".repeat(1_100_000)]) {
		const checked = checkContract(text);
		t.is(checked.lab, undefined);
		t.is(checked.problems[0].code, "YAML_SYNTAX");
		t.deepEqual(checked.problems[0].pos, { line: 1, col: 1 });
		t.regex(checked.problems[0].message, /larger than/);
	}
});

test.serial("a file over the limit in bytes is refused even when it is under the limit in characters (UTF-8)", (t) => {
	// 2 Mi × "€" is 2 Mi characters but 6 MiB on disk: the limit says bytes.
	const text = `name: big\nnodes:\n  a: {}\n# ${"€".repeat(2 * 1024 * 1024)}\n`;
	t.true(Buffer.byteLength(text) > 5 * 1024 * 1024);
	const checked = checkContract(text);
	t.is(checked.lab, undefined, `a ${(Buffer.byteLength(text) / 2 ** 20).toFixed(1)} MiB file loaded as a lab`);
	t.regex(checked.problems[0]?.message ?? "", /larger than/);
});

test.serial("a 1,000-character key and a 2,000-character key: clean problems", (t) => {
	for (const text of [`name: x\nnodes:\n  ${"k".repeat(1000)}: {}\n`, `${"k".repeat(2000)}: 1\n`]) t.is(checkContract(text).lab, undefined);
});

test.serial("billion laughs: aliases of aliases are not expanded, and end in a clean problem", (t) => {
	const laughs = (indent: string) => {
		let text = `${indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n`;
		for (let level = 1; level <= 9; level++) text += `${indent}l${level}: &l${level} [${Array(10).fill(`*l${level - 1}`).join(", ")}]\n`;
		return text;
	};
	const cases = [
		laughs(""),
		`name: lol\nnodes:\n${laughs("  ")}`,
		`name: lol\nnodes: {a: {}}\nlinks: &links\n  - endpoints: [a:e0, a:e1]\nexpect: *links\n${laughs("x")}`,
		`name: lol\nnodes:\n  a: &a { interfaces: &i [ { name: d0, type: dummy } ] }\n  b: *a\n  c: { interfaces: *i, routes: *i }\n`,
		`name: lol\nnodes: &n\n  a: *n\n`,
		`a: &a [*a]\n`,
		`name: &x lol\nnodes: { *x : {} }\n`,
		"name: lol\nnodes:\n  x: &x {}\n" + Array.from({ length: 200 }, (_, i) => `  n${i}: *x\n`).join(""),
	];
	// Expanded, the first would be 10^9 scalars: the test would never end.
	for (const text of cases) checkContract(text);
	t.pass();
});

test.serial("nesting 100 deep in flow and block style: clean", (t) => {
	const cases = ["[".repeat(100), "[".repeat(100) + "]".repeat(100), "{a: ".repeat(100) + "}".repeat(100), "- ".repeat(100) + "x", Array.from({ length: 100 }, (_, i) => `${" ".repeat(i)}a:`).join("\n"), `name: x\nnodes: ${"[".repeat(100)}`];
	for (const text of cases) checkContract(text);
	t.pass();
});

// ── inputs that may crash or hang the process: in a child, killed if it hangs ──────────────────

interface ChildReport {
	exit: number | null;
	signal: string | null;
	/** ms: wall time; cpuMs: the child's CPU time (user + system, all its threads) for the same load. */
	results: { ms: number; cpuMs: number; lab: boolean; problems: { code: string; line: number; col: number; message: string }[] }[];
	stderr: string;
	killed: boolean;
}

const childScript = `
import { checkSource } from ${JSON.stringify(new URL("../../src/load.ts", import.meta.url).href)};
import { parseSource } from ${JSON.stringify(new URL("../../src/parse/source.ts", import.meta.url).href)};
let input = "";
for await (const chunk of process.stdin) input += chunk;
for (const text of JSON.parse(input)) {
	const started = performance.now();
	const cpu = process.cpuUsage();
	const checked = checkSource(parseSource("fuzz.yml", text));
	const ms = performance.now() - started;
	const used = process.cpuUsage(cpu);
	process.stdout.write(JSON.stringify({ ms, cpuMs: (used.user + used.system) / 1000, lab: Boolean(checked.lab), problems: checked.problems.slice(0, 3).map((p) => ({ code: p.code, line: p.pos.line, col: p.pos.col, message: p.message.slice(0, 120) })) }) + "\\n");
}
`;

/**
 * How long a child may run before it counts as hung: a guard, far above what any input here takes
 * even on a slow, loaded machine; no assertion depends on it.
 */
const hangGuardMs = 90_000;

/** Load each text in turn in one child process (under tsx, like the CLI), killed after `hangGuardMs`. */
function loadInChild(texts: string[]): Promise<ChildReport> {
	return new Promise((resolve) => {
		const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), "--input-type=module", "-e", childScript], { stdio: ["pipe", "pipe", "pipe"] });
		let stdout = "";
		let stderr = "";
		let killed = false;
		const timer = setTimeout(() => {
			killed = true;
			child.kill("SIGKILL");
		}, hangGuardMs);
		child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
		child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk).slice(-3000)));
		child.stdin.on("error", () => undefined);
		child.stdin.end(JSON.stringify(texts));
		child.on("close", (exit, signal) => {
			clearTimeout(timer);
			const results = stdout
				.split("\n")
				.filter(Boolean)
				.map((line) => JSON.parse(line) as ChildReport["results"][number]);
			resolve({ exit, signal, results, stderr, killed });
		});
	});
}

function describeChild(report: ChildReport): string {
	return `exit ${report.exit}, signal ${report.signal}${report.killed ? " (killed: hung)" : ""}, ${report.results.length} results ${JSON.stringify(report.results.map((r) => ({ ms: Math.round(r.ms), lab: r.lab, first: r.problems[0] })))}; stderr: ${report.stderr.split("\n").slice(0, 4).join(" | ")}`;
}

/** The child ran every text and ended normally; every problem is a known code at a real position. */
function expectCleanReport(t: ExecutionContext, report: ChildReport, count: number, expectProblem: boolean): void {
	t.is(report.exit, 0, describeChild(report));
	t.is(report.results.length, count, describeChild(report));
	for (const [index, result] of report.results.entries()) {
		if (expectProblem) t.true(result.problems.length > 0 && !result.lab, `input ${index + 1}: ${JSON.stringify(result.problems[0])}`);
		for (const problem of result.problems) t.true(knownCodes.has(problem.code) && problem.line >= 1 && problem.col >= 1, JSON.stringify(problem));
	}
}

/** Each text loads in one child without crashing it, clean. */
async function expectCleanInChild(t: ExecutionContext, texts: string[], expectProblem = true): Promise<void> {
	const report = await loadInChild(texts);
	expectCleanReport(t, report, texts.length, expectProblem);
	t.log(`child: ${report.results.map((result) => `${Math.round(result.ms)} ms`).join(", ")}`);
}

/**
 * The loader's work grows about linearly with the input: make(n) and make(k·n) load in one child,
 * twice each, alternating, and the smaller of each size is compared. Linear gives a ratio near
 * k, quadratic near k²; the limit k²·0.6 (10 for k = 4) lies between with room for noise. The
 * measure is the child's CPU time, not wall time: on a loaded CI machine (the integration lane
 * runs beside this file) wall time counts the moments the child waited for a core, and one CI run
 * saw a linear load (0.6 s for 4n here) take 2.6 s of wall time. Times under a floor of 20 ms
 * count as 20 ms, where a clock tick is a large part of the measurement.
 */
async function expectLinear(t: ExecutionContext, what: string, make: (n: number) => string, n: number, expectProblem: boolean, k = 4): Promise<void> {
	const small = make(n);
	const big = make(k * n);
	const texts = [small, big, small, big];
	const report = await loadInChild(texts);
	expectCleanReport(t, report, texts.length, expectProblem);
	if (report.results.length !== texts.length) return;
	const least = (offset: number, measure: "ms" | "cpuMs") => Math.min(...report.results.filter((_, index) => index % 2 === offset).map((result) => result[measure]));
	const [base, grown] = [least(0, "cpuMs"), least(1, "cpuMs")];
	const ratio = grown / Math.max(base, 20);
	t.log(`${what}: n = ${n}: ${base.toFixed(1)} ms CPU; ${k}n: ${grown.toFixed(1)} ms CPU; ratio ${ratio.toFixed(1)} (linear ≈ ${k}, quadratic ≈ ${k * k}); wall ${least(0, "ms").toFixed(1)} ms and ${least(1, "ms").toFixed(1)} ms`);
	t.true(ratio < k * k * 0.6, `${what}: ${k}× the input took ${ratio.toFixed(1)}× the CPU time (n = ${n}: ${base.toFixed(1)} ms, ${k}n: ${grown.toFixed(1)} ms)`);
}

test.serial("a line of millions of characters and 100,000 short lines: clean, in linear time", async (t) => {
	await expectLinear(t, "one long line", (n) => `name: ${"a".repeat(n)}\nnodes: {a: {}}\n`, 750_000, true);
	await expectLinear(t, "many comment lines", (n) => "name: x\nnodes:\n" + "  # comment\n".repeat(n), 25_000, true);
});

test.serial("deep nesting (10,000 `[`, `{a: `, `- `, `? `, indented maps), twice in one process: clean problems, no crash", async (t) => {
	// Each alone ends in YAML_SYNTAX RESOURCE_EXHAUSTION; a second one in the same process (under tsx,
	// as the CLI and every test suite run) dies with "FATAL ERROR: RegExpCompiler Allocation failed".
	const deep = [
		"[".repeat(10_000),
		"[".repeat(10_000) + "]".repeat(10_000),
		"{a: ".repeat(5000) + "}".repeat(5000),
		"- ".repeat(5000) + "x\n",
		Array.from({ length: 1200 }, (_, i) => `${" ".repeat(i)}a:`).join("\n"),
		// Nesting that a scan for brackets, indentation and leading "- " does not see:
		"? ".repeat(5000) + "x\n", // explicit keys
		"- ? ".repeat(3000) + "x\n",
		'["\n"' + "[".repeat(5000) + "\n", // a double-quoted scalar that spans a line break, then brackets
	];
	await expectCleanInChild(t, [...deep, ...deep]);
});

test.serial("alias amplification: n nodes aliasing one node with n interfaces or routes → a clean problem in linear time, not n²", async (t) => {
	const amplify = (list: string, item: (i: number) => string, n: number) =>
		`name: amp\nnodes:\n  n0: &n\n    ${list}:\n${Array.from({ length: n }, (_, i) => `      - ${item(i)}\n`).join("")}${Array.from({ length: n }, (_, i) => `  n${i + 1}: *n\n`).join("")}`;
	t.true(amplify("interfaces", (i) => `{ name: d${i}, type: dummy }`, 2000).length < 100_000, "2,000 × 2,000 is under 100 kB");
	await expectLinear(t, "interfaces", (n) => amplify("interfaces", (i) => `{ name: d${i}, type: dummy }`, n), 500, true);
	await expectLinear(t, "routes", (n) => amplify("routes", (i) => `{ to: 10.0.${i >> 8}.${i & 255}, via: 1.2.3.4 }`, n), 500, true);
});

test.serial("many aliases of one anchor (`*x` in 8,000 nodes): loads in linear time, not quadratic", async (t) => {
	// Every alias is resolved with a walk over the whole document (yaml's Alias.resolve without a cache).
	await expectLinear(t, "aliases", (n) => "name: many\nnodes:\n  x: &x {}\n" + Array.from({ length: n }, (_, i) => `  n${i}: *x\n`).join(""), 2000, false);
});

test.serial("20,000 redefinitions of one anchor, each aliased: loads in linear time, not quadratic", async (t) => {
	// Each alias must find the latest definition before it; searching all definitions per alias is quadratic.
	await expectLinear(t, "redefinitions", (n) => "name: redefined\nnodes:\n" + Array.from({ length: n }, (_, i) => `  n${i}: &x {}\n  m${i}: *x\n`).join(""), 5000, false);
});

test.serial("text that looks deep but does not nest (brackets in a block scalar, a long blank line) still loads", async (t) => {
	const valid = "name: looks-deep\nnodes:\n  a: {}\n";
	const texts: [string, string][] = [
		["brackets in a block scalar", `${valid}description: |\n  ${"[".repeat(300)}\n`],
		["a blank line of 600 spaces", `${valid}${" ".repeat(600)}\n`],
		["a block scalar indented 600 spaces", `${valid}description: |\n${" ".repeat(600)}text\n`],
		["brackets in a quoted string", `${valid}description: "${"[".repeat(300)}"\n`],
		["brackets in a comment", `${valid}# ${"{".repeat(300)}\n`],
	];
	const refused = texts.flatMap(([what, text]) => {
		const checked = checkContract(text);
		return checked.lab ? [] : [`${what}: ${checked.problems.map((problem) => `${problem.code} ${problem.message}`).join("; ")}`];
	});
	t.deepEqual(refused, []);
});

test.serial("long unknown names among 2,000 nodes, and many unknown names: UNKNOWN_NODE in linear time (the did-you-mean search)", async (t) => {
	const nodes = Array.from({ length: 2000 }, (_, i) => `  node${i}: {}\n`).join("");
	await expectLinear(t, "a long unknown endpoint name", (n) => `name: x\nnodes:\n${nodes}links:\n  - endpoints: [${"a".repeat(n)}:e, node1:e]\n`, 50_000, true);
	await expectLinear(t, "many unknown endpoints", (n) => `name: x\nnodes:\n${nodes}links:\n${Array.from({ length: n }, (_, i) => `  - endpoints: [x${i}:e, y${i}:e]\n`).join("")}`, 2500, true);
	await expectLinear(t, "a long unknown name in a check", (n) => `name: x\nnodes:\n${nodes}expect:\n  - punch: [${"b".repeat(n)}, node1]\n`, 50_000, true);
});

test.serial("a router with 20,000 links (1.5 MB, valid) loads in linear time, not quadratic", async (t) => {
	const router = (n: number) => {
		let text = "name: x\nnodes:\n  r: { kind: router }\n";
		for (let i = 0; i < n; i++) text += `  h${i}: {}\n`;
		text += "links:\n";
		for (let i = 0; i < n; i++) text += `  - { endpoints: [h${i}:e, r:p${i}], subnet: 10.${i >> 8}.${i & 255}.0/30 }\n`;
		return text;
	};
	t.true(router(20_000).length > 1_400_000);
	await expectLinear(t, "links of one router", router, 2500, false);
});
