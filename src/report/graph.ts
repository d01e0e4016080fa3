// A picture of a lab, as text: Graphviz DOT (rendered to SVG by render-svg.ts) and Mermaid (for docs).
// Pure and deterministic: the same lab gives the same text, in the file's order.
//
// What the picture shows:
// - the public side as one blue cluster; everything behind a NAT as an orange cluster named after
//   that NAT, nested when NATs chain (a home NAT behind a carrier NAT);
// - a NAT sits on the side of its outside interface, so each orange cluster hangs below its NAT;
// - shapes by kind: host box, router ellipse, NAT hexagon (with its type), switch parallelogram;
// - on every link, each end's interface and addresses (the end nearer the public side first),
//   and its impairments and MTU, with impaired links drawn in red.
import { UsageError } from "../errors.ts";
import type { Lab, LabLink, LabNode } from "../resolve/lab.ts";
import { describeImpairment } from "../validate/units.ts";

/** A side of the lab: the public one, or the inside of one NAT. */
export interface GraphRegion {
	/** "public", or the NAT's name prefixed "behind:". */
	id: string;
	/** The NAT whose inside this is; absent for the public side. */
	nat?: string;
	label: string;
	/** The region this one is nested in (a NAT behind a NAT); absent at the top level. */
	parent?: string;
	/** 0 for the public side and for the inside of a NAT on the public side, +1 per NAT nested. */
	depth: number;
	/** Node names placed directly in this region, in file order. */
	nodes: string[];
}

export interface GraphNode {
	name: string;
	kind: LabNode["kind"];
	/** Lines of the label: name, kind (NATs with their type), addresses on dummy interfaces. */
	lines: string[];
	region: string;
}

export interface GraphEdge {
	/** The end nearer the public side (drawn above), then the other one. */
	ends: [GraphEnd, GraphEnd];
	/** "delay 20ms jitter 2ms loss 1% rate 10mbit", "mtu 1400", or "" */
	impairment: string;
	impaired: boolean;
}

export interface GraphEnd {
	node: string;
	iface: string;
	/** CIDRs on that interface, e.g. ["192.168.1.2/24"]. */
	addresses: string[];
}

export interface LabGraph {
	name: string;
	regions: GraphRegion[];
	nodes: GraphNode[];
	edges: GraphEdge[];
}

const kindRank: Record<LabNode["kind"], number> = { router: 0, nat: 1, switch: 2, host: 3 };

/** The lab as regions, nodes and edges: what both renderers draw. */
export function labGraph(lab: Lab): LabGraph {
	const byName = new Map(lab.nodes.map((node) => [node.name, node]));
	const isNat = (name: string) => Boolean(byName.get(name)?.nat);
	const insideOf = (name: string, iface: string) => Boolean(byName.get(name)?.nat?.inside.includes(iface));

	// Non-NAT nodes joined by links that touch no NAT form components; NATs cut the graph.
	const component = new Map<string, string>();
	const find = (name: string): string => {
		let root = name;
		for (let next = component.get(root); next !== undefined && next !== root; next = component.get(root)) root = next;
		return root;
	};
	for (const node of lab.nodes) if (!node.nat) component.set(node.name, node.name);
	for (const link of lab.links) {
		const [a, b] = link.endpoints;
		if (isNat(a.node) || isNat(b.node) || !component.has(a.node) || !component.has(b.node)) continue;
		const [rootA, rootB] = [find(a.node), find(b.node)];
		if (rootA !== rootB) component.set(rootB, rootA);
	}

	// A component is behind the first NAT (in file order) whose inside interface links to it by a plugged-in link.
	const behind = new Map<string, string>();
	for (const nat of lab.nodes.filter((node) => node.nat))
		for (const link of lab.links) {
			if (link.down) continue;
			const [self, other] = link.endpoints[0].node === nat.name ? link.endpoints : link.endpoints[1].node === nat.name ? [link.endpoints[1], link.endpoints[0]] : [];
			if (!self || !other || !nat.nat?.inside.includes(self.iface) || !component.has(other.node)) continue;
			if (!behind.has(find(other.node))) behind.set(find(other.node), nat.name);
		}

	// A NAT sits in the region on its outside interface's side.
	const natPlace = new Map<string, string>();
	for (const nat of lab.nodes.filter((node) => node.nat)) {
		const link = lab.links.find((candidate) => candidate.endpoints.some((end) => end.node === nat.name && end.iface === nat.nat?.outside));
		const peer = link?.endpoints.find((end) => !(end.node === nat.name && end.iface === nat.nat?.outside));
		let place = "public";
		if (peer && component.has(peer.node)) place = regionId(behind.get(find(peer.node)));
		else if (peer && isNat(peer.node) && insideOf(peer.node, peer.iface)) place = regionId(peer.node);
		natPlace.set(nat.name, place);
	}
	// Nesting must be a tree: a NAT whose chain of outside sides loops is put on the public side.
	const parentOf = (nat: string) => natPlace.get(nat) ?? "public";
	for (const nat of natPlace.keys()) {
		const seen = new Set<string>([nat]);
		for (let region = parentOf(nat); region !== "public"; region = parentOf(region.slice("behind:".length))) {
			const owner = region.slice("behind:".length);
			if (seen.has(owner)) {
				natPlace.set(nat, "public");
				break;
			}
			seen.add(owner);
		}
	}

	const regionOf = (node: LabNode) => (node.nat ? parentOf(node.name) : regionId(behind.get(find(node.name))));
	const regions = new Map<string, GraphRegion>();
	const region = (id: string): GraphRegion => {
		let found = regions.get(id);
		if (found) return found;
		if (id === "public") found = { id, label: "public side", depth: 0, nodes: [] };
		else {
			const nat = id.slice("behind:".length);
			const parent = parentOf(nat);
			const outer = parent === "public" ? undefined : region(parent);
			found = { id, nat, label: `behind ${nat}`, parent: outer?.id, depth: outer ? outer.depth + 1 : 0, nodes: [] };
		}
		regions.set(id, found);
		return found;
	};
	const nodes: GraphNode[] = lab.nodes.map((node) => {
		const id = regionOf(node);
		region(id).nodes.push(node.name);
		return { name: node.name, kind: node.kind, lines: nodeLines(node), region: id };
	});

	const depth = (name: string) => {
		const id = nodes.find((node) => node.name === name)?.region ?? "public";
		return id === "public" ? 0 : (regions.get(id)?.depth ?? 0) + 1;
	};
	const order = (name: string) => [depth(name), kindRank[byName.get(name)?.kind ?? "host"], lab.nodes.findIndex((node) => node.name === name)];
	const edges = lab.links.map((link): GraphEdge => {
		const ends = link.endpoints.map((end) => ({ node: end.node, iface: end.iface, addresses: byName.get(end.node)?.interfaces.find((iface) => iface.name === end.iface)?.addresses.map((address) => address.cidr) ?? [] }));
		const [a, b] = [order(ends[0].node), order(ends[1].node)];
		const swap = a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
		const impairment = linkSummary(lab, link);
		return { ends: swap > 0 ? [ends[1], ends[0]] : [ends[0], ends[1]], impairment, impaired: link.endpoints.some((end) => egress(lab, end)) };
	});

	// Regions in a stable order: public first, then by their NAT's place in the file.
	const sorted = [...regions.values()].sort((x, y) => rank(x) - rank(y));
	function rank(r: GraphRegion): number {
		return r.nat === undefined ? -1 : lab.nodes.findIndex((node) => node.name === r.nat);
	}
	return { name: lab.name, regions: sorted, nodes, edges };
}

function regionId(nat: string | undefined): string {
	return nat === undefined ? "public" : `behind:${nat}`;
}

function nodeLines(node: LabNode): string[] {
	const kind = node.nat ? `NAT ${node.nat.behaviour.label}` : node.kind;
	const dummies = node.interfaces.filter((iface) => iface.type === "dummy" && iface.addresses.length > 0).map((iface) => `${iface.name} ${iface.addresses.map((address) => address.cidr).join(", ")}`);
	return [node.name, kind, ...dummies];
}

/** The link label's words for an impairment (the same as `testbed event` labels). */
export const impairSummary = describeImpairment;

/** What one end of a link sends with, as impairSummary words ("" for nothing). */
function egress(lab: Lab, end: { node: string; iface: string }): string {
	const impair = lab.nodes.find((node) => node.name === end.node)?.interfaces.find((iface) => iface.name === end.iface)?.impair;
	return impair ? impairSummary(impair) : "";
}

/** Impairments (per direction when the two differ: "alice→ rate 1mbit"), MTU, and "unplugged" for a link that starts down. */
function linkSummary(lab: Lab, link: LabLink): string {
	const mtu = lab.nodes.find((node) => node.name === link.endpoints[0].node)?.interfaces.find((iface) => iface.name === link.endpoints[0].iface)?.mtu;
	const [a, b] = link.endpoints.map((end) => egress(lab, end));
	const impairment = a === b ? a : link.endpoints.map((end, index) => ([a, b][index] ? `${end.node}→ ${[a, b][index]}` : "")).filter(Boolean).join(" ");
	return [link.down ? "unplugged" : "", impairment, mtu ? `mtu ${mtu}` : ""].filter(Boolean).join(" ");
}

/** Split a long impairment summary into lines of about `width` characters, between "key value" pairs. */
function wrap(text: string, width = 32): string[] {
	const lines: string[] = [];
	for (const word of text.match(/\S+ \S+|\S+/g) ?? []) {
		const last = lines.length - 1;
		if (last >= 0 && lines[last].length + 1 + word.length <= width) lines[last] += ` ${word}`;
		else lines.push(word);
	}
	return lines;
}

function endText(end: GraphEnd): string {
	return [end.iface, ...end.addresses].join(" ");
}

// ---------------------------------------------------------------------------------------------
// Colours and shapes, shared by DOT and Mermaid.

// Graphviz measures text with its built-in Helvetica metrics only when the name is exactly this (a list
// falls back to Times metrics, too narrow); its SVG then asks for "Helvetica,sans-Serif".
const font = "Helvetica";
const style = {
	public: { fill: "#eaf2fb", stroke: "#2e75b6", font: "#1f4e79" },
	private: [
		{ fill: "#fdf1e1", stroke: "#d9822b", font: "#8a4b0f" },
		{ fill: "#f9e1c3", stroke: "#b86b1b", font: "#7a410c" },
	],
	node: {
		host: { fill: "#ffffff", stroke: "#404040" },
		router: { fill: "#d6e4f0", stroke: "#2e75b6" },
		nat: { fill: "#f6c28b", stroke: "#b35900" },
		switch: { fill: "#e2efda", stroke: "#548235" },
	},
	edge: "#505050",
	impaired: "#c0392b",
} as const;

function regionStyle(region: GraphRegion) {
	return region.nat === undefined ? style.public : style.private[Math.min(region.depth, style.private.length - 1)];
}

const dotShape: Record<LabNode["kind"], string> = { host: "box", router: "ellipse", nat: "hexagon", switch: "parallelogram" };

// ---------------------------------------------------------------------------------------------
// DOT

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
		out.push(`${indent}\tgraph ${attrs({ label: region.label, labeljust: "l", labelloc: "b", fontname: font, fontsize: 12, fontcolor: colours.font, style: region.nat === undefined ? "filled,rounded" : "filled,rounded,dashed", fillcolor: colours.fill, color: colours.stroke, penwidth: 1.5 })};`);
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

// ---------------------------------------------------------------------------------------------
// Mermaid

function mermaidText(lines: string[]): string {
	const escaped = lines.map((line) => line.replace(/&/g, "#amp;").replace(/"/g, "#quot;").replace(/</g, "#lt;").replace(/>/g, "#gt;"));
	return `"${escaped.join("<br/>")}"`;
}

function mermaidId(prefix: string, name: string): string {
	return `${prefix}_${name.replace(/[^A-Za-z0-9_]/g, (char) => `_${char.charCodeAt(0).toString(16)}_`)}`;
}

function mermaidRegionId(region: GraphRegion): string {
	return mermaidId("g", region.nat === undefined ? "public" : `behind_${region.nat}`);
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
		out.push(`\tstyle ${mermaidRegionId(region)} fill:${colours.fill},stroke:${colours.stroke},color:${colours.font}${region.nat === undefined ? "" : ",stroke-dasharray:5 3"}`);
	}
	const impaired = graph.edges.flatMap((edge, index) => (edge.impaired ? [index] : []));
	if (impaired.length > 0) out.push(`\tlinkStyle ${impaired.join(",")} stroke:${style.impaired},stroke-width:2px,stroke-dasharray:5 3,color:${style.impaired}`);
	return `${out.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------
// Output formats

export type GraphFormat = "svg" | "dot" | "mmd" | "png";

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
