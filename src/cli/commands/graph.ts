// `testbed graph FILE|LAB [-o out.svg|out.dot|out.mmd]`: a picture of the lab.
import { existsSync, writeFileSync } from "node:fs";
import { requireLedger } from "../../apply/ledger.ts";
import { loadLab } from "../../load.ts";
import { graphFormat } from "../../report/graph.ts";
import { renderGraph } from "../../report/render-svg.ts";
import type { Lab } from "../../resolve/lab.ts";
import type { Io } from "../io.ts";

export async function graphCommand(target: string, options: { o?: string; format?: string }, io: Io): Promise<number> {
	// A file path is a topology file; anything else is a running lab (from its ledger).
	const lab: Lab = /\.ya?ml$/.test(target) || existsSync(target) ? loadLab(target) : requireLedger(target).resolved;
	const format = options.o ? graphFormat(options.o) : graphFormat(`stdout.${options.format ?? "dot"}`);
	const text = await renderGraph(lab, format);
	if (options.o) {
		writeFileSync(options.o, text);
		io.err(`wrote ${options.o}`);
	} else io.out(text);
	return 0;
}
