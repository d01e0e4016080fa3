// Turning the YAML document into a TopologyDecl: shapes, keys, names, units. Every problem is collected.
import { isAlias, isMap, isPair, isScalar, isSeq, visit, type Node as YamlNode, type Pair, type YAMLMap } from "yaml";
import type { TopologySource } from "../parse/source.ts";
import {
	natBehaviours,
	natTypes,
	nodeKinds,
	type EndpointDecl,
	type ExpectDecl,
	type ImpairDecl,
	type InterfaceDecl,
	type LinkDecl,
	type Located,
	type NatBehaviour,
	type NatDecl,
	type NodeDecl,
	type NodeKind,
	type RouteDecl,
	type StepDecl,
	type CheckVerdict,
	type CommandDecl,
	type EnvDecl,
	type ProgramDecl,
	type ReadyDecl,
	type EventDecl,
	type TopologyDecl,
} from "../parse/topology.ts";
import type { Pos, Problem, ProblemCode } from "../vocabulary/problems.ts";
import { closest, parseDuration, parsePercent, parseRate } from "./units.ts";
import { isCidr, isIpv4 } from "./addresses.ts";
import { interfaceNamePattern, labNamePattern, netnsNamePattern, nodeNamePattern } from "../vocabulary/names.ts";
import { punchOutcomes, type PunchOutcome } from "../vocabulary/punch.ts";


/** The keys each part of a topology file may have (the JSON Schema is checked against these). */
export const topologyKeys = {
	top: ["$schema", "name", "prefix", "description", "nodes", "links", "expect", "steps"],
	node: ["kind", "netns", "interfaces", "routes", "nat", "description", "programs"],
	program: ["run", "env", "cwd", "ready", "after"],
	ready: ["udp", "tcp", "output", "file", "within"],
	iface: ["name", "type", "address", "addresses"],
	route: ["to", "via", "dev"],
	nat: ["type", "mapping", "filtering", "hairpin", "port-preservation", "udp-timeout", "outside"],
	link: ["endpoints", "subnet", "addresses", "impair", "mtu", "state", "description"],
	impair: ["delay", "jitter", "loss", "loss-burst", "duplicate", "reorder", "corrupt", "rate", "limit", "from"],
	punchCheck: ["punch", "result", "runs", "max-time"],
	reachCheck: ["reach", "proto", "result"],
	probeCheck: ["probe", "mapping", "filtering", "hairpin", "port-preservation"],
	runCheck: ["run", "command", "env", "exit", "output", "within"],
	pairCheck: ["pair", "listen", "dial", "env", "result", "within"],
	matrixCheck: ["matrix"],
	matrix: ["listen", "dial", "env", "pairs", "result", "except", "within"],
	matrixException: ["pair", "result"],
} as const;

const keys = topologyKeys;

/** Program names: like node names. */
const programNamePattern = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** Environment variable names a shell can use. */
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** How long a check of the user's program may take by default, and a program to become ready. */
export const defaultCheckWithinMs = 30_000;
export const defaultReadyWithinMs = 10_000;

/** The keys of each step kind besides its own (and `at`). */
const stepKeys: Record<string, readonly string[]> = {
	wait: [],
	connect: ["result", "within", "keepalive", "loss-after"],
	expect: ["between", "within", "result"],
	"link-down": [],
	"link-up": [],
	flap: ["period", "down-for", "count"],
	impair: ["from", ...keys.impair.filter((key) => key !== "from")],
	"nat-reboot": ["outage"],
	rebind: ["host"],
	expire: ["host"],
	move: ["via"],
	restart: [],
};

/** Read the document into a declaration; problems are appended to `problems`. */
export function readTopology(source: TopologySource, problems: Problem[]): TopologyDecl | undefined {
	const reader = new Reader(source, problems);
	return reader.top();
}

/** Read a document that is one step (`testbed event` builds one from its arguments). */
export function readStep(source: TopologySource, problems: Problem[]): StepDecl | undefined {
	return new Reader(source, problems).stepDocument();
}

/** How many map entries and list items reading may visit: aliases can multiply a small file. */
const itemBudget = 200_000;

class Reader {
	private budget = itemBudget;
	private readonly anchors = new Map<string, YamlNode[]>();

	constructor(
		private readonly source: TopologySource,
		private readonly problems: Problem[],
	) {
		// Anchors once, in document order: yaml's Alias.resolve walks the whole document per alias.
		visit(source.document, (_key, node) => {
			const anchor = (node as { anchor?: string } | null)?.anchor;
			if (!anchor || isAlias(node)) return;
			const list = this.anchors.get(anchor);
			if (list) list.push(node as YamlNode);
			else this.anchors.set(anchor, [node as YamlNode]);
		});
	}

	/** Count visited items; past the budget, report once and read nothing more. */
	private spend(count: number, at: unknown): boolean {
		if (this.budget < 0) return false;
		this.budget -= count;
		if (this.budget >= 0) return true;
		this.report("YAML_SYNTAX", at, `the document expands to more than ${itemBudget} entries (through aliases?)`, "write the values out instead of aliasing large parts");
		return false;
	}

	top(): TopologyDecl | undefined {
		const root = this.resolve(this.source.document.contents);
		if (!root || !isMap(root)) {
			this.report("NOT_A_MAP", root ?? undefined, "a topology file is a map with `name:`, `nodes:` and `links:`", "start from topologies/two-nats.yml");
			return undefined;
		}
		const entries = this.entries(root, keys.top, "top level");
		const name = this.string(entries.get("name"), "name");
		if (!name) this.report("MISSING_KEY", root, "the lab has no `name:`", "add `name: my-lab` (a-z, 0-9 and -)");
		else if (!labNamePattern.test(name.value))
			this.problem("BAD_LAB_NAME", name.pos, `lab name "${name.value}" is not valid`, "use 1-24 characters: a-z, 0-9 and -, starting with a letter, not ending with -");
		const prefixValue = entries.get("prefix");
		const prefix = prefixValue ? this.string(prefixValue, "prefix", true) : undefined;
		if (prefix && prefix.value !== "" && !netnsNamePattern.test(prefix.value))
			this.problem("BAD_VALUE", prefix.pos, `prefix "${prefix.value}" is not valid in a namespace name`, "use letters, digits, _ . and -");
		const nodesNode = entries.get("nodes");
		const nodes: NodeDecl[] = [];
		if (!nodesNode) this.report("MISSING_KEY", root, "the lab has no `nodes:`", "add `nodes:` with at least one node");
		else {
			const nodesMap = this.resolve(nodesNode.value);
			if (!nodesMap || !isMap(nodesMap)) this.report("WRONG_TYPE", nodesMap ?? nodesNode.key, "`nodes:` must be a map of node name to node", "write `nodes: { alice: {}, bob: {} }`");
			else if (this.spend(nodesMap.items.length, nodesMap)) for (const pair of nodesMap.items) this.node(pair, nodes);
		}
		const links: LinkDecl[] = [];
		const linksNode = entries.get("links");
		if (linksNode) {
			const seq = this.resolve(linksNode.value);
			if (seq && !isSeq(seq)) this.report("WRONG_TYPE", seq, "`links:` must be a list", "write `links:` followed by `- endpoints: [a:eth0, b:eth0]` items");
			else if (seq && this.spend(seq.items.length, seq)) for (const item of seq.items) this.link(item as YamlNode, links);
		}
		const description = this.string(entries.get("description"), "description")?.value;
		const expect = entries.get("expect") ? this.expect(entries.get("expect")!) : undefined;
		const steps = entries.get("steps") ? this.steps(entries.get("steps")!) : undefined;
		return { file: this.source.file, name: name ?? { value: "", pos: this.pos(root) }, prefix, description, nodes, links, expect, steps };
	}

	stepDocument(): StepDecl | undefined {
		return this.step(this.resolve(this.source.document.contents) as YamlNode);
	}

	private node(pair: Pair, nodes: NodeDecl[]): void {
		const keyNode = pair.key as YamlNode;
		const name = isScalar(keyNode) ? String(keyNode.value) : "";
		const pos = this.pos(keyNode);
		if (!nodeNamePattern.test(name)) {
			this.problem("BAD_NODE_NAME", pos, `node name "${name}" is not valid`, "use 1-32 characters: letters, digits, _ and -, starting with a letter");
		}
		const valueNode = this.resolve(pair.value as YamlNode | null);
		const node: NodeDecl = { name, pos, kind: "host", kindPos: pos, interfaces: [], routes: [], programs: [] };
		if (valueNode && !(isScalar(valueNode) && valueNode.value === null)) {
			if (!isMap(valueNode)) {
				this.report("WRONG_TYPE", valueNode, `node "${name}" must be a map`, `write \`${name}: {}\` or \`${name}: { kind: router }\``);
				nodes.push(node);
				return;
			}
			const entries = this.entries(valueNode, keys.node, `node "${name}"`);
			const kind = this.choice(entries.get("kind"), "kind", nodeKinds);
			if (kind) [node.kind, node.kindPos] = [kind.value, kind.pos];
			const netns = this.string(entries.get("netns"), "netns");
			if (netns) {
				if (!netnsNamePattern.test(netns.value) || netns.value === "." || netns.value === "..")
					this.problem("BAD_VALUE", netns.pos, `namespace name "${netns.value}" is not valid`, "use letters, digits, _ . and -");
				else node.netns = netns;
			}
			for (const item of this.list(entries.get("interfaces"), "interfaces")) node.interfaces.push(...this.iface(item));
			for (const item of this.list(entries.get("routes"), "routes")) node.routes.push(...this.route(item));
			const nat = entries.get("nat");
			if (nat) node.nat = this.nat(nat);
			const programs = entries.get("programs");
			if (programs) node.programs = this.programs(programs, name);
		}
		nodes.push(node);
	}

	private expect(pair: Pair): ExpectDecl[] {
		const checks: ExpectDecl[] = [];
		for (const item of this.list(pair, "expect")) {
			const map = this.map(item, "check", "write `- punch: [alice, bob]`, `- reach: [alice, stun]` or `- probe: home`");
			if (!map) continue;
			const first = map.items[0]?.key as YamlNode | undefined;
			const kind = isScalar(first) ? String(first.value) : "";
			const pos = this.pos(map);
			const pairOf = (entries: Map<string, Pair>, what: string): [Located<string>, Located<string>] | undefined => {
				const seq = this.resolve(entries.get(what)!.value);
				const names = isSeq(seq) ? seq.items.map((element) => this.string(this.pairOf(element as YamlNode), what)) : [];
				if (names.length !== 2 || names.some((name) => !name)) {
					this.report("BAD_EXPECT", seq ?? map, `\`${what}:\` takes two node names`, `write \`${what}: [alice, bob]\``);
					return undefined;
				}
				return names as [Located<string>, Located<string>];
			};
			if (kind === "punch") {
				const entries = this.entries(map, keys.punchCheck, "punch check");
				const nodes = pairOf(entries, "punch");
				if (!nodes) continue;
				const check: ExpectDecl = { kind: "punch", pos, a: nodes[0], b: nodes[1] };
				const result = entries.get("result");
				if (result) {
					const node = this.resolve(result.value as YamlNode);
					const values = isSeq(node) ? node.items.map((element) => this.resolve(element as YamlNode)) : [node];
					const outcomes = values.map((value) => (isScalar(value) ? String(value.value) : ""));
					const bad = outcomes.find((outcome) => !(punchOutcomes as readonly string[]).includes(outcome));
					if (bad !== undefined) this.report("BAD_EXPECT", node ?? result.key, `punch result "${bad}" is not one of: ${punchOutcomes.join(", ")}`, "write e.g. `result: direct` or `result: [lan, hairpin]`");
					else check.result = { value: outcomes as PunchOutcome[], pos: this.pos(node) };
				}
				const runs = entries.get("runs");
				if (runs) {
					const node = this.resolve(runs.value as YamlNode);
					const value = isScalar(node) ? Number(node.value) : NaN;
					if (!Number.isInteger(value) || value < 1 || value > 1000) this.report("BAD_EXPECT", node ?? runs.key, "runs must be a whole number from 1 to 1000", "write e.g. `runs: 3`");
					else check.runs = { value, pos: this.pos(node) };
				}
				const maxTime = entries.get("max-time");
				if (maxTime) {
					const node = this.resolve(maxTime.value as YamlNode);
					const value = isScalar(node) ? parseDuration(node.value, "ms") : undefined;
					if (value === undefined) this.report("BAD_EXPECT", node ?? maxTime.key, "max-time must be a duration", "write e.g. `max-time: 500ms`");
					else check.maxTimeMs = { value, pos: this.pos(node) };
				}
				checks.push(check);
			} else if (kind === "reach") {
				const entries = this.entries(map, keys.reachCheck, "reach check");
				const nodes = pairOf(entries, "reach");
				if (!nodes) continue;
				const proto = this.choice(entries.get("proto"), "proto", ["udp", "tcp", "icmp"] as const)?.value ?? "udp";
				const result = this.boolean(entries.get("result"), "result")?.value ?? true;
				checks.push({ kind: "reach", pos, from: nodes[0], to: nodes[1], proto, result });
			} else if (kind === "probe") {
				const entries = this.entries(map, keys.probeCheck, "probe check");
				const nat = this.string(entries.get("probe"), "probe");
				if (!nat) continue;
				checks.push({
					kind: "probe",
					pos,
					nat,
					mapping: this.choice(entries.get("mapping"), "mapping", natBehaviours)?.value,
					filtering: this.choice(entries.get("filtering"), "filtering", natBehaviours)?.value,
					hairpin: this.boolean(entries.get("hairpin"), "hairpin")?.value,
					portPreservation: this.boolean(entries.get("port-preservation"), "port-preservation")?.value,
				});
			} else if (kind === "run") {
				const entries = this.entries(map, keys.runCheck, "run check");
				const node = this.string(entries.get("run"), "run");
				const command = this.command(entries.get("command"), "command", map);
				const output = this.pattern(entries.get("output"), "output");
				const exitEntry = entries.get("exit");
				const exitNode = exitEntry && this.resolve(exitEntry.value as YamlNode);
				const exit = exitEntry ? (isScalar(exitNode) ? Number(exitNode.value) : NaN) : 0;
				if (!Number.isInteger(exit) || exit < 0 || exit > 255) this.report("BAD_EXPECT", exitNode ?? exitEntry?.key ?? map, "exit must be an exit status from 0 to 255", "write e.g. `exit: 0`");
				else if (node && command) checks.push({ kind: "run", pos, node, command, env: this.env(entries.get("env")), exit, ...(output ? { output } : {}), withinMs: this.within(entries.get("within"), defaultCheckWithinMs) });
			} else if (kind === "pair") {
				const entries = this.entries(map, keys.pairCheck, "pair check");
				const nodes = pairOf(entries, "pair");
				const listen = this.command(entries.get("listen"), "listen", map);
				const dial = this.command(entries.get("dial"), "dial", map);
				const result = this.verdict(entries.get("result"), map);
				if (nodes && listen && dial && result) checks.push({ kind: "pair", pos, a: nodes[0], b: nodes[1], listen, dial, env: this.env(entries.get("env")), result, withinMs: this.within(entries.get("within"), defaultCheckWithinMs) });
			} else if (kind === "matrix") {
				this.entries(map, keys.matrixCheck, "matrix check");
				const body = this.map(this.resolve(map.items[0].value as YamlNode), "`matrix:`", "write `matrix: { listen: [prog], dial: [prog], pairs: all, result: pass }`");
				if (!body) continue;
				const entries = this.entries(body, keys.matrix, "matrix");
				const listen = this.command(entries.get("listen"), "listen", body);
				const dial = this.command(entries.get("dial"), "dial", body);
				const result = this.verdict(entries.get("result"), body);
				const pairs = this.pairs(entries.get("pairs"));
				const except: Extract<ExpectDecl, { kind: "matrix" }>["except"] = [];
				for (const item of this.list(entries.get("except"), "except")) {
					const exception = this.map(item, "an exception", "write `- { pair: [alice, bob], result: fail }`");
					if (!exception) continue;
					const exceptionEntries = this.entries(exception, keys.matrixException, "matrix exception");
					const pair = exceptionEntries.has("pair") ? pairOf(exceptionEntries, "pair") : undefined;
					if (!exceptionEntries.has("pair")) this.report("BAD_EXPECT", exception, "an exception has no `pair:`", "write `- { pair: [alice, bob], result: fail }`");
					const verdict = this.verdict(exceptionEntries.get("result"), exception);
					if (!exceptionEntries.has("result")) this.report("BAD_EXPECT", exception, "an exception has no `result:`", "add `result: fail` (or pass)");
					if (pair && verdict && exceptionEntries.has("result")) except.push({ pair, result: verdict, pos: this.pos(exception) });
				}
				if (listen && dial && result && pairs) checks.push({ kind: "matrix", pos, listen, dial, env: this.env(entries.get("env")), pairs, result, except, withinMs: this.within(entries.get("within"), defaultCheckWithinMs) });
			} else {
				const guess = closest(kind, ["punch", "reach", "probe", "run", "pair", "matrix"]);
				this.report("BAD_EXPECT", first ?? map, `unknown check "${kind}"${guess ? `; did you mean "${guess}"?` : ""}`, "a check starts with `punch:`, `reach:`, `probe:`, `run:`, `pair:` or `matrix:`");
			}
		}
		return checks;
	}

	private iface(item: YamlNode): InterfaceDecl[] {
		const map = this.map(item, "interface", "write `- { name: alt0, type: dummy, address: 203.0.113.11/24 }`");
		if (!map) return [];
		const entries = this.entries(map, keys.iface, "interface");
		const name = this.string(entries.get("name"), "name");
		if (!name) {
			this.report("MISSING_KEY", map, "interface has no `name:`", "add `name: alt0`");
			return [];
		}
		this.checkInterfaceName(name);
		const type = this.choice(entries.get("type"), "type", ["dummy"] as const);
		if (!entries.get("type")) this.report("MISSING_KEY", map, "interface has no `type:`", "add `type: dummy` (link interfaces are declared by `links:`)");
		const addresses: Located<string>[] = [];
		const one = this.string(entries.get("address"), "address");
		if (one) addresses.push(one);
		for (const entry of this.list(entries.get("addresses"), "addresses")) {
			const address = this.string(this.pairOf(entry), "addresses");
			if (address) addresses.push(address);
		}
		for (const address of addresses) this.checkCidr(address, true);
		return type ? [{ name, type: type.value, addresses, pos: this.pos(map) }] : [];
	}

	private route(item: YamlNode): RouteDecl[] {
		const map = this.map(item, "route", "write `- { to: default, via: 10.0.1.1 }`");
		if (!map) return [];
		const entries = this.entries(map, keys.route, "route");
		const to = this.string(entries.get("to"), "to");
		const via = this.string(entries.get("via"), "via");
		const dev = this.string(entries.get("dev"), "dev");
		if (!to) this.report("MISSING_KEY", map, "route has no `to:`", "add `to: default` or `to: 10.0.0.0/8`");
		if (!via && !dev) this.report("MISSING_KEY", map, "route has neither `via:` nor `dev:`", "add `via:` with the gateway's address, or `dev:` with the interface");
		if (to && to.value !== "default" && !isCidr(to.value) && !isIpv4(to.value))
			this.problem("BAD_CIDR", to.pos, `route destination "${to.value}" is not default, an address or a CIDR`, "write `default`, `10.0.0.0/8` or `10.0.0.1`");
		const badVia = via !== undefined && !isIpv4(via.value);
		if (badVia) this.problem("BAD_ROUTE", via.pos, `gateway "${via.value}" is not an IPv4 address`, "write the gateway's address, e.g. `via: 10.0.1.1`");
		if (dev) this.checkInterfaceName(dev);
		return to && (via || dev) && !badVia ? [{ to, via, dev, pos: this.pos(map) }] : [];
	}

	private nat(pair: Pair): NatDecl | undefined {
		const map = this.map(this.resolve(pair.value as YamlNode), "nat", "write `nat: { type: port-restricted }`");
		if (!map) return { pos: this.pos(pair.key as YamlNode) };
		const entries = this.entries(map, keys.nat, "nat");
		const nat: NatDecl = { pos: this.pos(pair.key as YamlNode) };
		nat.type = this.choice(entries.get("type"), "type", natTypes);
		nat.mapping = this.choice(entries.get("mapping"), "mapping", natBehaviours) as Located<NatBehaviour> | undefined;
		nat.filtering = this.choice(entries.get("filtering"), "filtering", natBehaviours) as Located<NatBehaviour> | undefined;
		nat.hairpin = this.boolean(entries.get("hairpin"), "hairpin");
		nat.portPreservation = this.boolean(entries.get("port-preservation"), "port-preservation");
		nat.outside = this.string(entries.get("outside"), "outside");
		const timeout = entries.get("udp-timeout");
		if (timeout) {
			const node = this.resolve(timeout.value as YamlNode);
			const value = isScalar(node) ? parseDuration(node.value, "s") : undefined;
			if (value === undefined || value < 1000 || value % 1000 !== 0)
				this.problem("BAD_VALUE", this.pos(node ?? timeout.key), "udp-timeout must be a whole number of seconds, at least 1s", "write e.g. `udp-timeout: 30s`");
			else nat.udpTimeout = { value: value / 1000, pos: this.pos(node!) };
		}
		return nat;
	}

	private link(item: YamlNode, links: LinkDecl[]): void {
		const map = this.map(item, "link", "write `- endpoints: [alice:eth0, home:lan]`");
		if (!map) return;
		const entries = this.entries(map, keys.link, "link");
		const endpointsPair = entries.get("endpoints");
		if (!endpointsPair) {
			this.report("MISSING_KEY", map, "link has no `endpoints:`", "add `endpoints: [node:iface, node:iface]`");
			return;
		}
		const seq = this.resolve(endpointsPair.value as YamlNode);
		if (!seq || !isSeq(seq) || seq.items.length !== 2) {
			this.report("BAD_ENDPOINT", seq ?? endpointsPair.key, "a link has exactly two endpoints", "write `endpoints: [alice:eth0, home:lan]`");
			return;
		}
		const endpoints: EndpointDecl[] = [];
		for (const element of seq.items) {
			const node = this.resolve(element as YamlNode);
			const text = isScalar(node) ? String(node.value) : "";
			const match = /^([^:]+):([^:]+)$/.exec(text);
			if (!match) {
				this.report("BAD_ENDPOINT", node ?? seq, `endpoint "${text}" is not node:interface`, "write e.g. `alice:eth0`");
				continue;
			}
			const endpoint = { node: match[1], iface: match[2], pos: this.pos(node!) };
			this.checkInterfaceName({ value: endpoint.iface, pos: { ...endpoint.pos, col: endpoint.pos.col + match[1].length + 1 } });
			endpoints.push(endpoint);
		}
		if (endpoints.length !== 2) return;
		const link: LinkDecl = { pos: this.pos(map), endpoints: endpoints as [EndpointDecl, EndpointDecl] };
		link.subnet = this.string(entries.get("subnet"), "subnet");
		if (link.subnet) this.checkCidr(link.subnet, false);
		const addressesPair = entries.get("addresses");
		if (addressesPair) {
			const list = this.resolve(addressesPair.value as YamlNode);
			link.addressesPos = this.pos(list ?? addressesPair.key);
			if (!list || !isSeq(list)) this.report("WRONG_TYPE", list ?? addressesPair.key, "`addresses:` must be a list, one per endpoint", "write `addresses: [10.0.2.2/24, 10.0.2.1/24]`");
			else {
				link.addresses = list.items.map((element) => {
					const node = this.resolve(element as YamlNode);
					if (!node || (isScalar(node) && (node.value === null || node.value === ""))) return null;
					const address = this.string(this.pairOf(node), "addresses");
					if (address) this.checkCidr(address, true);
					return address ?? null;
				});
			}
		}
		const impair = entries.get("impair");
		if (impair) {
			const map = this.map(this.resolve(impair.value as YamlNode), "impair", "write `impair: { delay: 20ms, loss: 1% }`");
			if (map) {
				const impairEntries = this.entries(map, keys.impair, "impair");
				link.impair = this.impairOf(impairEntries, this.pos(impair.key as YamlNode));
				const from = impairEntries.get("from");
				if (from) link.impairFrom = this.impairFrom(from);
			}
		}
		const state = this.choice(entries.get("state"), "state", ["up", "down"] as const);
		if (state) link.down = { value: state.value === "down", pos: state.pos };
		const mtu = entries.get("mtu");
		if (mtu) {
			const node = this.resolve(mtu.value as YamlNode);
			const value = isScalar(node) ? Number(node.value) : NaN;
			if (!Number.isInteger(value) || value < 68 || value > 65535) this.problem("BAD_VALUE", this.pos(node ?? mtu.key), "mtu must be a whole number from 68 to 65535", "write e.g. `mtu: 1400`");
			else link.mtu = { value, pos: this.pos(node!) };
		}
		links.push(link);
	}

	/** The impairment keys among `entries` (a link's `impair:` map, or an impair step); undefined when there are none. */
	private impairOf(entries: Map<string, Pair>, pos: Pos): ImpairDecl | undefined {
		const impair: ImpairDecl = { pos };
		let any = false;
		const field = (key: string, name: keyof ImpairDecl, parse: (value: unknown) => number | undefined, fix: string) => {
			const entry = entries.get(key);
			if (!entry) return;
			const node = this.resolve(entry.value as YamlNode);
			const value = isScalar(node) ? parse(node.value) : undefined;
			if (value === undefined) this.problem("BAD_IMPAIRMENT", this.pos(node ?? entry.key), `${key}: "${isScalar(node) ? String(node.value) : "?"}" is not valid`, fix);
			else (impair as unknown as Record<string, Located<number>>)[name] = { value, pos: this.pos(node!) };
			any = true;
		};
		field("delay", "delay", (value) => parseDuration(value, "ms"), "write a duration such as `20ms`");
		field("jitter", "jitter", (value) => parseDuration(value, "ms"), "write a duration such as `2ms`");
		for (const key of ["loss", "duplicate", "reorder", "corrupt"] as const) field(key, key, parsePercent, "write a percentage from 0% to 100%, e.g. `1%`");
		field("loss-burst", "lossBurst", (value) => (Number(value) >= 1 && Number(value) <= 10_000 ? Number(value) : undefined), "write the mean burst length in packets, e.g. `loss-burst: 4` (at least 1)");
		field("rate", "rate", parseRate, "write a rate such as `10mbit` or `512kbit`");
		field("limit", "limit", (value) => (Number.isInteger(Number(value)) && Number(value) > 0 ? Number(value) : undefined), "write a queue length in packets, e.g. `1000`");
		if (impair.lossBurst && !impair.loss) this.problem("BAD_IMPAIRMENT", impair.lossBurst.pos, "loss-burst without loss", "add the average loss rate, e.g. `loss: 5%`");
		// In bursts of B on average, at most B of every B+1 packets can be lost (a good packet ends each burst).
		if (impair.loss && impair.lossBurst && impair.loss.value > (100 * impair.lossBurst.value) / (impair.lossBurst.value + 1))
			this.problem("BAD_IMPAIRMENT", impair.loss.pos, `loss ${impair.loss.value}% cannot be reached in bursts of ${impair.lossBurst.value} on average (at most ${Math.floor((1000 * impair.lossBurst.value) / (impair.lossBurst.value + 1)) / 10}%)`, "lower `loss:` or raise `loss-burst:`");
		return any ? impair : undefined;
	}

	/** `from: { node: { impair keys } }`: one direction each. */
	private impairFrom(pair: Pair): { node: Located<string>; impair: ImpairDecl }[] {
		const map = this.map(this.resolve(pair.value as YamlNode), "impair `from:`", "write `from: { alice: { rate: 1mbit } }`: the impairment of what alice sends on this link");
		if (!map || !this.spend(map.items.length, map)) return [];
		const result: { node: Located<string>; impair: ImpairDecl }[] = [];
		for (const item of map.items) {
			const node = this.string(this.pairOf(item.key as YamlNode), "from");
			const inner = this.map(this.resolve(item.value as YamlNode), `impair from "${node?.value ?? "?"}"`, "write e.g. `alice: { loss: 5% }`");
			if (!node || !inner) continue;
			const impair = this.impairOf(this.entries(inner, keys.impair.filter((key) => key !== "from"), `impair from "${node.value}"`), node.pos);
			if (impair) result.push({ node, impair });
		}
		return result;
	}

	private steps(pair: Pair): StepDecl[] {
		const steps: StepDecl[] = [];
		for (const item of this.list(pair, "steps")) {
			const step = this.step(item);
			if (step) steps.push(step);
		}
		return steps;
	}

	private step(item: YamlNode): StepDecl | undefined {
		const map = this.map(item, "step", "write e.g. `- connect: [alice, bob]`, `- wait: 2s`, `- nat-reboot: home` or `- expect: connected`");
		if (!map) return undefined;
		const kindPair = map.items.find((pair) => isScalar(pair.key) && String((pair.key as { value: unknown }).value) !== "at");
		const kind = kindPair && isScalar(kindPair.key) ? String(kindPair.key.value) : "";
		const pos = this.pos(kindPair?.key ?? map);
		if (!(kind in stepKeys)) {
			const guess = closest(kind, Object.keys(stepKeys));
			this.report("BAD_STEP", kindPair?.key ?? map, `unknown step "${kind}"${guess ? `; did you mean "${guess}"?` : ""}`, `a step starts with one of: ${Object.keys(stepKeys).join(", ")}`);
			return undefined;
		}
		const entries = this.entries(map, ["at", kind, ...stepKeys[kind]], `${kind} step`);
		const duration = (key: string, fix: string): number | undefined => {
			const entry = entries.get(key);
			if (!entry) return undefined;
			const node = this.resolve(entry.value as YamlNode);
			const value = isScalar(node) ? parseDuration(node.value, "s") : undefined;
			if (value === undefined) this.report("BAD_STEP", node ?? entry.key, `\`${key}:\` must be a duration`, fix);
			return value;
		};
		const atMs = duration("at", "write e.g. `at: 5s` (from the start of the steps)");
		const name = (key: string) => this.string(entries.get(key), key);
		const pairOf = (key: string): [Located<string>, Located<string>] | undefined => {
			const seq = this.resolve(entries.get(key)?.value);
			const names = isSeq(seq) ? seq.items.map((element) => this.string(this.pairOf(element as YamlNode), key)) : [];
			if (names.length !== 2 || names.some((entry) => !entry)) {
				this.report("BAD_STEP", seq ?? map, `\`${key}:\` takes two node names`, `write \`${key}: [alice, bob]\``);
				return undefined;
			}
			return names as [Located<string>, Located<string>];
		};
		const result = (): Located<PunchOutcome[]> | undefined => {
			const entry = entries.get("result");
			if (!entry) return undefined;
			const node = this.resolve(entry.value as YamlNode);
			const values = isSeq(node) ? node.items.map((element) => this.resolve(element as YamlNode)) : [node];
			const outcomes = values.map((value) => (isScalar(value) ? String(value.value) : ""));
			const bad = outcomes.find((outcome) => !(punchOutcomes as readonly string[]).includes(outcome) || outcome === "failed");
			if (bad === undefined) return { value: outcomes as PunchOutcome[], pos: this.pos(node) };
			this.report("BAD_STEP", node ?? entry.key, `result "${bad}" is not one of: lan, hairpin, direct, relayed`, "write e.g. `result: direct` or `result: [direct, relayed]`");
			return undefined;
		};
		const base = { pos, ...(atMs === undefined ? {} : { atMs }) };
		const event = (decl: EventDecl): StepDecl => ({ ...base, kind: "event", event: decl });
		switch (kind) {
			case "wait": {
				const ms = duration("wait", "write e.g. `wait: 2s`");
				return ms === undefined ? undefined : { ...base, kind: "wait", ms };
			}
			case "connect": {
				const peers = pairOf("connect");
				if (!peers) return undefined;
				const keepaliveMs = duration("keepalive", "write e.g. `keepalive: 250ms`: how often the peers ping each other");
				const lossAfterMs = duration("loss-after", "write e.g. `loss-after: 1s`: how long a silence means the path is lost");
				if (keepaliveMs !== undefined && (keepaliveMs < 10 || keepaliveMs > 60_000)) this.report("BAD_STEP", entries.get("keepalive")!.value, "keepalive must be from 10ms to 60s", "write e.g. `keepalive: 250ms`");
				else if (lossAfterMs !== undefined && (lossAfterMs < 100 || lossAfterMs > 600_000 || lossAfterMs <= (keepaliveMs ?? 0)))
					this.report("BAD_STEP", entries.get("loss-after")!.value, "loss-after must be from 100ms to 10m, and longer than the keepalive", "write e.g. `loss-after: 1s`");
				else
					return {
						...base,
						kind: "connect",
						a: peers[0],
						b: peers[1],
						result: result(),
						withinMs: duration("within", "write e.g. `within: 5s`") ?? 10_000,
						...(keepaliveMs !== undefined ? { keepaliveMs } : {}),
						...(lossAfterMs !== undefined ? { lossAfterMs } : {}),
					};
				return undefined;
			}
			case "expect": {
				const state = this.choice(entries.get("expect"), "expect", ["connected", "lost"] as const);
				if (!state) return undefined;
				const peers = entries.has("between") ? pairOf("between") : undefined;
				if (entries.has("between") && !peers) return undefined;
				const withinMs = duration("within", "write e.g. `within: 5s`");
				if (withinMs === undefined && !entries.has("within")) this.report("BAD_STEP", map, `\`expect: ${state.value}\` needs \`within:\``, "add e.g. `within: 5s`: how long the pair may take");
				if (withinMs === undefined) return undefined;
				return { ...base, kind: "expect", state: state.value, a: peers?.[0], b: peers?.[1], withinMs, result: result() };
			}
			case "link-down":
			case "link-up":
			case "impair":
			case "flap": {
				const link = name(kind);
				if (!link) return undefined;
				if (kind === "link-down" || kind === "link-up") return event({ pos, kind, link });
				if (kind === "impair") return event({ pos, kind, link, from: name("from"), impair: this.impairOf(entries, pos) });
				const periodMs = duration("period", "write e.g. `period: 2s`") ?? 2000;
				const downMs = duration("down-for", "write e.g. `down-for: 500ms`");
				const countEntry = entries.get("count");
				const countNode = countEntry && this.resolve(countEntry.value as YamlNode);
				const count = countEntry ? (isScalar(countNode) ? Number(countNode.value) : NaN) : 3;
				if (!Number.isInteger(count) || count < 1 || count > 10_000) this.report("BAD_STEP", countNode ?? map, "count must be a whole number from 1 to 10000", "write e.g. `count: 3`");
				else if (downMs !== undefined && downMs >= periodMs) this.report("BAD_STEP", entries.get("down-for")!.value, "down-for must be shorter than the period", "make `down-for:` less than `period:`");
				else return event({ pos, kind, link, periodMs, downMs, count });
				return undefined;
			}
			case "nat-reboot": {
				const nat = name("nat-reboot");
				return nat && event({ pos, kind, nat, outageMs: duration("outage", "write e.g. `outage: 1s`") ?? 0 });
			}
			case "rebind":
			case "expire": {
				const nat = name(kind);
				return nat && event({ pos, kind, nat, host: name("host") });
			}
			case "move": {
				const to = name("move");
				return to && event({ pos, kind, to, via: name("via") });
			}
			case "restart": {
				const node = name("restart");
				return node && event({ pos, kind, node });
			}
		}
		return undefined;
	}

	// ---- programs and the user's commands --------------------------------------

	private programs(pair: Pair, nodeName: string): ProgramDecl[] {
		const map = this.map(this.resolve(pair.value as YamlNode), "`programs:`", "write `programs: { server: { run: [my-server, --port, 9000] } }`");
		if (!map || !this.spend(map.items.length, map)) return [];
		const programs: ProgramDecl[] = [];
		const seen = new Set<string>();
		for (const item of map.items) {
			const keyNode = item.key as YamlNode;
			const name = { value: isScalar(keyNode) ? String(keyNode.value) : "", pos: this.pos(keyNode) };
			if (!programNamePattern.test(name.value)) {
				this.problem("BAD_PROGRAM", name.pos, `program name "${name.value}" is not valid`, "use 1-32 characters: letters, digits, _ and -, starting with a letter");
				continue;
			}
			if (seen.has(name.value)) {
				this.problem("BAD_PROGRAM", name.pos, `node "${nodeName}" has two programs named "${name.value}"`, "rename one of them");
				continue;
			}
			seen.add(name.value);
			const body = this.map(this.resolve(item.value as YamlNode), `program "${name.value}"`, "write e.g. `server: { run: [nc, -l, -p, '8000'] }`");
			if (!body) continue;
			const entries = this.entries(body, keys.program, `program "${name.value}"`);
			const command = this.command(entries.get("run"), "run", body);
			const after: Located<string>[] = [];
			const afterEntry = entries.get("after");
			if (afterEntry) {
				const node = this.resolve(afterEntry.value as YamlNode);
				const names = isSeq(node) ? node.items : [node];
				for (const element of names) {
					const other = this.string(this.pairOf(element as YamlNode), "after");
					if (other) after.push(other);
				}
			}
			const program: ProgramDecl = { name, pos: this.pos(keyNode), command: command ?? { pos: this.pos(body), argv: [], shell: false }, env: this.env(entries.get("env")), after };
			const cwd = this.string(entries.get("cwd"), "cwd");
			if (cwd) program.cwd = cwd;
			const ready = entries.get("ready");
			if (ready) program.ready = this.ready(ready);
			if (command) programs.push(program);
		}
		// `after:` names programs of the same node, not itself, without a cycle.
		const names = new Set(programs.map((program) => program.name.value));
		for (const program of programs)
			for (const other of program.after) {
				if (other.value === program.name.value) this.problem("BAD_PROGRAM", other.pos, `program "${program.name.value}" cannot start after itself`, "remove it from its own `after:`");
				else if (!names.has(other.value)) {
					const guess = closest(other.value, [...names]);
					this.problem("BAD_PROGRAM", other.pos, `node "${nodeName}" has no program "${other.value}"${guess ? `; did you mean "${guess}"?` : ""}`, `\`after:\` names programs of the same node: ${[...names].join(", ")}`);
				}
			}
		const cycle = this.afterCycle(programs);
		if (cycle) this.problem("BAD_PROGRAM", cycle[0].pos, `programs ${cycle.map((program) => `"${program.name.value}"`).join(" → ")} wait for each other in a circle`, "remove one of the `after:` entries");
		return programs;
	}

	/** A circle of `after:` among a node's programs (the first found), or undefined. */
	private afterCycle(programs: ProgramDecl[]): ProgramDecl[] | undefined {
		const byName = new Map(programs.map((program) => [program.name.value, program]));
		const state = new Map<string, "visiting" | "done">();
		const path: ProgramDecl[] = [];
		const visit = (program: ProgramDecl): ProgramDecl[] | undefined => {
			if (state.get(program.name.value) === "done") return undefined;
			if (state.get(program.name.value) === "visiting") return [...path.slice(path.indexOf(program)), program];
			state.set(program.name.value, "visiting");
			path.push(program);
			for (const other of program.after) {
				const next = byName.get(other.value);
				const found = next && next !== program ? visit(next) : undefined;
				if (found) return found;
			}
			path.pop();
			state.set(program.name.value, "done");
			return undefined;
		};
		for (const program of programs) {
			const found = visit(program);
			if (found) return found;
		}
		return undefined;
	}

	/** A command: an argv list (each element text), or one string for `sh -c`. */
	private command(pair: Pair | undefined, what: string, parent: YamlNode): CommandDecl | undefined {
		if (!pair) {
			this.report("MISSING_KEY", parent, `\`${what}:\` is missing`, `add \`${what}: [program, arguments…]\` or \`${what}: "a shell command"\``);
			return undefined;
		}
		const node = this.resolve(pair.value as YamlNode);
		const pos = this.pos(node ?? pair.key);
		if (node && isScalar(node) && typeof node.value === "string" && node.value.trim() !== "") return { pos, argv: [{ value: node.value, pos: this.textPos(node) }], shell: true };
		if (node && isSeq(node) && node.items.length > 0 && this.spend(node.items.length, node)) {
			const argv: Located<string>[] = [];
			for (const element of node.items) {
				const value = this.resolve(element as YamlNode);
				if (!isScalar(value) || value.value === null || typeof value.value === "object") {
					this.report("WRONG_TYPE", value ?? node, `each element of \`${what}:\` is one argument (text)`, "quote it, e.g. `'8000'`");
					return undefined;
				}
				argv.push({ value: String(value.value), pos: this.textPos(value) });
			}
			return { pos, argv, shell: false };
		}
		this.report("WRONG_TYPE", node ?? pair.key, `\`${what}:\` must be a list of arguments or a shell command`, `write \`${what}: [python3, peer.py]\` or \`${what}: "nc -l -p 8000"\``);
		return undefined;
	}

	/** `env: { NAME: value }`: values are text (numbers and booleans as written). */
	private env(pair: Pair | undefined): EnvDecl[] {
		if (!pair) return [];
		const map = this.map(this.resolve(pair.value as YamlNode), "`env:`", "write `env: { LOG: debug }`");
		if (!map || !this.spend(map.items.length, map)) return [];
		const env: EnvDecl[] = [];
		for (const item of map.items) {
			const keyNode = item.key as YamlNode;
			const key = { value: isScalar(keyNode) ? String(keyNode.value) : "", pos: this.pos(keyNode) };
			if (!envNamePattern.test(key.value)) {
				this.problem("BAD_VALUE", key.pos, `"${key.value}" is not an environment variable name`, "use letters, digits and _, not starting with a digit");
				continue;
			}
			const value = this.resolve(item.value as YamlNode);
			if (!isScalar(value) || typeof value.value === "object") {
				this.report("WRONG_TYPE", value ?? keyNode, `the value of ${key.value} must be text`, `write \`${key.value}: "…"\``);
				continue;
			}
			env.push({ key, value: { value: value.value === null ? "" : String(value.value), pos: this.textPos(value) } });
		}
		return env;
	}

	/** A regular expression, checked now so that a bad one is a problem with a position, not a crash later. */
	private pattern(pair: Pair | undefined, what: string): Located<string> | undefined {
		const text = this.string(pair, what);
		if (!text) return undefined;
		try {
			new RegExp(text.value);
			return text;
		} catch (error) {
			this.problem("BAD_VALUE", text.pos, `\`${what}:\` is not a valid regular expression: ${(error as Error).message.replace(/^Invalid regular expression: /, "")}`, "escape special characters with \\, e.g. `1 received`, `ready\\.`");
			return undefined;
		}
	}

	private within(pair: Pair | undefined, fallback: number): number {
		if (!pair) return fallback;
		const node = this.resolve(pair.value as YamlNode);
		const value = isScalar(node) ? parseDuration(node.value, "s") : undefined;
		if (value === undefined || value <= 0 || value > 3_600_000) {
			this.report("BAD_VALUE", node ?? pair.key, "`within:` must be a duration from 1ms to 1h", "write e.g. `within: 10s`");
			return fallback;
		}
		return value;
	}

	private verdict(pair: Pair | undefined, parent: YamlNode): Located<CheckVerdict> | undefined {
		if (!pair) return { value: "pass", pos: this.pos(parent) };
		return this.choice(pair, "result", ["pass", "fail"] as const);
	}

	/** `pairs: all` or a list of [dialer, listener]. */
	private pairs(pair: Pair | undefined): "all" | [Located<string>, Located<string>][] | undefined {
		if (!pair) return "all";
		const node = this.resolve(pair.value as YamlNode);
		if (isScalar(node) && node.value === "all") return "all";
		if (!isSeq(node)) {
			this.report("BAD_EXPECT", node ?? pair.key, "`pairs:` is `all` or a list of pairs", "write `pairs: all` or `pairs: [[alice, bob], [alice, carol]]`");
			return undefined;
		}
		const pairs: [Located<string>, Located<string>][] = [];
		for (const element of node.items) {
			const seq = this.resolve(element as YamlNode);
			const names = isSeq(seq) ? seq.items.map((item) => this.string(this.pairOf(item as YamlNode), "pairs")) : [];
			if (names.length !== 2 || names.some((name) => !name)) {
				this.report("BAD_EXPECT", seq ?? node, "each pair is two node names", "write e.g. `[alice, bob]`");
				return undefined;
			}
			pairs.push(names as [Located<string>, Located<string>]);
		}
		return pairs;
	}

	/** `ready: { udp: PORT | tcp: PORT | output: REGEX | file: PATH, within: 5s }`. */
	private ready(pair: Pair): ReadyDecl | undefined {
		const map = this.map(this.resolve(pair.value as YamlNode), "`ready:`", "write `ready: { udp: 3478 }`, `{ tcp: 8000 }`, `{ output: 'listening' }` or `{ file: /tmp/ready }`");
		if (!map) return undefined;
		const entries = this.entries(map, keys.ready, "ready");
		const kinds = (["udp", "tcp", "output", "file"] as const).filter((kind) => entries.has(kind));
		const withinMs = this.within(entries.get("within"), defaultReadyWithinMs);
		const pos = this.pos(map);
		if (kinds.length !== 1) {
			this.report("BAD_PROGRAM", map, kinds.length === 0 ? "`ready:` says nothing to wait for" : `\`ready:\` has ${kinds.join(" and ")}: give one`, "write one of `udp: PORT`, `tcp: PORT`, `output: REGEX`, `file: PATH` (and `within:`)");
			return undefined;
		}
		const kind = kinds[0];
		if (kind === "udp" || kind === "tcp") {
			const node = this.resolve(entries.get(kind)!.value as YamlNode);
			const port = isScalar(node) ? Number(node.value) : NaN;
			if (!Number.isInteger(port) || port < 1 || port > 65535) {
				this.report("BAD_PROGRAM", node ?? map, `${kind} port must be a number from 1 to 65535`, `write e.g. \`${kind}: 3478\``);
				return undefined;
			}
			return { pos, withinMs, kind, port };
		}
		if (kind === "output") {
			const pattern = this.pattern(entries.get("output"), "output");
			return pattern && { pos, withinMs, kind, pattern };
		}
		const path = this.string(entries.get("file"), "file");
		return path && { pos, withinMs, kind, path };
	}

	// ---- helpers -----------------------------------------------------------

	private checkInterfaceName(name: Located<string>): void {
		if (name.value.length > 15)
			this.problem("BAD_INTERFACE_NAME", name.pos, `interface name "${name.value}" is ${name.value.length} characters; Linux allows 15`, "use a shorter name such as `eth0` or `wan`");
		else if (!interfaceNamePattern.test(name.value) || name.value === "lo")
			this.problem("BAD_INTERFACE_NAME", name.pos, `interface name "${name.value}" is not valid`, "use letters, digits, _ . and - (not `lo`)");
	}

	private checkCidr(address: Located<string>, hostAddress: boolean): void {
		if (!isCidr(address.value))
			this.problem("BAD_CIDR", address.pos, `"${address.value}" is not an IPv4 address with a prefix length`, hostAddress ? "write e.g. `10.0.1.2/24`" : "write e.g. `10.0.1.0/24`");
	}

	private entries(map: YAMLMap, known: readonly string[], where: string): Map<string, Pair> {
		const entries = new Map<string, Pair>();
		if (!this.spend(map.items.length, map)) return entries;
		for (const pair of map.items) {
			const keyNode = pair.key as YamlNode;
			const key = isScalar(keyNode) ? String(keyNode.value) : "";
			if (entries.has(key)) {
				this.problem("DUPLICATE_KEY", this.pos(keyNode), `key "${key}" appears twice in ${where}`, "remove or merge one of them");
				continue;
			}
			if (!known.includes(key)) {
				const guess = closest(key, known);
				this.problem("UNKNOWN_KEY", this.pos(keyNode), `unknown key "${key}" in ${where}${guess ? `; did you mean "${guess}"?` : ""}`, guess ? `rename it to \`${guess}\`` : `known keys: ${known.filter((k) => k !== "$schema").join(", ")}`);
				continue;
			}
			entries.set(key, pair);
		}
		return entries;
	}

	private string(pair: Pair | undefined, what: string, allowEmpty = false): Located<string> | undefined {
		if (!pair) return undefined;
		const node = this.resolve(pair.value as YamlNode);
		if (!node || !isScalar(node) || node.value === null || typeof node.value === "object" || (!allowEmpty && String(node.value) === "")) {
			this.report("WRONG_TYPE", node ?? (pair.key as YamlNode), `\`${what}:\` must be a text value`, undefined);
			return undefined;
		}
		return { value: String(node.value), pos: this.pos(node) };
	}

	private boolean(pair: Pair | undefined, what: string): Located<boolean> | undefined {
		if (!pair) return undefined;
		const node = this.resolve(pair.value as YamlNode);
		if (!isScalar(node) || typeof node.value !== "boolean") {
			this.report("WRONG_TYPE", node ?? (pair.key as YamlNode), `\`${what}:\` must be true or false`, `write \`${what}: true\``);
			return undefined;
		}
		return { value: node.value, pos: this.pos(node) };
	}

	private choice<T extends string>(pair: Pair | undefined, what: string, choices: readonly T[]): Located<T> | undefined {
		const text = this.string(pair, what);
		if (!text) return undefined;
		if (!(choices as readonly string[]).includes(text.value)) {
			const guess = closest(text.value, choices);
			this.problem("BAD_VALUE", text.pos, `${what} "${text.value}" is not one of: ${choices.join(", ")}${guess ? `; did you mean "${guess}"?` : ""}`, guess ? `write \`${what}: ${guess}\`` : undefined);
			return undefined;
		}
		return text as Located<T>;
	}

	private list(pair: Pair | undefined, what: string): YamlNode[] {
		if (!pair) return [];
		const node = this.resolve(pair.value as YamlNode);
		if (!node || (isScalar(node) && node.value === null)) return [];
		if (!isSeq(node)) {
			this.report("WRONG_TYPE", node, `\`${what}:\` must be a list`, `write \`${what}:\` followed by \`- …\` items`);
			return [];
		}
		if (!this.spend(node.items.length, node)) return [];
		return node.items.map((item) => this.resolve(item as YamlNode)).filter((item): item is YamlNode => item !== null);
	}

	private map(node: YamlNode | null, what: string, fix: string): YAMLMap | undefined {
		const resolved = this.resolve(node);
		if (!resolved || !isMap(resolved)) {
			this.report("WRONG_TYPE", resolved ?? undefined, `${what} must be a map`, fix);
			return undefined;
		}
		return resolved;
	}

	/** Wrap a bare node as a pair so `string()` can read it. */
	private pairOf(node: YamlNode): Pair {
		return { key: node, value: node } as unknown as Pair;
	}

	private resolve(node: unknown): YamlNode | null {
		let current = node as YamlNode | null | undefined;
		for (let depth = 0; current && isAlias(current) && depth < 32; depth++) {
			const alias = current;
			// The latest definition of the anchor before the alias (definitions are in document order).
			const definitions = this.anchors.get(alias.source) ?? [];
			const at = alias.range?.[0] ?? 0;
			let low = 0;
			let high = definitions.length;
			while (low < high) {
				const middle = (low + high) >> 1;
				if ((definitions[middle].range?.[0] ?? 0) < at) low = middle + 1;
				else high = middle;
			}
			current = definitions[low - 1];
		}
		if (!current || isAlias(current) || isPair(current)) return null;
		return current;
	}

	/** Where a scalar's text begins: after its opening quote, if it has one (placeholder columns count from there). */
	private textPos(node: YamlNode): Pos {
		const pos = this.pos(node);
		const quoted = isScalar(node) && (node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE");
		return quoted ? { line: pos.line, col: pos.col + 1 } : pos;
	}

	private pos(node: unknown): Pos {
		const offset = (node as YamlNode | undefined | null)?.range?.[0];
		return offset === undefined ? { line: 1, col: 1 } : this.source.position(offset);
	}

	private report(code: ProblemCode, node: unknown, message: string, fix: string | undefined): void {
		this.problem(code, this.pos(node), message, fix);
	}

	private problem(code: ProblemCode, pos: Pos, message: string, fix?: string): void {
		this.problems.push({ code, pos, message, fix });
	}
}
