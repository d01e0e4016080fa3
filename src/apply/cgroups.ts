// A lab's cgroups on this host: where the controllers are mounted (v2, v1 or both), making a node's
// directories and writing its limits, the files a process writes itself into to join them, what a
// node uses now (for `ps`), and removing them — all with the kernel's files, no process started.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { ApplyError } from "../errors.ts";
import { cgroupDirs, labCgroupFolders } from "../plan/container.ts";
import type { CgroupController, CgroupLayout, ContainerPlan, HostFeatures } from "../plan/operations.ts";
import type { LabNode } from "../resolve/lab.ts";

/**
 * The cgroup hierarchies in a mountinfo text. `v2Controllers(mount)` reads what a cgroup2 mount's
 * root hands down to its children (`cgroup.subtree_control`): what testbed's own directories can
 * enable. A controller bound to a v1 hierarchy is not available in v2 (the kernel lets a controller
 * live in one hierarchy only), so v2 wins only where it hands the controller down. testbed never
 * changes the host's root: a controller the root does not hand down is missing (`doctor` says how
 * to enable it).
 */
export function parseCgroupLayout(mountinfo: string, v2Controllers: (mount: string) => string[]): CgroupLayout {
	const layout: CgroupLayout = { controllers: {} };
	for (const line of mountinfo.split("\n")) {
		const [before, after] = line.split(" - ");
		if (!after) continue;
		const mount = before.split(" ")[4]?.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
		const [type, , options = ""] = after.split(" ");
		if (!mount) continue;
		if (type === "cgroup2" && !layout.v2) {
			layout.v2 = mount;
			for (const controller of v2Controllers(mount)) if (controller === "cpu" || controller === "memory" || controller === "pids") layout.controllers[controller] ??= { version: 2, mount };
		}
		if (type === "cgroup") {
			const names = options.split(",");
			for (const controller of ["cpu", "memory", "pids"] as const) if (names.includes(controller)) layout.controllers[controller] ??= { version: 1, mount };
			if (names.includes("cpuacct")) layout.cpuacct ??= mount;
		}
	}
	return layout;
}

let cachedLayout: CgroupLayout | undefined;

/** This host's cgroup layout (read once per process: mounts of cgroup hierarchies do not come and go). */
export function cgroupLayout(): CgroupLayout {
	if (cachedLayout) return cachedLayout;
	let mountinfo = "";
	try {
		mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
	} catch {}
	cachedLayout = parseCgroupLayout(mountinfo, (mount) => readText(`${mount}/cgroup.subtree_control`)?.split(/\s+/).filter(Boolean) ?? []);
	return cachedLayout;
}

/** Whether this kernel has OverlayFS: registered already, or a module it can load on the first mount. */
export function overlaySupported(): boolean {
	if (/\toverlay$/m.test(readText("/proc/filesystems") ?? "")) return true;
	const release = readText("/proc/sys/kernel/osrelease")?.trim();
	return release ? existsSync(`/lib/modules/${release}/kernel/fs/overlayfs`) : false;
}

/** The features with what is read from the host at every run (cgroup layout, OverlayFS) filled in where not given. */
export function withHostLayout(features: HostFeatures): HostFeatures & { cgroups: CgroupLayout; overlay: boolean; ipv6: boolean } {
	return { ...features, cgroups: features.cgroups ?? cgroupLayout(), overlay: features.overlay ?? overlaySupported(), ipv6: features.ipv6 ?? ipv6Supported() };
}

/**
 * Whether new namespaces get IPv6: the kernel has it (not booted with ipv6.disable=1), and they do not
 * inherit the host's `disable_ipv6` (net.core.devconf_inherit_init_net) while the host has it set.
 */
export function ipv6Supported(): boolean {
	if (!existsSync("/proc/sys/net/ipv6")) return false;
	const inherit = readText("/proc/sys/net/core/devconf_inherit_init_net")?.trim();
	return !(inherit === "1" || inherit === "3") || readText("/proc/sys/net/ipv6/conf/default/disable_ipv6")?.trim() !== "1";
}

/** What a controller's absence means and how to get it, for `up` (exit 4) and `doctor`. */
export function controllerFix(controller: CgroupController | "overlay"): string {
	if (controller === "overlay") return "load OverlayFS (`modprobe overlay`; a kernel with CONFIG_OVERLAY_FS), or remove `private:`";
	return `mount the ${controller} controller: with cgroup v2 enable it (\`echo +${controller} > /sys/fs/cgroup/cgroup.subtree_control\`), with v1 mount its hierarchy (\`mkdir -p /sys/fs/cgroup/${controller} && mount -t cgroup -o ${controller} none /sys/fs/cgroup/${controller}\`); or remove \`${controller}:\` from \`limits:\`; \`testbed doctor\` shows what this host has`;
}

/** The directories `up` makes for a lab's limits, the deepest first: what the ledger records for `down`. */
export function labCgroups(containers: ContainerPlan[], layout: CgroupLayout, lab: string): string[] {
	const nodes = containers.flatMap((container) => container.cgroups.map((cgroup) => cgroup.dir));
	if (nodes.length === 0) return [];
	return [...nodes, ...labCgroupFolders(layout, lab, containers).reverse()];
}

/** Make every node's cgroup directories and write their limits. Throws naming the node and the file. */
export function createCgroups(containers: ContainerPlan[], file: string): void {
	const enabled = new Set<string>();
	for (const container of containers) {
		const fail = (path: string, error: unknown) =>
			new ApplyError(`${file}:${container.pos.line}:${container.pos.col}: giving node "${container.node}" its limits failed\n  file:   ${path}\n  kernel: ${(error as Error).message}\n  everything \`up\` had created was removed`, { command: `write ${path}`, stderr: (error as Error).message, source: `${file}:${container.pos.line}:${container.pos.col}`, rolledBack: true });
		for (const { dir, controllers } of container.enable) {
			if (enabled.has(dir)) continue;
			enabled.add(dir);
			mkdirSync(dir, { recursive: true });
			const have = readText(`${dir}/cgroup.subtree_control`)?.split(/\s+/) ?? [];
			const missing = controllers.filter((controller) => !have.includes(controller));
			if (missing.length === 0) continue;
			try {
				writeFileSync(`${dir}/cgroup.subtree_control`, missing.map((controller) => `+${controller}`).join(" "));
			} catch (error) {
				throw fail(`${dir}/cgroup.subtree_control`, error);
			}
		}
		for (const cgroup of container.cgroups) {
			try {
				mkdirSync(cgroup.dir, { recursive: true });
			} catch (error) {
				throw fail(cgroup.dir, error);
			}
			for (const write of cgroup.writes) {
				const path = `${cgroup.dir}/${write.file}`;
				if (write.optional && !existsSync(path)) continue;
				try {
					writeFileSync(path, write.value);
				} catch (error) {
					throw fail(path, error);
				}
			}
		}
	}
}

/** The `cgroup.procs` files a process of the node writes its pid into (the JOIN wrapper), or none. */
export function joinFiles(lab: string, node: LabNode): string[] {
	return cgroupDirs(cgroupLayout(), lab, node).map((cgroup) => `${cgroup.dir}/cgroup.procs`);
}

/**
 * Remove a lab's cgroups (the ledger's list, deepest first): every process still in a node's cgroup
 * is killed (`cgroup.kill` where the kernel has it, else SIGKILL to each pid in rounds), then the
 * directories go. A directory that is not empty after 2 s is left and named. The lab's folders are
 * removed only when empty: `testbed/` holds other labs' too.
 */
export async function removeCgroups(dirs: string[]): Promise<string[]> {
	const nodes = dirs.filter((dir) => existsSync(dir) && !isLabFolder(dir, dirs));
	for (const dir of nodes) if (existsSync(`${dir}/cgroup.kill`)) tryWrite(`${dir}/cgroup.kill`, "1");
	const left: string[] = [];
	const deadline = Date.now() + 2000;
	for (const dir of dirs) {
		if (!existsSync(dir)) continue;
		const folder = isLabFolder(dir, dirs);
		for (;;) {
			if (!folder) for (const pid of pidsIn(dir)) tryKill(pid);
			try {
				rmdirSync(dir);
				break;
			} catch (error) {
				const code = (error as NodeJS.ErrnoException).code;
				if (code === "ENOENT") break;
				// Another lab's cgroups under testbed/: not ours to remove.
				if (folder && (code === "EBUSY" || code === "ENOTEMPTY") && hasChildren(dir)) break;
				if (Date.now() > deadline) {
					left.push(dir);
					break;
				}
				await new Promise((resolve) => setTimeout(resolve, 20));
			}
		}
	}
	return left;
}

const isLabFolder = (dir: string, dirs: string[]) => dirs.some((other) => other !== dir && other.startsWith(`${dir}/`));

function hasChildren(dir: string): boolean {
	try {
		return readdirSync(dir, { withFileTypes: true }).some((entry) => entry.isDirectory());
	} catch {
		return false;
	}
}

function pidsIn(dir: string): number[] {
	return (readText(`${dir}/cgroup.procs`) ?? "").split("\n").filter(Boolean).map(Number);
}

function tryKill(pid: number): void {
	try {
		process.kill(pid, "SIGKILL");
	} catch {}
}

function tryWrite(path: string, value: string): void {
	try {
		writeFileSync(path, value);
	} catch {}
}

/** The files a node's use is read from, per cgroup version (v1 CPU time comes from cpuacct, in ns). */
const usageFiles = {
	2: { memory: "memory.current", oom: "memory.events" },
	1: { memory: "memory.usage_in_bytes", oom: "memory.oom_control" },
} as const;

/** The file that counts a node's OOM kills (v2 memory.events, v1 memory.oom_control), where it has a memory limit. */
export function oomCounterFile(lab: string, node: LabNode): string | undefined {
	if (node.limits?.memoryBytes === undefined) return undefined;
	const memory = cgroupDirs(cgroupLayout(), lab, node).find((cgroup) => cgroup.controllers.includes("memory"));
	return memory && `${memory.dir}/${usageFiles[memory.version].oom}`;
}

/** The OOM kills counted in such a file (0 where it cannot be read). */
export function oomKills(file: string): number {
	return counter(file, "oom_kill") ?? 0;
}

/** A "NAME VALUE" line of a cgroup's key-value file (cpu.stat, memory.events, …). */
function counter(path: string, name: string): number | undefined {
	const match = new RegExp(`^${name} (\\d+)$`, "m").exec(readText(path) ?? "");
	return match ? Number(match[1]) : undefined;
}

/** What a node's processes use now, read from its cgroup files; undefined where the host has no such counter. */
export interface NodeUsage {
	/** CPU time used since the node's cgroup was made, microseconds. */
	cpuUs?: number;
	memoryBytes?: number;
	pids?: number;
	/** Times the kernel's OOM killer ended one of the node's processes. */
	oomKills?: number;
	/** Periods in which the node wanted more CPU than its quota. */
	throttled?: number;
}

export function nodeUsage(lab: string, node: LabNode): NodeUsage | undefined {
	const dirs = cgroupDirs(cgroupLayout(), lab, node);
	if (dirs.length === 0 || !dirs.some((cgroup) => existsSync(cgroup.dir))) return undefined;
	const usage: NodeUsage = {};
	for (const { dir, version, controllers } of dirs) {
		const files = usageFiles[version];
		// v2's cpu.stat counts usage in every cgroup, with or without the cpu controller.
		if (version === 2) usage.cpuUs ??= counter(`${dir}/cpu.stat`, "usage_usec");
		if (controllers.includes("cpuacct")) {
			const ns = numberOf(readText(`${dir}/cpuacct.usage`));
			if (ns !== undefined) usage.cpuUs ??= Math.round(ns / 1000);
		}
		if (controllers.includes("cpu")) usage.throttled ??= counter(`${dir}/cpu.stat`, "nr_throttled");
		if (controllers.includes("memory")) {
			usage.memoryBytes ??= numberOf(readText(`${dir}/${files.memory}`));
			usage.oomKills ??= counter(`${dir}/${files.oom}`, "oom_kill");
		}
		if (controllers.includes("pids")) usage.pids ??= numberOf(readText(`${dir}/pids.current`));
	}
	return usage;
}

function numberOf(text: string | undefined): number | undefined {
	const value = Number(text?.trim());
	return text !== undefined && Number.isFinite(value) ? value : undefined;
}

function readText(path: string): string | undefined {
	try {
		return readFileSync(path, "utf8");
	} catch {
		return undefined;
	}
}
