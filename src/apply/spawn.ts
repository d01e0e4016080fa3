// Starting long-running processes: agents and tcpdump through execa (talked to over stdin/stdout
// while they run, stopped with an AbortSignal), and processes that outlive testbed (a node's restarted
// programs, a lab's supervisor). Every argument is an argv array; nothing goes through a shell.
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { execa, type ResultPromise } from "execa";
import { diesWithParent } from "./run.ts";
import { systemPath } from "./which.ts";

/** A long-running process (an agent) with line-based stdout; it dies with testbed. */
export function spawnLongRunning(argv: string[], options: { signal?: AbortSignal } = {}): ResultPromise<{ reject: false; stdin: "pipe"; stdout: "pipe"; stderr: "pipe"; buffer: false }> {
	const [file, ...args] = diesWithParent(argv);
	return execa(file, args, { reject: false, stdin: "pipe", stdout: "pipe", stderr: "pipe", buffer: false, cancelSignal: options.signal, env: { PATH: systemPath() } });
}

/** Start a process that outlives testbed (a restarted program of a node): own session, no stdio. */
export function spawnDetached(argv: string[], options: { cwd: string; env: Record<string, string> }): void {
	const [file, ...args] = argv;
	execa(file, args, { cwd: options.cwd, env: { ...options.env, PATH: options.env.PATH ?? systemPath() }, extendEnv: false, detached: true, stdio: "ignore", reject: false }).unref();
}

/**
 * Start a process that outlives testbed and keeps running on its own (a lab's supervisor): its own
 * session, stdin closed, stdout and stderr appended to `logFile`. Resolves to its pid.
 */
export function spawnDaemon(argv: string[], options: { logFile: string; env: Record<string, string> }): number {
	const log = openSync(options.logFile, "a", 0o600);
	try {
		const child = spawn(argv[0], argv.slice(1), { cwd: "/", env: options.env, detached: true, stdio: ["ignore", log, log] });
		child.unref();
		if (child.pid === undefined) throw new Error(`cannot start ${argv[0]}`);
		return child.pid;
	} finally {
		closeSync(log);
	}
}
