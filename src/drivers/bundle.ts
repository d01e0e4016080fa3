// Agents start as one bundled JavaScript file each (esbuild, in-process, cached by content hash in
// node_modules/.cache, where build caches live — not in the lab state under /run/testbed):
// a lab of 200 nodes starts 200 agents, and Node without the TypeScript loader starts three times faster.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { projectPath } from "../project.ts";
import { buildSync } from "esbuild";

const agentsDir = projectPath("agents");
const cacheDir = projectPath("node_modules", ".cache", "testbed-agents");
const built = new Map<string, string>();

/** A fingerprint of every agent source (and of the vocabulary they share with src/): any change rebuilds. */
function sourceHash(): string {
	const hash = createHash("sha256");
	const walk = (dir: string) => {
		for (const name of readdirSync(dir).sort()) {
			const path = join(dir, name);
			if (statSync(path).isDirectory()) walk(path);
			else if (name.endsWith(".ts")) hash.update(name).update(readFileSync(path));
		}
	};
	walk(agentsDir);
	walk(projectPath("src", "vocabulary"));
	return hash.digest("hex").slice(0, 16);
}

/** The path of the bundled agent, building it if needed. */
export function agentBundle(agent: string): string {
	const cached = built.get(agent);
	if (cached) return cached;
	const dir = join(cacheDir, sourceHash());
	const out = join(dir, `${agent}.mjs`);
	if (!existsSync(out)) {
		mkdirSync(dir, { recursive: true, mode: 0o700 });
		const temporary = `${out}.${process.pid}.tmp`;
		buildSync({ entryPoints: [join(agentsDir, agent, "main.ts")], bundle: true, platform: "node", format: "esm", target: "node20", outfile: temporary, logLevel: "error" });
		renameSync(temporary, out);
	}
	built.set(agent, out);
	return out;
}
