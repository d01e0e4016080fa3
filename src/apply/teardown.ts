// Removing what a ledger says a lab owns — and nothing else.
import { rmSync, statSync } from "node:fs";
import { LabStateError } from "../errors.ts";
import type { Ledger, LedgerNamespace } from "./ledger.ts";
import { killProcessesIn, netnsIdentity, netnsInode, sameNamespace } from "./namespaces.ts";
import { netnsPath, stateDir } from "./state-files.ts";
import { run } from "./run.ts";
import { unmountLab } from "./node-env.ts";
import { removeCgroups } from "./cgroups.ts";
import { stopSupervisor } from "./programs.ts";

export interface TeardownResult {
	namespaces: string[];
	/** Listed in the ledger but already gone. */
	missing: string[];
	/** Listed, but the namespace there now is not the one testbed made: left alone. */
	foreign: string[];
	processes: number;
}

/** Namespaces of the ledger that are still testbed's own: same inode, or created but not yet recorded. */
/** A namespace whose inode was never recorded is testbed's only if it appeared after the ledger was written. */
function createdSince(name: string, since: number | undefined): boolean {
	if (since === undefined) return true;
	try {
		return statSync(netnsPath(name)).ctimeMs >= since - 1000;
	} catch {
		return false;
	}
}

function owned(entries: LedgerNamespace[], since?: number): { ours: LedgerNamespace[]; missing: string[]; foreign: string[] } {
	const ours: LedgerNamespace[] = [];
	const missing: string[] = [];
	const foreign: string[] = [];
	for (const entry of entries) {
		const identity = netnsIdentity(entry.name);
		if (identity === null) missing.push(entry.name);
		else if (sameNamespace(entry, identity) || (entry.inode === null && createdSince(entry.name, since))) ours.push({ ...entry, inode: identity.inode });
		else foreign.push(entry.name);
	}
	return { ours, missing, foreign };
}

/**
 * Stop processes inside, delete the namespaces (veths, bridges and rules go with them). `beforeDelete`
 * runs once the processes are gone (the lab's mounts are undone there).
 */
export async function removeNamespaces(entries: LedgerNamespace[], since?: number, beforeDelete?: () => Promise<unknown> | void): Promise<TeardownResult> {
	const { ours, missing, foreign } = owned(entries, since);
	const processes = await killProcessesIn(new Set(ours.map((entry) => entry.inode!)));
	await beforeDelete?.();
	if (ours.length > 0) {
		const input = ours.map((entry) => `netns del ${entry.name}`).join("\n") + "\n";
		const result = await run(["ip", "-force", "-batch", "-"], { input });
		const left = result.exitCode === 0 ? [] : ours.filter((entry) => netnsInode(entry.name) !== null);
		if (left.length > 0)
			throw new LabStateError(`could not delete namespaces ${left.map((entry) => entry.name).join(", ")}: ${result.stderr}; remove them with \`ip netns del NAME\` and run \`testbed down\` again`, "TEARDOWN_FAILED");
	}
	return { namespaces: ours.map((entry) => entry.name), missing, foreign, processes };
}

export async function teardownLedger(ledger: Ledger): Promise<TeardownResult> {
	let cgroupsLeft: string[] = [];
	// Programs first, through their supervisor (SIGTERM, then SIGKILL); then whatever else runs in
	// the lab's namespaces. Once nothing runs in the lab: its nodes' namespace mounts, then its state files (rules as
	// loaded, names, logs), then the network namespaces — whose clean-up the kernel goes on with
	// after \`ip\` returns.
	if (ledger.supervisor) await stopSupervisor(ledger);
	const result = await removeNamespaces(ledger.namespaces, Date.parse(ledger.createdAt), async () => {
		// Whatever still runs in a node's cgroups (it left the node's network namespace) is killed with them.
		if (ledger.cgroups) cgroupsLeft = await removeCgroups(ledger.cgroups);
		await unmountLab(ledger.lab);
		rmSync(stateDir(ledger.lab), { recursive: true, force: true });
	});
	if (cgroupsLeft.length > 0) throw new LabStateError(`could not remove cgroups ${cgroupsLeft.join(", ")}: processes are still in them; kill them (\`cat DIR/cgroup.procs\`), \`rmdir\` the directories and run \`testbed down ${ledger.lab}\` again`, "TEARDOWN_FAILED");
	return result;
}
