// The lab as a Mermaid flowchart, for docs and issues (GitHub renders it): the same sides, nodes and
// links as the DOT picture.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { type GraphRegion, type GraphNode, labGraph, endText } from "./graph-model.ts";
import { font, style, regionStyle } from "./graph-style.ts";

function mermaidText(lines: string[]): string {
	const escaped = lines.map((line) => line.replace(/&/g, "#amp;").replace(/"/g, "#quot;").replace(/</g, "#lt;").replace(/>/g, "#gt;"));
	return `"${escaped.join("<br/>")}"`;
}

function mermaidId(prefix: string, name: string): string {
	return `${prefix}_${name.replace(/[^A-Za-z0-9_]/g, (char) => `_${char.charCodeAt(0).toString(16)}_`)}`;
}

function mermaidRegionId(region: GraphRegion): string {
	return mermaidId("g", region.id.replace(":", "_"));
}

const mermaidShape: Record<LabNode["kind"], [string, string]> = { host: ["(", ")"], router: ["([", "])"], nat: ["{{", "}}"], switch: ["[/", "/]"] };

/** The lab as a Mermaid flowchart (for Markdown docs): the same sides, shapes and labels as the DOT. */
export function renderMermaid(lab: Lab): string {
	const graph = labGraph(lab);
	const out: string[] = [`---`, `title: lab "${lab.name.replace(/"/g, "'")}"`, `---`, "flowchart TB"];
	const emit = (region: GraphRegion, indent: string) => {
		out.push(`${indent}subgraph ${mermaidRegionId(region)}[${mermaidText([region.label])}]`);
		for (const name of region.nodes) {
			const node = graph.nodes.find((candidate) => candidate.name === name) as GraphNode;
			const [open, close] = mermaidShape[node.kind];
			out.push(`${indent}\t${mermaidId("n", node.name)}${open}${mermaidText(node.lines)}${close}`);
		}
		for (const inner of graph.regions.filter((candidate) => candidate.parent === region.id)) emit(inner, `${indent}\t`);
		out.push(`${indent}end`);
	};
	for (const region of graph.regions.filter((candidate) => candidate.parent === undefined)) emit(region, "\t");
	graph.edges.forEach((edge) => {
		const [a, b] = edge.ends;
		const label = [endText(a), endText(b), edge.impairment].filter(Boolean);
		out.push(`\t${mermaidId("n", a.node)} ---|${mermaidText(label)}| ${mermaidId("n", b.node)}`);
	});
	for (const kind of ["host", "router", "nat", "switch"] as const) {
		const members = graph.nodes.filter((node) => node.kind === kind).map((node) => mermaidId("n", node.name));
		if (members.length === 0) continue;
		out.push(`\tclassDef ${kind} fill:${style.node[kind].fill},stroke:${style.node[kind].stroke}${kind === "nat" ? ",stroke-width:2px" : ""}`);
		out.push(`\tclass ${members.join(",")} ${kind}`);
	}
	for (const region of graph.regions) {
		const colours = regionStyle(region);
		out.push(`\tstyle ${mermaidRegionId(region)} fill:${colours.fill},stroke:${colours.stroke},color:${colours.font}${region.id === "public" ? "" : ",stroke-dasharray:5 3"}`);
	}
	const impaired = graph.edges.flatMap((edge, index) => (edge.impaired ? [index] : []));
	if (impaired.length > 0) out.push(`\tlinkStyle ${impaired.join(",")} stroke:${style.impaired},stroke-width:2px,stroke-dasharray:5 3,color:${style.impaired}`);
	return `${out.join("\n")}\n`;
}
