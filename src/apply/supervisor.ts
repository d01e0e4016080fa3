// The supervisor of a lab's programs: one long-running process per lab (`testbed supervise LAB`,
// started by the first `up` or `exec --detach` that needs it), which starts the programs of the
// topology and detached commands in their nodes, keeps each one's output in a capped log, knows when
// each is ready and how it ended, and stops them. It outlives the command that started it and ends
// with the lab. Other testbed processes talk to it over a Unix socket in the lab's state folder
// (one JSON request per line, one JSON reply per line) and read its state file.
import type { ChildProcess } from "node:child_process";
import { startChild } from "./run.ts";
import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { stateDir } from "./state-files.ts";
import { CappedLog, logPath, logTail } from "./program-logs.ts";
import { portBound } from "./ports.ts";
import { oomKills } from "./cgroups.ts";
import { leasesChanged, syncGrants } from "./port-mapping.ts";
import { programsFile, stopGraceMs, supervisorSocket, type ProgramSpec, type ProgramState, type SupervisorReply, type SupervisorRequest } from "./supervisor-protocol.ts";

interface Running {
	spec: ProgramSpec;
	state: ProgramState;
	child?: ChildProcess;
	log: CappedLog;
	/** Partial last line of output, for the `output:` readiness pattern. */
	pending: string;
	pattern?: RegExp;
	deadline?: number;
	timer?: NodeJS.Timeout;
	killTimer?: NodeJS.Timeout;
	/** A port-mapping daemon's lease file watch (see ProgramSpec.grants). */
	grants?: NodeJS.Timeout;
	/** The node's OOM kills when it started (see ProgramSpec.oom). */
	oomKills?: number;
	/** Resolves when the program has ended. */
	ended: Promise<void>;
	end: () => void;
}

export class Supervisor {
	private readonly programs = new Map<string, Running>();
	private readonly listeners = new Set<() => void>();

	constructor(readonly lab: string) {}

	private key(node: string, name: string): string {
		return `${node}:${name}`;
	}

	states(): ProgramState[] {
		return [...this.programs.values()].map((running) => ({ ...running.state }));
	}

	private changed(): void {
		const file = programsFile(this.lab);
		try {
			writeFileSync(`${file}.tmp`, `${JSON.stringify({ pid: process.pid, programs: this.states() }, null, "\t")}\n`, { mode: 0o600 });
			renameSync(`${file}.tmp`, file);
		} catch {}
		for (const listener of this.listeners) listener();
	}

	/** Start programs (dependencies first, the rest at once); resolves once all are ready, or at the first failure. */
	async start(specs: ProgramSpec[]): Promise<SupervisorReply> {
		for (const spec of specs) {
			const key = this.key(spec.node, spec.name);
			const existing = this.programs.get(key);
			if (existing && !["exited", "stopped", "failed"].includes(existing.state.status)) return { ok: false, error: `node "${spec.node}" already runs a program "${spec.name}"`, programs: this.states() };
			existing?.log.close();
			let end!: () => void;
			const ended = new Promise<void>((resolve) => (end = resolve));
			const path = logPath(this.lab, spec.node, spec.name);
			rmSync(path, { force: true });
			this.programs.set(key, { spec, state: { node: spec.node, name: spec.name, text: spec.text, status: "waiting", log: path, ...(spec.detached ? { detached: true } : {}) }, log: new CappedLog(path), pending: "", ended, end });
		}
		const batch = specs.map((spec) => this.programs.get(this.key(spec.node, spec.name))!);
		this.changed();
		return new Promise((resolve) => {
			const check = () => {
				const failed = batch.find((running) => running.state.status === "failed");
				if (failed) {
					this.listeners.delete(check);
					// The others of this batch are not wanted without it.
					for (const running of batch)
						if (running !== failed && running.state.status === "waiting") {
							this.fail(running, `not started: ${failed.spec.node}:${failed.spec.name} failed`);
							this.ended(running, null, null);
						}
					resolve({ ok: false, error: failed.state.error ?? "failed", failed: { ...failed.state, tail: logTail(failed.state.log) }, programs: this.states() });
					return;
				}
				for (const running of batch) if (running.state.status === "waiting" && this.dependenciesReady(running)) this.launch(running);
				if (batch.every((running) => running.state.status === "ready" || running.state.status === "running")) {
					this.listeners.delete(check);
					resolve({ ok: true, programs: this.states() });
				}
			};
			this.listeners.add(check);
			check();
		});
	}

	private dependenciesReady(running: Running): boolean {
		return running.spec.after.every((name) => {
			const other = this.programs.get(this.key(running.spec.node, name));
			return other !== undefined && (other.state.status === "ready" || other.state.status === "running");
		});
	}

	private launch(running: Running): void {
		const { spec, state } = running;
		state.status = "starting";
		state.startedAt = new Date().toISOString();
		let child: ChildProcess;
		try {
			// Its own process group: a stop reaches what it forked. Inside, nsenter sets the directory.
			child = startChild(spec.argv, { env: spec.env });
		} catch (error) {
			this.fail(running, `could not start: ${(error as Error).message}`);
			return this.ended(running, null, null);
		}
		running.child = child;
		state.pid = child.pid;
		running.oomKills = spec.oom ? oomKills(spec.oom.counter) : 0;
		const output = (chunk: Buffer) => {
			running.log.write(chunk);
			if (running.pattern && state.status === "starting") {
				const lines = (running.pending + chunk.toString("utf8")).split("\n");
				running.pending = (lines.pop() ?? "").slice(-4096);
				if (lines.some((line) => running.pattern!.test(line))) this.ready(running);
			}
		};
		child.stdout!.on("data", output);
		child.stderr!.on("data", output);
		child.on("error", (error) => {
			this.fail(running, `could not start: ${error.message}`);
			if (child.pid === undefined) this.ended(running, null, null);
		});
		child.on("exit", (code, signal) => {
			if (state.status === "starting") this.fail(running, `exited before it was ready (${code !== null ? `exit status ${code}` : `killed by ${signal}`})`);
			this.ended(running, code, signal);
		});
		if (spec.grants) this.watchGrants(running, spec.grants);
		const ready = spec.ready;
		if (!ready) {
			state.status = "running";
			this.changed();
			return;
		}
		if (ready.kind === "output") running.pattern = new RegExp(ready.pattern);
		running.deadline = Date.now() + ready.withinMs;
		running.timer = setInterval(() => this.poll(running), 20);
		this.changed();
	}

	/**
	 * Mirror a port-mapping daemon's lease file into its NAT's maps whenever the file changes (it
	 * rewrites it at every grant, deletion and expiry), one sync at a time; a failure goes to its log.
	 */
	private watchGrants(running: Running, grants: { leases: string; netns: string }): void {
		let seen = leasesChanged(grants.leases);
		let busy = false;
		running.grants = setInterval(() => {
			const changed = leasesChanged(grants.leases);
			if (busy || changed === seen) return;
			seen = changed;
			busy = true;
			syncGrants(grants.leases, grants.netns)
				.catch((error: Error) => running.log.write(Buffer.from(`testbed: ${error.message}\n`)))
				.finally(() => (busy = false));
		}, 100);
	}

	private poll(running: Running): void {
		const { spec, state } = running;
		if (state.status !== "starting") return;
		const ready = spec.ready!;
		const pid = state.pid!;
		const met =
			ready.kind === "udp" || ready.kind === "tcp"
				? portBound(pid, ready.kind, ready.port)
				: ready.kind === "file"
					? existsSync(`/proc/${pid}/root${ready.path.startsWith("/") ? ready.path : join(spec.cwd, ready.path)}`)
					: false;
		if (met) return this.ready(running);
		if (Date.now() > running.deadline!) {
			const what = ready.kind === "output" ? `a line matching /${ready.pattern}/` : ready.kind === "file" ? `the file ${ready.path}` : `${ready.kind} port ${ready.port} bound`;
			this.fail(running, `not ready within ${ready.withinMs} ms (waited for ${what}); stopped`);
			this.signal(running, "SIGTERM");
		}
	}

	private ready(running: Running): void {
		clearInterval(running.timer);
		running.state.status = "ready";
		running.state.readyAt = new Date().toISOString();
		this.changed();
	}

	/** It will not become ready: say why (once). */
	private fail(running: Running, error: string): void {
		clearInterval(running.timer);
		if (running.state.status === "failed") return;
		running.state.status = "failed";
		running.state.error = error;
		this.changed();
	}

	/** Its process ended (or never started): record how; a stop or a failure stays what it was. */
	private ended(running: Running, code: number | null, signal: NodeJS.Signals | null): void {
		clearInterval(running.timer);
		clearInterval(running.grants);
		clearTimeout(running.killTimer);
		const { state, spec } = running;
		state.exitCode = code;
		state.signal = signal;
		// SIGKILL while the node's OOM counter went up: the kernel's OOM killer, inside the node's cgroup.
		if ((signal === "SIGKILL" || code === 137) && spec.oom && oomKills(spec.oom.counter) > (running.oomKills ?? 0)) {
			state.oomKilled = `killed by the kernel's OOM killer: node ${spec.node} reached its memory limit (${spec.oom.limit})`;
			running.log.write(Buffer.from(`testbed: ${state.oomKilled}\n`));
		}
		state.endedAt = new Date().toISOString();
		if (state.status !== "failed" && state.status !== "stopped") state.status = "exited";
		running.end();
		this.changed();
	}

	private signal(running: Running, signal: NodeJS.Signals): void {
		const pid = running.state.pid;
		if (!pid) return;
		try {
			process.kill(-pid, signal);
		} catch {
			try {
				process.kill(pid, signal);
			} catch {}
		}
		if (signal === "SIGTERM") {
			clearTimeout(running.killTimer);
			running.killTimer = setTimeout(() => this.signal(running, "SIGKILL"), stopGraceMs);
		}
	}

	/** Stop one program, or every program of a node: SIGTERM to its process group, SIGKILL after the grace time. */
	async stop(node: string, name?: string): Promise<SupervisorReply> {
		const targets = [...this.programs.values()].filter((running) => running.spec.node === node && (name === undefined || running.spec.name === name));
		if (targets.length === 0) return { ok: false, error: name ? `node "${node}" runs no program "${name}"` : `node "${node}" runs no programs`, programs: this.states() };
		for (const running of targets) {
			if (running.state.status === "waiting") {
				running.state.status = "stopped";
				this.ended(running, null, null);
			} else if (["starting", "running", "ready"].includes(running.state.status)) {
				running.state.status = "stopped";
				this.signal(running, "SIGTERM");
			}
		}
		await Promise.all(targets.map((running) => running.ended));
		this.changed();
		return { ok: true, programs: this.states() };
	}

	async shutdown(): Promise<void> {
		const nodes = new Set([...this.programs.values()].map((running) => running.spec.node));
		await Promise.all([...nodes].map((node) => this.stop(node)));
		for (const running of this.programs.values()) running.log.close();
	}
}

/** The supervisor process: serve requests on the lab's socket until `shutdown`. */
export async function supervise(lab: string): Promise<number> {
	const supervisor = new Supervisor(lab);
	const socket = supervisorSocket(lab);
	rmSync(socket, { force: true });
	const server = createServer((connection: Socket) => {
		let buffered = "";
		connection.setEncoding("utf8");
		connection.on("error", () => undefined);
		connection.on("data", async (chunk: string) => {
			buffered += chunk;
			if (buffered.length > 16 * 1024 * 1024) return connection.destroy();
			let newline: number;
			while ((newline = buffered.indexOf("\n")) >= 0) {
				const line = buffered.slice(0, newline);
				buffered = buffered.slice(newline + 1);
				let request: SupervisorRequest;
				try {
					request = JSON.parse(line) as SupervisorRequest;
				} catch {
					connection.end(`${JSON.stringify({ ok: false, error: "not JSON", programs: [] })}\n`);
					return;
				}
				const reply: SupervisorReply | undefined =
					request.cmd === "start" ? await supervisor.start(request.programs) : request.cmd === "stop" ? await supervisor.stop(request.node, request.name) : request.cmd === "list" ? { ok: true, programs: supervisor.states() } : undefined;
				if (request.cmd === "shutdown") {
					await supervisor.shutdown();
					connection.end(`${JSON.stringify({ ok: true, programs: supervisor.states() })}\n`, () => {
						server.close();
						rmSync(socket, { force: true });
						process.exit(0);
					});
					return;
				}
				if (!connection.destroyed) connection.write(`${JSON.stringify(reply)}\n`);
			}
		});
	});
	await new Promise<void>((resolve, reject) => server.listen(socket, resolve).once("error", reject));
	writeFileSync(programsFile(lab), `${JSON.stringify({ pid: process.pid, programs: [] })}\n`, { mode: 0o600 });
	for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
		process.on(signal, () => {
			void supervisor.shutdown().finally(() => {
				rmSync(socket, { force: true });
				process.exit(0);
			});
		});
	// Its lab's state folder gone (the lab went down without telling it): nothing left to supervise.
	setInterval(() => {
		if (!existsSync(stateDir(lab))) process.exit(0);
	}, 1000).unref();
	return await new Promise<number>(() => undefined);
}

