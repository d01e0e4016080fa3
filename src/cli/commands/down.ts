// `testbed down LAB|FILE` and `testbed down --all`.
import { existsSync, readFileSync } from "node:fs";
import { downAll, downLab, type DownResult } from "../../apply/down.ts";
import type { Io } from "../io.ts";

/** A lab name, or the `name:` of a topology file (YAML is loaded only for a file). */
export async function labNameOf(argument: string): Promise<string> {
	if (/\.ya?ml$/.test(argument) && existsSync(argument)) {
		try {
			const { parse } = await import("yaml");
			const name = (parse(readFileSync(argument, "utf8")) as { name?: unknown })?.name;
			if (typeof name === "string") return name;
		} catch {}
	}
	return argument;
}

export async function downCommand(target: string | undefined, options: { json?: boolean; all?: boolean }, io: Io): Promise<number> {
	const results: DownResult[] = options.all ? await downAll() : [await downLab(await labNameOf(target!))];
	if (options.json) io.json(options.all ? results : results[0]);
	else if (results.length === 0) io.out("no labs were up");
	else
		for (const result of results) {
			io.out(`lab "${result.lab}" is down: ${result.namespaces.length} namespaces removed${result.processes ? `, ${result.processes} processes stopped` : ""}${result.missing.length ? ` (${result.missing.length} were already gone)` : ""}`);
			if (result.foreign.length) io.err(`left alone, not created by testbed: ${result.foreign.join(", ")}`);
		}
	return 0;
}
