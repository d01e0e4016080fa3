// `testbed ps LAB`: the lab's programs (what the supervisor started) and every process in each node.
import { readFileSync } from "node:fs";
import { requireLedger } from "../../apply/ledger.ts";
import { netnsInode, pidsInNamespaces } from "../../apply/namespaces.ts";
import { listPrograms } from "../../apply/programs.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { table } from "../../report/table.ts";
import type { Io } from "../io.ts";

function commandLine(pid: number): string {
	try {
		return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ").slice(0, 200);
	} catch {
		return "?";
	}
}

export async function psCommand(labName: string, options: { json?: boolean }, io: Io): Promise<number> {
	requireRoot("ps");
	const lab = requireLedger(labName).resolved;
	const programs = listPrograms(labName);
	const nodes = lab.nodes
		.filter((node) => node.kind !== "switch")
		.map((node) => {
			const inode = netnsInode(node.netns);
			const pids = inode === null ? [] : pidsInNamespaces(new Set([inode])).sort((a, b) => a - b);
			return { node: node.name, processes: pids.map((pid) => ({ pid, command: commandLine(pid) })) };
		});
	if (options.json) {
		io.json({ lab: lab.name, programs, nodes });
		return 0;
	}
	if (programs.length === 0) io.out(`lab "${lab.name}" runs no programs`);
	else {
		const rows = [["node", "program", "pid", "status", "since", "command"]];
		for (const program of programs)
			rows.push([program.node, program.name, String(program.pid ?? "-"), `${program.status}${program.exitCode !== undefined && program.exitCode !== null ? ` (${program.exitCode})` : program.signal ? ` (${program.signal})` : ""}`, (program.endedAt ?? program.readyAt ?? program.startedAt ?? "").slice(11, 19), program.text.slice(0, 80)]);
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
