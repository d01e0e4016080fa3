// DOT → SVG in-process, with Graphviz compiled to WebAssembly (@viz-js/viz): no system binary, no
// network, no native addon. The module (≈1.2 MB, the WebAssembly inlined) is loaded on first use only,
// so commands that draw nothing never pay for it.
import { TestbedError } from "../errors.ts";
import type { Lab } from "../resolve/lab.ts";
import { renderDot } from "./graph-dot.ts";
import { renderMermaid } from "./graph-mermaid.ts";

/** The pictures testbed writes: SVG (and PNG from it), DOT, Mermaid. */
export type GraphFormat = "svg" | "dot" | "mmd" | "png";

type Viz = Awaited<ReturnType<typeof import("@viz-js/viz").instance>>;
let viz: Promise<Viz> | undefined;

function graphviz(): Promise<Viz> {
	viz ??= import("@viz-js/viz").then((module) => module.instance());
	return viz;
}

/** Lay out a DOT graph with Graphviz's `dot` engine and return the SVG document. */
export async function renderSvg(dot: string): Promise<string> {
	const result = (await graphviz()).render(dot, { format: "svg", engine: "dot" });
	if (result.status !== "success") {
		const messages = result.errors.filter((error) => error.level !== "warning").map((error) => error.message.trim());
		throw new TestbedError(`Graphviz could not draw the graph: ${messages.join("; ") || "unknown error"}`, "GRAPH_RENDER");
	}
	return result.output;
}

/** The lab in one of the graph formats: SVG (laid out here), DOT or Mermaid text. */
export async function renderGraph(lab: Lab, format: Exclude<GraphFormat, "png">): Promise<string> {
	if (format === "svg") return renderSvg(renderDot(lab));
	return format === "dot" ? renderDot(lab) : renderMermaid(lab);
}
