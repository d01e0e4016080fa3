// The JSON Schema for editors must accept every shipped topology and agree with the reader (src/validate/).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import test from "ava";
import { Ajv, type ErrorObject } from "ajv";
import { parse } from "yaml";
import { natBehaviours, natTypes, nodeKinds } from "../../src/parse/topology.ts";
import { interfaceNamePattern, labNamePattern, netnsNamePattern, nodeNamePattern } from "../../src/vocabulary/names.ts";
import { topologyKeys } from "../../src/validate/topology-keys.ts";
import { isCidr, isIpv4 } from "../../src/validate/addresses.ts";
import { parseDuration, parsePercent, parseRate } from "../../src/validate/units.ts";
import { natBehaviour } from "../../src/resolve/nat-behaviour.ts";

interface SchemaNode {
	type?: string | string[];
	description?: string;
	examples?: unknown[];
	properties?: Record<string, SchemaNode>;
	definitions?: Record<string, SchemaNode>;
	additionalProperties?: boolean | SchemaNode;
	propertyNames?: SchemaNode;
	items?: SchemaNode;
	enum?: unknown[];
	pattern?: string;
	$ref?: string;
	oneOf?: SchemaNode[];
}

const schemaUrl = new URL("../../schema/topology.schema.json", import.meta.url);
const topologiesUrl = new URL("../../topologies/", import.meta.url);
const fixturesUrl = new URL("../fixtures/", import.meta.url);
const schemaComment = "# yaml-language-server: $schema=../schema/topology.schema.json";

const schema = JSON.parse(readFileSync(schemaUrl, "utf8")) as SchemaNode;
// Strict mode (unknown keywords, types) minus strictRequired, which would reject `if: { required: [nat] }`.
const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: true, strictRequired: false });
const validate = ajv.compile(schema);
const definitions = schema.definitions ?? {};

function errorsOf(errors: ErrorObject[] | null | undefined): string {
	return (errors ?? []).map((error) => `  ${error.instancePath || "/"} ${error.message ?? ""} ${JSON.stringify(error.params)}`).join("\n");
}

/** Follow a local `#/definitions/...` reference. */
function deref(node: SchemaNode): SchemaNode {
	if (!node.$ref) return node;
	const name = node.$ref.replace("#/definitions/", "");
	const target = definitions[name];
	if (!target) throw new Error(`schema has no definition ${node.$ref}`);
	return target;
}

/** A schema `pattern` tested the way ajv does (unicode regular expression). */
function matches(pattern: string | undefined, text: string): boolean {
	if (pattern === undefined) throw new Error("schema node has no pattern");
	return new RegExp(pattern, "u").test(text);
}

// ---- every shipped topology is valid ------------------------------------------------------------

const topologyFiles = readdirSync(topologiesUrl)
	.filter((file) => file.endsWith(".yml") || file.endsWith(".yaml"))
	.sort();

test("topologies/ has files to check", (t) => {
	t.true(topologyFiles.length > 0);
});

for (const file of topologyFiles) {
	test(`topologies/${file} points editors at the schema and is valid`, (t) => {
		const text = readFileSync(new URL(file, topologiesUrl), "utf8");
		t.is(text.split("\n")[0].replace(/\r$/, ""), schemaComment, "the first line must be the yaml-language-server $schema comment");
		const data: unknown = parse(text);
		const ok = validate(data);
		t.true(ok, `${file} does not match the schema:\n${errorsOf(validate.errors)}`);
	});
}

// The examples/ folders' files (programs and checks of the user's own programs), one folder deeper.
const examplesUrl = new URL("../../examples/", import.meta.url);
const exampleFiles = readdirSync(examplesUrl, { recursive: true, encoding: "utf8" })
	.filter((file) => file.endsWith(".yml"))
	.sort();

test("examples/ has topology files to check", (t) => {
	t.true(exampleFiles.length >= 3, exampleFiles.join(", "));
});

for (const file of exampleFiles) {
	test(`examples/${file} points editors at the schema and is valid`, (t) => {
		const text = readFileSync(new URL(file, examplesUrl), "utf8");
		t.is(text.split("\n")[0].replace(/\r$/, ""), "# yaml-language-server: $schema=../../schema/topology.schema.json");
		const ok = validate(parse(text));
		t.true(ok, `${file} does not match the schema:\n${errorsOf(validate.errors)}`);
	});
}

// ---- a document using every key is valid -------------------------------------------------------

const everything = {
	$schema: "../schema/topology.schema.json",
	name: "home-vs-carrier",
	prefix: "tb-",
	description: "every key once",
	nodes: {
		internet: { kind: "router", description: "the public internet", routes: [{ to: "10.0.0.0/8", via: "198.51.100.2" }], "default-route": false },
		stun: {
			netns: "stun-server",
			interfaces: [{ name: "alt0", type: "dummy", address: "203.0.113.11/24", addresses: ["203.0.113.12/24"] }],
			programs: {
				turn: { run: ["turnserver", "-n", "--stun-only", "--listening-ip", "${stun}"], env: { LOG: "debug" }, cwd: "/tmp", ready: { udp: 3478, within: "5s" } },
				web: { run: "python3 -m http.server 8080", ready: { tcp: 8080 }, after: ["turn"] },
				relay: { run: ["./relay"], ready: { output: "^listening on \\d+$" } },
				marker: { run: "touch up.flag; exec sleep 600", ready: { file: "up.flag", within: "2s" }, after: ["web", "relay"] },
			},
		},
		home: { kind: "nat", nat: { type: "port-restricted" } },
		office: {
			kind: "nat",
			nat: { mapping: "address-and-port-dependent", filtering: "address-dependent", hairpin: false, "port-preservation": true, "udp-timeout": "30s", outside: "wan", "port-mapping": { protocols: ["upnp", "pcp"], lease: { min: "2m", max: "24h" }, ports: "1024-65535", secure: true } },
		},
		lan: { kind: "switch" },
		alice: {},
		bob: null,
		carol: { routes: [{ to: "default", via: "10.0.1.1" }, { to: "10.0.9.9", dev: "eth0" }, { to: "10.0.8.0/24", via: "10.0.1.1", dev: "eth0" }] },
	},
	links: [
		{ endpoints: ["alice:eth0", "lan:p1"] },
		{ endpoints: ["carol:eth0", "lan:p2"] },
		{ endpoints: ["lan:up", "home:lan"], subnet: "10.0.1.0/24" },
		{ endpoints: ["bob:eth0", "office:lan"], addresses: ["10.0.2.2/24", "10.0.2.1/24"], mtu: 1400, description: "office LAN" },
		{ endpoints: ["home:wan", "internet:e1"], subnet: "198.51.100.0/30", impair: { delay: "20ms", jitter: 2, loss: "1%", duplicate: 0.5, reorder: "25%", corrupt: "0.1%", rate: "10mbit", limit: 1000 } },
		{ endpoints: ["office:wan", "internet:e2"], subnet: "198.51.100.4/30" },
		{ endpoints: ["stun:eth0", "internet:e3"], addresses: ["203.0.113.10/24", null] },
	],
	expect: [{ punch: ["alice", "bob"], result: ["direct", "hairpin"], runs: 3, "max-time": "500ms", "port-mapping": ["pcp", "upnp"] }, { reach: ["alice", "stun"], proto: "tcp", result: true }, { probe: "home", mapping: "endpoint-independent", filtering: "address-and-port-dependent", hairpin: true, "port-preservation": true },
		{ run: "alice", command: ["ping", "-c1", "${stun.eth0}"], env: { LC_ALL: "C" }, exit: 0, output: "1 received", within: "10s" },
		{ pair: ["alice", "bob"], listen: ["python3", "peer.py"], dial: "python3 peer.py --to ${home.public}", env: { ECHO_TIMEOUT: "1" }, result: "pass", within: "30s" },
		{ matrix: { listen: ["node", "peer.mjs"], dial: ["node", "peer.mjs"], env: { STUN: "${stun}:3478" }, pairs: [["alice", "bob"], ["alice", "carol"]], result: "pass", except: [{ pair: ["alice", "carol"], result: "fail" }], within: "15s" } },
		{ matrix: { listen: ["node", "peer.mjs"], dial: ["node", "peer.mjs"], pairs: "all", result: "fail" } },
	],
};

test("a document using every key is valid", (t) => {
	t.true(validate(everything), errorsOf(validate.errors));
});

// ---- invalid documents fail ----------------------------------------------------------------------

const minimal = () => ({
	name: "mini",
	nodes: { alice: {}, home: { kind: "nat", nat: { type: "symmetric" } }, internet: { kind: "router" } } as Record<string, unknown>,
	links: [{ endpoints: ["alice:eth0", "home:lan"] }, { endpoints: ["home:wan", "internet:e1"], subnet: "198.51.100.0/30" }] as Record<string, unknown>[],
});

test("the minimal base document is valid", (t) => {
	t.true(validate(minimal()), errorsOf(validate.errors));
});

const invalid = test.macro({
	exec(t, change: (doc: ReturnType<typeof minimal>) => unknown) {
		const doc = minimal();
		const changed = change(doc) ?? doc;
		t.false(validate(changed), "the schema accepted an invalid document");
		t.log(errorsOf(validate.errors));
	},
	title: (label = "") => `invalid: ${label}`,
});

test("unknown top-level key", invalid, (doc) => ({ ...doc, nodez: {} }));
test("missing name", invalid, (doc) => ({ nodes: doc.nodes }));
test("missing nodes", invalid, (doc) => ({ name: doc.name }));
test("bad lab name", invalid, (doc) => ({ ...doc, name: "Mini-" }));
test("bad node name", invalid, (doc) => void (doc.nodes["9lives"] = {}));
test("unknown node key", invalid, (doc) => void (doc.nodes.alice = { knd: "host" }));
test("unknown node kind", invalid, (doc) => void (doc.nodes.alice = { kind: "server" }));
test("interface name of 16 characters", invalid, (doc) => void (doc.nodes.alice = { interfaces: [{ name: "a234567890123456", type: "dummy" }] }));
test("endpoint interface name of 16 characters", invalid, (doc) => void (doc.links[0].endpoints = ["alice:a234567890123456", "home:lan"]));
test("interface named lo", invalid, (doc) => void (doc.nodes.alice = { interfaces: [{ name: "lo", type: "dummy" }] }));
test("interface without type", invalid, (doc) => void (doc.nodes.alice = { interfaces: [{ name: "alt0", address: "10.9.9.9/32" }] }));
test("bad interface address", invalid, (doc) => void (doc.nodes.alice = { interfaces: [{ name: "alt0", type: "dummy", address: "10.9.9.9" }] }));
test("bad nat mapping", invalid, (doc) => void (doc.nodes.home = { kind: "nat", nat: { mapping: "endpoint-dependent" } }));
test("unknown nat type", invalid, (doc) => void (doc.nodes.home = { kind: "nat", nat: { type: "cone" } }));
test("dummy interface on a switch", invalid, (doc) => void (doc.nodes.alice = { kind: "switch", interfaces: [{ name: "alt0", type: "dummy" }] }));
test("nat on a host", invalid, (doc) => void (doc.nodes.alice = { nat: { type: "symmetric" } }));
test("udp-timeout under 1s", invalid, (doc) => void (doc.nodes.home = { kind: "nat", nat: { "udp-timeout": "500ms" } }));
test("hairpin as text", invalid, (doc) => void (doc.nodes.home = { kind: "nat", nat: { hairpin: "yes" } }));
test("route without via or dev", invalid, (doc) => void (doc.nodes.alice = { routes: [{ to: "default" }] }));
test("route through lo", invalid, (doc) => void (doc.nodes.alice = { routes: [{ to: "10.0.0.1", dev: "lo" }] }));
test("nat type disagreeing with its mapping", invalid, (doc) => void (doc.nodes.home = { kind: "nat", nat: { type: "full-cone", mapping: "address-dependent" } }));
test("route via a CIDR", invalid, (doc) => void (doc.nodes.alice = { routes: [{ to: "default", via: "10.0.0.1/24" }] }));
test("three endpoints", invalid, (doc) => void (doc.links[0].endpoints = ["alice:eth0", "home:lan", "internet:e9"]));
test("endpoint without interface", invalid, (doc) => void (doc.links[0].endpoints = ["alice", "home:lan"]));
test("subnet prefix over 32", invalid, (doc) => void (doc.links[1].subnet = "198.51.100.0/33"));
test("one address for two endpoints", invalid, (doc) => void (doc.links[0].addresses = ["10.0.0.2/24"]));
test("unknown link key", invalid, (doc) => void (doc.links[0].subnets = "10.0.0.0/24"));
test("unknown impairment", invalid, (doc) => void (doc.links[0].impair = { latency: "20ms" }));
test("loss over 100%", invalid, (doc) => void (doc.links[0].impair = { loss: "150%" }));
test("rate without a number", invalid, (doc) => void (doc.links[0].impair = { rate: "fast" }));
test("mtu too small", invalid, (doc) => void (doc.links[0].mtu = 60));

// ---- the validator's fixtures: what the schema can tell, it tells --------------------------------

/** Problem codes a JSON Schema can detect (the rest need the whole lab: subnets, namespaces, unknown nodes). */
const schemaCodes = new Set(["ADDRESS_COUNT", "BAD_CIDR", "BAD_ENDPOINT", "BAD_IMPAIRMENT", "BAD_INTERFACE_NAME", "BAD_LAB_NAME", "BAD_NAT", "BAD_NODE_NAME", "BAD_ROUTE", "BAD_VALUE", "MISSING_KEY", "NAT_ON_NON_NAT", "NOT_A_MAP", "UNKNOWN_KEY", "WRONG_TYPE"]);
const invalidUrl = new URL("invalid/", fixturesUrl);
const invalidFixtures = existsSync(invalidUrl) ? readdirSync(invalidUrl).filter((file) => file.endsWith(".yml")).sort() : [];

for (const file of invalidFixtures) {
	const text = readFileSync(new URL(file, invalidUrl), "utf8");
	const codes = [...text.matchAll(/^# expect: ([A-Z_]+)/gm)].map((match) => match[1]);
	if (codes.length === 0 || !codes.every((code) => schemaCodes.has(code))) continue;
	test(`fixtures/invalid/${file} (${codes.join(", ")}) fails the schema too`, (t) => {
		t.false(validate(parse(text)), "the schema accepted a file the validator rejects");
		t.log(errorsOf(validate.errors));
	});
}

for (const [file, valid] of [["impaired.yml", true], ["typo.yml", false], ["many-problems.yml", false]] as const) {
	if (!existsSync(new URL(file, fixturesUrl))) continue;
	test(`fixtures/${file} is ${valid ? "valid" : "invalid"} for the schema too`, (t) => {
		t.is(validate(parse(readFileSync(new URL(file, fixturesUrl), "utf8"))), valid, errorsOf(validate.errors));
	});
}

// ---- the schema agrees with the reader -------------------------------------------------------------

/** The keys the reader accepts, per part of the file. */
function readerKeys(): Record<string, readonly string[]> {
	return topologyKeys;
}

/** Which schema object describes each group of reader keys. */
const schemaObjectOf: Record<string, () => SchemaNode | undefined> = {
	top: () => schema,
	node: () => definitions.node,
	iface: () => definitions.interface,
	route: () => definitions.route,
	nat: () => definitions.nat,
	ipv6: () => definitions.ipv6,
	link: () => definitions.link,
	impair: () => definitions.impair,
	punchCheck: () => definitions.punchCheck,
	reachCheck: () => definitions.reachCheck,
	probeCheck: () => definitions.probeCheck,
	program: () => definitions.program,
	ready: () => definitions.ready,
	runCheck: () => definitions.runCheck,
	pairCheck: () => definitions.pairCheck,
	matrixCheck: () => definitions.matrixCheck,
	matrix: () => definitions.matrix,
	matrixException: () => definitions.matrixException,
	file: () => definitions.file,
	limits: () => definitions.limits,
	portMapping: () => definitions.nat?.properties?.["port-mapping"]?.oneOf?.find((option) => option.type === "object"),
	lease: () => definitions.nat?.properties?.["port-mapping"]?.oneOf?.find((option) => option.type === "object")?.properties?.lease,
};

test("every key the reader accepts is in the schema, and no other", (t) => {
	const groups = readerKeys();
	t.true(Object.keys(groups).length >= 7, `parsed only ${Object.keys(groups).join(", ")} from read.ts`);
	for (const [group, keys] of Object.entries(groups)) {
		const object = schemaObjectOf[group]?.();
		if (!object) {
			t.fail(`read.ts has key group "${group}" that the schema test does not know; add it to schemaObjectOf and the schema`);
			continue;
		}
		t.is(object.additionalProperties, false, `${group}: the schema must reject unknown keys, as the reader does`);
		t.deepEqual(Object.keys(object.properties ?? {}).sort(), [...keys].sort(), `${group}: schema properties differ from read.ts keys.${group}`);
	}
});

test("every property has a description and examples", (t) => {
	const visit = (node: SchemaNode, path: string) => {
		for (const [key, child] of Object.entries(node.properties ?? {})) {
			const target = deref(child);
			t.truthy(target.description, `${path}.${key} has no description`);
			t.true(Array.isArray(target.examples) && target.examples.length > 0, `${path}.${key} has no examples`);
		}
	};
	visit(schema, "top");
	for (const [name, node] of Object.entries(definitions)) visit(node, name);
});

test("enums match the reader's choices", (t) => {
	t.deepEqual(definitions.node.properties?.kind.enum, [...nodeKinds]);
	t.deepEqual(definitions.nat.properties?.type.enum, [...natTypes]);
	t.deepEqual(definitions.nat.properties?.mapping.enum, [...natBehaviours]);
	t.deepEqual(definitions.nat.properties?.filtering.enum, [...natBehaviours]);
	t.deepEqual(definitions.interface.properties?.type.enum, ["dummy"]);
});

/** Sample values: the schema pattern and the reader's check must give the same answer for each. */
const samples = {
	names: ["a", "ab", "a-b", "two-nats", "a-", "-a", "A", "1a", "a_b", "abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstuvwxy", "a.b", ""],
	interfaces: ["eth0", "wan", "lo", "lo0", "_x", ".x", "-x", "a.b-c_d", "123456789012345", "1234567890123456", "a:b", "a b", ""],
	nodes: ["alice", "a", "A_b-c", "1a", "_a", "a.b", "a".repeat(32), "a".repeat(33), ""],
	netns: ["lab-alice", "a.b", ".", "..", ".x", "_x", "x y", ""],
	addresses: ["10.0.0.1", "10.0.0.1/24", "10.0.0.0/0", "10.0.0.0/32", "10.0.0.0/33", "256.0.0.1/8", "01.0.0.1/8", "10.0.0/8", "10.0.0.1/24/1", "10.0.0.1/", "default"],
	durations: ["20ms", "1.5s", "250us", "250µs", "2m", "1h", " 20 ms ", "20", "0", "0.5ms", "20 sec", "-1ms", "1e3ms", "ms", ".5s", "1.s"],
	timeouts: ["1s", "1", "30s", "0.5s", "999ms", "1000ms", "1000000us", "999999us", "0.0167m", "0.0166m", "0.017m", "0.00028h", "0.00027h", "0.000278h", "01s", "0s", "2m", "1h", "30 s"],
	percents: ["1%", "0.5%", "100%", "100.0%", "100.5%", "101%", "0%", "00099%", " 5 % ", "5", "-1%", "%", "1e1%"],
	rates: ["10mbit", "512kbit", "1gbit", "100kbps", "10MBit", "10", "0", "0.0mbit", "0.5bit", "mbit", "10 mbit", "10tbit", "-1mbit"],
};

test("name patterns match the reader's", (t) => {
	const name = schema.properties?.name.pattern;
	for (const text of samples.names) t.is(matches(name, text), labNamePattern.test(text), `lab name "${text}"`);
	const iface = definitions.interfaceName.pattern;
	const readerInterface = (text: string) => text.length <= 15 && interfaceNamePattern.test(text) && text !== "lo";
	for (const text of samples.interfaces) t.is(matches(iface, text), readerInterface(text), `interface name "${text}"`);
	const node = schema.properties?.nodes.propertyNames?.pattern;
	for (const text of samples.nodes) t.is(matches(node, text), nodeNamePattern.test(text), `node name "${text}"`);
	const netns = definitions.node.properties?.netns.pattern;
	for (const text of samples.netns) t.is(matches(netns, text), netnsNamePattern.test(text) && text !== "." && text !== "..", `netns "${text}"`);
	const prefix = schema.properties?.prefix.pattern;
	for (const text of samples.netns) t.is(matches(prefix, text), text === "" || netnsNamePattern.test(text), `prefix "${text}"`);
	for (const key of ["dev"] as const) {
		const pattern = definitions.route.properties?.[key].pattern;
		for (const text of samples.interfaces) t.is(matches(pattern, text), readerInterface(text), `route ${key} "${text}"`);
	}
	const outside = definitions.nat.properties?.outside.pattern;
	for (const text of samples.interfaces) t.is(matches(outside, text), readerInterface(text), `nat outside "${text}"`);
	const endpoint = definitions.link.properties?.endpoints.items?.pattern;
	for (const node of ["alice", "9x"])
		for (const text of samples.interfaces) t.is(matches(endpoint, `${node}:${text}`), nodeNamePattern.test(node) && readerInterface(text), `endpoint "${node}:${text}"`);
});

test("address patterns match the reader's", (t) => {
	for (const text of samples.addresses) {
		t.is(matches(definitions.link.properties?.subnet.pattern, text), isCidr(text), `subnet "${text}"`);
		t.is(matches(definitions.interface.properties?.address.pattern, text), isCidr(text), `address "${text}"`);
		t.is(matches(definitions.route.properties?.via.pattern, text), isIpv4(text), `via "${text}"`);
		t.is(matches(definitions.route.properties?.to.pattern, text), text === "default" || isCidr(text) || isIpv4(text), `to "${text}"`);
	}
});

test("unit patterns match the reader's", (t) => {
	const impair = definitions.impair.properties ?? {};
	for (const text of samples.durations) t.is(matches(impair.delay.pattern, text), parseDuration(text, "ms") !== undefined, `delay "${text}"`);
	const timeout = definitions.nat.properties?.["udp-timeout"].pattern;
	for (const text of [...samples.timeouts, ...samples.durations]) {
		const seconds = parseDuration(text, "s");
		t.is(matches(timeout, text), seconds !== undefined && seconds >= 1000, `udp-timeout "${text}"`);
	}
	for (const text of samples.percents) t.is(matches(impair.loss.pattern, text), parsePercent(text) !== undefined, `loss "${text}"`);
	for (const text of samples.rates) t.is(matches(impair.rate.pattern, text), parseRate(text) !== undefined, `rate "${text}"`);
});

test("nat type and mapping/filtering/hairpin conflicts match nat-behaviour.ts", (t) => {
	const pos = { line: 1, col: 1 };
	const at = <T>(value: T) => ({ value, pos });
	for (const type of [undefined, ...natTypes])
		for (const mapping of [undefined, ...natBehaviours])
			for (const filtering of [undefined, ...natBehaviours])
				for (const hairpin of [undefined, true, false]) {
					const nat = { type, mapping, filtering, hairpin };
					const { conflicts } = natBehaviour({ pos, type: type && at(type), mapping: mapping && at(mapping), filtering: filtering && at(filtering), hairpin: hairpin === undefined ? undefined : at(hairpin) });
					const doc = { name: "n", nodes: { home: { kind: "nat", nat: JSON.parse(JSON.stringify(nat)) as unknown } } };
					t.is(validate(doc), conflicts.length === 0, `nat ${JSON.stringify(nat)}: reader conflicts ${JSON.stringify(conflicts)}`);
				}
});

test("numbers are bounded as the reader bounds them", (t) => {
	const check = (doc: unknown) => validate(doc);
	const withNat = (nat: Record<string, unknown>) => ({ ...minimal(), nodes: { home: { kind: "nat", nat } } });
	const withImpair = (impair: Record<string, unknown>) => ({ ...minimal(), links: [{ endpoints: ["a:eth0", "b:eth0"], impair }] });
	const withMtu = (mtu: number) => ({ ...minimal(), links: [{ endpoints: ["a:eth0", "b:eth0"], mtu }] });
	t.true(check(withNat({ "udp-timeout": 1 })));
	t.false(check(withNat({ "udp-timeout": 0.5 })));
	t.true(check(withImpair({ delay: 0, loss: 100, rate: 1, limit: 1 })));
	t.false(check(withImpair({ loss: 100.1 })));
	t.false(check(withImpair({ delay: -1 })));
	t.false(check(withImpair({ rate: 0 })));
	t.false(check(withImpair({ limit: 0 })));
	t.false(check(withImpair({ limit: 1.5 })));
	t.true(check(withMtu(68)) && check(withMtu(65535)));
	t.false(check(withMtu(67)));
	t.false(check(withMtu(65536)));
});
test("unknown program key", invalid, (doc) => void (doc.nodes.alice = { programs: { web: { run: ["true"], restart: "always" } } }));
test("program without run", invalid, (doc) => void (doc.nodes.alice = { programs: { web: { env: { A: "1" } } } }));
test("readiness with two conditions", invalid, (doc) => void (doc.nodes.alice = { programs: { web: { run: ["true"], ready: { udp: 1, tcp: 2 } } } }));
test("bad program name", invalid, (doc) => void (doc.nodes.alice = { programs: { "my web": { run: ["true"] } } }));
test("run check without command", invalid, (doc) => ({ ...doc, expect: [{ run: "alice", exit: 0 }] }));
test("pair check without dial", invalid, (doc) => ({ ...doc, expect: [{ pair: ["alice", "home"], listen: ["true"] }] }));
test("matrix result that is not pass or fail", invalid, (doc) => ({ ...doc, expect: [{ matrix: { listen: ["true"], dial: ["true"], result: "direct" } }] }));
