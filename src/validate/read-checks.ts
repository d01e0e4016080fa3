// Reading `expect:`: punch, reach and probe checks of testbed's agents, and run, pair and matrix
// checks of the user's programs.
import { askingOrder, portMappingProtocols, type PortMappingProtocol } from "../vocabulary/port-mapping.ts";
import { isScalar, isSeq, type Node as YamlNode, type Pair } from "yaml";
import { natBehaviours, type ExpectDecl, type Located, type CheckVerdict } from "../parse/topology.ts";
import { punchOutcomes, punchProtos, type PunchOutcome } from "../vocabulary/punch.ts";
import { closest, parseDuration } from "./units.ts";
import { topologyKeys, defaultCheckWithinMs } from "./topology-keys.ts";
import type { YamlReader } from "./yaml-reader.ts";
import { readCommand, readEnv } from "./read-programs.ts";

export function readExpect(r: YamlReader, pair: Pair): ExpectDecl[] {
	const checks: ExpectDecl[] = [];
	for (const item of r.list(pair, "expect")) {
		const map = r.map(item, "check", "write `- punch: [alice, bob]`, `- reach: [alice, stun]` or `- probe: home`");
		if (!map) continue;
		const first = map.items[0]?.key as YamlNode | undefined;
		const kind = isScalar(first) ? String(first.value) : "";
		const pos = r.pos(map);
		const pairOf = (entries: Map<string, Pair>, what: string): [Located<string>, Located<string>] | undefined => {
			const seq = r.resolve(entries.get(what)!.value);
			const names = isSeq(seq) ? seq.items.map((element) => r.string(r.pairOf(element as YamlNode), what)) : [];
			if (names.length !== 2 || names.some((name) => !name)) {
				r.report("BAD_EXPECT", seq ?? map, `\`${what}:\` takes two node names`, `write \`${what}: [alice, bob]\``);
				return undefined;
			}
			return names as [Located<string>, Located<string>];
		};
		if (kind === "punch") {
			const entries = r.entries(map, topologyKeys.punchCheck, "punch check");
			const nodes = pairOf(entries, "punch");
			if (!nodes) continue;
			const check: ExpectDecl = { kind: "punch", pos, a: nodes[0], b: nodes[1] };
			const proto = r.choice(entries.get("proto"), "proto", punchProtos)?.value;
			if (proto) check.proto = proto;
			const family = r.choice(entries.get("family"), "family", ["ipv4", "ipv6"] as const)?.value;
			if (family === "ipv6") check.family = 6;
			const portMapping = entries.get("port-mapping");
			if (portMapping) {
				const node = r.resolve(portMapping.value as YamlNode);
				const values = isSeq(node) ? node.items.map((element) => r.resolve(element as YamlNode)) : undefined;
				if (isScalar(node) && typeof node.value === "boolean") {
					if (node.value) check.portMapping = [...askingOrder];
				} else if (values && values.length > 0) {
					const names = values.map((value) => (isScalar(value) ? String(value.value) : ""));
					const bad = names.find((name) => !(portMappingProtocols as readonly string[]).includes(name));
					if (bad !== undefined || new Set(names).size !== names.length) r.report("BAD_EXPECT", node, bad !== undefined ? `port-mapping protocol "${bad}" is not one of: ${portMappingProtocols.join(", ")}` : "a port-mapping protocol is listed twice", "write `port-mapping: true` (PCP, then NAT-PMP, then UPnP) or e.g. `port-mapping: [upnp]`");
					else check.portMapping = names as PortMappingProtocol[];
				} else r.report("BAD_EXPECT", node ?? portMapping.key, "`port-mapping:` of a punch check is true, false or a list of protocols", "write `port-mapping: true` or e.g. `port-mapping: [pcp, upnp]`");
				if (check.portMapping && check.family === 6) r.report("BAD_EXPECT", portMapping.key, "port mapping is IPv4 (NAT-PMP, PCP and UPnP map a NAT's IPv4 ports here)", "remove `port-mapping:` or `family: ipv6`");
			}
			const result = entries.get("result");
			if (result) {
				const node = r.resolve(result.value as YamlNode);
				const values = isSeq(node) ? node.items.map((element) => r.resolve(element as YamlNode)) : [node];
				const outcomes = values.map((value) => (isScalar(value) ? String(value.value) : ""));
				const bad = outcomes.find((outcome) => !(punchOutcomes as readonly string[]).includes(outcome));
				if (bad !== undefined) r.report("BAD_EXPECT", node ?? result.key, `punch result "${bad}" is not one of: ${punchOutcomes.join(", ")}`, "write e.g. `result: direct` or `result: [lan, hairpin]`");
				else check.result = { value: outcomes as PunchOutcome[], pos: r.pos(node) };
			}
			const runs = entries.get("runs");
			if (runs) {
				const node = r.resolve(runs.value as YamlNode);
				const value = isScalar(node) ? Number(node.value) : NaN;
				if (!Number.isInteger(value) || value < 1 || value > 1000) r.report("BAD_EXPECT", node ?? runs.key, "runs must be a whole number from 1 to 1000", "write e.g. `runs: 3`");
				else check.runs = { value, pos: r.pos(node) };
			}
			const maxTime = entries.get("max-time");
			if (maxTime) {
				const node = r.resolve(maxTime.value as YamlNode);
				const value = isScalar(node) ? parseDuration(node.value, "ms") : undefined;
				if (value === undefined) r.report("BAD_EXPECT", node ?? maxTime.key, "max-time must be a duration", "write e.g. `max-time: 500ms`");
				else check.maxTimeMs = { value, pos: r.pos(node) };
			}
			checks.push(check);
		} else if (kind === "reach") {
			const entries = r.entries(map, topologyKeys.reachCheck, "reach check");
			const nodes = pairOf(entries, "reach");
			if (!nodes) continue;
			const proto = r.choice(entries.get("proto"), "proto", ["udp", "tcp", "icmp"] as const)?.value ?? "udp";
			const result = r.boolean(entries.get("result"), "result")?.value ?? true;
			checks.push({ kind: "reach", pos, from: nodes[0], to: nodes[1], proto, result });
		} else if (kind === "probe") {
			const entries = r.entries(map, topologyKeys.probeCheck, "probe check");
			const nat = r.string(entries.get("probe"), "probe");
			if (!nat) continue;
			checks.push({
				kind: "probe",
				pos,
				nat,
				mapping: r.choice(entries.get("mapping"), "mapping", natBehaviours)?.value,
				filtering: r.choice(entries.get("filtering"), "filtering", natBehaviours)?.value,
				hairpin: r.boolean(entries.get("hairpin"), "hairpin")?.value,
				portPreservation: r.boolean(entries.get("port-preservation"), "port-preservation")?.value,
			});
		} else if (kind === "run") {
			const entries = r.entries(map, topologyKeys.runCheck, "run check");
			const node = r.string(entries.get("run"), "run");
			const command = readCommand(r, entries.get("command"), "command", map);
			const output = r.pattern(entries.get("output"), "output");
			const exitEntry = entries.get("exit");
			const exitNode = exitEntry && r.resolve(exitEntry.value as YamlNode);
			const exit = exitEntry ? (isScalar(exitNode) ? Number(exitNode.value) : NaN) : 0;
			if (!Number.isInteger(exit) || exit < 0 || exit > 255) r.report("BAD_EXPECT", exitNode ?? exitEntry?.key ?? map, "exit must be an exit status from 0 to 255", "write e.g. `exit: 0`");
			else if (node && command) checks.push({ kind: "run", pos, node, command, env: readEnv(r, entries.get("env")), exit, ...(output ? { output } : {}), withinMs: r.within(entries.get("within"), defaultCheckWithinMs) });
		} else if (kind === "pair") {
			const entries = r.entries(map, topologyKeys.pairCheck, "pair check");
			const nodes = pairOf(entries, "pair");
			const listen = readCommand(r, entries.get("listen"), "listen", map);
			const dial = readCommand(r, entries.get("dial"), "dial", map);
			const result = readVerdict(r, entries.get("result"), map);
			if (nodes && listen && dial && result) checks.push({ kind: "pair", pos, a: nodes[0], b: nodes[1], listen, dial, env: readEnv(r, entries.get("env")), result, withinMs: r.within(entries.get("within"), defaultCheckWithinMs) });
		} else if (kind === "matrix") {
			r.entries(map, topologyKeys.matrixCheck, "matrix check");
			const body = r.map(r.resolve(map.items[0].value as YamlNode), "`matrix:`", "write `matrix: { listen: [prog], dial: [prog], pairs: all, result: pass }`");
			if (!body) continue;
			const entries = r.entries(body, topologyKeys.matrix, "matrix");
			const listen = readCommand(r, entries.get("listen"), "listen", body);
			const dial = readCommand(r, entries.get("dial"), "dial", body);
			const result = readVerdict(r, entries.get("result"), body);
			const pairs = readPairs(r, entries.get("pairs"));
			const except: Extract<ExpectDecl, { kind: "matrix" }>["except"] = [];
			for (const item of r.list(entries.get("except"), "except")) {
				const exception = r.map(item, "an exception", "write `- { pair: [alice, bob], result: fail }`");
				if (!exception) continue;
				const exceptionEntries = r.entries(exception, topologyKeys.matrixException, "matrix exception");
				const pair = exceptionEntries.has("pair") ? pairOf(exceptionEntries, "pair") : undefined;
				if (!exceptionEntries.has("pair")) r.report("BAD_EXPECT", exception, "an exception has no `pair:`", "write `- { pair: [alice, bob], result: fail }`");
				const verdict = readVerdict(r, exceptionEntries.get("result"), exception);
				if (!exceptionEntries.has("result")) r.report("BAD_EXPECT", exception, "an exception has no `result:`", "add `result: fail` (or pass)");
				if (pair && verdict && exceptionEntries.has("result")) except.push({ pair, result: verdict, pos: r.pos(exception) });
			}
			if (listen && dial && result && pairs) checks.push({ kind: "matrix", pos, listen, dial, env: readEnv(r, entries.get("env")), pairs, result, except, withinMs: r.within(entries.get("within"), defaultCheckWithinMs) });
		} else {
			const guess = closest(kind, ["punch", "reach", "probe", "run", "pair", "matrix"]);
			r.report("BAD_EXPECT", first ?? map, `unknown check "${kind}"${guess ? `; did you mean "${guess}"?` : ""}`, "a check starts with `punch:`, `reach:`, `probe:`, `run:`, `pair:` or `matrix:`");
		}
	}
	return checks;
}

function readVerdict(r: YamlReader, pair: Pair | undefined, parent: YamlNode): Located<CheckVerdict> | undefined {
	if (!pair) return { value: "pass", pos: r.pos(parent) };
	return r.choice(pair, "result", ["pass", "fail"] as const);
}

/** `pairs: all` or a list of [dialer, listener]. */
function readPairs(r: YamlReader, pair: Pair | undefined): "all" | [Located<string>, Located<string>][] | undefined {
	if (!pair) return "all";
	const node = r.resolve(pair.value as YamlNode);
	if (isScalar(node) && node.value === "all") return "all";
	if (!isSeq(node)) {
		r.report("BAD_EXPECT", node ?? pair.key, "`pairs:` is `all` or a list of pairs", "write `pairs: all` or `pairs: [[alice, bob], [alice, carol]]`");
		return undefined;
	}
	const pairs: [Located<string>, Located<string>][] = [];
	for (const element of node.items) {
		const seq = r.resolve(element as YamlNode);
		const names = isSeq(seq) ? seq.items.map((item) => r.string(r.pairOf(item as YamlNode), "pairs")) : [];
		if (names.length !== 2 || names.some((name) => !name)) {
			r.report("BAD_EXPECT", seq ?? node, "each pair is two node names", "write e.g. `[alice, bob]`");
			return undefined;
		}
		pairs.push(names as [Located<string>, Located<string>]);
	}
	return pairs;
}
