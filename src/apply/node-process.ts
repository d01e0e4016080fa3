// A user's program running in a node on behalf of a testbed command or test suite (a check's listen
// and dial sides, `lab.spawn()`): its output as lines (kept, capped), waits for a line or for its end,
// signals to its whole process group. It dies with the testbed process (PR_SET_PDEATHSIG); what it
// printed is never interpreted, only kept and shown.
import type { ChildProcess } from "node:child_process";
import { diesWithParent, startChild } from "./run.ts";
import { readdirSync, readFileSync } from "node:fs";
import { socketInodes, sockets } from "./ports.ts";

/** How a program ended. */
export interface ProgramExit {
	exitCode: number | null;
	signal: NodeJS.Signals | null;
	durationMs: number;
	/** Stopped by testbed when its time was up. */
	timedOut: boolean;
}

/** Bytes of output kept per stream; past it, the oldest lines go (and are counted). */
const keepBytes = 256 * 1024;
/** Longest line kept whole (a program printing binary without line breaks cannot fill memory). */
const longestLine = 8192;

class Stream {
	lines: string[] = [];
	private bytes = 0;
	dropped = 0;
	private pending = "";

	push(text: string, onLine: (line: string) => void): void {
		const parts = (this.pending + text).split("\n");
		this.pending = parts.pop() ?? "";
		if (this.pending.length > longestLine) {
			parts.push(this.pending);
			this.pending = "";
		}
		for (const part of parts) this.add(part.length > longestLine ? `${part.slice(0, longestLine)}… (${part.length} characters)` : part, onLine);
	}

	end(onLine: (line: string) => void): void {
		if (this.pending) this.add(this.pending, onLine);
		this.pending = "";
	}

	private add(line: string, onLine: (line: string) => void): void {
		this.lines.push(line);
		this.bytes += line.length + 1;
		while (this.bytes > keepBytes && this.lines.length > 1) {
			this.bytes -= this.lines.shift()!.length + 1;
			this.dropped++;
		}
		onLine(line);
	}
}

export class NodeProcess {
	readonly pid: number | undefined;
	private readonly child: ChildProcess;
	private readonly stdout = new Stream();
	private readonly stderr = new Stream();
	private readonly started = performance.now();
	private readonly listeners = new Set<(line: string | null) => void>();
	private ended?: ProgramExit;
	private timedOut = false;
	private readonly exited: Promise<ProgramExit>;
	private killTimer?: NodeJS.Timeout;

	/** `argv` enters the node already (node-env.ts: inNode); `env` is complete. */
	constructor(
		readonly node: string,
		argv: string[],
		env: Record<string, string>,
		options: { input?: string } = {},
	) {
		// Its own process group (a stop reaches what it forked); dies with testbed.
		this.child = startChild(diesWithParent(argv), { env, input: options.input !== undefined });
		this.pid = this.child.pid;
		if (options.input !== undefined) {
			this.child.stdin!.on("error", () => undefined);
			this.child.stdin!.end(options.input);
		}
		this.child.stdout!.setEncoding("utf8");
		this.child.stderr!.setEncoding("utf8");
		const notify = (line: string | null) => {
			for (const listener of this.listeners) listener(line);
		};
		this.child.stdout!.on("data", (text: string) => this.stdout.push(text, notify));
		this.child.stderr!.on("data", (text: string) => this.stderr.push(text, notify));
		this.exited = new Promise((resolve) => {
			let spawnError: Error | undefined;
			this.child.on("error", (error) => {
				spawnError = error;
				if (this.child.pid === undefined) finish(null, null);
			});
			const finish = (code: number | null, signal: NodeJS.Signals | null) => {
				if (this.ended) return;
				this.stdout.end(notify);
				this.stderr.end(notify);
				if (spawnError) this.stderr.push(`testbed: cannot start it: ${spawnError.message}\n`, notify);
				clearTimeout(this.killTimer);
				this.ended = { exitCode: spawnError && code === null ? 127 : code, signal, durationMs: Math.round(performance.now() - this.started), timedOut: this.timedOut };
				notify(null);
				resolve(this.ended);
			};
			this.child.on("close", finish);
		});
	}

	/**
	 * Resolves when it has ended (and its output is all read). With `withinMs`, it is stopped when
	 * that time is up (SIGTERM, SIGKILL after `graceMs`) and its exit says `timedOut`.
	 */
	async exit(withinMs?: number, graceMs = 2000): Promise<ProgramExit> {
		if (withinMs === undefined) return this.exited;
		const timer = setTimeout(() => void this.timeout(graceMs), withinMs);
		try {
			return await this.exited;
		} finally {
			clearTimeout(timer);
		}
	}

	get running(): boolean {
		return this.ended === undefined;
	}

	/** Stop it: `signal` (SIGTERM) to its process group, SIGKILL after `graceMs`. */
	async kill(signal: NodeJS.Signals = "SIGTERM", graceMs = 2000): Promise<ProgramExit> {
		if (this.ended) return this.ended;
		this.send(signal);
		if (signal !== "SIGKILL") this.killTimer = setTimeout(() => this.send("SIGKILL"), graceMs);
		return this.exited;
	}

	/** Stop it because its time is up (recorded as `timedOut`). */
	timeout(graceMs = 2000): Promise<ProgramExit> {
		this.timedOut = true;
		return this.kill("SIGTERM", graceMs);
	}

	private send(signal: NodeJS.Signals): void {
		if (!this.pid) return;
		try {
			process.kill(-this.pid, signal);
		} catch {
			try {
				this.child.kill(signal);
			} catch {}
		}
	}

	/** Lines of stdout and stderr so far, oldest first (at most 256 kB of each). */
	output(): { stdout: string[]; stderr: string[]; dropped: number } {
		return { stdout: [...this.stdout.lines], stderr: [...this.stderr.lines], dropped: this.stdout.dropped + this.stderr.dropped };
	}

	/** The last `count` lines of stdout and stderr, each marked. */
	tail(count = 20): string[] {
		return [...this.stdout.lines.slice(-count).map((line) => `stdout: ${line}`), ...this.stderr.lines.slice(-count).map((line) => `stderr: ${line}`)].slice(-count * 2);
	}

	/** The last line of stdout that is a JSON object, parsed (how a dialer reports what it measured). */
	lastJson(): Record<string, unknown> | undefined {
		for (let index = this.stdout.lines.length - 1; index >= 0; index--) {
			const line = this.stdout.lines[index].trim();
			if (!line.startsWith("{")) continue;
			try {
				const value = JSON.parse(line) as unknown;
				if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
			} catch {}
		}
		return undefined;
	}

	/** Every line as it comes (stdout and stderr), from the start; ends when the program has. */
	async *lines(): AsyncGenerator<string> {
		const queue = [...this.stdout.lines, ...this.stderr.lines];
		let wake: (() => void) | undefined;
		let done = !this.running;
		const listener = (line: string | null) => {
			if (line === null) done = true;
			else queue.push(line);
			wake?.();
		};
		this.listeners.add(listener);
		try {
			for (;;) {
				while (queue.length > 0) yield queue.shift()!;
				if (done) return;
				await new Promise<void>((resolve) => (wake = resolve));
				wake = undefined;
			}
		} finally {
			this.listeners.delete(listener);
		}
	}

	/** The first line (already printed or still to come) matching `pattern`; rejects at its end or after `timeoutMs`. */
	waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
		const seen = [...this.stdout.lines, ...this.stderr.lines].find((line) => pattern.test(line));
		if (seen !== undefined) return Promise.resolve(seen);
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.listeners.delete(listener);
				reject(new Error(`no line matching ${pattern} from ${this.node} in ${timeoutMs} ms`));
			}, timeoutMs);
			const listener = (line: string | null) => {
				if (line === null) {
					clearTimeout(timer);
					this.listeners.delete(listener);
					reject(new Error(`the program on ${this.node} ended without a line matching ${pattern}`));
				} else if (pattern.test(line)) {
					clearTimeout(timer);
					this.listeners.delete(listener);
					resolve(line);
				}
			};
			this.listeners.add(listener);
		});
	}

	/**
	 * Whether it is on the network: a bound UDP socket, a listening TCP socket, or a TCP connection
	 * (a listener that registered with a signalling or rendezvous server can be dialed through it).
	 * A listen/dial check starts the dialer when this is true.
	 */
	listening(): boolean {
		if (!this.pid || !this.running) return false;
		// Its own sockets and its children's (a shell script runs the real listener).
		const inodes = socketInodes([this.pid, ...childrenOf(this.pid)]);
		if (inodes.size === 0) return false;
		// UDP: bound; TCP: LISTEN (0A) or ESTABLISHED (01).
		return [...sockets(this.pid, "udp"), ...sockets(this.pid, "tcp")].some((entry) => inodes.has(entry.inode) && (entry.proto === "udp" || entry.state === "0A" || entry.state === "01"));
	}
}

/** Descendants of a process (from /proc/PID/task/*\/children). */
function childrenOf(pid: number, depth = 0): number[] {
	if (depth > 4) return [];
	const children: number[] = [];
	try {
		for (const task of readdirSync(`/proc/${pid}/task`))
			for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(" ").filter(Boolean).map(Number)) children.push(child, ...childrenOf(child, depth + 1));
	} catch {}
	return children;
}
