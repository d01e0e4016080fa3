// A lab under another name (`up --name`, `init --name`, `loadLab(file, { name })`): many copies of one
// file on one machine, for a class. The rule, for every name the file gives a namespace:
//   - the lab is NAME, so the default prefix `<name>-` becomes `NAME-`;
//   - a `prefix: P` or `netns: N` that starts with the file's `<name>-` gets `NAME-` instead of it;
//   - any other `prefix: P` / `netns: N` gets `NAME-` in front: `netns: unr` becomes `NAME-unr`.
// So every namespace of a renamed lab starts with `NAME-`, and two copies under different names never
// share one. Renaming a lab to the name it has changes nothing.
import { isMap, isScalar, parseDocument, type Scalar } from "yaml";
import { UsageError } from "../errors.ts";
import type { Located, TopologyDecl } from "../parse/topology.ts";
import { labNamePattern, labNameRule } from "../vocabulary/names.ts";

/** A lab name given on the command line or to the library: valid, or a usage error with the rule. */
export function checkLabName(name: string, what = "--name"): string {
	if (!labNamePattern.test(name)) throw new UsageError(`${what} "${name}" is not a valid lab name: ${labNameRule}`);
	return name;
}

/** A namespace name (or prefix) of lab `from`, as lab `to` has it. */
export function renamedNamespace(value: string, from: string, to: string): string {
	if (from === to) return value;
	return value.startsWith(`${from}-`) ? `${to}-${value.slice(from.length + 1)}` : `${to}-${value}`;
}

/** The declaration as lab `name` (positions kept, so problems still point into the file). */
export function renameDeclaration(decl: TopologyDecl, name: string): TopologyDecl {
	const from = decl.name.value;
	if (from === name) return decl;
	const renamed = (located: Located<string>): Located<string> => ({ value: renamedNamespace(located.value, from, name), pos: located.pos });
	return {
		...decl,
		name: { value: name, pos: decl.name.pos },
		prefix: decl.prefix && renamed(decl.prefix),
		nodes: decl.nodes.map((node) => (node.netns ? { ...node, netns: renamed(node.netns) } : node)),
	};
}

/**
 * A topology file's text as lab `name` (`init --name`): its `name:`, `prefix:` and every node's `netns:`
 * rewritten by the same rule, everything else (comments, layout) as it was.
 */
export function renameText(text: string, name: string): string {
	const document = parseDocument(text);
	const current = document.get("name", true);
	if (!isScalar(current) || typeof current.value !== "string") return text;
	const from = current.value;
	const edits: { range: [number, number]; value: string }[] = [{ range: rangeOf(current), value: name }];
	const prefix = document.get("prefix", true);
	if (isScalar(prefix) && typeof prefix.value === "string") edits.push({ range: rangeOf(prefix), value: renamedNamespace(prefix.value, from, name) });
	const nodes = document.get("nodes", true);
	if (isMap(nodes))
		for (const pair of nodes.items) {
			const netns = isMap(pair.value) ? pair.value.get("netns", true) : undefined;
			if (isScalar(netns) && typeof netns.value === "string") edits.push({ range: rangeOf(netns), value: renamedNamespace(netns.value, from, name) });
		}
	// From the end backwards, so earlier offsets stay where they were.
	let out = text;
	for (const edit of edits.sort((a, b) => b.range[0] - a.range[0])) out = out.slice(0, edit.range[0]) + yamlString(edit.value) + out.slice(edit.range[1]);
	return out;
}

function rangeOf(scalar: Scalar): [number, number] {
	return [scalar.range![0], scalar.range![1]];
}

/** A plain scalar where YAML reads it back as the same string; otherwise double-quoted. */
function yamlString(value: string): string {
	const plain = parseDocument(`x: ${value}`).get("x");
	return plain === value ? value : JSON.stringify(value);
}
