// Where testbed's own files are (agents/, topologies/, schema/, bin/), whether this code runs from
// src/ through tsx or bundled from dist/: the nearest folder above this module with our package.json.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(): string {
	let dir = dirname(fileURLToPath(import.meta.url));
	for (;;) {
		const manifest = join(dir, "package.json");
		if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "testbed") return dir;
		const parent = dirname(dir);
		if (parent === dir) throw new Error(`testbed: cannot find its package.json above ${fileURLToPath(import.meta.url)}`);
		dir = parent;
	}
}

let root: string | undefined;

/** An absolute path inside testbed's folder. */
export function projectPath(...parts: string[]): string {
	root ??= findRoot();
	return join(root, ...parts);
}
