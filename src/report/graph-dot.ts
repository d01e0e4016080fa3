// The lab as a Graphviz DOT graph (render-svg.ts draws it as SVG): undirected, public side on top,
// each NAT's inside as a cluster below it, links labelled with both ends and their impairments.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { type GraphRegion, type GraphNode, labGraph, wrap, endText } from "./graph-model.ts";
import { font, style, regionStyle } from "./graph-style.ts";

const dotShape: Record<LabNode["kind"], string> = { host: "box", router: "ellipse", nat: "hexagon", switch: "parallelogram" };

function q(text: string): string {
	return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** A label whose lines are left-justified (Graphviz's `\l`), so a link's lines line up beside it. */
class LeftLines {
	constructor(readonly lines: string[]) {}
}
function leftLines(lines: string[]): LeftLines {
	return new LeftLines(lines);
}

function attrs(values: Record<string, string | number | LeftLines | undefined>): string {
	const text = (value: string | number | LeftLines) => {
		if (typeof value === "number") return String(value);
		if (typeof value === "string") return q(value);
		return `"${value.lines.map((line) => `${q(line).slice(1, -1)}\\l`).join("")}"`;
	};
	return `[${Object.entries(values)
		.flatMap(([key, value]) => (value === undefined ? [] : [`${key}=${text(value)}`]))
		.join(", ")}]`;
}

/** The lab as a Graphviz DOT graph (undirected, top to bottom: public side on top). */
export function renderDot(lab: Lab): string {
	const graph = labGraph(lab);
	const out: string[] = [];
	out.push(`graph ${q(lab.name)} {`);
	out.push(`\tgraph ${attrs({ label: `lab "${lab.name}"`, labelloc: "t", fontname: font, fontsize: 16, rankdir: "TB", nodesep: 1.2, ranksep: 0.5, newrank: "true" })};`);
	out.push(`\tnode ${attrs({ fontname: font, fontsize: 12, style: "filled", margin: "0.22,0.08" })};`);
	out.push(`\tedge ${attrs({ fontname: font, fontsize: 10, color: style.edge, fontcolor: "#303030" })};`);
	const nodeLine = (node: GraphNode, indent: string) => {
		const colours = style.node[node.kind];
		out.push(`${indent}${q(node.name)} ${attrs({ label: node.lines.join("\n"), shape: dotShape[node.kind], style: node.kind === "host" ? "filled,rounded" : "filled", fillcolor: colours.fill, color: colours.stroke, penwidth: node.kind === "nat" ? 2 : 1 })};`);
	};
	const emit = (region: GraphRegion, indent: string) => {
		const colours = regionStyle(region);
		out.push(`${indent}subgraph ${q(`cluster_${region.id}`)} {`);
		out.push(`${indent}\tgraph ${attrs({ label: region.label, labeljust: "l", labelloc: "b", fontname: font, fontsize: 12, fontcolor: colours.font, style: region.id === "public" ? "filled,rounded" : "filled,rounded,dashed", fillcolor: colours.fill, color: colours.stroke, penwidth: 1.5 })};`);
		for (const name of region.nodes) nodeLine(graph.nodes.find((node) => node.name === name) as GraphNode, `${indent}\t`);
		for (const inner of graph.regions.filter((candidate) => candidate.parent === region.id)) emit(inner, `${indent}\t`);
		out.push(`${indent}}`);
	};
	for (const region of graph.regions.filter((candidate) => candidate.parent === undefined)) emit(region, "\t");
	for (const edge of graph.edges) {
		const [a, b] = edge.ends;
		const label = leftLines([endText(a), endText(b), ...wrap(edge.impairment)].filter(Boolean));
		out.push(`\t${q(a.node)} -- ${q(b.node)} ${attrs({ label, color: edge.impaired ? style.impaired : undefined, fontcolor: edge.impaired ? style.impaired : undefined, penwidth: edge.impaired ? 2 : undefined, style: edge.impaired ? "dashed" : undefined })};`);
	}
	out.push("}");
	return `${out.join("\n")}\n`;
}
