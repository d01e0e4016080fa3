// The CLI: parse, run one command, map errors to one clear message and an exit code. Only this layer prints.
import { readFileSync } from "node:fs";
import { projectPath } from "../project.ts";
import { ExitCode, MissingFeatureError, TestbedError, TopologyError } from "../errors.ts";
import { commandHelpText, parseCommandLine, usageText, type CommandLine, type CommandName } from "./args.ts";
import { terminalIo, type Io } from "./io.ts";

/** A command, ready to run with its parsed command line. */
type Runner = (line: CommandLine, io: Io, signal: AbortSignal) => Promise<number>;

// Options arrive checked against the command's spec in args.ts; each command declares its own shape.
type Options = Record<string, never>;

/**
 * Each command's code, loaded only when that command runs: `testbed ls` does not load YAML,
 * the planner, execa or Graphviz.
 */
const commandLoaders: Record<CommandName, () => Promise<Runner>> = {
	init: async () => {
		const { initCommand } = await import("./commands/init.ts");
		return (line, io) => initCommand(line.positionals[0], line.options as Options, io);
	},
	validate: async () => {
		const { validateCommand } = await import("./commands/validate.ts");
		return (line, io) => validateCommand(line.positionals, line.options as Options, io);
	},
	plan: async () => {
		const { planCommand } = await import("./commands/plan.ts");
		return (line, io) => planCommand(line.positionals[0], line.options as Options, io);
	},
	up: async () => {
		const { upCommand } = await import("./commands/up.ts");
		return (line, io, signal) => upCommand(line.positionals[0], line.options as Options, io, signal);
	},
	down: async () => {
		const { downCommand } = await import("./commands/down.ts");
		return (line, io) => downCommand(line.positionals[0], line.options as Options, io);
	},
	ls: async () => {
		const { lsCommand } = await import("./commands/ls.ts");
		return (line, io) => lsCommand(line.options as Options, io);
	},
	exec: async () => {
		const { execCommand } = await import("./commands/exec.ts");
		return (line, io) => execCommand(line.positionals[0], line.positionals[1], line.rest, line.options as Options, io);
	},
	shell: async () => {
		const { shellCommand } = await import("./commands/exec.ts");
		return (line) => shellCommand(line.positionals[0], line.positionals[1]);
	},
	doctor: async () => {
		const { doctorCommand } = await import("./commands/doctor.ts");
		return (line, io) => doctorCommand(line.options as Options, io);
	},
	test: async () => {
		const { testCommand } = await import("./commands/test.ts");
		return (line, io, signal) => testCommand(line.positionals[0], line.options as Options, io, signal);
	},
	punch: async () => {
		const { punchCommand } = await import("./commands/punch.ts");
		return (line, io) => punchCommand(line.positionals[0], line.positionals[1], line.positionals[2], line.options as Options, io);
	},
	diff: async () => {
		const { diffCommand } = await import("./commands/diff.ts");
		return (line, io) => diffCommand(line.positionals[0], line.positionals[1], line.options as Options, io);
	},
	"nat-table": async () => {
		const { natTableCommand } = await import("./commands/nat-table.ts");
		return (line, io, signal) => natTableCommand(line.positionals[0], line.positionals[1], line.options as Options, io, signal);
	},
	watch: async () => {
		const { watchCommand } = await import("./commands/watch.ts");
		return (line, io, signal) => watchCommand(line.positionals[0], line.options as Options, io, signal);
	},
	capture: async () => {
		const { captureCommand } = await import("./commands/capture.ts");
		return (line, io, signal) => captureCommand(line.positionals[0], line.positionals[1], line.options as Options, io, signal);
	},
	graph: async () => {
		const { graphCommand } = await import("./commands/graph.ts");
		return (line, io) => graphCommand(line.positionals[0], line.options as Options, io);
	},
	probe: async () => {
		const { probeCommand } = await import("./commands/probe.ts");
		return (line, io) => probeCommand(line.positionals[0], line.options as Options, io);
	},
	event: async () => {
		const { eventCommand } = await import("./commands/event.ts");
		return (line, io, signal) => eventCommand(line.positionals[0], line.positionals.slice(1), line.options as Options, io, signal);
	},
	logs: async () => {
		const { logsCommand } = await import("./commands/logs.ts");
		return (line, io, signal) => logsCommand(line.positionals[0], line.positionals[1], line.options as Options, io, signal);
	},
	ps: async () => {
		const { psCommand } = await import("./commands/ps.ts");
		return (line, io) => psCommand(line.positionals[0], line.options as Options, io);
	},
	stop: async () => {
		const { stopCommand } = await import("./commands/stop.ts");
		return (line, io) => stopCommand(line.positionals[0], line.positionals[1], line.options as Options, io);
	},
	addr: async () => {
		const { addrCommand } = await import("./commands/addr.ts");
		return (line, io) => addrCommand(line.positionals[0], line.positionals[1], line.options as Options, io);
	},
	supervise: async () => {
		const { superviseCommand } = await import("./commands/supervise.ts");
		return (line) => superviseCommand(line.positionals[0]);
	},
	reach: async () => {
		const { reachCommand } = await import("./commands/reach.ts");
		return (line, io) => reachCommand(line.positionals[0], line.options as Options, io);
	},
};

export async function main(argv: string[], given?: Io): Promise<number> {
	const abort = new AbortController();
	const io = given ?? terminalIo(() => abort.abort());
	const onSignal = () => abort.abort();
	process.on("SIGINT", onSignal);
	process.on("SIGTERM", onSignal);
	try {
		const line = parseCommandLine(argv);
		if (line === "help") return io.out(usageText()), ExitCode.ok;
		if (typeof line === "object" && "help" in line) return io.out(commandHelpText(line.help)), ExitCode.ok;
		if (line === "version") return io.out(JSON.parse(readFileSync(projectPath("package.json"), "utf8")).version), ExitCode.ok;
		const run = await commandLoaders[line.command]();
		return await run(line, io, abort.signal);
	} catch (error) {
		return report(error, io);
	} finally {
		process.off("SIGINT", onSignal);
		process.off("SIGTERM", onSignal);
	}
}

function report(error: unknown, io: Io): number {
	if (error instanceof TopologyError) {
		io.err(error.message);
		io.err(`${error.problems.length} problem${error.problems.length === 1 ? "" : "s"}; nothing was created`);
		return error.exitCode;
	}
	if (error instanceof TestbedError) {
		io.err(`testbed: ${error.message}`);
		if (error instanceof MissingFeatureError && error.fix && !error.message.includes(error.fix)) io.err(`  fix: ${error.fix}`);
		return error.exitCode;
	}
	io.err(`testbed: internal error: ${(error as Error)?.message ?? String(error)}\n(this is a bug in testbed; please report it with the command you ran)`);
	if (process.env.TESTBED_DEBUG) io.err((error as Error)?.stack ?? "");
	return ExitCode.failure;
}
