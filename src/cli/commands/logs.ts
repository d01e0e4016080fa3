// `testbed logs LAB [NODE[:PROGRAM]] [-f]`: what the lab's programs printed (each keeps its last
// 1 MiB). One program: its output as it was; several: each line after `node:program | `. Control
// characters are shown as `?` on a terminal: a program's output never drives the user's terminal.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { readLedger, requireLedger } from "../../apply/ledger.ts";
import { listPrograms } from "../../apply/programs.ts";
import { requireRoot } from "../../apply/preflight.ts";
import type { ProgramState } from "../../apply/supervisor-protocol.ts";
import { LabStateError } from "../../errors.ts";
import { requireNode } from "../../resolve/lab.ts";
import type { Io } from "../io.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function readFrom(path: string, offset: number): { text: string; size: number } {
	let size: number;
	try {
		size = statSync(path).size;
	} catch {
		return { text: "", size: 0 };
	}
	// The supervisor rewrote the log (it drops the oldest half past 1 MiB): start again.
	const from = size < offset ? 0 : offset;
	if (size === from) return { text: "", size };
	const buffer = Buffer.alloc(size - from);
	const fd = openSync(path, "r");
	try {
		readSync(fd, buffer, 0, buffer.length, from);
	} finally {
		closeSync(fd);
	}
	return { text: buffer.toString("utf8"), size };
}

export async function logsCommand(labName: string, target: string | undefined, options: { follow?: boolean }, io: Io, signal: AbortSignal): Promise<number> {
	requireRoot("logs");
	const lab = requireLedger(labName).resolved;
	const [node, name] = target ? target.split(":", 2) : [undefined, undefined];
	if (node) requireNode(lab, node);
	const matching = (programs: ProgramState[]) => programs.filter((program) => (!node || program.node === node) && (!name || program.name === name));
	const programs = listPrograms(labName);
	if (target && matching(programs).length === 0)
		throw new LabStateError(`lab "${labName}" has no program ${target}${programs.length ? `; programs: ${programs.map((program) => `${program.node}:${program.name}`).join(", ")}` : " (none ran)"}`, "PROGRAM_NOT_FOUND");
	const terminal = io.color || Boolean(process.stdout.isTTY);
	const clean = (text: string) => (terminal ? text.replace(/[\x00-\x08\x0b-\x1f\x7f\x9b]/g, "?") : text);
	const offsets = new Map<string, number>();
	const partial = new Map<string, string>();
	const show = (list: ProgramState[], final: boolean) => {
		const several = !name && (list.length > 1 || !node);
		for (const program of list) {
			const { text, size } = readFrom(program.log, offsets.get(program.log) ?? 0);
			offsets.set(program.log, size);
			if (!several) {
				if (text) io.out(clean(text).replace(/\n$/, ""));
				continue;
			}
			const lines = ((partial.get(program.log) ?? "") + text).split("\n");
			partial.set(program.log, final ? "" : (lines.pop() ?? ""));
			for (const line of final ? lines.filter((line, index) => line !== "" || index < lines.length - 1) : lines) io.out(`${program.node}:${program.name} | ${clean(line)}`);
		}
	};
	show(matching(programs), !options.follow);
	if (!options.follow) {
		if (programs.length === 0) io.err(`lab "${labName}" runs no programs`);
		return 0;
	}
	while (!signal.aborted && readLedger(labName)) {
		await sleep(200);
		show(matching(listPrograms(labName)), false);
	}
	return 0;
}
