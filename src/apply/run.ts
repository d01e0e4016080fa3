// The one module that starts processes. Every argument is an argv array; nothing goes through a shell.
import { execa, type ResultPromise } from "execa";

/**
 * PATH without node_modules/.bin: under npm or npx, packages' binaries shadow system tools
 * (ava depends on @vercel/nft, whose `nft` is not nftables). Kernel tools come from the system.
 */
export function systemPath(path = process.env.PATH ?? ""): string {
	const dirs = path.split(":").filter((dir) => dir && !dir.includes("node_modules"));
	for (const dir of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) if (!dirs.includes(dir)) dirs.push(dir);
	return dirs.join(":");
}

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
	const [file, ...args] = argv;
	const result = await execa(file, args, {
		reject: false,
		input: options.input,
		stdin: options.input === undefined ? "ignore" : undefined,
		cancelSignal: options.signal,
		timeout: options.timeoutMs,
		stripFinalNewline: true,
		env: { LC_ALL: "C", PATH: systemPath() },
	});
	return {
		command: argv.join(" "),
		exitCode: result.exitCode ?? (result.isCanceled ? 130 : 1),
		stdout: String(result.stdout ?? ""),
		stderr: String(result.stderr ?? (result.originalMessage || "")),
		failed: result.failed,
	};
}

/** Run with the terminal's stdio (exec, shell); resolves to the exit code. */
export async function runInteractive(argv: string[], env: Record<string, string> = {}): Promise<number> {
	const [file, ...args] = argv;
	const result = await execa(file, args, { reject: false, stdio: "inherit", env: { PATH: systemPath(), ...env } });
	if (result.exitCode !== undefined) return result.exitCode;
	return result.signal ? 128 + (signalNumbers[result.signal] ?? 1) : 1;
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };

/**
 * If testbed itself is killed (SIGKILL, OOM), a batch must not go on creating namespaces behind the
 * back of the `down` that cleans up, and agents must not outlive it: the kernel kills them with
 * their parent (PR_SET_PDEATHSIG, kept across exec).
 */
export function diesWithParent(argv: string[]): string[] {
	return ["setpriv", "--pdeathsig", "KILL", ...argv];
}

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

/** Whether an executable is on PATH (no process needed). */
export { which } from "./which.ts";

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
