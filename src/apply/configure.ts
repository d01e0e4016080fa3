// Run a rendered plan's batches: the root one as one `ip -batch`, then every namespace's links,
// addresses, routes, nftables rules, iptables rules (a masquerade NAT), sysctls and qdiscs. Namespaces are configured by a few helper
// processes that each enter many namespaces (configure-namespaces.py: rtnetlink and libnftables,
// no program start per namespace); where the host cannot run the helper, each namespace gets one
// `nsenter --net=… sh` that runs the tools themselves. Either way a failure names the file line.
import { availableParallelism } from "node:os";
import { ApplyError } from "../errors.ts";
import { inNamespace, stepContent, type Batch, type Step } from "../render/batch.ts";
import type { Lab } from "../resolve/lab.ts";
import { projectPath } from "../project.ts";
import { iptablesFailedLine } from "../render/iptables.ts";
import { diesWithParent, parallel, run, runStreaming } from "./run.ts";
import { pythonPath } from "./which.ts";

export interface ConfigureOptions {
	signal?: AbortSignal;
	/** Called as namespaces are configured: `done` of `total`. */
	onProgress?: (done: number, total: number) => void;
	/** "tools": one process tree per namespace even where the helper could run (tests of that path). */
	method?: ConfigureMethod;
}

/** How namespaces were configured: the helper (python3 + libnftables) or the tools, one process tree each. */
export type ConfigureMethod = "helper" | "tools";

/** What configuring the namespaces took: the method, how many processes, and (helper) milliseconds per tool's part. */
export interface ConfigureProfile {
	method: ConfigureMethod;
	/** Helper processes, or process trees (one per namespace) with the tools. */
	processes: number;
	/** Summed over all namespaces: netlink (links, addresses, routes), nftables, iptables-restore, sysctls, tc. */
	toolMs?: Record<Step["tool"], number>;
}

/**
 * The root namespace's batch: namespaces and veth pairs, one `ip -batch`. Sysctls a namespace needs
 * before its links exist (IPv6 labs: no duplicate address detection) are `netns exec … sysctl`
 * lines of that batch as `plan` shows them; with the helper they are written in between, by one
 * process, instead of a process per namespace.
 */
export async function runRootBatch(lab: Lab, batch: Batch, signal?: AbortSignal): Promise<void> {
	const ip = batch.steps[0];
	const early = ip.lines.filter((line) => line.op.op === "sysctl");
	const python = early.length ? pythonPath() : undefined;
	if (!python) return runIpBatch(lab, batch, ip, signal);
	const made = ip.lines.filter((line) => line.op.op === "netns-add");
	await runIpBatch(lab, batch, { ...ip, lines: made }, signal);
	const job = early.map((line) => ({ netns: (line.op as { netns: string }).netns, ip: [], nft: null, iptables: null, sysctl: (line.op as { settings: [string, string][] }).settings, tc: null }));
	const result = await run([python, "-I", "-S", helperPath(), String(process.pid)], { input: JSON.stringify({ namespaces: job }), signal });
	if (result.exitCode !== 0) {
		const failed = result.stdout
			.split("\n")
			.flatMap((text): HelperLine[] => {
				try {
					return [JSON.parse(text) as HelperLine];
				} catch {
					return [];
				}
			})
			.find((line): line is Extract<HelperLine, { failed: string }> => "failed" in line);
		const line = early.find((entry) => (entry.op as { netns: string }).netns === failed?.failed) ?? early[0];
		throw stepError(lab, batch, ip, line, failed?.error ?? (result.stderr || `exit ${result.exitCode}`), result.exitCode ?? 1);
	}
	await runIpBatch(lab, batch, { ...ip, lines: ip.lines.filter((line) => line.op.op !== "netns-add" && line.op.op !== "sysctl") }, signal);
}

async function runIpBatch(lab: Lab, batch: Batch, ip: Step, signal?: AbortSignal): Promise<void> {
	const argv = diesWithParent(ip.argv);
	if (signal?.aborted) throw interrupted(argv);
	const result = await run(argv, { signal, input: stepContent(ip) });
	if (result.exitCode === 0) return;
	if (signal?.aborted) throw interrupted(argv);
	throw stepError(lab, batch, ip, failedLine(ip, result.stderr), kernelWords(result.stderr), result.exitCode);
}

/** Configure every namespace's batch; resolves to how. Throws the first failure (after every worker stopped). */
export async function configureNamespaces(lab: Lab, batches: Batch[], options: ConfigureOptions = {}): Promise<ConfigureProfile> {
	if (batches.length === 0) return { method: options.method ?? "helper", processes: 0 };
	const python = pythonPath();
	if (options.method !== "tools" && python) {
		const profile = await viaHelper(lab, batches, python, options);
		if (profile) return profile;
	}
	await viaTools(lab, batches, options);
	return { method: "tools", processes: batches.length };
}

// ---- the helper ------------------------------------------------------------------------------

const helperPath = () => projectPath("src", "apply", "configure-namespaces.py");

/** Whether the helper runs here (python3, ctypes, libnftables): what `testbed doctor` reports. */
export async function helperCheck(): Promise<{ ok: boolean; detail: string }> {
	const python = pythonPath();
	if (!python) return { ok: false, detail: "python3 not found: `up` configures each namespace with its own ip, nft and sysctl processes (several times slower)" };
	const result = await run([python, "-I", "-S", helperPath(), String(process.pid)], { input: JSON.stringify({ namespaces: [] }) });
	if (result.exitCode === 0) return { ok: true, detail: `${python} with libnftables: a few processes configure every namespace (netlink, libnftables)` };
	const why = /"unavailable": "([^"]*)"/.exec(result.stdout)?.[1] ?? (result.stderr || `exit ${result.exitCode}`);
	return { ok: false, detail: `${python} cannot run the helper (${why}): \`up\` configures each namespace with its own processes (several times slower)` };
}

type HelperLine = { done: string; ms?: Partial<Record<Step["tool"], number>> } | { failed: string; tool: Step["tool"]; line: number | null; error: string } | { unavailable: string };

/** What the helper needs of a namespace's batch (operations as the plan has them; files written already). */
function helperJob(batch: Batch) {
	const find = (tool: Step["tool"]) => batch.steps.find((step) => step.tool === tool);
	return {
		netns: batch.netns,
		ip: find("ip")?.lines.map((line) => line.op) ?? [],
		nft: find("nft")?.file ?? null,
		iptables: find("iptables")?.file ?? null,
		sysctl: find("sysctl")?.lines.map((line) => line.text.split(" = ") as [string, string]) ?? [],
		tc: find("tc")?.file ?? null,
	};
}

/**
 * Roughly what a namespace costs the helper, in milliseconds on a small VM: entering it and its
 * links, addresses and sysctls about one; a NAT's rule set (with its 1,024-port pool) three more;
 * a qdisc or iptables rules mean starting `tc` or `iptables-restore`.
 */
function helperCost(batch: Batch): number {
	const has = (tool: Step["tool"]) => batch.steps.some((step) => step.tool === tool);
	return 1 + (has("nft") ? 3 : 0) + (has("iptables") ? 5 : 0) + (has("tc") ? 5 : 0);
}

/** Split namespaces into `workers` shares of about equal cost (the costliest first, each to the lightest share). */
export function shareOut<T>(items: T[], workers: number, cost: (item: T) => number): T[][] {
	const shares = Array.from({ length: Math.max(1, workers) }, () => ({ items: [] as T[], cost: 0 }));
	const order = items.map((item, index) => ({ item, index, cost: cost(item) })).sort((x, y) => y.cost - x.cost || x.index - y.index);
	for (const entry of order) {
		const lightest = shares.reduce((best, share) => (share.cost < best.cost ? share : best));
		lightest.items.push(entry.item);
		lightest.cost += entry.cost;
	}
	return shares.map((share) => share.items).filter((share) => share.length > 0);
}

/**
 * A worker per CPU, each with a share of about equal cost. Resolves to undefined where the helper
 * cannot run (no libnftables, say): nothing was changed then.
 */
async function viaHelper(lab: Lab, batches: Batch[], python: string, options: ConfigureOptions): Promise<ConfigureProfile | undefined> {
	const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(batches.length / 4)));
	const shares = shareOut(batches, workers, helperCost);
	const byName = new Map(batches.map((batch) => [batch.netns, batch]));
	const stop = new AbortController();
	const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
	let done = 0;
	let failure: ApplyError | undefined;
	let unavailable = false;
	const toolMs = { ip: 0, nft: 0, iptables: 0, sysctl: 0, tc: 0 };
	options.onProgress?.(0, batches.length);
	const argv = [python, "-I", "-S", helperPath(), String(process.pid)];
	const results = await Promise.all(
		shares.map((share) =>
			runStreaming(argv, {
				input: JSON.stringify({ namespaces: share.map(helperJob) }),
				signal,
				onLine: (text) => {
					let line: HelperLine;
					try {
						line = JSON.parse(text) as HelperLine;
					} catch {
						return;
					}
					if ("done" in line) {
						for (const tool of ["ip", "nft", "iptables", "sysctl", "tc"] as const) toolMs[tool] += line.ms?.[tool] ?? 0;
						options.onProgress?.(++done, batches.length);
					}
					else if ("unavailable" in line) unavailable = true;
					else if ("failed" in line && !failure) {
						const batch = byName.get(line.failed)!;
						const step = batch.steps.find((candidate) => candidate.tool === line.tool) ?? batch.steps[0];
						const failedAt = line.line === null ? failedLine(step, line.error) : step.lines[line.line];
						failure = stepError(lab, batch, step, failedAt, line.error, 1);
						stop.abort();
					}
				},
			}),
		),
	);
	if (failure) throw failure;
	if (options.signal?.aborted) throw interrupted(argv);
	if (unavailable) return undefined;
	const crashed = results.find((result) => result.exitCode !== 0);
	if (crashed) throw new ApplyError(`configuring the namespaces of lab "${lab.name}" failed: ${crashed.stderr || `the helper exited ${crashed.exitCode}`}\n  everything \`up\` had created was removed`, { command: argv.join(" "), stderr: crashed.stderr, rolledBack: true });
	const round = (ms: number) => Math.round(ms * 10) / 10;
	return { method: "helper", processes: shares.length, toolMs: { ip: round(toolMs.ip), nft: round(toolMs.nft), iptables: round(toolMs.iptables), sysctl: round(toolMs.sysctl), tc: round(toolMs.tc) } };
}

// ---- the tools, one process tree per namespace -----------------------------------------------

/**
 * The fixed script that runs a namespace's steps in one process tree. No user text is part of it:
 * the ip lines come on stdin, file paths and sysctl settings as positional arguments. A failing
 * step exits with 11 (ip), 13 (nft), 15 (iptables-restore), 12 (sysctl) or 14 (tc); sysctl runs
 * after nft and iptables, which load conntrack and so create the net.netfilter settings.
 */
const stepScript = `nft_file=$1; iptables_file=$2; tc_file=$3; shift 3
ip -batch - || exit 11
[ -z "$nft_file" ] || nft -f "$nft_file" || exit 13
[ -z "$iptables_file" ] || iptables-restore "$iptables_file" || exit 15
[ $# -eq 0 ] || sysctl -q -w "$@" || exit 12
[ -z "$tc_file" ] || tc -batch "$tc_file" || exit 14`;

const stepExit: Record<number, Step["tool"]> = { 11: "ip", 12: "sysctl", 13: "nft", 14: "tc", 15: "iptables" };

async function viaTools(lab: Lab, batches: Batch[], options: ConfigureOptions): Promise<void> {
	const limit = Math.max(4, availableParallelism() * 4);
	let configured = 0;
	options.onProgress?.(0, batches.length);
	await parallel(batches, limit, async (batch) => {
		await runNamespaceTools(lab, batch, options.signal);
		options.onProgress?.(++configured, batches.length);
	});
}

async function runNamespaceTools(lab: Lab, batch: Batch, signal: AbortSignal | undefined): Promise<void> {
	const ip = batch.steps[0];
	const find = (tool: Step["tool"]) => batch.steps.find((step) => step.tool === tool);
	const argv = diesWithParent(inNamespace(batch.netns!, ["sh", "-c", stepScript, "testbed-steps", find("nft")?.file ?? "", find("iptables")?.file ?? "", find("tc")?.file ?? "", ...(find("sysctl")?.argv.slice(3) ?? [])]));
	if (signal?.aborted) throw interrupted(argv);
	const result = await run(argv, { signal, input: stepContent(ip) });
	if (result.exitCode === 0) return;
	if (signal?.aborted) throw interrupted(argv);
	const step = find(stepExit[result.exitCode]) ?? ip;
	throw stepError(lab, batch, step, failedLine(step, result.stderr), kernelWords(result.stderr), result.exitCode);
}

// ---- failures --------------------------------------------------------------------------------

function interrupted(argv: string[]): ApplyError {
	return new ApplyError("interrupted: everything `up` had created was removed", { command: argv.join(" "), stderr: "", rolledBack: true });
}

function kernelWords(stderr: string): string {
	return stderr
		.split("\n")
		.filter((text) => text.trim() && !text.startsWith("Command failed"))
		.join("\n");
}

/** Name the operation, the kernel's words and the YAML line. */
function stepError(lab: Lab, batch: Batch, step: Step, line: Step["lines"][number] | undefined, kernel: string, exitCode: number): ApplyError {
	const where = batch.netns ? `in namespace ${batch.netns}` : "in the root namespace";
	const ns = batch.netns;
	const command = !line
		? (ns ? inNamespace(ns, step.argv) : step.argv).join(" ")
		: step.tool === "ip"
			? `ip ${ns ? `-n ${ns} ` : ""}${line.text}`
			: step.tool === "tc"
				? `ip netns exec ${ns} tc ${line.text}`
				: step.tool === "sysctl"
					? `ip netns exec ${ns} sysctl -w ${line.text.replace(" = ", "=")}`
					: step.tool === "iptables"
						? `ip netns exec ${ns} iptables-restore ${step.file} (line: ${line.text.trim()})`
						: `ip netns exec ${ns} nft -f ${step.file} (line: ${line.text.trim()})`;
	const source = line ? `${lab.file}:${line.op.pos.line}:${line.op.pos.col}` : undefined;
	const node = line?.op.node ?? batch.node;
	return new ApplyError(`${source ? `${source}: ` : ""}building ${node ? `node "${node}"` : `lab "${lab.name}"`} failed ${where}\n  command: ${command}\n  kernel:  ${kernel || `exit code ${exitCode}`}\n  everything \`up\` had created was removed`, {
		command,
		namespace: ns ?? undefined,
		stderr: kernel,
		source,
		rolledBack: true,
	});
}

/** The file line a tool complained about: "Command failed FILE:N" (ip, tc), "FILE:N:C" (nft), "line: N" (iptables-restore), the key (sysctl). */
function failedLine(step: Step, stderr: string): Step["lines"][number] | undefined {
	if (step.tool === "iptables") {
		const number = iptablesFailedLine(stderr);
		return number === undefined ? undefined : step.lines[number - 1];
	}
	const number = /Command failed \S+:(\d+)/.exec(stderr)?.[1] ?? (step.file ? new RegExp(`${step.file.replaceAll(".", "\\.")}:(\\d+):`).exec(stderr)?.[1] : undefined);
	if (number) return step.lines[Number(number) - 1];
	if (step.tool === "sysctl") return step.lines.find((line) => stderr.includes(line.text.split(" = ")[0].replaceAll(".", "/"))) ?? step.lines[0];
	return step.lines.length === 1 ? step.lines[0] : undefined;
}
