// The ledger: what a lab owns, written before anything is created, so `down` can always undo `up`.
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { LabStateError } from "../errors.ts";
import type { Lab } from "../resolve/lab.ts";
import { ledgerPath, runDir } from "./state-files.ts";

export type LabState = "creating" | "up" | "removing";

export interface LedgerNamespace {
	name: string;
	node: string;
	/** Inode of /run/netns/NAME once created: with `born`, proves the namespace is the one testbed made. */
	inode: number | null;
	/** When that inode was made (ns, as text): the kernel reuses inode numbers of freed namespaces. */
	born?: string;
}

export interface Ledger {
	format: 1;
	lab: string;
	file: string;
	state: LabState;
	/** The testbed process that wrote this state. */
	pid: number;
	createdAt: string;
	/** Who brought the lab up (`currentUser()` of that `up`); absent in ledgers written before owners were kept. */
	owner?: string;
	namespaces: LedgerNamespace[];
	/** The resolved lab, so every command works without the topology file. */
	resolved: Lab;
	/** cgroup directories of the lab's limits, the deepest first (node directories, then the lab's folders). */
	cgroups?: string[];
	/** The process that supervises the lab's programs, once one was started. */
	supervisor?: { pid: number };
	/** testbed's own daemons, run by the supervisor: each NAT's port-mapping daemon, its pid and its files (gone with the lab's state folder). */
	daemons?: { node: string; program: string; pid?: number; files: string[] }[];
}

/**
 * The user a testbed command acts for: the one who ran `sudo` (SUDO_USER), else the name of this
 * process's user ("root" for root without sudo), else `uid N` for a uid with no name.
 */
export function currentUser(): string {
	const sudo = process.env.SUDO_USER?.trim();
	if (sudo) return sudo;
	try {
		return userInfo().username;
	} catch {
		return `uid ${process.getuid?.() ?? "?"}`;
	}
}

/** The user who brought the lab up, as ls and the messages show it. */
export function ownerOf(ledger: Ledger): string {
	return ledger.owner ?? "unknown";
}

/** Whether the lab is someone else's: its owner is known and is not `user`. */
export function ownedByOther(ledger: Ledger, user = currentUser()): boolean {
	return ledger.owner !== undefined && ledger.owner !== user;
}

/** Root-only: ledgers, locks and batch files are nobody else's business. */
export function ensureRunDir(): void {
	mkdirSync(runDir(), { recursive: true, mode: 0o700 });
	chmodSync(runDir(), 0o700);
}

/** Write atomically with an integrity digest; root-only. */
export function writeLedger(ledger: Ledger): void {
	ensureRunDir();
	const body = JSON.stringify(ledger, null, "\t");
	// The same text as JSON.stringify({ integrity, ledger }, null, "\t"), without serializing the
	// ledger twice (a lab of 2,000 nodes is megabytes): nested one level, each line gets one more tab.
	const text = `{\n\t"integrity": ${JSON.stringify(digest(body))},\n\t"ledger": ${body.replaceAll("\n", "\n\t")}\n}`;
	const path = ledgerPath(ledger.lab);
	writeFileSync(`${path}.tmp`, `${text}\n`, { mode: 0o600 });
	renameSync(`${path}.tmp`, path);
}

/** Read a lab's ledger; undefined when the lab does not exist. A damaged ledger is refused. */
export function readLedger(lab: string): Ledger | undefined {
	let text: string;
	try {
		text = readFileSync(ledgerPath(lab), "utf8");
	} catch {
		return undefined;
	}
	let parsed: { integrity?: string; ledger?: Ledger };
	try {
		parsed = JSON.parse(text);
	} catch {
		throw damaged(lab, "it is not valid JSON");
	}
	const ledger = parsed.ledger;
	if (!ledger || parsed.integrity !== digest(JSON.stringify(ledger, null, "\t"))) throw damaged(lab, "its integrity digest does not match (edited by hand?)");
	if (ledger.format !== 1 || ledger.lab !== lab || !Array.isArray(ledger.namespaces)) throw damaged(lab, "its contents are not a testbed ledger");
	return ledger;
}

/** The ledger of a lab that must exist; otherwise a clear error listing the labs that do. */
export function requireLedger(lab: string): Ledger {
	const ledger = readLedger(lab);
	if (ledger) return ledger;
	const labs = listLedgers();
	throw new LabStateError(`no lab named "${lab}" is up on this host; ${labs.length ? `labs: ${labs.join(", ")}` : "no labs are up"}`, "LAB_NOT_FOUND");
}

export function removeLedger(lab: string): void {
	rmSync(ledgerPath(lab), { force: true });
}

/** Names of all labs with a ledger on this host. */
export function listLedgers(): string[] {
	try {
		return readdirSync(runDir())
			.filter((name) => name.endsWith(".json") && !name.startsWith(".") && !isLegacyFeatureCache(name))
			.map((name) => name.slice(0, -".json".length))
			.sort();
	} catch {
		return [];
	}
}

/** Versions before 0.2 kept the feature cache as features.json, where a lab named "features" would keep its ledger. */
function isLegacyFeatureCache(name: string): boolean {
	if (name !== "features.json") return false;
	try {
		const parsed = JSON.parse(readFileSync(join(runDir(), name), "utf8"));
		return "key" in parsed && "report" in parsed && !("ledger" in parsed);
	} catch {
		return false;
	}
}

/** sha256 of the ledger's text; node:crypto is loaded on first use (`testbed ls` without labs never needs it). */
function digest(body: string): string {
	return process.getBuiltinModule("node:crypto").createHash("sha256").update(body).digest("hex");
}

function damaged(lab: string, why: string): LabStateError {
	return new LabStateError(`the ledger of lab "${lab}" (${ledgerPath(lab)}) is damaged: ${why}. testbed will not act on it; inspect it, then remove the lab's namespaces by hand and delete the file`, "LEDGER_DAMAGED");
}
