// Tear a lab down from its ledger, with or without the topology file. A lab is its owner's: another
// user's lab is taken down only with `force`.
import { LabStateError } from "../errors.ts";
import { currentUser, listLedgers, ownedByOther, ownerOf, readLedger, removeLedger, requireLedger, writeLedger, type Ledger } from "./ledger.ts";
import { lockLab } from "./lock.ts";
import { requireRoot } from "./preflight.ts";
import { teardownLedger, type TeardownResult } from "./teardown.ts";

export interface DownResult extends TeardownResult {
	lab: string;
	/** Who had brought it up ("unknown" for ledgers from before owners were kept). */
	owner: string;
}

export interface DownOptions {
	lockWaitMs?: number;
	/** Take the lab down also when another user brought it up. */
	force?: boolean;
}

/** Another user's lab, and not `force`: refused with the owner's name. */
function refuseOthers(ledger: Ledger, force?: boolean): void {
	if (force || !ownedByOther(ledger)) return;
	throw new LabStateError(
		`lab "${ledger.lab}" is not yours: ${ownerOf(ledger)} brought it up at ${ledger.createdAt} (you are ${currentUser()}); leave it to them, or take it down anyway with \`testbed down ${ledger.lab} --force\``,
		"LAB_OWNED",
	);
}

export async function downLab(name: string, options: DownOptions = {}): Promise<DownResult> {
	requireRoot("down");
	const lock = await lockLab(name, options.lockWaitMs);
	try {
		const ledger = requireLedger(name);
		refuseOthers(ledger, options.force);
		ledger.state = "removing";
		ledger.pid = process.pid;
		writeLedger(ledger);
		const result = await teardownLedger(ledger);
		removeLedger(name);
		return { lab: name, owner: ownerOf(ledger), ...result };
	} finally {
		lock.release();
	}
}

export interface DownAllResult {
	/** The labs taken down. */
	removed: DownResult[];
	/** Other users' labs, left up (without `force`). */
	leftAlone: { lab: string; owner: string }[];
}

/**
 * Every lab the caller brought up (every lab at all with `force`), and nothing else; a lab that
 * cannot be removed does not stop the others. A lab whose owner is not recorded is left alone too.
 */
export async function downAll(options: { force?: boolean } = {}): Promise<DownAllResult> {
	requireRoot("down --all");
	const removed: DownResult[] = [];
	const leftAlone: DownAllResult["leftAlone"] = [];
	const failures: string[] = [];
	for (const name of listLedgers()) {
		try {
			const ledger = readLedger(name);
			// Not known to be the caller's (another user's, or from before owners were kept): left alone.
			if (ledger && !options.force && ledger.owner !== currentUser()) {
				leftAlone.push({ lab: name, owner: ownerOf(ledger) });
				continue;
			}
			removed.push(await downLab(name, { force: options.force }));
		} catch (error) {
			// LAB_NOT_FOUND: another testbed process took it down between listing and locking. LAB_OWNED: replaced by another user's meanwhile.
			const code = (error as LabStateError).code;
			if (code === "LAB_OWNED") leftAlone.push({ lab: name, owner: ownerOf(readLedger(name)!) });
			else if (code !== "LAB_NOT_FOUND") failures.push(`${name}: ${(error as Error).message}`);
		}
	}
	if (failures.length > 0) throw new LabStateError(`${removed.length} labs removed; ${failures.length} could not be:\n  ${failures.join("\n  ")}`, "DOWN_INCOMPLETE");
	return { removed, leftAlone };
}
