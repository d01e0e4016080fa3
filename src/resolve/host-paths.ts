// What a topology asks of this host's files, checked when it is loaded (before anything is built):
// every private directory exists here as a directory (OverlayFS mounts over it), and every file a
// node copies (`from:`) can be read. Reads only.
import { accessSync, constants, statSync } from "node:fs";
import type { Lab } from "./lab.ts";
import type { Problem } from "../vocabulary/problems.ts";

export function hostPathProblems(lab: Lab): Problem[] {
	const problems: Problem[] = [];
	for (const node of lab.nodes) {
		if (!node.private) continue;
		for (const dir of node.private.dirs) {
			const stat = statOf(dir.path);
			if (!stat) problems.push({ code: "BAD_PRIVATE", pos: dir.pos, message: `private directory "${dir.path}" does not exist on this host`, fix: `create it on the host (\`mkdir -p ${dir.path}\`; it stays empty, the node writes into its own layer) or remove it from \`private:\`` });
			else if (!stat.isDirectory()) problems.push({ code: "BAD_PRIVATE", pos: dir.pos, message: `private directory "${dir.path}" is not a directory on this host`, fix: "list directories only; to give the node its own copy of a file, make its directory private and place the file with `files:`" });
		}
		for (const file of node.private.files) {
			if (!file.from) continue;
			const stat = statOf(file.from);
			let readable = stat?.isFile() ?? false;
			try {
				if (readable) accessSync(file.from, constants.R_OK);
			} catch {
				readable = false;
			}
			if (!readable) problems.push({ code: "BAD_FILE", pos: file.pos, message: `file "${file.path}" is to be copied from ${file.from}, which ${stat ? (stat.isFile() ? "cannot be read" : "is not a file") : "does not exist"}`, fix: "put the file there (paths in `from:` start at the topology file's folder)" });
		}
	}
	return problems;
}

function statOf(path: string) {
	try {
		return statSync(path);
	} catch {
		return undefined;
	}
}
