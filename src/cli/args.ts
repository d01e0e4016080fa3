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
	/** Shown by `testbed COMMAND --help`: command lines a user types, each with what it does. */
	examples?: [string, string][];
}

const json: Record<string, OptionSpec> = { json: { type: "boolean" } };

export const commands = {
	init: {
		usage: "testbed init [TEMPLATE] [-o FILE] [--name NAME] [--force]",
		summary: "write a starter topology from the examples (templates: the files in topologies/); --name NAME writes NAME.yml as lab NAME, its namespaces renamed as `up --name` does",
		options: { o: { type: "string", short: "o" }, force: { type: "boolean", short: "f" }, name: { type: "string" } },
		positionals: [0, 1],
		examples: [
			["testbed init", "two-nats.yml: two home NATs, a STUN/rendezvous host, two peers"],
			["testbed init lecture-nat --name alice-lab", "the lecture's NAT demo as alice-lab.yml, lab name alice-lab (one per student)"],
			["testbed init nat-matrix -o matrix.yml", "every classic NAT type side by side, into matrix.yml"],
		],
	},
	validate: {
		usage: "testbed validate FILE… [--json]",
		summary: "check topology files; every problem with file:line:column and its fix; no root needed",
		options: json,
		positionals: [1, 100],
		examples: [
			["testbed validate topologies/two-nats.yml", "ok, or each problem with its line and column"],
			["testbed validate topologies/*.yml", "check many files; a broken one does not hide the others' problems"],
		],
	},
	plan: {
		usage: "testbed plan FILE [--name NAME] [--batch] [--full] [--json]",
		summary: "print the exact ip / nft / iptables / sysctl commands `up` would run; no root needed",
		options: { ...json, batch: { type: "boolean" }, full: { type: "boolean" }, name: { type: "string" } },
		positionals: [1, 1],
		examples: [
			["testbed plan topologies/lecture-nat.yml", "the commands of the lecture's NAT demo, namespace by namespace"],
			["testbed plan topologies/two-nats.yml --full", "long lists (port pools) written out element by element"],
			["testbed plan topologies/seed-p2p.yml --name ada", "the commands of ada's copy (`up --name ada`): every namespace starts with ada-"],
			["testbed plan topologies/two-nats.yml --batch", "the batch files `up` feeds to ip -batch and nft -f"],
		],
	},
	up: {
		usage: "testbed up FILE [--name NAME] [--force] [--keep] [--json]",
		summary: "build the lab and start its programs; --name NAME runs a copy under another name: every namespace starts with NAME- (a fixed `netns: N` becomes NAME-N); --keep: a program that fails does not take the lab down",
		options: { ...json, force: { type: "boolean", short: "f" }, keep: { type: "boolean" }, name: { type: "string" } },
		positionals: [1, 1],
		examples: [
			["sudo testbed up topologies/two-nats.yml", "build the lab named in the file"],
			["sudo testbed up topologies/lecture-nat.yml --name bob-lab", "a second copy of the same file, for another student"],
			["sudo testbed up lab.yml --force", "replace a lab of that name that is already up"],
		],
	},
	down: {
		usage: "testbed down LAB|FILE | --all [--force] [--json]",
		summary: "remove everything a lab created; a lab another user brought up needs --force; --all takes only your own labs (with --force: every lab)",
		options: { ...json, all: { type: "boolean" }, force: { type: "boolean", short: "f" } },
		positionals: [0, 1],
		examples: [
			["sudo testbed down two-nats", "remove the lab two-nats"],
			["sudo testbed down topologies/two-nats.yml", "the same, naming the lab by its file"],
			["sudo testbed down --all", "remove every lab on this machine that you brought up"],
			["sudo testbed down bob-lab --force", "remove a lab another user brought up (without --force the refusal names its owner)"],
		],
	},
	ls: { usage: "testbed ls [--json]", summary: "labs on this host: state, owner, namespaces", options: json, positionals: [0, 0], examples: [["testbed ls", "one line per lab, with who brought it up"]] },
	exec: {
		usage: "testbed exec LAB NODE [--env K=V]… [--timeout T] [--detach] -- CMD [ARGS…]",
		summary: "run a command inside a node; --detach keeps it running there (see ps, logs, stop)",
		options: { env: { type: "string", multiple: true }, timeout: { type: "string" }, detach: { type: "boolean", short: "d" } },
		positionals: [2, 2],
		examples: [
			["sudo testbed exec two-nats alice -- ping -c 3 203.0.113.10", "ping the STUN host from alice, through her NAT"],
			["sudo testbed exec lecture-nat nat -- iptables -t nat -L -v", "the lecture's MASQUERADE rule and its counters"],
			["sudo testbed exec two-nats bob --detach -- nc -u -l -p 4000", "leave a listener running on bob (see ps, logs, stop)"],
		],
		passthrough: true,
	},
	shell: { usage: "testbed shell LAB NODE", summary: "interactive shell inside a node", options: {}, positionals: [2, 2], examples: [["sudo testbed shell two-nats alice", "a shell inside alice: `ip addr`, `ip route`, `ping`"]] },
	doctor: { usage: "testbed doctor [--json]", summary: "what this host supports, and how to fix what is missing", options: json, positionals: [0, 0], examples: [["sudo testbed doctor", "which kernel features and tools this machine has, and how to add the missing ones"]] },
	probe: {
		usage: "testbed probe LAB [--proto udp|tcp] [--family 4|6] [--timeouts] [--nat NAME[,NAME…]] [--json]",
		summary: "measure each NAT's mapping, filtering, hairpin, port preservation; compare with the file",
		options: { ...json, timeouts: { type: "boolean" }, nat: { type: "string" }, proto: { type: "string" }, family: { type: "string" } },
		positionals: [1, 1],
		examples: [
			["sudo testbed probe two-nats", "measure both home NATs and compare with the file"],
			["sudo testbed probe lecture-nat", "what the lecture's MASQUERADE is in RFC 4787 terms"],
			["sudo testbed probe nat-matrix --nat n-sym,n-full --timeouts", "two NATs, including how long idle mappings last"],
			["sudo testbed probe nat-zoo --proto tcp", "the same over TCP, and what a filtered SYN gets (dropped, or a reset)"],
			["sudo testbed probe dual-stack --family 6", "each home gateway's IPv6 firewall: no translation, and its filtering"],
		],
	},
	test: {
		usage: "testbed test FILE|LAB [--runs N] [--proto udp|tcp|udp,tcp] [--junit OUT.xml] [--html OUT.html] [--keep] [--force] [--json]",
		summary: "up, run the file's expect: checks (or theory for every peer pair), report, down; exit 1 on mismatch; with a LAB that is up, against it",
		options: { ...json, runs: { type: "string" }, proto: { type: "string" }, junit: { type: "string" }, html: { type: "string" }, keep: { type: "boolean" }, force: { type: "boolean", short: "f" } },
		positionals: [1, 1],
		examples: [
			["sudo testbed test topologies/nat-matrix.yml", "up, every pair's punch against theory, down; exit 1 on a mismatch"],
			["sudo testbed test topologies/two-nats.yml --junit report.xml --runs 3", "for CI: JUnit, each check three times"],
			["sudo testbed test topologies/nat-matrix.yml --proto udp,tcp", "theory's matrix for UDP and for TCP (simultaneous open)"],
			["sudo testbed test two-nats", "against a lab that is already up, leaving it up"],
		],
	},
	punch: {
		usage: "testbed punch LAB A B [--proto udp|tcp] [--family 4|6] [--deadline T] [--runs N | --hold DURATION [--event '[@T] EVENT TARGET …']… [--keepalive T] [--loss-after T]] [--no-relay] [--port-mapping] [--capture DIR] [--explain] [--json]",
		summary: "hole-punch between peers A and B: outcome, time to connect, packets, RTT; --hold 10s keeps the session open, --event injects a fault at @T, and it reports reconnection times",
		options: { ...json, proto: { type: "string" }, family: { type: "string" }, deadline: { type: "string" }, runs: { type: "string" }, "no-relay": { type: "boolean" }, capture: { type: "string" }, explain: { type: "boolean" }, hold: { type: "string" }, event: { type: "string", multiple: true }, keepalive: { type: "string" }, "loss-after": { type: "string" }, "port-mapping": { type: "boolean" } },
		positionals: [3, 3],
		examples: [
			["sudo testbed punch two-nats alice bob", "one punch: outcome, time to connect, RTT"],
			["sudo testbed punch nat-matrix p-sym p-port --explain", "why it fell back to the relay: each NAT's mappings and drops, and a verdict"],
			["sudo testbed punch two-nats alice bob --runs 10 --json", "ten punches, as JSON"],
			["sudo testbed punch two-nats alice bob --proto tcp --runs 10", "TCP hole punching by simultaneous open"],
			["sudo testbed punch dual-stack alice bob --family 6", "over IPv6: through both homes' firewalls (no translation)"],
			["sudo testbed punch cgnat alice bob --explain --runs 3", "each run explained, then what the runs add up to (here: the carrier NAT does not hairpin)"],
			["sudo testbed punch two-nats alice bob --hold 10s --event '@3s nat-reboot home1'", "keep the session open through a NAT reboot"],
		],
	},
	"nat-table": {
		usage: "testbed nat-table LAB NODE [--watch] [--interval MS] [--json]",
		summary: "a node's live translations from conntrack — a NAT's mappings, or a MASQUERADE added by hand to a router: inside → public ↔ remote, state, seconds left",
		options: { ...json, watch: { type: "boolean", short: "w" }, interval: { type: "string" } },
		positionals: [2, 2],
		examples: [
			["sudo testbed nat-table two-nats home1 --watch", "home1's mappings, redrawn as a punch creates them"],
			["sudo testbed nat-table lecture-nat host", "the translations of the lecture's MASQUERADE (any node where conntrack shows them)"],
		],
	},
	watch: {
		usage: "testbed watch LAB [--port N] [--interval MS]",
		summary: "a live web page for the projector (127.0.0.1): the lab's picture, each NAT's mappings, per-link packet counters, events as they happen",
		options: { port: { type: "string" }, interval: { type: "string" } },
		positionals: [1, 1],
		examples: [
			["sudo testbed watch two-nats", "prints http://127.0.0.1:PORT/ — open it, then punch in another terminal"],
			["sudo testbed watch two-nats --port 8080", "on a fixed port"],
		],
	},
	capture: {
		usage: "testbed capture LAB NODE:IFACE [-w FILE.pcap] [--during 'testbed punch LAB A B'] [--seconds N]",
		summary: "capture packets inside a node (tcpdump), as text or pcap for Wireshark",
		options: { w: { type: "string", short: "w" }, during: { type: "string" }, seconds: { type: "string" } },
		positionals: [2, 2],
		examples: [
			["sudo testbed capture two-nats home1:wan --seconds 5", "five seconds of home1's outside traffic as text"],
			["sudo testbed capture two-nats home1:wan -w wan.pcap --during 'testbed punch two-nats alice bob'", "a pcap for Wireshark around one punch"],
		],
	},
	graph: {
		usage: "testbed graph FILE|LAB [-o out.svg|out.png|out.dot|out.mmd] [--format dot|mmd|svg]",
		summary: "a picture of the lab: SVG (in-process Graphviz), PNG, DOT or Mermaid",
		options: { o: { type: "string", short: "o" }, format: { type: "string" } },
		positionals: [1, 1],
		examples: [
			["testbed graph topologies/two-nats.yml -o two-nats.svg", "the picture, no root needed"],
			["testbed graph two-nats --format mmd", "a running lab as Mermaid text for docs"],
		],
	},
	event: {
		usage: "testbed event LAB EVENT TARGET [key=value…] [--period T] [--down-for T] [--count N] [--outage T] [--host NODE] [--from NODE] [--via IP] [--dry-run] [--json]",
		summary: "fault injection on a running lab: link-down|link-up|flap NODE:IFACE, impair NODE:IFACE loss=5%…|clear, nat-reboot|rebind|expire NAT, move NODE:IFACE, restart NODE",
		options: { ...json, "dry-run": { type: "boolean", short: "n" }, period: { type: "string" }, "down-for": { type: "string" }, count: { type: "string" }, from: { type: "string" }, outage: { type: "string" }, host: { type: "string" }, via: { type: "string" } },
		positionals: [3, 20],
		examples: [
			["sudo testbed event two-nats nat-reboot home1", "home1 forgets every mapping"],
			["sudo testbed event two-nats impair alice:eth0 loss=5% delay=40ms", "a lossy, slow link"],
			["sudo testbed event two-nats link-down home1:wan --dry-run", "print the commands only"],
		],
	},
	logs: { usage: "testbed logs LAB [NODE[:PROGRAM]] [-f]", summary: "what the lab's programs printed (each keeps its last 1 MiB); -f follows", options: { follow: { type: "boolean", short: "f" } }, positionals: [1, 2], examples: [["sudo testbed logs two-nats", "what every program printed"], ["sudo testbed logs two-nats alice:server -f", "follow one program"]] },
	ps: { usage: "testbed ps LAB [--json]", summary: "the lab's programs, every process in each node, and each limited node's CPU, memory, processes and OOM kills against its limits", options: json, positionals: [1, 1], examples: [["sudo testbed ps two-nats", "programs, and every process per node"], ["sudo testbed ps phones", "also each phone's CPU and memory against its limits"]] },
	diff: { usage: "testbed diff LAB NODE [--json]", summary: "what a node changed in its private directories (its OverlayFS upper layers): A added, M modified, D deleted, R replaced", options: json, positionals: [2, 2], examples: [["sudo testbed diff phones phone1", "phone1's own changes to /etc, /srv and /tmp; the host's stay as they were"]] },
	stop: { usage: "testbed stop LAB NODE[:PROGRAM] [--json]", summary: "stop a program, or all of a node's: SIGTERM, then SIGKILL", options: json, positionals: [2, 2], examples: [["sudo testbed stop two-nats alice:server", "stop one program"], ["sudo testbed stop two-nats alice", "stop all of alice's programs"]] },
	addr: { usage: "testbed addr LAB NODE[.IFACE|.public]", summary: "print a node's address (its first, an interface's, or a NAT's public one), for scripts", options: json, positionals: [2, 2], examples: [["sudo testbed addr two-nats alice", "alice's first address"], ["sudo testbed addr two-nats home1.public", "home1's public address"]] },
	supervise: { usage: "testbed supervise LAB", summary: "the supervisor of a lab's programs (started by testbed itself)", options: {}, positionals: [1, 1], hidden: true },
	reach: { usage: "testbed reach LAB [--proto udp|tcp|icmp] [--family 4|6] [--json]", summary: "which nodes can open a flow to which (all pairs)", options: { ...json, timeout: { type: "string" }, proto: { type: "string" }, family: { type: "string" } }, positionals: [1, 1], examples: [["sudo testbed reach two-nats", "which node can open a UDP flow to which"], ["sudo testbed reach lecture-nat --proto icmp", "who can ping whom"], ["sudo testbed reach dual-stack --family 6", "over IPv6: routed, so only the firewalls stop a flow"]] },
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
		"Each command's own help, with examples: testbed COMMAND --help",
		"Exit codes: 0 ok, 1 failed, 2 usage, 3 invalid topology, 4 host lacks a feature.",
	].join("\n");
}

/** `testbed COMMAND --help`: what one command does, its usage, and command lines to copy. */
export function commandHelpText(name: CommandName): string {
	const spec: CommandSpec = commands[name];
	const examples = spec.examples ?? [];
	const width = Math.min(72, Math.max(0, ...examples.map(([line]) => line.length)));
	return [
		`usage: ${spec.usage}`,
		"",
		`${spec.summary}.`,
		...(examples.length
			? ["", "examples:", ...examples.flatMap(([line, what]) => (line.length > width ? [`  ${line}`, `  ${" ".repeat(width)}  # ${what}`] : [`  ${line.padEnd(width)}  # ${what}`]))]
			: []),
		"",
		"Exit codes: 0 ok, 1 failed, 2 usage, 3 invalid topology, 4 host lacks a feature. All commands: testbed --help",
	].join("\n");
}

export function parseCommandLine(argv: string[]): CommandLine | "help" | "version" | { help: CommandName } {
	const [command, ...rest] = argv;
	if (command === "help" && rest[0] && Object.hasOwn(commands, rest[0])) return { help: rest[0] as CommandName };
	if (command === undefined || command === "help" || command === "--help" || command === "-h") return "help";
	if (command === "--version" || command === "-V") return "version";
	if (!Object.hasOwn(commands, command)) throw new UsageError(`unknown command "${command}"\n\n${usageText()}`);
	const name = command as CommandName;
	const spec: CommandSpec = commands[name];
	const dash = rest.indexOf("--");
	const own = spec.passthrough && dash >= 0 ? rest.slice(0, dash) : rest;
	if (own.includes("--help") || own.includes("-h")) return { help: name };
	const passed = spec.passthrough && dash >= 0 ? rest.slice(dash + 1) : [];
	if (spec.passthrough && dash < 0) missingDashDash(name, spec, rest);
	let parsed;
	try {
		parsed = parseArgs({ args: own, options: spec.options, allowPositionals: true, strict: true });
	} catch (error) {
		throw new UsageError(`${(error as Error).message.split("\n")[0]}\nusage: ${spec.usage}\n(testbed ${name} --help shows examples)`);
	}
	const positionals = parsed.positionals;
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
