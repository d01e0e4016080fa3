// `testbed reach LAB`: all-pairs UDP reachability.
import { reachMatrix } from "../../agents/reach.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { readLedger, listLedgers } from "../../apply/ledger.ts";
import { LabStateError } from "../../errors.ts";
import { renderReachText } from "../../report/reach-text.ts";
import type { Io } from "../io.ts";

export async function reachCommand(labName: string, options: { json?: boolean; timeout?: string }, io: Io): Promise<number> {
	requireRoot("reach");
	const ledger = readLedger(labName);
	if (!ledger) {
		const labs = listLedgers();
		throw new LabStateError(`no lab named "${labName}" is up; ${labs.length ? `labs: ${labs.join(", ")}` : "no labs are up"}`, "LAB_NOT_FOUND");
	}
	const matrix = await reachMatrix(ledger.resolved, { timeoutMs: options.timeout ? Number(options.timeout) : undefined });
	if (options.json) io.json(matrix);
	else io.out(renderReachText(matrix, io.color));
	return 0;
}
