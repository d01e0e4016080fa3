// Turning the YAML document into a TopologyDecl: shapes, keys, names, units. Every problem is collected.
// The parts are read in read-nodes, read-links, read-checks, read-steps and read-programs.
import { isMap, isSeq, type Node as YamlNode } from "yaml";
import type { LinkDecl, NodeDecl, StepDecl, TopologyDecl } from "../parse/topology.ts";
import { labNamePattern, netnsNamePattern } from "../vocabulary/names.ts";
import type { Problem } from "../vocabulary/problems.ts";
import { topologyKeys } from "./topology-keys.ts";
import type { TopologySource } from "../parse/source.ts";
import { YamlReader } from "./yaml-reader.ts";
import { readNode } from "./read-nodes.ts";
import { readLink } from "./read-links.ts";
import { readExpect } from "./read-checks.ts";
import { readStepItem, readSteps } from "./read-steps.ts";

/** Read the document into a declaration; problems are appended to `problems`. */
export function readTopology(source: TopologySource, problems: Problem[]): TopologyDecl | undefined {
	return readTop(new YamlReader(source, problems));
}

/** Read a document that is one step (`testbed event` builds one from its arguments). */
export function readStep(source: TopologySource, problems: Problem[]): StepDecl | undefined {
	return readStepDocument(new YamlReader(source, problems));
}

function readTop(r: YamlReader): TopologyDecl | undefined {
	const root = r.resolve(r.source.document.contents);
	if (!root || !isMap(root)) {
		r.report("NOT_A_MAP", root ?? undefined, "a topology file is a map with `name:`, `nodes:` and `links:`", "start from topologies/two-nats.yml");
		return undefined;
	}
	const entries = r.entries(root, topologyKeys.top, "top level");
	const name = r.string(entries.get("name"), "name");
	if (!name) r.report("MISSING_KEY", root, "the lab has no `name:`", "add `name: my-lab` (a-z, 0-9 and -)");
	else if (!labNamePattern.test(name.value))
		r.problem("BAD_LAB_NAME", name.pos, `lab name "${name.value}" is not valid`, "use 1-24 characters: a-z, 0-9 and -, starting with a letter, not ending with -");
	const prefixValue = entries.get("prefix");
	const prefix = prefixValue ? r.string(prefixValue, "prefix", true) : undefined;
	if (prefix && prefix.value !== "" && !netnsNamePattern.test(prefix.value))
		r.problem("BAD_VALUE", prefix.pos, `prefix "${prefix.value}" is not valid in a namespace name`, "use letters, digits, _ . and -");
	const nodesNode = entries.get("nodes");
	const nodes: NodeDecl[] = [];
	if (!nodesNode) r.report("MISSING_KEY", root, "the lab has no `nodes:`", "add `nodes:` with at least one node");
	else {
		const nodesMap = r.resolve(nodesNode.value);
		if (!nodesMap || !isMap(nodesMap)) r.report("WRONG_TYPE", nodesMap ?? nodesNode.key, "`nodes:` must be a map of node name to node", "write `nodes: { alice: {}, bob: {} }`");
		else if (r.spend(nodesMap.items.length, nodesMap)) for (const pair of nodesMap.items) readNode(r, pair, nodes);
	}
	const links: LinkDecl[] = [];
	const linksNode = entries.get("links");
	if (linksNode) {
		const seq = r.resolve(linksNode.value);
		if (seq && !isSeq(seq)) r.report("WRONG_TYPE", seq, "`links:` must be a list", "write `links:` followed by `- endpoints: [a:eth0, b:eth0]` items");
		else if (seq && r.spend(seq.items.length, seq)) for (const item of seq.items) readLink(r, item as YamlNode, links);
	}
	const description = r.string(entries.get("description"), "description")?.value;
	const expect = entries.get("expect") ? readExpect(r, entries.get("expect")!) : undefined;
	const steps = entries.get("steps") ? readSteps(r, entries.get("steps")!) : undefined;
	return { file: r.source.file, name: name ?? { value: "", pos: r.pos(root) }, prefix, description, nodes, links, expect, steps };
}

function readStepDocument(r: YamlReader): StepDecl | undefined {
	return readStepItem(r, r.resolve(r.source.document.contents) as YamlNode);
}
