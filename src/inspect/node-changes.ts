// What a node changed in its private directories: the upper layers of its OverlayFS mounts, read
// on the host (they live on the node's tmpfs under the lab's state folder). An upper layer holds
// exactly the node's changes — new and modified files, whiteouts (a character device 0/0: a file
// the node deleted) and opaque directories (`trusted.overlay.opaque = y`: a directory the node
// removed and made again, hiding the host's contents) — the lecture's OverlayFS lesson, live.
import { lstatSync, readdirSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { layersPath } from "../apply/node-env.ts";
import { run } from "../apply/run.ts";
import { pythonPath } from "../apply/which.ts";
import type { LabNode } from "../resolve/lab.ts";

export type Change = "added" | "modified" | "deleted" | "replaced";

export interface NodeChange {
	/** The path the node sees (and the host's path it stands for). */
	path: string;
	change: Change;
	type: "file" | "directory" | "symlink" | "other";
	/** Placed by the topology's `files:` (and not changed since? not known: the text is the node's now). */
	placed?: boolean;
}

export interface NodeChanges {
	changes: NodeChange[];
	/** The tmpfs holding the changes: bytes used and its size (`limits.disk`). */
	disk?: { usedBytes: number; sizeBytes: number };
	/** Opaque directories could not be told apart (no python3 to read extended attributes). */
	opaqueUnknown?: boolean;
}

/** Walk every private directory's upper layer; at most `limit` changes (a node may write millions of files). */
export async function nodeChanges(lab: string, node: LabNode, limit = 10_000): Promise<NodeChanges> {
	const layers = layersPath(lab, node.name);
	const placed = new Set(node.private?.files.map((file) => file.path));
	const uppers = (node.private?.dirs ?? []).map((dir) => ({ dir: dir.path, upper: join(layers, dir.key, "upper") }));
	const directories: { path: string; upper: string }[] = [];
	const changes: NodeChange[] = [];
	const walk = (upper: string, path: string) => {
		let entries: string[];
		try {
			entries = readdirSync(upper).sort();
		} catch {
			return;
		}
		for (const name of entries) {
			if (changes.length >= limit) return;
			const inUpper = join(upper, name);
			const seen = `${path}/${name}`;
			const stat = lstatSync(inUpper);
			if (stat.isCharacterDevice() && stat.rdev === 0) {
				changes.push({ path: seen, change: "deleted", type: "file" });
				continue;
			}
			const onHost = exists(seen);
			const type = stat.isDirectory() ? "directory" : stat.isSymbolicLink() ? "symlink" : stat.isFile() ? "file" : "other";
			if (type === "directory") {
				directories.push({ path: seen, upper: inUpper });
				if (!onHost) changes.push({ path: seen, change: "added", type });
				walk(inUpper, seen);
				continue;
			}
			changes.push({ path: seen, change: onHost ? "modified" : "added", type, ...(placed.has(seen) ? { placed: true } : {}) });
		}
	};
	for (const { dir, upper } of uppers) walk(upper, dir);
	// A directory that is on the host and opaque in the upper layer: the node replaced it.
	const candidates = directories.filter((directory) => exists(directory.path));
	const opaque = candidates.length > 0 ? await opaqueDirectories(candidates.map((directory) => directory.upper)) : new Set<string>();
	for (const directory of candidates) if (opaque?.has(directory.upper)) changes.push({ path: directory.path, change: "replaced", type: "directory" });
	changes.sort((a, b) => a.path.localeCompare(b.path));
	let disk: NodeChanges["disk"];
	try {
		const stats = statfsSync(layers);
		disk = { usedBytes: (stats.blocks - stats.bfree) * stats.bsize, sizeBytes: stats.blocks * stats.bsize };
	} catch {}
	return { changes, ...(disk ? { disk } : {}), ...(opaque === undefined ? { opaqueUnknown: true } : {}) };
}

const exists = (path: string) => {
	try {
		lstatSync(path);
		return true;
	} catch {
		return false;
	}
};

/** Which of these upper-layer directories are opaque (Node cannot read extended attributes; python3 can). */
async function opaqueDirectories(dirs: string[]): Promise<Set<string> | undefined> {
	const python = pythonPath();
	if (!python) return undefined;
	const script = "import os,sys\nfor d in sys.argv[1:]:\n try:\n  v=os.getxattr(d,'trusted.overlay.opaque')\n except OSError:\n  continue\n if v==b'y': print(d)";
	const result = await run([python, "-I", "-S", "-c", script, ...dirs]);
	return new Set(result.stdout.split("\n").filter(Boolean));
}
