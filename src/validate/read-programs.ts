// Reading a node's `programs:` and the user's commands: argv or shell text, environment,
// readiness, `after:` (no cycles).
import { isScalar, isSeq, visit, type Node as YamlNode, type Pair } from "yaml";
import type { Located, CommandDecl, EnvDecl, ProgramDecl, ReadyDecl } from "../parse/topology.ts";
import { closest } from "./units.ts";
import { topologyKeys, programNamePattern, envNamePattern, defaultReadyWithinMs } from "./topology-keys.ts";
import type { YamlReader } from "./yaml-reader.ts";

export function readPrograms(r: YamlReader, pair: Pair, nodeName: string): ProgramDecl[] {
	const map = r.map(r.resolve(pair.value as YamlNode), "`programs:`", "write `programs: { server: { run: [my-server, --port, 9000] } }`");
	if (!map || !r.spend(map.items.length, map)) return [];
	const programs: ProgramDecl[] = [];
	const seen = new Set<string>();
	for (const item of map.items) {
		const keyNode = item.key as YamlNode;
		const name = { value: isScalar(keyNode) ? String(keyNode.value) : "", pos: r.pos(keyNode) };
		if (!programNamePattern.test(name.value)) {
			r.problem("BAD_PROGRAM", name.pos, `program name "${name.value}" is not valid`, "use 1-32 characters: letters, digits, _ and -, starting with a letter");
			continue;
		}
		if (seen.has(name.value)) {
			r.problem("BAD_PROGRAM", name.pos, `node "${nodeName}" has two programs named "${name.value}"`, "rename one of them");
			continue;
		}
		seen.add(name.value);
		const body = r.map(r.resolve(item.value as YamlNode), `program "${name.value}"`, "write e.g. `server: { run: [nc, -l, -p, '8000'] }`");
		if (!body) continue;
		const entries = r.entries(body, topologyKeys.program, `program "${name.value}"`);
		const command = readCommand(r, entries.get("run"), "run", body);
		const after: Located<string>[] = [];
		const afterEntry = entries.get("after");
		if (afterEntry) {
			const node = r.resolve(afterEntry.value as YamlNode);
			const names = isSeq(node) ? node.items : [node];
			for (const element of names) {
				const other = r.string(r.pairOf(element as YamlNode), "after");
				if (other) after.push(other);
			}
		}
		const program: ProgramDecl = { name, pos: r.pos(keyNode), command: command ?? { pos: r.pos(body), argv: [], shell: false }, env: readEnv(r, entries.get("env")), after };
		const cwd = r.string(entries.get("cwd"), "cwd");
		if (cwd) program.cwd = cwd;
		const ready = entries.get("ready");
		if (ready) program.ready = readReady(r, ready);
		if (command) programs.push(program);
	}
	// `after:` names programs of the same node, not itself, without a cycle.
	const names = new Set(programs.map((program) => program.name.value));
	for (const program of programs)
		for (const other of program.after) {
			if (other.value === program.name.value) r.problem("BAD_PROGRAM", other.pos, `program "${program.name.value}" cannot start after itself`, "remove it from its own `after:`");
			else if (!names.has(other.value)) {
				const guess = closest(other.value, [...names]);
				r.problem("BAD_PROGRAM", other.pos, `node "${nodeName}" has no program "${other.value}"${guess ? `; did you mean "${guess}"?` : ""}`, `\`after:\` names programs of the same node: ${[...names].join(", ")}`);
			}
		}
	const cycle = afterCycle(r, programs);
	if (cycle) r.problem("BAD_PROGRAM", cycle[0].pos, `programs ${cycle.map((program) => `"${program.name.value}"`).join(" → ")} wait for each other in a circle`, "remove one of the `after:` entries");
	return programs;
}

/** A circle of `after:` among a node's programs (the first found), or undefined. */
function afterCycle(r: YamlReader, programs: ProgramDecl[]): ProgramDecl[] | undefined {
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
export function readCommand(r: YamlReader, pair: Pair | undefined, what: string, parent: YamlNode): CommandDecl | undefined {
	if (!pair) {
		r.report("MISSING_KEY", parent, `\`${what}:\` is missing`, `add \`${what}: [program, arguments…]\` or \`${what}: "a shell command"\``);
		return undefined;
	}
	const node = r.resolve(pair.value as YamlNode);
	const pos = r.pos(node ?? pair.key);
	if (node && isScalar(node) && typeof node.value === "string" && node.value.trim() !== "") return { pos, argv: [{ value: node.value, pos: r.textPos(node) }], shell: true };
	if (node && isSeq(node) && node.items.length > 0 && r.spend(node.items.length, node)) {
		const argv: Located<string>[] = [];
		for (const element of node.items) {
			const value = r.resolve(element as YamlNode);
			if (!isScalar(value) || value.value === null || typeof value.value === "object") {
				r.report("WRONG_TYPE", value ?? node, `each element of \`${what}:\` is one argument (text)`, "quote it, e.g. `'8000'`");
				return undefined;
			}
			argv.push({ value: String(value.value), pos: r.textPos(value) });
		}
		return { pos, argv, shell: false };
	}
	r.report("WRONG_TYPE", node ?? pair.key, `\`${what}:\` must be a list of arguments or a shell command`, `write \`${what}: [python3, peer.py]\` or \`${what}: "nc -l -p 8000"\``);
	return undefined;
}

/** `env: { NAME: value }`: values are text (numbers and booleans as written). */
export function readEnv(r: YamlReader, pair: Pair | undefined): EnvDecl[] {
	if (!pair) return [];
	const map = r.map(r.resolve(pair.value as YamlNode), "`env:`", "write `env: { LOG: debug }`");
	if (!map || !r.spend(map.items.length, map)) return [];
	const env: EnvDecl[] = [];
	for (const item of map.items) {
		const keyNode = item.key as YamlNode;
		const key = { value: isScalar(keyNode) ? String(keyNode.value) : "", pos: r.pos(keyNode) };
		if (!envNamePattern.test(key.value)) {
			r.problem("BAD_VALUE", key.pos, `"${key.value}" is not an environment variable name`, "use letters, digits and _, not starting with a digit");
			continue;
		}
		const value = r.resolve(item.value as YamlNode);
		if (!isScalar(value) || typeof value.value === "object") {
			r.report("WRONG_TYPE", value ?? keyNode, `the value of ${key.value} must be text`, `write \`${key.value}: "…"\``);
			continue;
		}
		env.push({ key, value: { value: value.value === null ? "" : String(value.value), pos: r.textPos(value) } });
	}
	return env;
}

/** `ready: { udp: PORT | tcp: PORT | output: REGEX | file: PATH, within: 5s }`. */
function readReady(r: YamlReader, pair: Pair): ReadyDecl | undefined {
	const map = r.map(r.resolve(pair.value as YamlNode), "`ready:`", "write `ready: { udp: 3478 }`, `{ tcp: 8000 }`, `{ output: 'listening' }` or `{ file: /tmp/ready }`");
	if (!map) return undefined;
	const entries = r.entries(map, topologyKeys.ready, "ready");
	const kinds = (["udp", "tcp", "output", "file"] as const).filter((kind) => entries.has(kind));
	const withinMs = r.within(entries.get("within"), defaultReadyWithinMs);
	const pos = r.pos(map);
	if (kinds.length !== 1) {
		r.report("BAD_PROGRAM", map, kinds.length === 0 ? "`ready:` says nothing to wait for" : `\`ready:\` has ${kinds.join(" and ")}: give one`, "write one of `udp: PORT`, `tcp: PORT`, `output: REGEX`, `file: PATH` (and `within:`)");
		return undefined;
	}
	const kind = kinds[0];
	if (kind === "udp" || kind === "tcp") {
		const node = r.resolve(entries.get(kind)!.value as YamlNode);
		const port = isScalar(node) ? Number(node.value) : NaN;
		if (!Number.isInteger(port) || port < 1 || port > 65535) {
			r.report("BAD_PROGRAM", node ?? map, `${kind} port must be a number from 1 to 65535`, `write e.g. \`${kind}: 3478\``);
			return undefined;
		}
		return { pos, withinMs, kind, port };
	}
	if (kind === "output") {
		const pattern = r.pattern(entries.get("output"), "output");
		return pattern && { pos, withinMs, kind, pattern };
	}
	const path = r.string(entries.get("file"), "file");
	return path && { pos, withinMs, kind, path };
}
