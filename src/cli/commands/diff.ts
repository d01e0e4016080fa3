// `testbed diff LAB NODE`: what a node changed in its private directories (the upper layers of its
// OverlayFS mounts) — added, modified, deleted and replaced paths; the host's files are unchanged.
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { nodeChanges, type Change } from "../../inspect/node-changes.ts";
import { formatSize } from "../../validate/units.ts";
import type { Io } from "../io.ts";
import { nodeOf } from "./exec.ts";

const letter: Record<Change, string> = { added: "A", modified: "M", deleted: "D", replaced: "R" };

export async function diffCommand(labName: string, nodeName: string, options: { json?: boolean }, io: Io): Promise<number> {
	requireRoot("diff");
	const lab = requireLedger(labName).resolved;
	const node = nodeOf(lab, nodeName);
	if (!node.private) {
		io.err(`node "${node.name}" of lab "${lab.name}" has no private directories: it reads and writes the host's files; give it \`private: [/etc, /tmp]\` in the topology to see its changes here`);
		return 1;
	}
	const found = await nodeChanges(lab.name, node);
	if (options.json) {
		io.json({ lab: lab.name, node: node.name, private: node.private.dirs.map((dir) => dir.path), ...found });
		return 0;
	}
	const dirs = node.private.dirs.map((dir) => dir.path).join(", ");
	const disk = found.disk ? `; ${formatSize(found.disk.usedBytes)} of ${formatSize(found.disk.sizeBytes)} used` : "";
	if (found.changes.length === 0) io.out(`node ${node.name} changed nothing in ${dirs}${disk}`);
	else {
		io.out(`node ${node.name} changed in ${dirs} (its upper layers${disk}; the host's files are unchanged):`);
		for (const change of found.changes) {
			const note = change.placed ? "   (placed by the topology)" : change.change === "replaced" ? "   (the host's contents are hidden)" : "";
			io.out(`${letter[change.change]} ${change.path}${change.type === "directory" ? "/" : ""}${note}`);
		}
	}
	if (found.opaqueUnknown) io.err("note: without python3 a directory the node removed and made again shows as unchanged (its extended attributes cannot be read)");
	return 0;
}
