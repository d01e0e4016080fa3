// Facts about network namespaces read from the file system: existence, identity, processes inside.
import { readdirSync, readlinkSync, statSync } from "node:fs";
import { netnsPath } from "./state-files.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The inode of a named namespace, or null when it does not exist. */
export function netnsInode(name: string): number | null {
	try {
		return statSync(netnsPath(name)).ino;
	} catch {
		return null;
	}
}

/**
 * Which namespace a name holds now: its nsfs inode number and when that inode was made (ns since
 * the epoch, as text). The number alone is not enough: the kernel hands a freed namespace's number
 * to the next one at once, so a namespace deleted and made again under the same name has the same
 * inode number, and only the time tells them apart.
 */
export interface NetnsIdentity {
	inode: number;
	born: string;
}

export function netnsIdentity(name: string): NetnsIdentity | null {
	try {
		const stat = statSync(netnsPath(name), { bigint: true });
		return { inode: Number(stat.ino), born: String(stat.ctimeNs) };
	} catch {
		return null;
	}
}

/** Whether the namespace a name holds now is the one recorded (a record without `born`, from an older ledger, by inode alone). */
export function sameNamespace(recorded: { inode: number | null; born?: string }, now: NetnsIdentity | null): boolean {
	return now !== null && recorded.inode === now.inode && (recorded.born === undefined || recorded.born === now.born);
}

export function listNamespaces(): string[] {
	try {
		return readdirSync("/run/netns").sort();
	} catch {
		return [];
	}
}

/** Pids whose network namespace is one of `inodes` (scans /proc; no process started). */
export function pidsInNamespaces(inodes: Set<number>): number[] {
	const pids: number[] = [];
	if (inodes.size === 0) return pids;
	for (const entry of readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		const pid = Number(entry);
		if (pid === process.pid) continue;
		try {
			const match = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/ns/net`));
			if (match && inodes.has(Number(match[1]))) pids.push(pid);
		} catch {}
	}
	return pids;
}

/** SIGTERM the processes inside the namespaces, SIGKILL what is left after `graceMs`. */
export async function killProcessesIn(inodes: Set<number>, graceMs = 300): Promise<number> {
	let pids = pidsInNamespaces(inodes);
	const count = pids.length;
	for (const pid of pids) signal(pid, "SIGTERM");
	const deadline = Date.now() + graceMs;
	while (pids.length > 0 && Date.now() < deadline) {
		await sleep(20);
		pids = pidsInNamespaces(inodes);
	}
	for (const pid of pids) signal(pid, "SIGKILL");
	return count;
}

function signal(pid: number, name: NodeJS.Signals): void {
	try {
		process.kill(pid, name);
	} catch {}
}
