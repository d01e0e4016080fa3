// Build a lab on the host: ledger first, one root `ip -batch`, then every namespace configured (configure.ts).
// Any failure (or Ctrl-C) rolls back everything this call created.
import { mkdirSync, writeFileSync } from "node:fs";
import { ApplyError, LabStateError, MissingFeatureError } from "../errors.ts";
import type { CgroupController, HostFeatures, Plan, Requirement } from "../plan/operations.ts";
import { planLab } from "../plan/plan.ts";
import { renderPlan, stepContent } from "../render/batch.ts";
import type { Lab } from "../resolve/lab.ts";
import { detectFeatures } from "./features.ts";
import { currentUser, ownerOf, readLedger, removeLedger, writeLedger, type Ledger } from "./ledger.ts";
import { lockLab } from "./lock.ts";
import { netnsIdentity } from "./namespaces.ts";
import { stateDir } from "./state-files.ts";
import { labExistsError, requireFreeNamespaces, requireRoot, requireTools } from "./preflight.ts";
import { configureNamespaces, runRootBatch, type ConfigureMethod, type ConfigureProfile } from "./configure.ts";
import { teardownLedger } from "./teardown.ts";
import { isContainer, makeNodeEnvs, writeNameFiles } from "./node-env.ts";
import { controllerFix, createCgroups, labCgroups, withHostLayout } from "./cgroups.ts";
import { ensureSupervisor, listPrograms, startLabPrograms } from "./programs.ts";
import { daemonProgram, daemonSpecs, portMappingFiles, requireDaemon } from "./port-mapping.ts";
import type { ProgramState } from "./supervisor-protocol.ts";

export interface UpOptions {
	/** Replace a lab of the same name that is already up. */
	force?: boolean;
	/** Override detected features (tests of fallbacks). */
	features?: HostFeatures;
	signal?: AbortSignal;
	/** How long to wait for another testbed process working on the same lab (default 15 s). */
	lockWaitMs?: number;
	/** Called as namespaces are configured: `done` of `total`. */
	onProgress?: (done: number, total: number) => void;
	/** "tools": configure namespaces with one process tree each, even where the helper could (tests of that path). */
	method?: ConfigureMethod;
	/** A program that fails to start does not roll the lab back: it stays up, and `onProgramFailure` hears why. */
	keep?: boolean;
	onProgramFailure?: (error: ApplyError) => void;
}

export interface UpResult {
	lab: Lab;
	plan: Plan;
	ledger: Ledger;
	/** How the namespaces were configured. */
	method: ConfigureMethod;
	/** Where the namespaces' time went: processes and, with the helper, milliseconds per tool's part. */
	profile: ConfigureProfile;
	/** The topology's programs, as they were when `up` returned (ready, or running without a readiness condition). */
	programs: ProgramState[];
	/** With `force`: the lab of this name that was up before and was taken down to make room. */
	replaced?: { owner: string; createdAt: string };
	timings: { rootMs: number; namespacesMs: number; totalMs: number };
}

export async function upLab(lab: Lab, options: UpOptions = {}): Promise<UpResult> {
	const started = performance.now();
	requireRoot("up");
	const features = withHostLayout(options.features ?? (await detectFeatures()).features);
	const plan = planLab(lab, features);
	if (plan.unmet.length > 0) {
		// Every position that asks for what the host lacks, one per line; the fix for the first.
		const first = plan.unmet[0];
		const keys = first.keys?.join(", ") ?? "the impairment";
		throw new MissingFeatureError(plan.unmet.map((unmet) => `${lab.file}:${unmet.pos.line}:${unmet.pos.col}: ${lacking(unmet.feature)}, needed for ${unmet.why}`).join("\n"), first.feature, missingFix(first.feature, keys));
	}
	requireTools(plan);
	requireDaemon(lab);
	const lock = await lockLab(lab.name, options.lockWaitMs);
	try {
		const existing = readLedger(lab.name);
		if (existing && !options.force) throw labExistsError(lab, existing);
		if (existing) {
			await teardownLedger(existing);
			removeLedger(lab.name);
		}
		requireFreeNamespaces(lab, plan.root.flatMap((op) => (op.op === "netns-add" ? [op.netns] : [])));

		const ledger: Ledger = {
			format: 1,
			lab: lab.name,
			file: lab.file,
			state: "creating",
			pid: process.pid,
			createdAt: new Date().toISOString(),
			owner: currentUser(),
			namespaces: lab.nodes.map((node) => ({ name: node.netns, node: node.name, inode: null })),
			resolved: lab,
		};
		const cgroups = labCgroups(plan.containers, features.cgroups, lab.name);
		if (cgroups.length > 0) ledger.cgroups = cgroups;
		writeLedger(ledger);
		try {
			const result = await build(lab, plan, ledger, started, options);
			return existing ? { ...result, replaced: { owner: ownerOf(existing), createdAt: existing.createdAt } } : result;
		} catch (error) {
			try {
				await teardownLedger(ledger);
			} catch (teardown) {
				// Keep the ledger: it is the only record of what is left.
				throw new LabStateError(`${(error as Error).message}\nrolling back failed too: ${(teardown as Error).message}\nthe ledger is kept; run \`testbed down ${lab.name}\``, "ROLLBACK_FAILED");
			}
			removeLedger(lab.name);
			// Interrupted: whatever failed after the signal (a killed tool, a program not ready) failed because of it.
			if (options.signal?.aborted) throw new ApplyError("interrupted: everything `up` had created was removed", { command: "up", stderr: "", rolledBack: true });
			throw error;
		}
	} finally {
		lock.release();
	}
}

/** What the host lacks, in words: a kernel feature, or a cgroup controller. */
function lacking(feature: Requirement["feature"]): string {
	if (feature === "ipv6") return "IPv6 is off in new namespaces on this host";
	return feature.startsWith("cgroup ") ? `this host has no ${feature} controller` : `this kernel has no ${feature}`;
}

/** How to get a missing feature, or do without it. */
function missingFix(feature: Requirement["feature"], keys: string): string {
	if (feature === "netem") return `remove ${keys}, or run on a kernel with sch_netem (\`modprobe sch_netem\`); without it loss, loss-burst, rate and limit still work; \`testbed doctor\` shows what this host has`;
	if (feature === "ipv6") return "remove `subnet6:` and the IPv6 addresses, or run where IPv6 is on: a kernel booted without ipv6.disable=1, and net.ipv6.conf.default.disable_ipv6=0 where new namespaces inherit the host's settings; `testbed doctor` shows what this host has";
	if (feature === "tbf") return `remove ${keys}, or load sch_tbf (\`modprobe sch_tbf\`); \`testbed doctor\` shows what this host has`;
	return controllerFix(feature === "overlay" ? "overlay" : (feature.slice("cgroup ".length) as CgroupController));
}

async function build(lab: Lab, plan: Plan, ledger: Ledger, started: number, options: UpOptions): Promise<UpResult> {
	const { signal, onProgress } = options;
	const dir = stateDir(lab.name);
	mkdirSync(dir, { recursive: true, mode: 0o700 });
	const rendered = renderPlan(plan, dir);
	for (const batch of rendered.namespaces) for (const step of batch.steps) if (step.file) writeFileSync(step.file, stepContent(step), { mode: 0o600 });
	await runRootBatch(lab, rendered.root, signal);
	for (const entry of ledger.namespaces) {
		const identity = netnsIdentity(entry.name);
		entry.inode = identity?.inode ?? null;
		if (identity) entry.born = identity.born;
	}
	writeLedger(ledger);
	const rootDone = performance.now();
	writeNameFiles(lab);
	// The lab's supervisor (a Node process: a few hundred ms to start) starts while the namespaces are
	// configured, when there are programs or daemons for it; startLabPrograms then finds it answering.
	const supervisor = lab.nodes.some((node) => node.programs?.length || node.nat?.portMapping) ? ensureSupervisor(lab, ledger) : undefined;
	supervisor?.catch(() => undefined);
	// Nodes that are containers: their namespaces with private directories, made while the
	// namespaces' links and rules are configured (neither needs the other), and their cgroups,
	// written from here while both helpers work.
	const containers = lab.nodes.filter(isContainer);
	// Either helper failing stops the other: the lab is rolled back, and the first failure is the one said.
	const stopEnvs = new AbortController();
	const stopConfigure = new AbortController();
	const envs = containers.length > 0 ? makeNodeEnvs(lab, containers, signal ? AbortSignal.any([signal, stopEnvs.signal]) : stopEnvs.signal) : Promise.resolve();
	let envFailure: unknown;
	envs.catch((error: unknown) => {
		envFailure = error;
		stopConfigure.abort();
	});
	const configured = configureNamespaces(lab, rendered.namespaces, { signal: signal ? AbortSignal.any([signal, stopConfigure.signal]) : stopConfigure.signal, onProgress, method: options.method });
	let profile: ConfigureProfile;
	try {
		createCgroups(plan.containers, lab.file);
		profile = await configured;
	} catch (error) {
		// The namespaces' helper failing on its own stopped the links' (their "interrupted" is not the cause).
		const cause = envFailure ?? error;
		stopEnvs.abort();
		stopConfigure.abort();
		await Promise.allSettled([configured, envs]);
		throw cause;
	}
	await envs;
	if (signal?.aborted) throw new Error("interrupted");
	let programs: ProgramState[] = [];
	try {
		await supervisor;
		programs = await startLabPrograms(lab, ledger, signal, daemonSpecs(lab));
	} catch (error) {
		if (!options.keep || !(error instanceof ApplyError)) throw error;
		// --keep: the lab stays up as it is, with the failure said.
		programs = listPrograms(lab.name);
		options.onProgramFailure?.(error);
	}
	// Ctrl-C while the programs started (the wait for their readiness stops at once): the lab is rolled back, not left up.
	if (signal?.aborted) throw new Error("interrupted");
	const daemons = programs.filter((program) => program.name === daemonProgram && lab.nodes.find((node) => node.name === program.node)?.nat?.portMapping);
	if (daemons.length > 0) ledger.daemons = daemons.map((daemon) => ({ node: daemon.node, program: daemon.name, pid: daemon.pid, files: Object.values(portMappingFiles(lab.name, daemon.node)) }));
	ledger.state = "up";
	writeLedger(ledger);
	const done = performance.now();
	return { lab, plan, ledger, method: profile.method, profile, programs, timings: { rootMs: rootDone - started, namespacesMs: done - rootDone, totalMs: done - started } };
}
