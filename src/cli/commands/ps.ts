// `testbed ps LAB`: the lab's programs (what the supervisor started) and every process in each node.
import { readFileSync } from "node:fs";
import { requireLedger } from "../../apply/ledger.ts";
import { netnsInode, pidsInNamespaces } from "../../apply/namespaces.ts";
import { listPrograms } from "../../apply/programs.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { table } from "../../report/table.ts";
import { nodeUsage } from "../../apply/cgroups.ts";
import type { Lab } from "../../resolve/lab.ts";
import { formatSize } from "../../validate/units.ts";
import type { Io } from "../io.ts";

function commandLine(pid: number): string {
	try {
		return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ").slice(0, 200);
	} catch {
		return "?";
	}
}

/** How long `ps` watches the CPU use of nodes with limits. */
const cpuSampleMs = 500;

export async function psCommand(labName: string, options: { json?: boolean }, io: Io): Promise<number> {
	requireRoot("ps");
	const lab = requireLedger(labName).resolved;
	const programs = listPrograms(labName);
	const limited = await sampleLimits(lab);
	const nodes = lab.nodes
		.filter((node) => node.kind !== "switch")
		.map((node) => {
			const inode = netnsInode(node.netns);
			const pids = inode === null ? [] : pidsInNamespaces(new Set([inode])).sort((a, b) => a - b);
			const usage = limited.get(node.name);
			return { node: node.name, processes: pids.map((pid) => ({ pid, command: commandLine(pid) })), ...(usage ? { usage } : {}) };
		});
	if (options.json) {
		io.json({ lab: lab.name, programs, nodes });
		return 0;
	}
	if (programs.length === 0) io.out(`lab "${lab.name}" runs no programs`);
	else {
		const rows = [["node", "program", "pid", "status", "since", "command"]];
		for (const program of programs) {
			const how = [program.exitCode !== undefined && program.exitCode !== null ? String(program.exitCode) : program.signal, program.oomKilled ? "OOM" : undefined].filter(Boolean).join(", ");
			rows.push([program.node, program.name, String(program.pid ?? "-"), `${program.status}${how ? ` (${how})` : ""}`, (program.endedAt ?? program.readyAt ?? program.startedAt ?? "").slice(11, 19), program.text.slice(0, 80)]);
		}
		io.out(table(rows));
		for (const program of programs) if (program.oomKilled) io.out(`${program.node}/${program.name}: ${program.oomKilled}`);
	}
	if (limited.size > 0) {
		io.out(`\nnodes with limits (CPU over ${cpuSampleMs / 1000} s; a share of one core):`);
		const rows = [["node", "cpu", "memory", "pids", "oom kills"]];
		for (const [node, usage] of limited) {
			const of = (used: string, limit: string | undefined) => (limit ? `${used} of ${limit}` : used);
			rows.push([
				node,
				of(usage.cpuPercent === undefined ? "?" : `${usage.cpuPercent.toFixed(1)}%`, usage.cpuLimitPercent === undefined ? undefined : `${Number(usage.cpuLimitPercent.toFixed(1))}%`),
				of(usage.memoryBytes === undefined ? "?" : formatSize(usage.memoryBytes), usage.memoryLimitBytes === undefined ? undefined : formatSize(usage.memoryLimitBytes)),
				of(usage.pids === undefined ? "?" : String(usage.pids), usage.pidsMax === undefined ? undefined : String(usage.pidsMax)),
				usage.oomKills === undefined ? "-" : String(usage.oomKills),
			]);
		}
		io.out(table(rows));
	}
	const busy = nodes.filter((node) => node.processes.length > 0);
	if (busy.length === 0) io.out("\nno processes run in the lab's nodes");
	else {
		io.out("\nprocesses per node:");
		io.out(table([["node", "pid", "command"], ...busy.flatMap((node) => node.processes.map((proc) => [node.node, String(proc.pid), proc.command]))]));
	}
	return 0;
}

/** What each node with limits uses against them: CPU over a short sample, memory, processes, OOM kills. */
async function sampleLimits(lab: Lab) {
	const nodes = lab.nodes.filter((node) => node.limits);
	const before = new Map(nodes.map((node) => [node.name, nodeUsage(lab.name, node)]));
	const started = performance.now();
	if (nodes.length > 0) await new Promise((resolve) => setTimeout(resolve, cpuSampleMs));
	const elapsedUs = (performance.now() - started) * 1000;
	const out = new Map<string, { cpuPercent?: number; cpuLimitPercent?: number; memoryBytes?: number; memoryLimitBytes?: number; pids?: number; pidsMax?: number; oomKills?: number; throttled?: number }>();
	for (const node of nodes) {
		const first = before.get(node.name);
		const now = nodeUsage(lab.name, node);
		if (!now) continue;
		const cpuPercent = first?.cpuUs !== undefined && now.cpuUs !== undefined ? ((now.cpuUs - first.cpuUs) / elapsedUs) * 100 : undefined;
		out.set(node.name, { cpuPercent, cpuLimitPercent: node.limits!.cpu === undefined ? undefined : node.limits!.cpu * 100, memoryBytes: now.memoryBytes, memoryLimitBytes: node.limits!.memoryBytes, pids: now.pids, pidsMax: node.limits!.pids, oomKills: now.oomKills, throttled: now.throttled });
	}
	return out;
}
