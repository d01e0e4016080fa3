// `testbed exec LAB NODE -- CMD…` and `testbed shell LAB NODE`: stdio and exit code pass through.
import { LabStateError } from "../../errors.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { runAttached } from "../../apply/terminal.ts";
import type { LabNode } from "../../resolve/lab.ts";

export function labNode(labName: string, nodeName: string): LabNode {
	const ledger = requireLedger(labName);
	const node = ledger.resolved.nodes.find((candidate) => candidate.name === nodeName);
	if (!node) throw new LabStateError(`lab "${labName}" has no node "${nodeName}"; nodes: ${ledger.resolved.nodes.map((candidate) => candidate.name).join(", ")}`, "NODE_NOT_FOUND");
	return node;
}

export async function execCommand(lab: string, node: string, command: string[]): Promise<number> {
	requireRoot("exec");
	const target = labNode(lab, node);
	return runAttached(["ip", "netns", "exec", target.netns, ...command], { TESTBED_LAB: lab, TESTBED_NODE: node });
}

export async function shellCommand(lab: string, node: string): Promise<number> {
	requireRoot("shell");
	const target = labNode(lab, node);
	const shell = process.env.SHELL && /(^|\/)(bash|sh|zsh|dash)$/.test(process.env.SHELL) ? process.env.SHELL : "/bin/bash";
	const argv = shell.endsWith("bash") ? [shell, "--norc", "-i"] : [shell, "-i"];
	return runAttached(["ip", "netns", "exec", target.netns, ...argv], { TESTBED_LAB: lab, TESTBED_NODE: node, PS1: `[${lab}:${node}] \\w\\$ ` });
}
