// `testbed reach LAB`: all-pairs UDP reachability.
import { reachMatrix, type ReachProto } from "../../drivers/reach.ts";
import { UsageError } from "../../errors.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { requireLedger } from "../../apply/ledger.ts";
import { renderReachText } from "../../report/reach-text.ts";
import { addressFamilyOf } from "../../vocabulary/family.ts";
import type { Io } from "../io.ts";

export async function reachCommand(labName: string, options: { json?: boolean; timeout?: string; proto?: string; family?: string }, io: Io): Promise<number> {
	if (options.proto && !["udp", "tcp", "icmp"].includes(options.proto)) throw new UsageError(`--proto must be udp, tcp or icmp, not "${options.proto}"`);
	const family = options.family === undefined ? 4 : addressFamilyOf(options.family);
	if (!family) throw new UsageError(`--family takes 4 or 6, not "${options.family}"`);
	requireRoot("reach");
	const ledger = requireLedger(labName);
	const matrix = await reachMatrix(ledger.resolved, { timeoutMs: options.timeout ? Number(options.timeout) : undefined, proto: (options.proto ?? "udp") as ReachProto, family });
	if (options.json) io.json(matrix);
	else io.out(renderReachText(matrix, io.color));
	return 0;
}
