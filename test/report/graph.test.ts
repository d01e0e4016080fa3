// `testbed graph`: the lab as DOT and Mermaid text (golden files) and as SVG drawn in-process by
// Graphviz built to WebAssembly. No root needed. UPDATE_GOLDEN=1 rewrites the golden files and
// docs/two-nats.svg (the picture in the README).
import { readdirSync } from "node:fs";
import test from "ava";
import { UsageError } from "../../src/errors.ts";
import { loadLab, loadLabText } from "../../src/load.ts";
import type { Lab } from "../../src/resolve/lab.ts";
import { publicNodes } from "../../src/resolve/routing.ts";
import { graphFormat } from "../../src/cli/commands/graph.ts";
import { renderDot } from "../../src/report/graph-dot.ts";
import { renderMermaid } from "../../src/report/graph-mermaid.ts";
import { impairSummary, labGraph } from "../../src/report/graph-model.ts";
import { renderGraph, renderSvg } from "../../src/report/render-svg.ts";
import { golden } from "../helpers/golden.ts";


const topology = (name: string) => loadLab(new URL(`../../topologies/${name}`, import.meta.url).pathname);
const examples = readdirSync(new URL("../../topologies/", import.meta.url)).filter((name) => name.endsWith(".yml")).sort();

/** Graphviz's SVG escapes text (e.g. "-" as &#45;): back to plain text. */
function decode(text: string): string {
	return text
		.replace(/&#(\d+);/g, (_, code: string) => String.fromCodePoint(Number(code)))
		.replace(/&#x([0-9a-f]+);/gi, (_, code: string) => String.fromCodePoint(Number.parseInt(code, 16)))
		.replace(/&quot;/g, '"')
		.replace(/&lt;/g, "<")
		.replace(/&gt;/g, ">")
		.replace(/&amp;/g, "&");
}

interface SvgGroup {
	title: string;
	texts: string[];
}

/** The node, edge and cluster groups Graphviz writes: `<g class="node"><title>…</title><text>…</text>…</g>`. */
function groups(svg: string, kind: "node" | "edge" | "cluster"): SvgGroup[] {
	return [...svg.matchAll(new RegExp(`<g id="[^"]*" class="${kind}">([\\s\\S]*?)</g>`, "g"))].map((match) => ({
		title: decode(/<title>([\s\S]*?)<\/title>/.exec(match[1])?.[1] ?? ""),
		texts: [...match[1].matchAll(/<text[^>]*>([\s\S]*?)<\/text>/g)].map((text) => decode(text[1])),
	}));
}

function assertWellFormed(t: { true(value: boolean, message?: string): void; is(a: unknown, b: unknown, message?: string): void }, svg: string): void {
	t.true(svg.startsWith("<?xml"), "starts with an XML declaration");
	t.true(/<svg[^>]* xmlns="http:\/\/www\.w3\.org\/2000\/svg"/.test(svg), "has an <svg> root in the SVG namespace");
	t.true(svg.trimEnd().endsWith("</svg>"), "ends with </svg>");
	t.is((svg.match(/<svg[\s>]/g) ?? []).length, 1, "one <svg> element");
	t.is((svg.match(/<g[\s>]/g) ?? []).length, (svg.match(/<\/g>/g) ?? []).length, "every <g> is closed");
	t.is((svg.match(/<text[\s>]/g) ?? []).length, (svg.match(/<\/text>/g) ?? []).length, "every <text> is closed");
	t.true(!/[<>]/.test(svg.replace(/<[^<>]*>/g, "").replace(/<!--[\s\S]*?-->/g, "")), "no stray angle brackets in text");
}

function natLabel(lab: Lab, name: string): string {
	return `NAT ${lab.nodes.find((node) => node.name === name)?.nat?.behaviour.label}`;
}

// ---------------------------------------------------------------------------------------------

test("golden DOT and Mermaid of topologies/two-nats.yml", (t) => {
	const lab = topology("two-nats.yml");
	golden(t, new URL("../golden/two-nats.dot", import.meta.url), renderDot(lab));
	golden(t, new URL("../golden/two-nats.mmd", import.meta.url), renderMermaid(lab));
});

test("golden DOT and Mermaid of topologies/seed-p2p.yml: the lecture's unreachable peers (unr) below the host, not on the public side", (t) => {
	const lab = topology("seed-p2p.yml");
	golden(t, new URL("../golden/seed-p2p.dot", import.meta.url), renderDot(lab));
	golden(t, new URL("../golden/seed-p2p.mmd", import.meta.url), renderMermaid(lab));
	const graph = labGraph(lab);
	t.deepEqual(
		graph.regions.map((region) => [region.id, region.label, region.nodes]),
		[
			["public", "public side", ["host"]],
			["unreachable:host", "unreachable from host", ["unr"]],
		],
	);
	t.deepEqual(graph.edges[0].ends.map((end) => `${end.node}:${end.iface}`), ["host:nat_wan", "unr:nat_lan"], "drawn from the host down to unr");
	t.regex(renderDot(lab), /subgraph "cluster_unreachable:host" \{\n\t\tgraph \[label="unreachable from host", [^\n]*style="filled,rounded,dashed", fillcolor="#fdf1e1"/);
});

test("a node is unreachable from its neighbour only when that neighbour has no route to it and it has one back", (t) => {
	const text = (hostRoutes: string) =>
		["name: reach", "nodes:", "  inner:", "    interfaces: [{ name: d0, type: dummy, address: 10.9.9.9/24 }]", "    routes: [{ to: default, via: 10.0.0.1 }]", "  outer:", `    routes: [${hostRoutes}]`, "links:", "  - { endpoints: [inner:eth0, outer:eth0], subnet: 10.0.0.0/24 }", ""].join("\n");
	const regionOf = (lab: Lab, name: string) => labGraph(lab).nodes.find((node) => node.name === name)?.region;
	t.is(regionOf(loadLabText(text("")), "inner"), "unreachable:outer", "outer has no route to inner's 10.9.9.9");
	t.is(regionOf(loadLabText(text("{ to: 10.9.9.0/24, via: 10.0.0.2 }")), "inner"), "public", "a route to it: reachable");
	t.is(regionOf(loadLabText(text("")), "outer"), "public");
});

test("docs/two-nats.svg, the README's picture, is what the tool draws now", async (t) => {
	golden(t, new URL("../../docs/two-nats.svg", import.meta.url), await renderGraph(topology("two-nats.yml"), "svg"));
});

for (const name of examples) {
	test(`SVG of topologies/${name} is well formed and names every node, NAT type and address`, async (t) => {
		const lab = topology(name);
		const svg = await renderSvg(renderDot(lab));
		assertWellFormed(t, svg);
		const nodes = groups(svg, "node");
		t.deepEqual(nodes.map((node) => node.title).sort(), lab.nodes.map((node) => node.name).sort(), "one SVG node per lab node");
		for (const node of lab.nodes) {
			const drawn = nodes.find((candidate) => candidate.title === node.name);
			t.is(drawn?.texts[0], node.name, `${node.name}'s label starts with its name`);
			t.true(drawn?.texts.includes(node.nat ? natLabel(lab, node.name) : node.kind), `${node.name} shows its kind`);
			if (node.nat?.firewall6) t.true(drawn?.texts.includes(`IPv6 firewall ${node.nat.firewall6.filtering === "endpoint-independent" ? "EI" : node.nat.firewall6.filtering === "address-dependent" ? "AD" : "APD"}F`), `${node.name} shows its IPv6 firewall`);
			for (const iface of node.interfaces.filter((candidate) => candidate.type === "dummy"))
				for (const address of iface.addresses) t.true(drawn?.texts.includes(`${iface.name} ${address.cidr}`), `${node.name} shows dummy ${iface.name}`);
		}
		const edges = groups(svg, "edge");
		t.is(edges.length, lab.links.length, "one SVG edge per link");
		for (const link of lab.links) {
			const [a, b] = link.endpoints;
			const edge = edges.find((candidate) => candidate.title === `${a.node}--${b.node}` || candidate.title === `${b.node}--${a.node}`);
			t.truthy(edge, `an edge for ${a.node}:${a.iface} — ${b.node}:${b.iface}`);
			for (const end of link.endpoints) {
				const iface = lab.nodes.find((node) => node.name === end.node)?.interfaces.find((candidate) => candidate.name === end.iface);
				const addresses = [...(iface?.addresses ?? []), ...(iface?.addresses6 ?? [])];
				// Long labels (IPv6) wrap onto more lines: the words are the same, in order.
				t.true(edge?.texts.join(" ").includes([end.iface, ...addresses.map((address) => address.cidr)].join(" ")), `edge shows ${end.node}:${end.iface} and its addresses`);
			}
		}
		const clusters = groups(svg, "cluster").map((cluster) => cluster.title);
		t.true(clusters.includes("cluster_public"), "a public-side cluster");
		// A NAT whose only inside link starts unplugged (roaming's carrier) has nobody behind it yet.
		const inUse = (node: (typeof lab.nodes)[number]) => node.interfaces.some((iface) => node.nat!.inside.includes(iface.name) && !iface.down);
		for (const nat of lab.nodes.filter((node) => node.nat && inUse(node))) t.true(clusters.includes(`cluster_behind:${nat.name}`), `a cluster behind ${nat.name}`);
		t.is(await renderSvg(renderDot(lab)), svg, "deterministic");
	});
}

test("impairments and MTU are written on the link, which is drawn in red and dashed", async (t) => {
	const lab = loadLab(new URL("../fixtures/impaired.yml", import.meta.url).pathname);
	t.is(impairSummary(lab.links[1].impair!), "delay 20ms jitter 2ms loss 1% rate 10mbit limit 500");
	const dot = renderDot(lab);
	t.true(dot.includes('"r" -- "a" [label="e1 10.0.1.1/24\\leth0 10.0.1.2/24\\lrate 1mbit\\l", color="#c0392b"'), dot);
	const edges = groups(await renderSvg(dot), "edge");
	const slow = edges.find((edge) => edge.title === "r--b");
	t.deepEqual(slow?.texts, ["e2 10.0.2.1/24", "eth0 10.0.2.2/24", "delay 20ms jitter 2ms loss 1%", "rate 10mbit limit 500 mtu 1400"]);
	t.true(renderMermaid(lab).includes("linkStyle 0,1 stroke:#c0392b"));
	t.true(renderMermaid(lab).includes('n_r ---|"e2 10.0.2.1/24<br/>eth0 10.0.2.2/24<br/>delay 20ms jitter 2ms loss 1% rate 10mbit limit 500 mtu 1400"| n_b'));
});

test("the public side is what routing.ts calls public, less what a neighbour cannot route to (only seed-p2p's unr); NATs sit on their outside's side", (t) => {
	const unreachable: Record<string, string[]> = {};
	for (const name of examples) {
		const lab = topology(name);
		const graph = labGraph(lab);
		const hidden = graph.nodes.filter((node) => node.region.startsWith("unreachable:")).map((node) => node.name);
		if (hidden.length) unreachable[name] = hidden;
		const onPublicSide = graph.nodes.filter((node) => node.region === "public" && node.kind !== "nat" && node.kind !== "switch").map((node) => node.name);
		t.deepEqual(onPublicSide, publicNodes(lab).map((node) => node.name).filter((node) => !hidden.includes(node)), name);
	}
	t.deepEqual(unreachable, { "seed-p2p.yml": ["unr"] });
	const cgnat = labGraph(topology("cgnat.yml"));
	const regionOf = (name: string) => cgnat.nodes.find((node) => node.name === name)?.region;
	t.deepEqual(["internet", "stun", "carrier", "home1", "home2", "alice", "bob"].map(regionOf), ["public", "public", "public", "behind:carrier", "behind:carrier", "behind:home1", "behind:home2"]);
	t.like(cgnat.regions.find((region) => region.id === "behind:home1"), { parent: "behind:carrier", depth: 1, label: "behind home1" });
	t.deepEqual(cgnat.regions.map((region) => region.id), ["public", "behind:carrier", "behind:home1", "behind:home2"]);
	const lan = labGraph(topology("lan.yml"));
	t.deepEqual(lan.nodes.filter((node) => node.region === "behind:home").map((node) => node.name), ["lan", "alice", "bob", "carol"]);
});

test("links are drawn from the public side inwards: NAT above what it hides, router above the rest", (t) => {
	const graph = labGraph(topology("two-nats.yml"));
	t.deepEqual(
		graph.edges.map((edge) => `${edge.ends[0].node}:${edge.ends[0].iface} -- ${edge.ends[1].node}:${edge.ends[1].iface}`),
		["home1:lan -- alice:eth0", "home2:lan -- bob:eth0", "internet:e1 -- home1:wan", "internet:e2 -- home2:wan", "internet:e3 -- stun:eth0"],
	);
});

test("shapes by kind, in DOT and Mermaid", (t) => {
	const lab = topology("lan.yml");
	const dot = renderDot(lab);
	t.regex(dot, /"internet" \[label="internet\\nrouter", shape="ellipse"/);
	t.regex(dot, /"home" \[label="home\\nNAT home-router", shape="hexagon"/);
	t.regex(dot, /"lan" \[label="lan\\nswitch", shape="parallelogram"/);
	t.regex(dot, /"alice" \[label="alice\\nhost", shape="box"/);
	const mermaid = renderMermaid(lab);
	t.true(mermaid.includes('n_internet(["internet<br/>router"])'));
	t.true(mermaid.includes('n_home{{"home<br/>NAT home-router"}}'));
	t.true(mermaid.includes('n_lan[/"lan<br/>switch"/]'));
	t.true(mermaid.includes('n_alice("alice<br/>host")'));
	t.regex(mermaid, /subgraph g_behind_home\["behind home"\]\n(\t\tn_\w+.*\n){4}\tend/);
});

test("Mermaid ids survive names with dashes and names Mermaid reserves", (t) => {
	const lab = loadLabText(["name: odd", "nodes:", "  end: { kind: router }", "  a-b: {}", "links:", "  - { endpoints: [a-b:eth0, end:e1], subnet: 10.0.0.0/24 }", ""].join("\n"));
	const mermaid = renderMermaid(lab);
	t.true(mermaid.includes('n_end(["end<br/>router"])'), mermaid);
	t.true(mermaid.includes('n_a_2d_b("a-b<br/>host")'), mermaid);
	t.true(mermaid.includes('n_end ---|"e1 10.0.0.1/24<br/>eth0 10.0.0.2/24"| n_a_2d_b'), mermaid);
	const matrix = renderMermaid(topology("nat-matrix.yml"));
	t.is((matrix.match(/^\s*subgraph /gm) ?? []).length, (matrix.match(/^\s*end$/gm) ?? []).length, "every subgraph ends");
	t.is((matrix.match(/ ---\|/g) ?? []).length, topology("nat-matrix.yml").links.length, "one Mermaid link per lab link");
});

test("output formats by extension: svg, png, dot, mmd; other raster formats are refused with a pointer", async (t) => {
	t.is(graphFormat("out.svg"), "svg");
	t.is(graphFormat("docs/lab.dot"), "dot");
	t.is(graphFormat("lab.gv"), "dot");
	t.is(graphFormat("lab.mmd"), "mmd");
	t.is(graphFormat("out.png"), "png");
	const jpg = t.throws(() => graphFormat("out.jpg"), { instanceOf: UsageError });
	t.regex(jpg?.message ?? "", /out\.png or \.svg/);
	t.throws(() => graphFormat("out.txt"), { instanceOf: UsageError, message: /\.svg, \.png, \.dot .*\.mmd/ });
	const lab = topology("two-nats.yml");
	t.is(await renderGraph(lab, "dot"), renderDot(lab));
	t.is(await renderGraph(lab, "mmd"), renderMermaid(lab));
});

test("bad DOT is a clear error, not a crash", async (t) => {
	await t.throwsAsync(renderSvg("graph { a -- }"), { message: /Graphviz could not draw the graph: .*syntax error/ });
});
