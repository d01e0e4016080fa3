// The library's front door for test suites: `const lab = await up("topo.yml"); await lab.punch("alice", "bob");
// await lab.down();` — and a lab that a test forgets to take down is taken down when the process exits.
import { readFileSync, rmSync } from "node:fs";
import { mountPoints } from "./apply/node-env.ts";
import { downLab } from "./apply/down.ts";
import { readLedger, removeLedger } from "./apply/ledger.ts";
import { netnsIdentity, netnsInode, pidsInNamespaces, sameNamespace } from "./apply/namespaces.ts";
import { stateDir, lockPath } from "./apply/state-files.ts";
import { runSync } from "./apply/run.ts";
import { upLab, type UpOptions, type UpResult } from "./apply/up.ts";
import { HeldSession, type HoldOptions } from "./drivers/held-session.ts";
import { PunchSession, type PunchOptions, type PunchResult } from "./drivers/punch.ts";
import { applyEvent, type EventResult } from "./apply/apply-event.ts";
import { readEvent } from "./resolve/event-targets.ts";
import { detectFeatures } from "./apply/features.ts";
import { runSteps, type StepOptions } from "./expect/steps.ts";
import type { EventKind } from "./parse/topology.ts";
import { probeLab, type ProbeOptions, type ProbeReport } from "./drivers/probe.ts";
import { reachMatrix, type ReachMatrix, type ReachOptions } from "./drivers/reach.ts";
import { runChecks, theoryChecks, type CheckResult, type RunOptions } from "./expect/run.ts";
import { loadLab, loadLabText } from "./load.ts";
import { requireNode, type Lab, type LabNode } from "./resolve/lab.ts";
import { LabStateError } from "./errors.ts";
import type { NodeProcess } from "./apply/node-process.ts";
import { startInNode } from "./apply/programs.ts";
import { substitute } from "./resolve/commands.ts";

/** The address a placeholder stands for; what is not there is a LabStateError. */
function placeholder(lab: Lab, name: string): string {
	let problem: string | undefined;
	const value = substitute(lab, { value: `\${${name}}`, pos: { line: 1, col: 1 } }, (_code, _pos, message, fix) => (problem ??= `${message}${fix ? ` (${fix})` : ""}`));
	if (problem) throw new LabStateError(problem, "NODE_NOT_FOUND");
	return value;
}

export interface ExecResult {
	exitCode: number | null;
	signal: NodeJS.Signals | null;
	stdout: string;
	stderr: string;
	timedOut: boolean;
	durationMs: number;
}

export interface RunningLab extends AsyncDisposable {
	readonly name: string;
	readonly lab: Lab;
	readonly up: UpResult;
	node(name: string): LabNode;
	/** Hole-punch between two peers with testbed's agents. */
	punch(a: string, b: string, options?: PunchOptions): Promise<PunchResult>;
	/** Several pairs at once. */
	punchMany(pairs: [string, string][], options?: PunchOptions): Promise<PunchResult[]>;
	reach(options?: ReachOptions): Promise<ReachMatrix>;
	probe(options?: ProbeOptions): Promise<ProbeReport>;
	/** The file's `expect:` checks, or theory for every pair of peers. */
	check(options?: RunOptions): Promise<CheckResult[]>;
	/**
	 * Run a command inside a node (its network, hostname and names) and wait for it; resolves with its
	 * exit code and output (the last 256 kB of each stream). `timeout` (ms) stops it: SIGTERM, then
	 * SIGKILL, `timedOut: true`. `input` goes to its stdin.
	 */
	exec(node: string, argv: string[], options?: { env?: Record<string, string>; cwd?: string; timeout?: number; input?: string }): Promise<ExecResult>;
	/**
	 * Start a program in a node and get a handle: its output as lines (`for await (const line of p.lines())`),
	 * `waitFor(/listening/)`, `exit()`, `kill()`. It stops with the lab (and with this process) if the
	 * test does not stop it.
	 */
	spawn(node: string, argv: string[], options?: { env?: Record<string, string>; cwd?: string }): Promise<NodeProcess>;
	/** A node's first address, or an interface's: what `${alice}` and `${alice.eth0}` stand for. */
	address(node: string, iface?: string): string;
	/** A NAT's public address: `${home.public}`. */
	publicAddress(nat: string): string;
	/**
	 * Do something to the running lab, as `testbed event` does: `event("nat-reboot", "home", { outage: "1s" })`,
	 * `event("impair", "home:wan", { loss: "20%" })`, `event("move", "phone:cell")`. Resolves when it is done.
	 */
	event(kind: EventKind, target: string, settings?: Record<string, string | number>): Promise<EventResult>;
	/** Punch a↔b and hold the session open (keepalives, re-punch on loss), to watch it through events. */
	hold(a: string, b: string, options?: HoldOptions): Promise<HeldSession>;
	/** The file's timed `steps:`. */
	steps(options?: Partial<StepOptions>): Promise<CheckResult[]>;
	down(): Promise<void>;
}

const open = new Set<string>();
let hooked = false;

/** Synchronous teardown for process exit: kill what runs inside, delete the namespaces, forget the lab. */
function teardownSync(name: string): void {
	try {
		const ledger = readLedger(name);
		if (!ledger) return;
		const ours = ledger.namespaces.filter((entry) => netnsInode(entry.name) !== null && (entry.inode === null || sameNamespace(entry, netnsIdentity(entry.name))));
		for (const pid of pidsInNamespaces(new Set(ours.map((entry) => netnsInode(entry.name)!)))) {
			try {
				process.kill(pid, "SIGKILL");
			} catch {}
		}
		// The supervisor of its programs (in the root namespace), if it is still that process.
		const supervisor = ledger.supervisor?.pid;
		try {
			if (supervisor && readFileSync(`/proc/${supervisor}/cmdline`, "utf8").includes("\0supervise\0")) process.kill(supervisor, "SIGKILL");
		} catch {}
		const mounts = mountPoints()
			.filter((path) => path.startsWith(`${stateDir(name)}/`))
			.sort((a, b) => b.length - a.length);
		if (mounts.length) runSync(["umount", "--lazy", ...mounts]);
		if (ours.length) runSync(["ip", "-force", "-batch", "-"], { input: ours.map((entry) => `netns del ${entry.name}`).join("\n") + "\n" });
		rmSync(stateDir(name), { recursive: true, force: true });
		removeLedger(name);
		rmSync(lockPath(name), { force: true });
	} catch {}
}

const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** Labs still open when the process ends are taken down: at exit, and on a signal that would end it. */
function hook(): void {
	if (hooked) return;
	hooked = true;
	process.on("exit", teardownOpen);
	for (const signal of signals) process.on(signal, onSignal);
}

function teardownOpen(): void {
	for (const name of open) teardownSync(name);
	open.clear();
}

/**
 * A signal: take the open labs down, then let the signal do what it would have done without us —
 * end the process, or reach the suite's own handlers. The library never exits the process itself.
 */
function onSignal(signal: NodeJS.Signals): void {
	teardownOpen();
	for (const each of signals) process.off(each, onSignal);
	process.off("exit", teardownOpen);
	hooked = false;
	if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** `up()`'s options: `upLab`'s, and `name` to bring the file's lab up under another name (as `testbed up --name`). */
export interface LabOptions extends UpOptions {
	/** The lab's name instead of the file's `name:`; its namespaces follow it (see `loadLab`). */
	name?: string;
}

/**
 * Build a lab from a topology file (or `{ text }`, with `name` there the display name of the text); it
 * is taken down at `down()`, at `await using` scope end, or at process exit.
 */
export async function up(file: string | { text: string; name?: string }, options: LabOptions = {}): Promise<RunningLab> {
	const { name, ...upOptions } = options;
	const lab = typeof file === "string" ? loadLab(file, { name }) : loadLabText(file.text, file.name, { name });
	hook();
	const result = await upLab(lab, upOptions);
	open.add(lab.name);
	let punches: PunchSession | undefined;
	const session = async () => (punches ??= await PunchSession.start(lab));
	const node = (name: string) => requireNode(lab, name);
	const spawned = new Set<NodeProcess>();
	const spawn = async (name: string, argv: string[], options: { env?: Record<string, string>; cwd?: string } = {}, input?: string) => {
		if (argv.length === 0) throw new LabStateError("spawn and exec need a command: an argv list", "BAD_COMMAND");
		const started = await startInNode(lab, node(name).name, { argv, env: options.env ?? {}, cwd: options.cwd ?? process.cwd() }, {}, input);
		spawned.add(started);
		void started.exit().then(() => spawned.delete(started));
		return started;
	};
	const address = (name: string, iface?: string) => placeholder(lab, iface === undefined ? name : `${name}.${iface}`);
	const down = async () => {
		if (!open.has(lab.name)) return;
		try {
			await Promise.all([...spawned].map((program) => program.kill("SIGTERM", 1000)));
			await punches?.close();
		} finally {
			punches = undefined;
			open.delete(lab.name);
			// This process brought it up: its own, whoever the process says it acts for now.
			await downLab(lab.name, { force: true });
		}
	};
	return {
		name: lab.name,
		lab,
		up: result,
		node,
		punch: async (a, b, punchOptions) => (await session()).punch(a, b, punchOptions),
		punchMany: async (pairs, punchOptions) => (await session()).punchMany(pairs, punchOptions),
		reach: (reachOptions) => reachMatrix(lab, reachOptions),
		probe: (probeOptions) => probeLab(lab, probeOptions),
		check: (runOptions) => runChecks(lab, lab.expect?.length ? lab.expect : theoryChecks(lab), runOptions),
		exec: async (name, argv, options = {}) => {
			const program = await spawn(name, argv, options, options.input);
			const exit = await program.exit(options.timeout, 1000);
			const output = program.output();
			return { exitCode: exit.exitCode, signal: exit.signal, stdout: output.stdout.join("\n"), stderr: output.stderr.join("\n"), timedOut: exit.timedOut, durationMs: exit.durationMs };
		},
		spawn: (name, argv, options) => spawn(name, argv, options),
		address,
		publicAddress: (nat) => {
			if (!node(nat).nat) throw new LabStateError(`"${nat}" is not a NAT; NATs: ${lab.nodes.filter((candidate) => candidate.nat).map((candidate) => candidate.name).join(", ") || "none"}`, "NODE_NOT_FOUND");
			return placeholder(lab, `${nat}.public`);
		},
		event: async (kind, target, settings = {}) => applyEvent(lab, readEvent(lab, kind, { [kind]: target, ...settings }), (await detectFeatures()).features),
		hold: async (a, b, holdOptions) => HeldSession.open(await session(), a, b, holdOptions),
		steps: async (stepOptions = {}) => runSteps(lab, lab.steps ?? [], { features: (await detectFeatures()).features, ...stepOptions }),
		down,
		[Symbol.asyncDispose]: down,
	};
}

/** Up, run `body`, and always down — the shape for a test that must not leak a lab. */
export async function withLab<T>(file: string | { text: string; name?: string }, body: (lab: RunningLab) => Promise<T>, options: LabOptions = {}): Promise<T> {
	const lab = await up(file, options);
	try {
		return await body(lab);
	} finally {
		await lab.down();
	}
}
