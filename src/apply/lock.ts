// One `up` or `down` per lab at a time: an exclusive lock file holding the owner's pid.
import { openSync, closeSync, readFileSync, rmSync, writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { LabStateError } from "../errors.ts";
import { ensureRunDir } from "./ledger.ts";
import { lockPath } from "./paths.ts";

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
		try {
			const fd = openSync(path, "wx", 0o600);
			writeSync(fd, String(process.pid));
			closeSync(fd);
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
		}
		const owner = ownerOf(path);
		if (owner === undefined || !processAlive(owner)) {
			rmSync(path, { force: true }); // stale: its owner died
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
