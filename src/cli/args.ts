// Command-line parsing as a pure function (node:util parseArgs underneath): argv in, a command out.
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";

type OptionSpec = { type: "boolean" | "string"; short?: string; multiple?: boolean };

interface CommandSpec {
	usage: string;
	summary: string;
	options: Record<string, OptionSpec>;
	/** Number of positional arguments: [min, max]. */
	positionals: [number, number];
	/** Everything after `--` is passed through (exec). */
	passthrough?: boolean;
	/** Not listed in the usage: testbed's own plumbing. */
	hidden?: boolean;
}

const json: Record<string, OptionSpec> = { json: { type: "boolean" } };

export const commands = {
	init: {
		usage: "testbed init [TEMPLATE] [-o FILE] [--force]",
		summary: "write a starter topology from the examples (templates: the files in topologies/)",
		options: { o: { type: "string", short: "o" }, force: { type: "boolean", short: "f" } },
		positionals: [0, 1],
	},
	validate: { usage: "testbed validate FILE [--json]", summary: "check a topology file; no root needed", options: json, positionals: [1, 1] },
	plan: { usage: "testbed plan FILE [--batch] [--json]", summary: "print the exact ip / nft / sysctl commands `up` would run; no root needed", options: { ...json, batch: { type: "boolean" } }, positionals: [1, 1] },
	up: { usage: "testbed up FILE [--force] [--keep] [--json]", summary: "build the lab and start its programs; --keep: a program that fails does not take the lab down", options: { ...json, force: { type: "boolean", short: "f" }, keep: { type: "boolean" } }, positionals: [1, 1] },
	down: { usage: "testbed down LAB|FILE | --all [--json]", summary: "remove everything a lab created", options: { ...json, all: { type: "boolean" } }, positionals: [0, 1] },
	ls: { usage: "testbed ls [--json]", summary: "labs on this host and their state", options: json, positionals: [0, 0] },
	exec: {
		usage: "testbed exec LAB NODE [--env K=V]… [--timeout T] [--detach] -- CMD [ARGS…]",
		summary: "run a command inside a node; --detach keeps it running there (see ps, logs, stop)",
		options: { env: { type: "string", multiple: true }, timeout: { type: "string" }, detach: { type: "boolean", short: "d" } },
		positionals: [2, 2],
		passthrough: true,
	},
	shell: { usage: "testbed shell LAB NODE", summary: "interactive shell inside a node", options: {}, positionals: [2, 2] },
	doctor: { usage: "testbed doctor [--json]", summary: "what this host supports, and how to fix what is missing", options: json, positionals: [0, 0] },
	probe: {
		usage: "testbed probe LAB [--timeouts] [--nat NAME[,NAME…]] [--json]",
		summary: "measure each NAT's mapping, filtering, hairpin, port preservation; compare with the file",
		options: { ...json, timeouts: { type: "boolean" }, nat: { type: "string" } },
		positionals: [1, 1],
	},
	test: {
		usage: "testbed test FILE|LAB [--runs N] [--junit OUT.xml] [--html OUT.html] [--keep] [--force] [--json]",
		summary: "up, run the file's expect: checks (or theory for every peer pair), report, down; exit 1 on mismatch; with a LAB that is up, against it",
		options: { ...json, runs: { type: "string" }, junit: { type: "string" }, html: { type: "string" }, keep: { type: "boolean" }, force: { type: "boolean", short: "f" } },
		positionals: [1, 1],
	},
	punch: {
		usage: "testbed punch LAB A B [--runs N | --hold DURATION [--event '[@T] EVENT TARGET …']… [--keepalive T] [--loss-after T]] [--no-relay] [--capture DIR] [--explain] [--json]",
		summary: "hole-punch between peers A and B: outcome, time to connect, packets, RTT; --hold 10s keeps the session open, --event injects a fault at @T, and it reports reconnection times",
		options: { ...json, runs: { type: "string" }, "no-relay": { type: "boolean" }, capture: { type: "string" }, explain: { type: "boolean" }, hold: { type: "string" }, event: { type: "string", multiple: true }, keepalive: { type: "string" }, "loss-after": { type: "string" } },
		positionals: [3, 3],
	},
	"nat-table": {
		usage: "testbed nat-table LAB NODE [--watch] [--interval MS] [--json]",
		summary: "a NAT's live mappings: inside → public ↔ remote, state, seconds left",
		options: { ...json, watch: { type: "boolean", short: "w" }, interval: { type: "string" } },
		positionals: [2, 2],
	},
	capture: {
		usage: "testbed capture LAB NODE:IFACE [-w FILE.pcap] [--during 'testbed punch LAB A B'] [--seconds N]",
		summary: "capture packets inside a node (tcpdump), as text or pcap for Wireshark",
		options: { w: { type: "string", short: "w" }, during: { type: "string" }, seconds: { type: "string" } },
		positionals: [2, 2],
	},
	graph: {
		usage: "testbed graph FILE|LAB [-o out.svg|out.png|out.dot|out.mmd] [--format dot|mmd|svg]",
		summary: "a picture of the lab: SVG (in-process Graphviz), PNG, DOT or Mermaid",
		options: { o: { type: "string", short: "o" }, format: { type: "string" } },
		positionals: [1, 1],
	},
	event: {
		usage: "testbed event LAB EVENT TARGET [key=value…] [--period T] [--down-for T] [--count N] [--outage T] [--host NODE] [--from NODE] [--via IP] [--dry-run] [--json]",
		summary: "fault injection on a running lab: link-down|link-up|flap NODE:IFACE, impair NODE:IFACE loss=5%…|clear, nat-reboot|rebind|expire NAT, move NODE:IFACE, restart NODE",
		options: { ...json, "dry-run": { type: "boolean", short: "n" }, period: { type: "string" }, "down-for": { type: "string" }, count: { type: "string" }, from: { type: "string" }, outage: { type: "string" }, host: { type: "string" }, via: { type: "string" } },
		positionals: [3, 20],
	},
	logs: { usage: "testbed logs LAB [NODE[:PROGRAM]] [-f]", summary: "what the lab's programs printed (each keeps its last 1 MiB); -f follows", options: { follow: { type: "boolean", short: "f" } }, positionals: [1, 2] },
	ps: { usage: "testbed ps LAB [--json]", summary: "the lab's programs, and every process in each node", options: json, positionals: [1, 1] },
	stop: { usage: "testbed stop LAB NODE[:PROGRAM] [--json]", summary: "stop a program, or all of a node's: SIGTERM, then SIGKILL", options: json, positionals: [2, 2] },
	addr: { usage: "testbed addr LAB NODE[.IFACE|.public]", summary: "print a node's address (its first, an interface's, or a NAT's public one), for scripts", options: json, positionals: [2, 2] },
	supervise: { usage: "testbed supervise LAB", summary: "the supervisor of a lab's programs (started by testbed itself)", options: {}, positionals: [1, 1], hidden: true },
	reach: { usage: "testbed reach LAB [--proto udp|tcp|icmp] [--json]", summary: "which nodes can open a flow to which (all pairs)", options: { ...json, timeout: { type: "string" }, proto: { type: "string" } }, positionals: [1, 1] },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof commands;

export interface CommandLine {
	command: CommandName;
	positionals: string[];
	options: Record<string, string | boolean | string[] | undefined>;
	/** Arguments after `--` (exec). */
	rest: string[];
}

export function usageText(): string {
	return [
		"testbed: P2P/NAT network labs from YAML, built as real network namespaces",
		"",
		...Object.values(commands as Record<string, CommandSpec>)
			.filter((spec) => !spec.hidden)
			.flatMap((spec) => [`  ${spec.usage}`, `      ${spec.summary}`]),
		"",
		"Exit codes: 0 ok, 1 failed, 2 usage, 3 invalid topology, 4 host lacks a feature.",
	].join("\n");
}

export function parseCommandLine(argv: string[]): CommandLine | "help" | "version" {
	const [command, ...rest] = argv;
	if (command === undefined || command === "help" || command === "--help" || command === "-h") return "help";
	if (command === "--version" || command === "-V") return "version";
	if (!Object.hasOwn(commands, command)) throw new UsageError(`unknown command "${command}"\n\n${usageText()}`);
	const name = command as CommandName;
	const spec: CommandSpec = commands[name];
	const dash = rest.indexOf("--");
	const own = spec.passthrough && dash >= 0 ? rest.slice(0, dash) : rest;
	const passed = spec.passthrough && dash >= 0 ? rest.slice(dash + 1) : [];
	if (spec.passthrough && dash < 0) missingDashDash(name, spec, rest);
	let parsed;
	try {
		parsed = parseArgs({ args: own, options: { ...spec.options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
	} catch (error) {
		throw new UsageError(`${(error as Error).message.split("\n")[0]}\nusage: ${spec.usage}`);
	}
	const positionals = parsed.positionals;
	if (parsed.values.help) return "help";
	const [min, max] = spec.positionals;
	if (command === "down" && (positionals.length === 1) === Boolean((parsed.values as Record<string, unknown>).all)) throw new UsageError(`give a lab (or its file) or --all\nusage: ${spec.usage}`);
	else if (command !== "down" && (positionals.length < min || positionals.length > max)) throw new UsageError(`expected ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? "" : "s"}, got ${positionals.length}\nusage: ${spec.usage}`);
	if (spec.passthrough && passed.length === 0) throw new UsageError(`give the command after \`--\`\nusage: ${spec.usage}`);
	return { command: name, positionals, options: parsed.values as Record<string, string | boolean | string[] | undefined>, rest: passed };
}

/**
 * `testbed exec LAB NODE ip a`: the command after LAB NODE needs `--` before it (or its own options
 * would be read as testbed's). Say so, with the command line as it should be.
 */
function missingDashDash(name: CommandName, spec: CommandSpec, args: string[]): void {
	const { tokens } = parseArgs({ args, options: { ...spec.options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: false, tokens: true });
	const positionals = tokens.filter((token) => token.kind === "positional");
	const first = positionals[spec.positionals[1]];
	if (!first) return;
	const ownArgs = args.slice(0, first.index);
	throw new UsageError(`put \`--\` before the command: testbed ${[name, ...ownArgs, "--", ...args.slice(first.index)].join(" ")}\nusage: ${spec.usage}`);
}
