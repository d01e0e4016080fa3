// Reading what makes a node a lightweight container: `private:` (host directories it sees through
// an OverlayFS of its own), `files:` (placed in those directories) and `limits:` (its cgroup).
// Everything here is checked from the text alone; whether a directory exists on this host is asked
// when the file is loaded (validate/host-paths.ts).
import { isMap, isScalar, type Node as YamlNode, type Pair } from "yaml";
import type { FileDecl, LimitsDecl, Located, NodeDecl } from "../parse/topology.ts";
import { topologyKeys } from "./topology-keys.ts";
import { parseSize } from "./units.ts";
import type { YamlReader } from "./yaml-reader.ts";

/** Directories a node may not make private: the kernel's views and testbed's own state live there. */
export const systemDirectories = ["/proc", "/sys", "/dev", "/run"];

/** Limits as the kernel accepts them: a CPU quota of at least 1 ms per 100 ms period, memory a process can start in. */
export const limitBounds = { cpuMin: 0.01, cpuMax: 1024, memoryMin: 4 * 1024 ** 2, pidsMin: 2, pidsMax: 4_194_304, diskMin: 1024 ** 2 };

/** The size of a node's private files when `limits: { disk }` does not say: a ceiling, not an allocation. */
export const defaultDiskBytes = 64 * 1024 ** 2;

/**
 * A path as a node sees it, checked: absolute, no `.`/`..` segments, none of the characters OverlayFS
 * options cannot carry (`,` `:` `\`, spaces). Returns the path without a trailing slash, or why not.
 */
export function checkNodePath(path: string): { path: string } | { error: string } {
	if (!path.startsWith("/")) return { error: "is not absolute" };
	const segments = path.split("/").filter(Boolean);
	if (segments.some((segment) => segment === ".." || segment === ".")) return { error: "has a `.` or `..` segment" };
	if (/[,:\\\s]/.test(path) || [...path].some((char) => char.charCodeAt(0) < 32)) return { error: "has a character OverlayFS options cannot carry (`,` `:` `\\` or a space)" };
	return { path: `/${segments.join("/")}` };
}

const inside = (path: string, dir: string) => dir === "/" || path === dir || path.startsWith(`${dir}/`);

export function readContainer(r: YamlReader, node: NodeDecl, entries: Map<string, Pair>): void {
	const privatePair = entries.get("private");
	if (privatePair) node.private = readPrivate(r, privatePair);
	const filesPair = entries.get("files");
	if (filesPair) node.files = readFiles(r, filesPair, node);
	const limitsPair = entries.get("limits");
	if (limitsPair) node.limits = readLimits(r, limitsPair, node);
	const first = (["private", "files", "limits"] as const).find((key) => entries.has(key));
	if (first && node.kind === "switch") r.report("BAD_VALUE", entries.get(first)!.key, `switch "${node.name}" runs no processes: it cannot have \`${first}:\``, "give private files and limits to the hosts, routers or NATs that run programs");
}

function readPrivate(r: YamlReader, pair: Pair): Located<string>[] {
	const dirs: Located<string>[] = [];
	for (const item of r.list(pair, "private")) {
		const text = r.string(r.pairOf(item), "private");
		if (!text) continue;
		const checked = checkNodePath(text.value);
		if ("error" in checked) {
			r.problem("BAD_PRIVATE", text.pos, `private directory "${text.value}" ${checked.error}`, "write absolute host directories, e.g. `private: [/etc, /var/lib/myapp, /tmp]`");
			continue;
		}
		if (checked.path === "/") {
			r.problem("BAD_PRIVATE", text.pos, "`/` cannot be private: the node would lose the host's programs, /proc and testbed's own files", "name the directories the node writes, e.g. `private: [/etc, /var/lib/myapp, /tmp]`");
			continue;
		}
		const system = systemDirectories.find((dir) => inside(checked.path, dir));
		if (system) {
			r.problem("BAD_PRIVATE", text.pos, `private directory "${checked.path}" is under ${system}, which the kernel or testbed provides to every node`, system === "/run" ? "use another directory for the program's state, e.g. /var/lib/myapp or /tmp" : `remove it: ${system} is not a directory of files`);
			continue;
		}
		if (dirs.some((dir) => dir.value === checked.path)) {
			r.problem("BAD_PRIVATE", text.pos, `private directory "${checked.path}" is listed twice`, "remove one of them");
			continue;
		}
		dirs.push({ value: checked.path, pos: text.pos });
	}
	return dirs;
}

function readFiles(r: YamlReader, pair: Pair, node: NodeDecl): FileDecl[] {
	const map = r.map(r.resolve(pair.value as YamlNode), "files", 'write `files: { /etc/myapp.conf: "peer = ${bob}\\n" }`');
	if (!map) return [];
	if (!node.private?.length) r.report("BAD_FILE", pair.key, `node "${node.name}" places files but has no private directories: they would be written to the host`, "add `private:` with the directories the files go in, e.g. `private: [/etc]`");
	const files: FileDecl[] = [];
	for (const entry of map.items) {
		const keyNode = entry.key as YamlNode;
		const path = isScalar(keyNode) ? String(keyNode.value) : "";
		const pos = r.pos(keyNode);
		const checked = checkNodePath(path);
		if ("error" in checked) {
			r.problem("BAD_FILE", pos, `file "${path}" ${checked.error}`, "write the absolute path the node sees, e.g. `/etc/myapp.conf`");
			continue;
		}
		const dirs = node.private ?? [];
		if (dirs.length > 0 && !dirs.some((dir) => checked.path !== dir.value && inside(checked.path, dir.value))) {
			const near = dirs.map((dir) => dir.value).join(", ");
			r.problem("BAD_FILE", pos, `file "${checked.path}" is not inside a private directory of node "${node.name}" (${near}): it would be written to the host`, dirs.some((dir) => dir.value === checked.path) ? "name a file inside the directory, not the directory itself" : `add its directory to \`private:\`, e.g. \`private: [${[...dirs.map((dir) => dir.value), parentOf(checked.path)].join(", ")}]\``);
			continue;
		}
		if (files.some((file) => file.path.value === checked.path)) {
			r.problem("BAD_FILE", pos, `file "${checked.path}" is placed twice`, "remove one of them");
			continue;
		}
		// A file where a directory must be: another private directory below it, or another file below it.
		const below = dirs.find((dir) => dir.value === checked.path || dir.value.startsWith(`${checked.path}/`))?.value ?? files.find((file) => file.path.value.startsWith(`${checked.path}/`))?.path.value;
		const above = files.find((file) => checked.path.startsWith(`${file.path.value}/`))?.path.value;
		if (below || above) {
			r.problem("BAD_FILE", pos, `file "${checked.path}" ${below === checked.path ? "is a private directory" : below ? `is a directory of "${below}"` : `would be inside file "${above}"`}: a path cannot be a file and a directory`, "place files only, each at a path no other file or private directory is under");
			continue;
		}
		const value = r.resolve(entry.value as YamlNode);
		const file: FileDecl = { path: { value: checked.path, pos }, pos };
		if (isScalar(value) && typeof value.value === "string") file.text = { value: value.value, pos: r.textPos(value) };
		else if (isMap(value)) {
			const fields = r.entries(value, topologyKeys.file, `file "${checked.path}"`);
			const text = r.string(fields.get("text"), "text", true);
			const from = r.string(fields.get("from"), "from");
			if (text) file.text = { value: text.value, pos: r.textPos(r.resolve(fields.get("text")!.value as YamlNode)!) };
			if (from) {
				const bad = from.value.startsWith("/") || from.value.split("/").includes("..");
				if (bad) r.problem("BAD_FILE", from.pos, `\`from: ${from.value}\` must be a path next to the topology file (relative, without \`..\`)`, "put the file beside the topology, e.g. `from: keys/alice`");
				else file.from = from;
			}
			if (text && from) r.problem("BAD_FILE", from.pos, `file "${checked.path}" has both \`text:\` and \`from:\``, "keep one of them");
			if (!text && !from && !fields.has("from")) r.report("MISSING_KEY", value, `file "${checked.path}" has neither \`text:\` nor \`from:\``, 'write `{ text: "…" }` or `{ from: keys/alice }`');
			const mode = fields.get("mode");
			if (mode) file.mode = readMode(r, mode);
		} else {
			r.report("WRONG_TYPE", value ?? keyNode, `file "${checked.path}" must be text or a map`, 'write `"peer = ${bob}\\n"` or `{ from: keys/alice, mode: "0600" }`');
			continue;
		}
		files.push(file);
	}
	return files;
}

function parentOf(path: string): string {
	return path.slice(0, path.lastIndexOf("/")) || "/";
}

function readMode(r: YamlReader, pair: Pair): Located<number> | undefined {
	const node = r.resolve(pair.value as YamlNode);
	const octalNumber = isScalar(node) && typeof node.value === "number" && node.format === "OCT";
	const text = isScalar(node) && typeof node.value === "string" && /^0?[0-7]{3}$/.test(node.value) ? Number.parseInt(node.value, 8) : octalNumber ? (node.value as number) : undefined;
	if (text === undefined || text > 0o777) {
		r.report("BAD_FILE", node ?? pair.key, "`mode:` must be permission bits in octal", 'write e.g. `mode: "0600"`');
		return undefined;
	}
	return { value: text, pos: r.pos(node) };
}

function readLimits(r: YamlReader, pair: Pair, node: NodeDecl): LimitsDecl | undefined {
	const map = r.map(r.resolve(pair.value as YamlNode), "limits", "write `limits: { cpu: 0.25, memory: 128M, pids: 64 }`");
	if (!map) return undefined;
	const entries = r.entries(map, topologyKeys.limits, "limits");
	const limits: LimitsDecl = { pos: r.pos(pair.key) };
	const scalar = (key: string) => {
		const entry = entries.get(key);
		const value = entry ? r.resolve(entry.value as YamlNode) : undefined;
		return entry ? { value: isScalar(value) ? value.value : undefined, pos: r.pos(value ?? entry.key) } : undefined;
	};
	const cpu = scalar("cpu");
	if (cpu) {
		const value = typeof cpu.value === "number" ? cpu.value : Number.NaN;
		if (!(value >= limitBounds.cpuMin && value <= limitBounds.cpuMax))
			r.problem("BAD_LIMIT", cpu.pos, `cpu: ${String(cpu.value)} is not a share of CPU from ${limitBounds.cpuMin} to ${limitBounds.cpuMax} cores`, "write e.g. `cpu: 0.25` (a quarter of one core) or `cpu: 2` (two cores)");
		else limits.cpu = { value, pos: cpu.pos };
	}
	const memory = scalar("memory");
	if (memory) {
		const bytes = parseSize(memory.value);
		if (bytes === undefined || bytes < limitBounds.memoryMin)
			r.problem("BAD_LIMIT", memory.pos, `memory: ${String(memory.value)} is ${bytes === undefined ? "not a size" : "too small for a process to start in"}`, "write at least `memory: 4M`, e.g. `memory: 128M` or `memory: 1G`");
		else limits.memory = { value: bytes, pos: memory.pos };
	}
	const pids = scalar("pids");
	if (pids) {
		const value = typeof pids.value === "number" ? pids.value : Number.NaN;
		if (!(Number.isInteger(value) && value >= limitBounds.pidsMin && value <= limitBounds.pidsMax))
			r.problem("BAD_LIMIT", pids.pos, `pids: ${String(pids.value)} is not a number of processes from ${limitBounds.pidsMin} to ${limitBounds.pidsMax}`, "write e.g. `pids: 64`");
		else limits.pids = { value, pos: pids.pos };
	}
	const disk = scalar("disk");
	if (disk) {
		const bytes = parseSize(disk.value);
		if (bytes === undefined || bytes < limitBounds.diskMin) r.problem("BAD_LIMIT", disk.pos, `disk: ${String(disk.value)} is ${bytes === undefined ? "not a size" : "too small"}`, "write at least `disk: 1M`, e.g. `disk: 64M`");
		else if (!node.private?.length) r.problem("BAD_LIMIT", disk.pos, `disk: limits the node's private files, and node "${node.name}" has none`, "add `private: [...]` or remove `disk:`");
		else limits.disk = { value: bytes, pos: disk.pos };
	}
	return limits;
}
