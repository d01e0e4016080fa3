// `testbed ls`: the labs on this host and whether their namespaces are really there.
import { readLedger, listLedgers, ownerOf, type LabState } from "./ledger.ts";
import { processAlive } from "./lock.ts";
import { netnsInode } from "./namespaces.ts";

export interface LabStatus {
	lab: string;
	/** up; creating/removing while a testbed process works on it; crashed when that process died; damaged; partial when namespaces vanished. */
	state: LabState | "crashed" | "partial" | "damaged";
	file: string;
	/** Who brought it up ("unknown" for ledgers from before owners were kept, "" when damaged). */
	owner: string;
	createdAt: string;
	nodes: number;
	namespaces: { present: number; expected: number };
	error?: string;
}

export function labStatuses(): LabStatus[] {
	return listLedgers().map((lab) => {
		try {
			const ledger = readLedger(lab)!;
			const present = ledger.namespaces.filter((entry) => netnsInode(entry.name) !== null).length;
			let state: LabStatus["state"] = ledger.state;
			if (state !== "up" && !processAlive(ledger.pid)) state = "crashed";
			else if (state === "up" && present < ledger.namespaces.length) state = "partial";
			return { lab, state, file: ledger.file, owner: ownerOf(ledger), createdAt: ledger.createdAt, nodes: ledger.resolved.nodes.length, namespaces: { present, expected: ledger.namespaces.length } };
		} catch (error) {
			return { lab, state: "damaged", file: "", owner: "", createdAt: "", nodes: 0, namespaces: { present: 0, expected: 0 }, error: (error as Error).message };
		}
	});
}
