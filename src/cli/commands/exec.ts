// `testbed exec LAB NODE -- CMD…` and `testbed shell LAB NODE`: inside the node (its network, its
// hostname, its names), stdio and exit code pass through. `exec --detach` leaves the command running
// under the lab's supervisor.
import { NodeNotFoundError, UsageError } from "../../errors.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { ensureNodeEnv, inNode } from "../../apply/node-env.ts";
import { oomCounterFile, oomKills } from "../../apply/cgroups.ts";
import { formatSize } from "../../validate/units.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { runAttached } from "../../apply/terminal.ts";
import { commandText, nodeEnvironment } from "../../resolve/commands.ts";
import { requireNode, type Lab, type LabNode } from "../../resolve/lab.ts";
import { parseDuration } from "../../validate/units.ts";
import type { Io } from "../io.ts";

export function labNode(labName: string, nodeName: string): LabNode {
	return nodeOf(requireLedger(labName).resolved, nodeName);
}

export function nodeOf(lab: Lab, nodeName: string): LabNode {
	const node = requireNode(lab, nodeName);
	if (node.kind === "switch") throw new NodeNotFoundError(`"${nodeName}" is a switch: nothing runs inside it; nodes that run commands: ${lab.nodes.filter((candidate) => candidate.kind !== "switch").map((candidate) => candidate.name).join(", ")}`);
	return node;
}

/** `--env K=V` options as a map; a malformed one is a usage error. */
export function envOptions(values: string[] | undefined): Record<string, string> {
	const env: Record<string, string> = {};
	for (const value of values ?? []) {
		const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(value);
		if (!match) throw new UsageError(`--env takes NAME=VALUE, not "${value}"`);
		env[match[1]] = match[2];
	}
	return env;
}

export async function execCommand(labName: string, nodeName: string, command: string[], options: { env?: string[]; timeout?: string; detach?: boolean }, io: Io): Promise<number> {
	requireRoot("exec");
	const env = envOptions(options.env);
	const timeoutMs = options.timeout === undefined ? undefined : parseDuration(options.timeout, "s");
	if (options.timeout !== undefined && (timeoutMs === undefined || timeoutMs <= 0)) throw new UsageError(`--timeout takes a duration such as 10s or 500ms, not "${options.timeout}"`);
	const lab = requireLedger(labName).resolved;
	const node = nodeOf(lab, nodeName);
	if (options.detach) {
		if (timeoutMs !== undefined) throw new UsageError("--timeout and --detach do not go together: a detached command runs until `testbed stop` or `down`");
		const { startDetached } = await import("../../apply/programs.ts");
		const text = commandText(command);
		const started = await startDetached(lab, node, { argv: command, text, env, cwd: process.cwd() });
		io.out(`started ${node.name}:${started.name} (pid ${started.pid}): ${text}\n  output: testbed logs ${lab.name} ${node.name}:${started.name}   stop: testbed stop ${lab.name} ${node.name}:${started.name}`);
		return 0;
	}
	await ensureNodeEnv(lab, node);
	const oom = oomCounterFile(lab.name, node);
	const before = oom ? oomKills(oom) : 0;
	const code = await runAttached(inNode(lab.name, node, command, process.cwd()), { ...nodeEnvironment(lab, node.name), ...env }, { timeoutMs });
	if (oom && code === 137 && oomKills(oom) > before) io.err(`testbed: killed by the kernel's OOM killer: node ${node.name} reached its memory limit (${formatSize(node.limits!.memoryBytes!)})`);
	return code;
}

export async function shellCommand(labName: string, nodeName: string): Promise<number> {
	requireRoot("shell");
	const lab = requireLedger(labName).resolved;
	const node = nodeOf(lab, nodeName);
	const shell = process.env.SHELL && /(^|\/)(bash|sh|zsh|dash)$/.test(process.env.SHELL) ? process.env.SHELL : "/bin/bash";
	const argv = shell.endsWith("bash") ? [shell, "--norc", "-i"] : [shell, "-i"];
	await ensureNodeEnv(lab, node);
	return runAttached(inNode(lab.name, node, argv, process.cwd()), { ...nodeEnvironment(lab, node.name), PS1: `[${lab.name}:${node.name}] \\w\\$ ` });
}
