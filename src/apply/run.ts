// Starting processes: short-lived commands (ip, nft, tc, conntrack, the configuration helper) with
// their result, synchronously where a process is exiting, and the user's programs as children in a
// process group of their own. Every argument is an argv array; nothing goes through a shell.
// Long-running agents and daemons start in spawn.ts (through execa), programs attached to the
// terminal in terminal.ts: with this module, the only places that start processes.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { systemPath } from "./which.ts";

export interface RunResult {
	command: string;
	exitCode: number;
	stdout: string;
	stderr: string;
	failed: boolean;
}

export interface RunOptions {
	input?: string;
	signal?: AbortSignal;
	timeoutMs?: number;
}

/** Run a command to completion; a non-zero exit is a result, not an exception. */
export async function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
	const { exitCode, stdout, stderr, failed } = await runChild(argv, options);
	return { command: argv.join(" "), exitCode, stdout: stripFinalNewline(stdout), stderr: stripFinalNewline(stderr), failed };
}

/**
 * Run a command to completion, handing each line of its stdout to `onLine` as it arrives (a helper
 * that reports progress).
 */
export async function runStreaming(argv: string[], options: RunOptions & { onLine: (line: string) => void }): Promise<RunResult> {
	let pending = "";
	const result = await runChild(argv, options, (chunk) => {
		const lines = (pending + chunk).split("\n");
		pending = lines.pop() ?? "";
		for (const line of lines) options.onLine(line);
	});
	if (pending) options.onLine(pending);
	return { command: argv.join(" "), exitCode: result.exitCode, stdout: "", stderr: result.stderr.trim(), failed: result.failed };
}

const stripFinalNewline = (text: string) => (text.endsWith("\n") ? text.slice(0, text.endsWith("\r\n") ? -2 : -1) : text);

/** How long a command stopped by an abort or a timeout gets after SIGTERM, before SIGKILL. */
const killGraceMs = 5000;

/**
 * Short-lived commands (ip, nft, tc, conntrack, the configuration helper) through node:child_process:
 * they need a result, not a stream API, and `testbed down` should not pay for loading execa.
 * `onStdout`, when given, receives stdout as it comes instead of collecting it.
 */
function runChild(argv: string[], options: RunOptions, onStdout?: (chunk: string) => void): Promise<{ exitCode: number; stdout: string; stderr: string; failed: boolean }> {
	const [file, ...args] = argv;
	return new Promise((resolve) => {
		if (options.signal?.aborted) return resolve({ exitCode: 130, stdout: "", stderr: "", failed: true });
		const child = spawn(file, args, { stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C", PATH: systemPath() } });
		let stdout = "";
		let stderr = "";
		let stopped: "canceled" | "timed out" | undefined;
		let forceKill: NodeJS.Timeout | undefined;
		const stop = (why: "canceled" | "timed out") => {
			stopped ??= why;
			child.kill("SIGTERM");
			forceKill ??= setTimeout(() => child.kill("SIGKILL"), killGraceMs);
		};
		const onAbort = () => stop("canceled");
		options.signal?.addEventListener("abort", onAbort, { once: true });
		const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => stop("timed out"), options.timeoutMs);
		child.stdout!.setEncoding("utf8");
		child.stderr!.setEncoding("utf8");
		child.stdout!.on("data", (chunk: string) => (onStdout ? onStdout(chunk) : (stdout += chunk)));
		child.stderr!.on("data", (chunk: string) => (stderr += chunk));
		if (child.stdin) {
			child.stdin.on("error", () => undefined); // it exited before reading everything: its exit status tells
			child.stdin.end(options.input);
		}
		let spawnError: Error | undefined;
		child.on("error", (error) => (spawnError = error));
		child.on("close", (code, signal) => {
			clearTimeout(timer);
			clearTimeout(forceKill);
			options.signal?.removeEventListener("abort", onAbort);
			const exitCode = code ?? (stopped === "canceled" ? 130 : 1);
			if (spawnError && !stderr) stderr = `${argv[0]}: ${spawnError.message}`;
			else if (stopped === "timed out") stderr += `${stderr ? "\n" : ""}${argv[0]} timed out after ${options.timeoutMs} ms`;
			else if (signal && code === null && !stopped) stderr += `${stderr ? "\n" : ""}${argv[0]} was killed with ${signal}`;
			resolve({ exitCode: spawnError ? 127 : exitCode, stdout, stderr, failed: exitCode !== 0 || Boolean(spawnError) });
		});
	});
}

/**
 * Run a command and wait for it, blocking: only for teardown while the process exits, when nothing
 * asynchronous runs any more. Output is discarded; the exit status is returned (null if it could not run).
 */
export function runSync(argv: string[], options: { input?: string } = {}): number | null {
	const result = spawnSync(argv[0], argv.slice(1), { input: options.input, stdio: [options.input === undefined ? "ignore" : "pipe", "ignore", "ignore"], env: { ...process.env, PATH: systemPath() } });
	return result.status;
}

/**
 * Start a program as a child in its own process group (a stop reaches what it forks), stdout and
 * stderr piped; stdin piped when `input` is wanted, else closed. `env` is its whole environment.
 */
export function startChild(argv: string[], options: { env: Record<string, string>; input?: boolean }): ChildProcess {
	return spawn(argv[0], argv.slice(1), { cwd: "/", env: options.env, detached: true, stdio: [options.input ? "pipe" : "ignore", "pipe", "pipe"] });
}

/**
 * If testbed itself is killed (SIGKILL, OOM), a batch must not go on creating namespaces behind the
 * back of the `down` that cleans up, and agents must not outlive it: the kernel kills them with
 * their parent (PR_SET_PDEATHSIG, kept across exec).
 */
export function diesWithParent(argv: string[]): string[] {
	return ["setpriv", "--pdeathsig", "KILL", ...argv];
}

/**
 * Run async jobs with at most `limit` at once; results in input order. After the first failure no
 * new job starts, and the call settles only when the running ones have (so a rollback never races them).
 */
export async function parallel<T, R>(items: T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
	const results: R[] = new Array(items.length);
	let next = 0;
	let failure: { error: unknown } | undefined;
	const worker = async () => {
		while (next < items.length && !failure) {
			const index = next++;
			try {
				results[index] = await job(items[index]);
			} catch (error) {
				failure ??= { error };
			}
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
	if (failure) throw failure.error;
	return results;
}
