// Finding executables on PATH by looking at the file system (no `which` process), and the PATH
// testbed gives the programs it starts.
import { accessSync, constants, existsSync } from "node:fs";
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

/**
 * PATH without node_modules/.bin: under npm or npx, packages' binaries shadow system tools
 * (ava depends on @vercel/nft, whose `nft` is not nftables). Kernel tools come from the system.
 */
export function systemPath(path = process.env.PATH ?? ""): string {
	const dirs = path.split(":").filter((dir) => dir && !dir.includes("node_modules"));
	for (const dir of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) if (!dirs.includes(dir)) dirs.push(dir);
	return dirs.join(":");
}

/**
 * The system's python3 (Debian's, which `make` installs) for testbed's helpers: a version manager's
 * shim on PATH (pyenv) costs a shell script and a lookup, 0.3 s, per start.
 */
export function pythonPath(): string | undefined {
	if (!which("python3")) return undefined; // also how tests hide it (TESTBED_HIDE_TOOLS)
	return existsSync("/usr/bin/python3") ? "/usr/bin/python3" : which("python3");
}
