// `testbed down LAB|FILE` and `testbed down --all`.
import { existsSync, readFileSync } from "node:fs";
import { downAll, downLab, type DownAllResult } from "../../apply/down.ts";
import { currentUser } from "../../apply/ledger.ts";
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

export async function downCommand(target: string | undefined, options: { json?: boolean; all?: boolean; force?: boolean }, io: Io): Promise<number> {
	const all: DownAllResult = options.all ? await downAll({ force: options.force }) : { removed: [await downLab(await labNameOf(target!), { force: options.force })], leftAlone: [] };
	if (options.json) io.json(options.all ? all : all.removed[0]);
	else if (all.removed.length === 0 && all.leftAlone.length === 0) io.out("no labs were up");
	else if (all.removed.length === 0) io.out(`no lab of yours (${currentUser()}) was up`);
	for (const result of options.json ? [] : all.removed) {
		const whose = result.owner !== currentUser() && result.owner !== "unknown" ? ` (${result.owner}'s)` : "";
		io.out(`lab "${result.lab}"${whose} is down: ${result.namespaces.length} namespaces removed${result.processes ? `, ${result.processes} processes stopped` : ""}${result.missing.length ? ` (${result.missing.length} were already gone)` : ""}`);
		if (result.foreign.length) io.err(`left alone, not created by testbed: ${result.foreign.join(", ")}`);
	}
	if (!options.json) for (const other of all.leftAlone) io.out(`left alone: lab ${other.lab} of user ${other.owner}; --force takes it down too`);
	return 0;
}
