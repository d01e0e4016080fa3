// `testbed stop LAB NODE[:PROGRAM]`: stop a program of a running lab, or all of a node's.
import { requireLedger } from "../../apply/ledger.ts";
import { askSupervisor, listPrograms } from "../../apply/programs.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { LabStateError } from "../../errors.ts";
import { requireNode } from "../../resolve/lab.ts";
import type { Io } from "../io.ts";

export async function stopCommand(labName: string, target: string, options: { json?: boolean }, io: Io): Promise<number> {
	requireRoot("stop");
	const lab = requireLedger(labName).resolved;
	const [node, name] = target.split(":", 2);
	requireNode(lab, node);
	const known = listPrograms(labName);
	if (known.length === 0) throw new LabStateError(`lab "${labName}" runs no programs (none in its file, none started with \`exec --detach\`)`, "PROGRAM_NOT_FOUND");
	const reply = await askSupervisor(labName, { cmd: "stop", node, ...(name ? { name } : {}) }).catch(() => undefined);
	if (!reply) throw new LabStateError(`the supervisor of lab "${labName}" does not answer; \`testbed down ${labName}\` stops everything`, "SUPERVISOR_FAILED");
	if (!reply.ok) throw new LabStateError(`${reply.error}; programs: ${known.map((program) => `${program.node}:${program.name}`).join(", ")}`, "PROGRAM_NOT_FOUND");
	const stopped = reply.programs.filter((program) => program.node === node && (!name || program.name === name));
	if (options.json) io.json(stopped);
	else for (const program of stopped) io.out(`${program.node}:${program.name} ${program.status}${program.exitCode !== undefined && program.exitCode !== null ? ` (exit status ${program.exitCode})` : program.signal ? ` (${program.signal})` : ""}`);
	return 0;
}
