// The newest TypeScript source of the CLI and library (src/): dist/ is current when it was built
// from sources at least this new. Reads directory entries and mtimes only (a millisecond or two).
// CommonJS, like bin/testbed.js, which checks this on every start.
"use strict";
const { readdirSync, statSync } = require("node:fs");
const { join } = require("node:path");

function newestSource(root) {
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

module.exports = { newestSource };
