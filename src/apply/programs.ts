// The user's programs in a running lab, from the side of a testbed command: start the lab's
// supervisor (supervisor.ts) when none runs, ask it to start or stop programs, read what it knows,
// and stop it with the lab.
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { ApplyError, LabStateError } from "../errors.ts";
import { projectPath } from "../project.ts";
import { nodeEnvironment, type LabProgram, type UserCommand } from "../resolve/commands.ts";
import type { Lab, LabNode } from "../resolve/lab.ts";
import { readLedger, writeLedger, type Ledger } from "./ledger.ts";
import { lockLab, processAlive } from "./lock.ts";
import { ensureNodeEnv, inNode, makeNodeEnvs } from "./node-env.ts";
import { oomCounterFile } from "./cgroups.ts";
import { formatSize } from "../validate/units.ts";
import { NodeProcess } from "./node-process.ts";
import { stateDir } from "./state-files.ts";
import { spawnDaemon } from "./spawn.ts";
import { logTail } from "./program-logs.ts";
import { programsFile, supervisorSocket, type ProgramSpec, type ProgramState, type SupervisorReply, type SupervisorRequest } from "./supervisor-protocol.ts";
import { systemPath } from "./which.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The PATH programs of the topology and of checks start with: the one `sudo` gives on Debian
 * (secure_path), whoever runs testbed — a version manager's shims on the caller's PATH (pyenv) would
 * make every `python3` a shell script and a lookup. A program's own `env: { PATH: … }` wins.
 */
export const programPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The environment a program starts with: a plain PATH and locale, the lab's variables, its own. */
export function programEnvironment(lab: Lab, node: string, own: Record<string, string>): Record<string, string> {
	const base: Record<string, string> = { PATH: programPath, HOME: process.env.HOME ?? "/root", LANG: process.env.LANG ?? "C.UTF-8" };
	return { ...base, ...nodeEnvironment(lab, node), ...own };
}

/** Start the user's command in a node (its namespaces made on first use), with the lab's variables and `extra`; it dies with testbed. */
export async function startInNode(lab: Lab, nodeName: string, command: Pick<UserCommand, "argv" | "env" | "cwd">, extra: Record<string, string> = {}, input?: string): Promise<NodeProcess> {
	const node = lab.nodes.find((candidate) => candidate.name === nodeName);
	if (!node || node.kind === "switch") throw new LabStateError(`lab "${lab.name}" has no node "${nodeName}" that runs programs; nodes: ${lab.nodes.filter((candidate) => candidate.kind !== "switch").map((candidate) => candidate.name).join(", ")}`, "NODE_NOT_FOUND");
	await ensureNodeEnv(lab, node);
	return new NodeProcess(node.name, inNode(lab.name, node, command.argv, command.cwd), programEnvironment(lab, node.name, { ...command.env, ...extra }), input === undefined ? {} : { input });
}

/** What the supervisor needs to start a program of the topology, or a detached command, in a node. */
export function programSpec(lab: Lab, node: LabNode, program: Pick<LabProgram, "argv" | "text" | "env" | "cwd"> & Partial<Pick<LabProgram, "ready" | "after">> & { name: string; detached?: boolean }): ProgramSpec {
	return {
		node: node.name,
		name: program.name,
		argv: inNode(lab.name, node, program.argv, program.cwd),
		env: programEnvironment(lab, node.name, program.env),
		cwd: program.cwd,
		text: program.text,
		...(program.ready ? { ready: program.ready } : {}),
		after: program.after ?? [],
		...(program.detached ? { detached: true } : {}),
		...oomWatch(lab.name, node),
	};
}

/** Where the supervisor sees that the kernel's OOM killer ended a program (a node with a memory limit). */
function oomWatch(lab: string, node: LabNode): Pick<ProgramSpec, "oom"> {
	const counter = oomCounterFile(lab, node);
	return counter ? { oom: { counter, limit: formatSize(node.limits!.memoryBytes!) } } : {};
}

/** One request to the lab's supervisor and its reply. */
export function askSupervisor(lab: string, request: SupervisorRequest, timeoutMs = 600_000, signal?: AbortSignal): Promise<SupervisorReply> {
	return new Promise((resolve, reject) => {
		const socket = connect(supervisorSocket(lab));
		let buffered = "";
		const timer = setTimeout(() => {
			socket.destroy();
			reject(new LabStateError(`the supervisor of lab "${lab}" did not answer in ${Math.round(timeoutMs / 1000)} s`, "SUPERVISOR_FAILED"));
		}, timeoutMs);
		// Ctrl-C while waiting (programs getting ready): stop waiting now; the caller rolls back.
		const onAbort = () => {
			clearTimeout(timer);
			socket.destroy();
			reject(new Error("interrupted"));
		};
		if (signal?.aborted) return onAbort();
		signal?.addEventListener("abort", onAbort, { once: true });
		socket.on("close", () => signal?.removeEventListener("abort", onAbort));
		socket.setEncoding("utf8");
		socket.on("connect", () => socket.write(`${JSON.stringify(request)}\n`));
		socket.on("data", (chunk: string) => {
			buffered += chunk;
			const newline = buffered.indexOf("\n");
			if (newline < 0) return;
			clearTimeout(timer);
			socket.end();
			try {
				resolve(JSON.parse(buffered.slice(0, newline)) as SupervisorReply);
			} catch (error) {
				reject(error);
			}
		});
		socket.on("error", (error) => {
			clearTimeout(timer);
			reject(error);
		});
	});
}

/** Whether the lab's supervisor answers. */
async function supervisorAnswers(lab: string): Promise<boolean> {
	try {
		return (await askSupervisor(lab, { cmd: "list" }, 2000)).ok;
	} catch {
		return false;
	}
}

/**
 * Make sure the lab's supervisor runs; start one when none answers. The caller holds the lab's lock
 * (the supervisor's pid goes into the ledger, so `down` stops it even after a crash).
 */
export async function ensureSupervisor(lab: Lab, ledger: Ledger): Promise<void> {
	if (await supervisorAnswers(lab.name)) return;
	const argv = [process.execPath, projectPath("bin", "testbed.js"), "supervise", lab.name];
	const pid = spawnDaemon(argv, { logFile: join(stateDir(lab.name), "supervisor.log"), env: { PATH: systemPath(), HOME: process.env.HOME ?? "/root", LANG: process.env.LANG ?? "C.UTF-8" } });
	ledger.supervisor = { pid };
	writeLedger(ledger);
	for (let waited = 0; waited < 15_000; waited += 20) {
		if (await supervisorAnswers(lab.name)) return;
		if (!processAlive(pid)) break;
		await sleep(20);
	}
	let why = "";
	try {
		why = readFileSync(join(stateDir(lab.name), "supervisor.log"), "utf8").trim().split("\n").slice(-5).join("\n");
	} catch {}
	throw new ApplyError(`the supervisor of lab "${lab.name}" did not start${why ? `:\n${why}` : ""}`, { command: argv.join(" "), stderr: why, rolledBack: false });
}

/** The error for a program that did not start: node, program, how it ended, its last output. */
export function programFailure(failed: ProgramState & { tail: string[] }, rolledBack: boolean): ApplyError {
	const ended = failed.exitCode !== undefined && failed.exitCode !== null ? `exit status ${failed.exitCode}` : failed.signal ? `killed by ${failed.signal}` : "still running";
	const tail = failed.tail.length ? `\n  last output:\n${failed.tail.map((line) => `    ${line}`).join("\n")}` : "\n  (no output)";
	return new ApplyError(`program "${failed.name}" on node "${failed.node}" failed: ${failed.error} (${ended})\n  command: ${failed.text}${tail}${rolledBack ? "\n  everything `up` had created was removed" : ""}`, {
		command: failed.text,
		stderr: failed.tail.join("\n"),
		rolledBack,
	});
}

/**
 * Start the topology's programs of every node (`up`, which holds the lock), and testbed's own daemons
 * (`daemons`: the NATs' port mapping, first); throws the first failure.
 */
export async function startLabPrograms(lab: Lab, ledger: Ledger, signal?: AbortSignal, daemons: ProgramSpec[] = []): Promise<ProgramState[]> {
	const nodes = lab.nodes.filter((node) => node.programs?.length);
	if (nodes.length === 0 && daemons.length === 0) return [];
	for (const node of nodes) await ensureNodeEnv(lab, node, { locked: true });
	// The daemons' nodes in one helper run (a NAT with port mapping and no programs of its own).
	await makeNodeEnvs(lab, lab.nodes.filter((node) => daemons.some((daemon) => daemon.node === node.name)), signal);
	await ensureSupervisor(lab, ledger);
	const specs = [...daemons, ...nodes.flatMap((node) => node.programs!.map((program) => programSpec(lab, node, program)))];
	const reply = await askSupervisor(lab.name, { cmd: "start", programs: specs }, undefined, signal);
	if (!reply.ok) throw reply.failed ? programFailure(reply.failed, true) : new ApplyError(`starting the programs of lab "${lab.name}" failed: ${reply.error}`, { command: "start programs", stderr: reply.error, rolledBack: true });
	return reply.programs;
}

/** The programs the lab's supervisor knows (from its state file; none when it never ran). */
export function listPrograms(lab: string): ProgramState[] {
	try {
		return (JSON.parse(readFileSync(programsFile(lab), "utf8")) as { programs: ProgramState[] }).programs;
	} catch {
		return [];
	}
}

/** Stop the lab's supervisor and, through it, its programs (gracefully); a supervisor that does not answer is killed. */
export async function stopSupervisor(ledger: Ledger): Promise<void> {
	const pid = ledger.supervisor?.pid;
	try {
		await askSupervisor(ledger.lab, { cmd: "shutdown" }, 10_000);
	} catch {}
	if (pid === undefined || !processAlive(pid)) return;
	// Only if it is still the lab's supervisor (pids are reused).
	let command = "";
	try {
		command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
	} catch {}
	if (command.includes("\0supervise\0") && command.endsWith(`\0${ledger.lab}\0`)) {
		try {
			process.kill(pid, "SIGKILL");
		} catch {}
	}
}

/** A detached command (`exec --detach`): started through the supervisor; resolves to its state. */
export async function startDetached(lab: Lab, node: LabNode, command: UserCommand, name?: string): Promise<ProgramState> {
	await ensureNodeEnv(lab, node);
	const lock = await lockLab(lab.name);
	try {
		const ledger = readLedger(lab.name);
		if (!ledger) throw new LabStateError(`no lab named "${lab.name}" is up`, "LAB_NOT_FOUND");
		await ensureSupervisor(lab, ledger);
	} finally {
		lock.release();
	}
	const taken = new Set(listPrograms(lab.name).filter((program) => program.node === node.name).map((program) => program.name));
	const base = (name ?? command.argv[0].split("/").pop() ?? "program").replace(/[^A-Za-z0-9_-]/g, "-").replace(/^[^A-Za-z]+/, "p");
	let chosen = base;
	for (let n = 2; !name && taken.has(chosen); n++) chosen = `${base}-${n}`;
	const reply = await askSupervisor(lab.name, { cmd: "start", programs: [programSpec(lab, node, { ...command, name: chosen, detached: true })] });
	if (!reply.ok) throw reply.failed ? programFailure(reply.failed, false) : new LabStateError(reply.error, "PROGRAM_FAILED");
	return reply.programs.find((program) => program.node === node.name && program.name === chosen)!;
}

export { logTail };
