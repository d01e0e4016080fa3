// Tear a lab down from its ledger, with or without the topology file.
import { LabStateError } from "../errors.ts";
import { listLedgers, removeLedger, requireLedger, writeLedger } from "./ledger.ts";
import { lockLab } from "./lock.ts";
import { requireRoot } from "./preflight.ts";
import { teardownLedger, type TeardownResult } from "./teardown.ts";

export interface DownResult extends TeardownResult {
	lab: string;
}

export async function downLab(name: string, options: { lockWaitMs?: number } = {}): Promise<DownResult> {
	requireRoot("down");
	const lock = await lockLab(name, options.lockWaitMs);
	try {
		const ledger = requireLedger(name);
		ledger.state = "removing";
		ledger.pid = process.pid;
		writeLedger(ledger);
		const result = await teardownLedger(ledger);
		removeLedger(name);
		return { lab: name, ...result };
	} finally {
		lock.release();
	}
}

/** Every lab in the ledger, and nothing else; a lab that cannot be removed does not stop the others. */
export async function downAll(): Promise<DownResult[]> {
	requireRoot("down --all");
	const results: DownResult[] = [];
	const failures: string[] = [];
	for (const name of listLedgers()) {
		try {
			results.push(await downLab(name));
		} catch (error) {
			// LAB_NOT_FOUND: another testbed process took it down between listing and locking.
			if ((error as LabStateError).code !== "LAB_NOT_FOUND") failures.push(`${name}: ${(error as Error).message}`);
		}
	}
	if (failures.length > 0) throw new LabStateError(`${results.length} labs removed; ${failures.length} could not be:\n  ${failures.join("\n  ")}`, "DOWN_INCOMPLETE");
	return results;
}
