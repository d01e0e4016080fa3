// Starting long-running processes (agents, tcpdump, a node's restarted programs) through execa:
// they are talked to over stdin/stdout while they run, and stopped with an AbortSignal. Every argument
// is an argv array; nothing goes through a shell.
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
