// Programs attached to the user's terminal (`exec`, `shell`, `capture --during`): stdio inherited,
// SIGINT, SIGTERM and SIGHUP passed on, the exit status passed back. Kept apart from run.ts (the
// batches and agents, through execa) so that `testbed exec` starts without loading execa.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { systemPath } from "./which.ts";

const forwarded = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Run `argv` with the terminal's stdio and resolve to its exit status (128 + N when signal N ended
 * it; 124 when `timeoutMs` ran out and it was stopped). While it runs, the signals testbed receives
 * go to it; if testbed itself is killed, the kernel kills it too (PR_SET_PDEATHSIG, through setpriv),
 * so it never outlives `testbed exec`.
 */
export function runAttached(argv: string[], env: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Promise<number> {
	const child = spawn("setpriv", ["--pdeathsig", "KILL", ...argv], { stdio: "inherit", env: { ...process.env, PATH: systemPath(), ...env } });
	// --timeout: SIGTERM, SIGKILL 2 s later, and exit status 124 (as timeout(1) does).
	let timedOut = false;
	let kill: NodeJS.Timeout | undefined;
	const timer =
		options.timeoutMs === undefined
			? undefined
			: setTimeout(() => {
					timedOut = true;
					child.kill("SIGTERM");
					kill = setTimeout(() => child.kill("SIGKILL"), 2000);
				}, options.timeoutMs);
	const pass = (signal: NodeJS.Signals) => {
		// Ctrl-C on a terminal already reached the program (same process group): do not send a second one.
		if (signal === "SIGINT" && process.stdin.isTTY) return;
		child.kill(signal);
	};
	for (const signal of forwarded) process.on(signal, pass);
	return new Promise((resolve) => {
		const done = (code: number) => {
			for (const signal of forwarded) process.off(signal, pass);
			clearTimeout(timer);
			clearTimeout(kill);
			resolve(timedOut ? 124 : code);
		};
		child.on("error", (error: NodeJS.ErrnoException) => {
			process.stderr.write(`testbed: cannot start ${argv[0]}: ${error.message}\n`);
			done(error.code === "ENOENT" ? 127 : 126);
		});
		child.on("exit", (code, signal) => done(code ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1)));
	});
}
