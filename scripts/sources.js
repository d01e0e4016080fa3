// The newest TypeScript source of the CLI and library (src/): dist/ is current when it was built
// from sources at least this new. Reads directory entries and mtimes only (about a millisecond).
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export function newestSource(root) {
	let newest = { path: "", mtimeMs: 0 };
	const walk = (dir) => {
		for (const entry of readdirSync(dir, { withFileTypes: true })) {
			const path = join(dir, entry.name);
			if (entry.isDirectory()) walk(path);
			else if (entry.name.endsWith(".ts")) {
				const mtimeMs = statSync(path).mtimeMs;
				if (mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
			}
		}
	};
	walk(join(root, "src"));
	return newest;
}
