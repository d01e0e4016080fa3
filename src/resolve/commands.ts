// The user's commands, resolved: placeholders for addresses replaced, working directories decided,
// programs ordered, the checks that run programs made concrete. Pure.
//
// Placeholders: `${NODE}` is the node's first address, `${NODE.IFACE}` the first address of that
// interface, `${NAT.public}` a NAT's public address; `$${…}` is a literal `${…}` (for a shell's own
// variables). They may appear in commands and environment values.
import { dirname, isAbsolute, resolve as resolvePath } from "node:path";
import type { CheckVerdict, CommandDecl, EnvDecl, ExpectDecl, Located, NodeDecl, ProgramDecl, ReadyDecl, TopologyDecl } from "../parse/topology.ts";
import type { Pos, Problem } from "../vocabulary/problems.ts";
import { closest } from "../validate/units.ts";
import type { Lab, LabNode } from "./lab.ts";

/** A command ready to run: argv (a shell command is `sh -c TEXT`), extra environment, working directory. */
export interface UserCommand {
	argv: string[];
	/** The command as the user wrote it, with placeholders replaced: for reports. */
	text: string;
	env: Record<string, string>;
	cwd: string;
}

/** When a program counts as ready. */
export type LabReady = { withinMs: number } & ({ kind: "udp" | "tcp"; port: number } | { kind: "output"; pattern: string } | { kind: "file"; path: string });

export interface LabProgram extends UserCommand {
	node: string;
	name: string;
	ready?: LabReady;
	/** Programs of the same node that must be ready (or started, without `ready:`) first. */
	after: string[];
	pos: Pos;
}

/** Checks of the user's programs, resolved (the punch, reach and probe checks stay as declared). */
export type UserCheck =
	| { kind: "run"; pos: Pos; node: string; command: UserCommand; exit: number; output?: string; withinMs: number }
	/** `dialer` runs `dial`, `listener` runs `listen`. */
	| { kind: "pair"; pos: Pos; dialer: string; listener: string; listen: UserCommand; dial: UserCommand; result: CheckVerdict; withinMs: number }
	| { kind: "matrix"; pos: Pos; listen: UserCommand; dial: UserCommand; pairs: "all" | [string, string][]; result: CheckVerdict; except: { pair: [string, string]; result: CheckVerdict }[]; withinMs: number };

export type LabCheck = Extract<ExpectDecl, { kind: "punch" | "reach" | "probe" }> | UserCheck;

type Report = (code: Problem["code"], pos: Pos, message: string, fix?: string) => void;

/** The folder relative paths in commands start from: the topology file's, or the current one for inline text. */
export function baseFolder(lab: Lab): string {
	return lab.file.startsWith("<") ? process.cwd() : dirname(lab.file);
}

/** The address a placeholder stands for, or why there is none. */
function placeholderValue(lab: Lab, name: string): { value: string } | { error: string; fix: string } {
	const dot = name.indexOf(".");
	const nodeName = dot < 0 ? name : name.slice(0, dot);
	const rest = dot < 0 ? undefined : name.slice(dot + 1);
	const node = lab.nodes.find((candidate) => candidate.name === nodeName);
	if (!node) {
		const guess = closest(nodeName, lab.nodes.map((candidate) => candidate.name));
		return { error: `\${${name}} names no node "${nodeName}"${guess ? `; did you mean "${guess}"?` : ""}`, fix: guess ? `write \`\${${guess}${rest === undefined ? "" : `.${rest}`}}\`` : "write `${NODE}`, `${NODE.IFACE}` or `${NAT.public}`; `$${…}` for a literal `${…}`" };
	}
	if (rest === "public" && node.nat && !node.interfaces.some((iface) => iface.name === "public")) {
		return node.nat.publicAddress ? { value: node.nat.publicAddress } : { error: `NAT "${node.name}" has no public address`, fix: "give its outside interface an address" };
	}
	if (rest !== undefined) {
		const iface = node.interfaces.find((candidate) => candidate.name === rest);
		if (!iface && rest === "public") {
			const nats = lab.nodes.filter((candidate) => candidate.nat).map((candidate) => candidate.name);
			return { error: `\${${name}}: "${node.name}" is not a NAT, and only a NAT has a public address`, fix: nats.length ? `NATs in this lab: ${nats.join(", ")}; \`\${${node.name}}\` is this node's own address` : `\`\${${node.name}}\` is this node's own address` };
		}
		if (!iface) {
			const names = node.interfaces.filter((candidate) => candidate.addresses.length > 0).map((candidate) => candidate.name);
			const guess = closest(rest, names);
			return { error: `node "${node.name}" has no interface "${rest}"${guess ? `; did you mean "${guess}"?` : ""}`, fix: `its interfaces with addresses: ${names.join(", ") || "none"}${node.nat ? "; `.public` for its public address" : ""}` };
		}
		if (iface.addresses.length === 0) return { error: `interface ${node.name}:${rest} has no address`, fix: "give its link a subnet or addresses" };
		return { value: iface.addresses[0].ip };
	}
	const first = firstAddress(node);
	return first ? { value: first } : { error: `node "${node.name}" has no address`, fix: `a ${node.kind} without addresses cannot be named; use a host, router or NAT` };
}

/**
 * A node's address: the one its name resolves to inside the lab and `${NODE}` stands for — the first
 * address of its first link, else of its other interfaces (a dummy's, declared before the links, is
 * an extra address, not the node's own).
 */
export function firstAddress(node: LabNode): string | undefined {
	const withAddress = node.interfaces.filter((iface) => iface.addresses.length > 0);
	return (withAddress.find((iface) => iface.type === "veth") ?? withAddress[0])?.addresses[0].ip;
}

/** Replace the placeholders of one located text; problems at the placeholder's own column. */
export function substitute(lab: Lab, text: Located<string>, report: Report): string {
	return text.value.replace(/\$(\$?)\{([^}]*)\}/g, (match, escaped: string, name: string, offset: number) => {
		if (escaped) return match.slice(1);
		const pos = { line: text.pos.line, col: text.pos.col + offset };
		if (!/^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_.-]+)?$/.test(name)) {
			report("BAD_PLACEHOLDER", pos, `\${${name}} is not a placeholder`, "write `${NODE}`, `${NODE.IFACE}` or `${NAT.public}`; `$${…}` for a literal `${…}`");
			return match;
		}
		const found = placeholderValue(lab, name);
		if ("error" in found) {
			report("BAD_PLACEHOLDER", pos, found.error, found.fix);
			return match;
		}
		return found.value;
	});
}

/** A command as one line for people: arguments quoted as a shell would need, line breaks shown as \\n. */
export function commandText(argv: string[]): string {
	const shown = argv[0] === "sh" && argv[1] === "-c" && argv.length === 3 ? [argv[2]] : argv.map((argument) => (/^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replaceAll("'", "'\\''")}'`));
	return shown.join(" ").replaceAll("\n", "\\n");
}

function userCommand(lab: Lab, command: CommandDecl, env: EnvDecl[], cwd: string, report: Report): UserCommand {
	const argv = command.argv.map((argument) => substitute(lab, argument, report));
	return {
		argv: command.shell ? ["sh", "-c", argv[0]] : argv,
		text: commandText(command.shell ? ["sh", "-c", argv[0]] : argv),
		env: Object.fromEntries(env.map((entry) => [entry.key.value, substitute(lab, entry.value, report)])),
		cwd,
	};
}

function programOf(lab: Lab, node: NodeDecl, program: ProgramDecl, report: Report): LabProgram {
	const base = baseFolder(lab);
	const cwd = program.cwd ? (isAbsolute(program.cwd.value) ? program.cwd.value : resolvePath(base, program.cwd.value)) : base;
	return {
		...userCommand(lab, program.command, program.env, cwd, report),
		node: node.name,
		name: program.name.value,
		after: program.after.map((name) => name.value),
		pos: program.pos,
		...(program.ready ? { ready: readyOf(program.ready) } : {}),
	};
}

function readyOf(ready: ReadyDecl): LabReady {
	switch (ready.kind) {
		case "udp":
		case "tcp":
			return { kind: ready.kind, port: ready.port, withinMs: ready.withinMs };
		case "output":
			return { kind: "output", pattern: ready.pattern.value, withinMs: ready.withinMs };
		case "file":
			return { kind: "file", path: ready.path.value, withinMs: ready.withinMs };
	}
}

/** Every node's programs, resolved (in file order). */
export function resolvePrograms(lab: Lab, decl: TopologyDecl, report: Report): Map<string, LabProgram[]> {
	const programs = new Map<string, LabProgram[]>();
	for (const node of decl.nodes) {
		if (node.programs.length === 0) continue;
		const labNode = lab.nodes.find((candidate) => candidate.name === node.name);
		if (!labNode) continue;
		if (labNode.kind === "switch") {
			report("BAD_PROGRAM", node.programs[0].pos, `switch "${node.name}" cannot run programs`, "run programs on hosts, routers or NATs");
			continue;
		}
		programs.set(node.name, node.programs.map((program) => programOf(lab, node, program, report)));
	}
	return programs;
}

/** The checks, with the user's commands resolved and their node names checked (`named` reports unknown ones). */
export function resolveChecks(lab: Lab, checks: ExpectDecl[], report: Report, named: (name: Located<string>) => void): LabCheck[] {
	const base = baseFolder(lab);
	return checks.map((check): LabCheck => {
		switch (check.kind) {
			case "run":
				named(check.node);
				return { kind: "run", pos: check.pos, node: check.node.value, command: userCommand(lab, check.command, check.env, base, report), exit: check.exit, ...(check.output ? { output: check.output.value } : {}), withinMs: check.withinMs };
			case "pair":
				named(check.a);
				named(check.b);
				if (check.a.value === check.b.value) report("BAD_EXPECT", check.b.pos, `a pair is two different nodes, not "${check.a.value}" twice`, "name the dialer, then the listener");
				return { kind: "pair", pos: check.pos, dialer: check.a.value, listener: check.b.value, listen: userCommand(lab, check.listen, check.env, base, report), dial: userCommand(lab, check.dial, check.env, base, report), result: check.result.value, withinMs: check.withinMs };
			case "matrix":
				if (check.pairs !== "all") for (const [a, b] of check.pairs) [named(a), named(b)];
				for (const exception of check.except) [named(exception.pair[0]), named(exception.pair[1])];
				return {
					kind: "matrix",
					pos: check.pos,
					listen: userCommand(lab, check.listen, check.env, base, report),
					dial: userCommand(lab, check.dial, check.env, base, report),
					pairs: check.pairs === "all" ? "all" : check.pairs.map(([a, b]) => [a.value, b.value]),
					result: check.result.value,
					except: check.except.map((exception) => ({ pair: [exception.pair[0].value, exception.pair[1].value], result: exception.result.value })),
					withinMs: check.withinMs,
				};
			default:
				return check;
		}
	});
}

/** The environment every process the user runs in a node gets: its lab, its node, every node's address. */
export function nodeEnvironment(lab: Lab, node: string): Record<string, string> {
	const env: Record<string, string> = { TESTBED_LAB: lab.name, TESTBED_NODE: node };
	for (const other of lab.nodes) {
		const address = firstAddress(other);
		if (address) env[`TESTBED_ADDR_${other.name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`] = address;
	}
	return env;
}
