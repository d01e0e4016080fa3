// What a topology asks of this host's files, checked when it is loaded (before anything is built):
// every private directory exists here as a directory (OverlayFS mounts over it), and every file a
// node copies (`from:`) can be read. Reads only.
import { accessSync, constants, lstatSync, realpathSync, statSync } from "node:fs";
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
			else {
				// A link (or a path through one): the overlay would go where it points — /var/run is /run.
				const real = realOf(dir.path);
				if (real !== dir.path) problems.push({ code: "BAD_PRIVATE", pos: dir.pos, message: `private directory "${dir.path}" is ${real} on this host (a symbolic link on the way)`, fix: `write the real directory, \`${real}\`${real === "/run" || real.startsWith("/run/") ? ", which cannot be private: /run holds testbed's own state" : ""}` });
			}
		}
		for (const file of node.private.files) {
			// Each directory on the way in the host's lower layer must be a plain directory: the upper
			// layer's real directory would cover a link (and everything the link points to), and a file
			// cannot hold one.
			const parts = file.relative.split("/");
			for (let depth = 1; depth <= parts.length; depth++) {
				const lower = `${file.dir}/${parts.slice(0, depth).join("/")}`;
				const stat = lstatOf(lower);
				if (!stat) break;
				const last = depth === parts.length;
				const bad = last ? stat.isDirectory() && "is a directory" : stat.isSymbolicLink() ? "is a symbolic link" : !stat.isDirectory() && "is a file";
				if (bad) {
					problems.push({ code: "BAD_FILE", pos: file.pos, message: `file "${file.path}" cannot be placed: ${lower} ${bad} on this host`, fix: last ? "name a file, not a directory" : `place it at the link's target (\`${realOf(lower)}\`) inside a private directory, or elsewhere` });
					break;
				}
			}
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

function realOf(path: string): string {
	try {
		return realpathSync(path);
	} catch {
		return path;
	}
}

function lstatOf(path: string) {
	try {
		return lstatSync(path);
	} catch {
		return undefined;
	}
}

function statOf(path: string) {
	try {
		return statSync(path);
	} catch {
		return undefined;
	}
}
