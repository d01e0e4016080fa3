// A lab's journal: one JSON line for each thing that happens to it while it is up — a punch started,
// a punch ended, a held session lost or back, an event applied — appended by whoever did it (any process: `testbed punch` in one
// terminal, `testbed event` in another, the library) and tailed by `testbed watch`. It lives in the
// lab's state dir, so `down` removes it; writing never creates that dir and never fails the caller.
import { appendFileSync, closeSync, openSync, readSync, renameSync, statSync } from "node:fs";
import type { PunchOutcome } from "../vocabulary/punch.ts";
import { journalPath } from "./state-files.ts";

export type JournalEntry =
	| { kind: "punch-started"; at: number; a: string; b: string; run: number }
	| { kind: "punch-ended"; at: number; a: string; b: string; run: number; outcome: PunchOutcome; timeToConnectMs: number | null; rttMs: number | null; error?: string }
	| { kind: "event"; at: number; event: string; label: string }
	/** A held session (`punch --hold`, a file's steps): connected, lost, reconnected, rebound… (`side`: whose). */
	| { kind: "held"; at: number; a: string; b: string; what: string; side?: string; path?: PunchOutcome; detail?: string };

/** Past this size the journal starts again (the old one kept as journal.1.jsonl): a soak of punches cannot fill /run. */
const rotateBytes = 1024 * 1024;

/** Append one line to a lab's journal, stamped now; quietly nothing when the lab is not up (no state dir). */
export function appendJournal(lab: string, entry: DistributiveOmit<JournalEntry, "at">): void {
	try {
		const path = journalPath(lab);
		try {
			if (statSync(path).size > rotateBytes) renameSync(path, path.replace(/\.jsonl$/, ".1.jsonl"));
		} catch {}
		appendFileSync(path, `${JSON.stringify({ ...entry, at: Date.now() })}\n`, { mode: 0o600 });
	} catch {
		// the lab is not up (a library lab taken down meanwhile, a name without a state dir): no journal
	}
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

const kinds = new Set<string>(["punch-started", "punch-ended", "event", "held"]);

/** Tails a journal: each read() returns the complete lines appended since the last one. */
export class JournalReader {
	private offset = 0;
	private inode = 0;
	private pending = "";

	constructor(readonly path: string) {}

	read(): JournalEntry[] {
		let size: number;
		let inode: number;
		try {
			({ size, ino: inode } = statSync(this.path));
		} catch {
			return [];
		}
		// A new file (rotated, or the lab brought up again): read it from its start.
		if (inode !== this.inode || size < this.offset) [this.offset, this.inode, this.pending] = [0, inode, ""];
		if (size === this.offset) return [];
		const fd = openSync(this.path, "r");
		let text: string;
		try {
			const buffer = Buffer.alloc(size - this.offset);
			const read = readSync(fd, buffer, 0, buffer.length, this.offset);
			this.offset += read;
			text = this.pending + buffer.subarray(0, read).toString("utf8");
		} finally {
			closeSync(fd);
		}
		const lines = text.split("\n");
		this.pending = lines.pop() ?? "";
		return lines.flatMap((line) => parseEntry(line));
	}
}

function parseEntry(line: string): JournalEntry[] {
	try {
		const entry = JSON.parse(line) as JournalEntry;
		return entry && typeof entry === "object" && kinds.has(entry.kind) && typeof entry.at === "number" ? [entry] : [];
	} catch {
		return [];
	}
}
