// Warnings: a file that is valid but probably not what its author meant. Never fatal.
import type { TopologyDecl } from "../parse/topology.ts";
import { sortProblems, type Problem } from "../vocabulary/problems.ts";

export function topologyWarnings(decl: TopologyDecl): Problem[] {
	const linked = new Set(decl.links.flatMap((link) => link.endpoints.map((endpoint) => endpoint.node)));
	const warnings: Problem[] = [];
	for (const node of decl.nodes)
		if (!linked.has(node.name))
			warnings.push({
				code: "NODE_WITHOUT_LINKS",
				pos: node.pos,
				message: `node "${node.name}" has no links: it can reach nothing and nothing can reach it${node.interfaces.length ? " (a dummy interface is not a link)" : ""}`,
				fix: `add a link, e.g. \`- endpoints: [${node.name}:eth0, OTHER:eth1]\`, or remove the node`,
			});
	return sortProblems(warnings);
}
