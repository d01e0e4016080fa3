// A node's private directories, files and limits, resolved: directories ordered parents first with
// the names of their layers, files placed in their directory with placeholders replaced and `from:`
// made absolute, the disk size decided.
import { resolve as resolvePath } from "node:path";
import type { TopologyDecl } from "../parse/topology.ts";
import { defaultDiskBytes } from "../validate/read-container.ts";
import type { Pos, Problem } from "../vocabulary/problems.ts";
import { baseFolder, substitute } from "./commands.ts";
import type { Lab, NodeLimits, NodePrivate } from "./lab.ts";

type Report = (code: Problem["code"], pos: Pos, message: string, fix?: string) => void;

/** `/var/lib/myapp` → `var-lib-myapp`, numbered so that no two directories share layers. */
const layerKey = (path: string, index: number) => `${index}${path.replaceAll("/", "-")}`;

export function resolveContainers(lab: Lab, decl: TopologyDecl, report: Report): void {
	const byName = new Map(lab.nodes.map((node) => [node.name, node]));
	for (const nodeDecl of decl.nodes) {
		if (!nodeDecl.private && !nodeDecl.limits) continue;
		const node = byName.get(nodeDecl.name);
		if (!node) continue;
		if (nodeDecl.private?.length) {
			const dirs = [...nodeDecl.private].sort((a, b) => a.value.split("/").length - b.value.split("/").length).map((dir, index) => ({ path: dir.value, key: layerKey(dir.value, index), pos: dir.pos }));
			const files: NodePrivate["files"] = (nodeDecl.files ?? []).map((file) => {
				// The innermost private directory the file is in.
				const dir = dirs.filter((candidate) => file.path.value.startsWith(`${candidate.path}/`)).at(-1)!.path;
				return {
					path: file.path.value,
					dir,
					relative: file.path.value.slice(dir.length + 1),
					...(file.text ? { text: substitute(lab, file.text, report) } : {}),
					...(file.from ? { from: resolvePath(baseFolder(lab), file.from.value) } : {}),
					mode: file.mode?.value ?? 0o644,
					pos: file.pos,
				};
			});
			node.private = { dirs, files, diskBytes: nodeDecl.limits?.disk?.value ?? defaultDiskBytes };
		}
		const limits = nodeDecl.limits;
		if (limits && (limits.cpu || limits.memory || limits.pids)) {
			const resolved: NodeLimits = { pos: limits.pos };
			if (limits.cpu) resolved.cpu = limits.cpu.value;
			if (limits.memory) resolved.memoryBytes = limits.memory.value;
			if (limits.pids) resolved.pids = limits.pids.value;
			node.limits = resolved;
		}
	}
}
