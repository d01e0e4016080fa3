// `testbed graph FILE|LAB [-o out.svg|out.dot|out.mmd]`: a picture of the lab.
import { existsSync, writeFileSync } from "node:fs";
import { requireLedger } from "../../apply/ledger.ts";
import { loadLab } from "../../load.ts";
import { renderGraph, type GraphFormat } from "../../report/render-svg.ts";
import type { Lab } from "../../resolve/lab.ts";
import { MissingFeatureError, UsageError } from "../../errors.ts";
import { run } from "../../apply/run.ts";
import { which } from "../../apply/which.ts";
import type { Io } from "../io.ts";

export async function graphCommand(target: string, options: { o?: string; format?: string }, io: Io): Promise<number> {
	// A file path is a topology file; anything else is a running lab (from its ledger).
	const lab: Lab = /\.ya?ml$/.test(target) || existsSync(target) ? loadLab(target) : requireLedger(target).resolved;
	const format = options.o ? graphFormat(options.o) : graphFormat(`stdout.${options.format ?? "dot"}`);
	if (format === "png") {
		if (!options.o) throw new UsageError("PNG goes to a file: -o lab.png");
		// Graphviz in WebAssembly draws SVG; rsvg-convert (librsvg) rasterises it.
		if (!which("rsvg-convert")) throw new MissingFeatureError("writing PNG needs rsvg-convert, which this host lacks (SVG needs nothing)", "rsvg-convert", "apt-get install -y librsvg2-bin, or write -o lab.svg");
		const svg = await renderGraph(lab, "svg");
		const result = await run(["rsvg-convert", "--format", "png", "--output", options.o], { input: svg });
		if (result.exitCode !== 0) throw new MissingFeatureError(`rsvg-convert failed: ${result.stderr}`, "rsvg-convert");
		io.err(`wrote ${options.o}`);
		return 0;
	}
	const text = await renderGraph(lab, format);
	if (options.o) {
		writeFileSync(options.o, text);
		io.err(`wrote ${options.o}`);
	} else io.out(text);
	return 0;
}

/**
 * The format for `-o FILE`, from its extension: .svg, .dot/.gv, .mmd/.mermaid, .png. The in-process
 * Graphviz (WebAssembly) draws SVG; PNG is that SVG rasterised by rsvg-convert where installed.
 */
export function graphFormat(file: string): GraphFormat {
	const ext = /\.([^./\\]+)$/.exec(file)?.[1]?.toLowerCase() ?? "";
	if (ext === "svg") return "svg";
	if (ext === "dot" || ext === "gv") return "dot";
	if (ext === "mmd" || ext === "mermaid") return "mmd";
	if (ext === "png") return "png";
	if (ext === "jpg" || ext === "jpeg") throw new UsageError(`cannot write ${file}: testbed writes SVG or PNG pictures; name it ${file.replace(/\.[^.]+$/, ".png")} or .svg`);
	throw new UsageError(`cannot tell the format of ${file}: name it .svg, .png, .dot (Graphviz) or .mmd (Mermaid)`);
}
