// Finding executables on PATH by looking at the file system (no `which` process).
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

const extraDirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/** A system tool on PATH, ignoring node_modules/.bin (see systemPath in run.ts). */
export function which(name: string): string | undefined {
	// TESTBED_HIDE_TOOLS=a,b pretends those tools are missing: how tests see a host without them.
	if (process.env.TESTBED_HIDE_TOOLS?.split(",").includes(name)) return undefined;
	const dirs = [...(process.env.PATH ?? "").split(delimiter).filter((dir) => !dir.includes("node_modules")), ...extraDirs];
	for (const dir of dirs) {
		if (!dir) continue;
		const path = join(dir, name);
		try {
			accessSync(path, constants.X_OK);
			return path;
		} catch {}
	}
	return undefined;
}
