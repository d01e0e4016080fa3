// The output of a lab's programs: one capped log file per program in the lab's state folder (the
// supervisor writes it), and its last lines for messages and reports.
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { stateDir } from "./state-files.ts";

/** How much output a program keeps: past this, the oldest half goes. */
export const logCap = 1024 * 1024;
export const logPath = (lab: string, node: string, name: string) => join(stateDir(lab), "logs", node, `${name}.log`);

/** The last lines of a log (at most `count`, each cut at 500 characters). */
export function logTail(path: string, count = 20): string[] {
	try {
		const fd = openSync(path, "r");
		try {
			const size = fstatSync(fd).size;
			const length = Math.min(size, 16 * 1024);
			const buffer = Buffer.alloc(length);
			readSync(fd, buffer, 0, length, size - length);
			const lines = buffer.toString("utf8").split("\n");
			if (lines.at(-1) === "") lines.pop();
			return lines.slice(-count).map((line) => (line.length > 500 ? `${line.slice(0, 500)}…` : line));
		} finally {
			closeSync(fd);
		}
	} catch {
		return [];
	}
}

/** A log file that never grows past `logCap`: the oldest half is dropped, and says so. */
export class CappedLog {
	private fd: number;
	private size: number;

	constructor(readonly path: string) {
		mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
		this.fd = openSync(path, "a", 0o600);
		this.size = fstatSync(this.fd).size;
	}

	write(chunk: Buffer): void {
		writeSync(this.fd, chunk);
		this.size += chunk.length;
		if (this.size <= logCap) return;
		const keep = Math.floor(logCap / 2);
		const tail = Buffer.alloc(keep);
		const fd = openSync(this.path, "r");
		readSync(fd, tail, 0, keep, this.size - keep);
		closeSync(fd);
		const note = Buffer.from(`[testbed: earlier output dropped; a program's log keeps its last ${keep} bytes]\n`);
		ftruncateSync(this.fd, 0);
		writeSync(this.fd, note, 0, note.length, 0);
		writeSync(this.fd, tail, 0, tail.length, note.length);
		this.size = note.length + tail.length;
	}

	close(): void {
		try {
			closeSync(this.fd);
		} catch {}
	}
}
