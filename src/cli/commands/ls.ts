// `testbed ls`
import { labStatuses } from "../../apply/status.ts";
import { table } from "../../report/table.ts";
import type { Io } from "../io.ts";

export async function lsCommand(options: { json?: boolean }, io: Io): Promise<number> {
	const labs = labStatuses();
	if (options.json) io.json(labs);
	else if (labs.length === 0) io.out("no labs are up");
	else io.out(table([["lab", "state", "owner", "nodes", "namespaces", "since", "file"], ...labs.map((lab) => [lab.lab, lab.state, lab.owner || "-", String(lab.nodes), `${lab.namespaces.present}/${lab.namespaces.expected}`, lab.createdAt, lab.error ?? lab.file])]));
	return 0;
}
