// One `up` or `down` per lab at a time: an exclusive lock file holding the owner's pid.
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { LabStateError } from "../errors.ts";
import { ensureRunDir } from "./ledger.ts";
import { lockPath } from "./state-files.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Lock {
	release(): void;
}

export function processAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === "EPERM";
	}
}

/** Take the lab's lock, waiting up to `waitMs` for another testbed process; a dead owner's lock is taken over. */
export async function lockLab(lab: string, waitMs = 15_000): Promise<Lock> {
	ensureRunDir();
	const path = lockPath(lab);
	const deadline = Date.now() + waitMs;
	for (;;) {
		// Write the pid to a private file, then link it into place: the lock never exists without its owner.
		const mine = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
		writeFileSync(mine, String(process.pid), { mode: 0o600 });
		try {
			linkSync(mine, path);
			let released = false;
			return {
				release() {
					if (released) return;
					released = true;
					if (ownerOf(path) === process.pid) rmSync(path, { force: true });
				},
			};
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
		} finally {
			rmSync(mine, { force: true });
		}
		const owner = ownerOf(path);
		if (owner === undefined || !processAlive(owner)) {
			// Stale: its owner died. Move it aside atomically; only one taker wins the rename.
			const aside = `${path}.stale.${process.pid}`;
			try {
				renameSync(path, aside);
				if (ownerOf(aside) !== owner) renameSync(aside, path); // someone took it over meanwhile: put it back
				else rmSync(aside, { force: true });
			} catch {}
			continue;
		}
		if (Date.now() >= deadline)
			throw new LabStateError(`lab "${lab}" is busy: testbed process ${owner} is bringing it up or down (lock ${path})`, "LAB_BUSY");
		await sleep(50);
	}
}

function ownerOf(path: string): number | undefined {
	try {
		const pid = Number(readFileSync(path, "utf8").trim());
		return Number.isInteger(pid) && pid > 0 ? pid : undefined;
	} catch {
		return undefined;
	}
}
