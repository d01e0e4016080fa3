// `testbed reach LAB`: all-pairs UDP reachability.
import { reachMatrix } from "../../agents/reach.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { renderReachText } from "../../report/reach-text.ts";
import type { Io } from "../io.ts";

export async function reachCommand(labName: string, options: { json?: boolean; timeout?: string }, io: Io): Promise<number> {
	requireRoot("reach");
	const ledger = requireLedger(labName);
	const matrix = await reachMatrix(ledger.resolved, { timeoutMs: options.timeout ? Number(options.timeout) : undefined });
	if (options.json) io.json(matrix);
	else io.out(renderReachText(matrix, io.color));
	return 0;
}
