// The CLI: parse, run one command, map errors to one clear message and an exit code. Only this layer prints.
import { readFileSync } from "node:fs";
import { ExitCode, MissingFeatureError, TestbedError, TopologyError } from "../errors.ts";
import { parseCommandLine, usageText } from "./args.ts";
import { terminalIo, type Io } from "./io.ts";
import { doctorCommand } from "./commands/doctor.ts";
import { downCommand } from "./commands/down.ts";
import { execCommand, shellCommand } from "./commands/exec.ts";
import { graphCommand } from "./commands/graph.ts";
import { initCommand } from "./commands/init.ts";
import { lsCommand } from "./commands/ls.ts";
import { planCommand } from "./commands/plan.ts";
import { natTableCommand } from "./commands/nat-table.ts";
import { captureCommand } from "./commands/capture.ts";
import { probeCommand } from "./commands/probe.ts";
import { punchCommand } from "./commands/punch.ts";
import { eventCommand } from "./commands/event.ts";
import { testCommand } from "./commands/test.ts";
import { reachCommand } from "./commands/reach.ts";
import { upCommand } from "./commands/up.ts";
import { validateCommand } from "./commands/validate.ts";

export async function main(argv: string[], io: Io = terminalIo()): Promise<number> {
	const abort = new AbortController();
	const onSignal = () => abort.abort();
	process.on("SIGINT", onSignal);
	process.on("SIGTERM", onSignal);
	try {
		const line = parseCommandLine(argv);
		if (line === "help") return io.out(usageText()), ExitCode.ok;
		if (line === "version") return io.out(JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version), ExitCode.ok;
		const [first, second] = line.positionals;
		const options = line.options as Record<string, never>;
		switch (line.command) {
			case "init":
				return await initCommand(first, options, io);
			case "validate":
				return await validateCommand(first, options, io);
			case "plan":
				return await planCommand(first, options, io);
			case "up":
				return await upCommand(first, options, io, abort.signal);
			case "down":
				return await downCommand(first, options, io);
			case "ls":
				return await lsCommand(options, io);
			case "exec":
				return await execCommand(first, second, line.rest);
			case "shell":
				return await shellCommand(first, second);
			case "doctor":
				return await doctorCommand(options, io);
			case "test":
				return await testCommand(first, options, io, abort.signal);
			case "punch":
				return await punchCommand(first, second, line.positionals[2], options, io);
			case "nat-table":
				return await natTableCommand(first, second, options, io, abort.signal);
			case "capture":
				return await captureCommand(first, second, options, io, abort.signal);
			case "graph":
				return await graphCommand(first, options, io);
			case "probe":
				return await probeCommand(first, options, io);
			case "event":
				return await eventCommand(first, line.positionals.slice(1), options, io, abort.signal);
			case "reach":
				return await reachCommand(first, options, io);
		}
		return ExitCode.usage;
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
