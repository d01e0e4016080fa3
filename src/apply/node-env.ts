// What the user's processes in a node see besides its network: the node's name as hostname, and
// every node name resolving to its address. Each node gets a UTS namespace (hostname) and a mount
// namespace (the lab's hosts and resolv.conf bind-mounted over /etc's, /sys showing the node's
// interfaces), both kept by bind mounts under the lab's state folder, so that all of a node's
// processes share them: `exec`, `shell`, programs and checks enter them with the network namespace.
// They are made on first use (a mount namespace copies the host's mount table: cheap for a few
// nodes, not for thousands at every `up`); `down` unmounts everything under the lab's folder.
// A node that is a lightweight container (`private:` directories, `limits:`) gets them at `up`:
// its private directories are OverlayFS mounts in its mount namespace over layers on a tmpfs of
// its own (node-envs.py), and every process of it joins its cgroups before it starts (`nodeEntry`).
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ApplyError } from "../errors.ts";
import { projectPath } from "../project.ts";
import { hostsFile, resolvConf } from "../render/names.ts";
import { nodeEnvJob, nodeEnvPaths } from "../render/container.ts";
import type { Lab, LabNode } from "../resolve/lab.ts";
import { joinFiles } from "./cgroups.ts";
import { lockLab } from "./lock.ts";
import { netnsPath, runDir, stateDir } from "./state-files.ts";
import { diesWithParent, run, runStreaming } from "./run.ts";
import { pythonPath } from "./which.ts";

const envDir = (lab: string) => nodeEnvPaths(stateDir(lab), "").folder;
const utsPath = (lab: string, node: string) => nodeEnvPaths(stateDir(lab), node).uts;
const mntPath = (lab: string, node: string) => nodeEnvPaths(stateDir(lab), node).mnt;
const hostsPath = (lab: string) => nodeEnvPaths(stateDir(lab), "").hosts;
const resolvPath = (lab: string) => nodeEnvPaths(stateDir(lab), "").resolv;
/** The tmpfs that holds a node's upper and work layers: `KEY/upper` is what the node changed in a private directory. */
export const layersPath = (lab: string, node: string) => nodeEnvPaths(stateDir(lab), node).layers;

/** A node that is a lightweight container: private directories or limits. */
export const isContainer = (node: LabNode) => Boolean(node.private || node.limits);

/** Write the lab's name files (at `up`, and again whenever they are missing). */
export function writeNameFiles(lab: Lab): void {
	mkdirSync(stateDir(lab.name), { recursive: true, mode: 0o700 });
	writeFileSync(hostsPath(lab.name), hostsFile(lab), { mode: 0o644 });
	writeFileSync(resolvPath(lab.name), resolvConf(lab), { mode: 0o644 });
}

/** Mount points of this process's mount namespace, from /proc/self/mountinfo (octal escapes decoded). */
export function mountPoints(): string[] {
	try {
		return readFileSync("/proc/self/mountinfo", "utf8")
			.split("\n")
			.filter(Boolean)
			.map((line) => line.split(" ")[4].replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))));
	} catch {
		return [];
	}
}

/** Whether the node's namespaces exist (its mount namespace file is a mount point). */
export function nodeEnvExists(lab: string, node: string): boolean {
	return mountPoints().includes(mntPath(lab, node));
}


/**
 * Make the node's UTS and mount namespaces if they do not exist yet. `locked`: the caller holds the
 * lab's lock (`up` starting programs); otherwise it is taken for the few milliseconds this needs.
 */
export async function ensureNodeEnv(lab: Lab, node: LabNode, options: { locked?: boolean } = {}): Promise<void> {
	if (nodeEnvExists(lab.name, node.name)) return;
	const lock = options.locked ? undefined : await lockLab(lab.name);
	try {
		if (nodeEnvExists(lab.name, node.name)) return;
		if (isContainer(node)) return await makeNodeEnvs(lab, [node]);
		await prepareEnvFolder(lab);
		await makeNodeEnvWithTools(lab, node);
	} finally {
		lock?.release();
	}
}

/** The lab's name files, where they are missing. */
function ensureNameFiles(lab: Lab): void {
	if (!existsSync(hostsPath(lab.name)) || !existsSync(resolvPath(lab.name))) writeNameFiles(lab);
}

/** The lab's name files, and the folder that keeps node namespaces: bind-mounted onto itself, private (once per lab). */
async function prepareEnvFolder(lab: Lab, mounted = new Set(mountPoints())): Promise<void> {
	ensureNameFiles(lab);
	const dir = envDir(lab.name);
	// Namespace files can be kept only on a mount that does not share its mounts (and the nodes'
	// tmpfs layers below it are then nobody else's either).
	if (mounted.has(dir)) return;
	mkdirSync(dir, { recursive: true, mode: 0o700 });
	const made = await run(["sh", "-c", 'mount --bind "$1" "$1" && mount --make-private "$1"', "testbed-ns-folder", dir]);
	if (made.exitCode !== 0) throw new ApplyError(`cannot prepare ${dir} for node namespaces: ${made.stderr}`, { command: `mount --bind ${dir} ${dir}`, stderr: made.stderr, rolledBack: false });
}

type EnvLine = { done: string; ms: number } | { failed: string; step: string; error: string } | { unavailable: string };

/**
 * Make the namespaces of nodes that are containers (their private directories mounted, their files
 * placed): with node-envs.py, one process for all of them; without python3, a few processes per node.
 */
export async function makeNodeEnvs(lab: Lab, nodes: LabNode[], signal?: AbortSignal): Promise<void> {
	const mounted = new Set(mountPoints());
	const todo = nodes.filter((node) => !mounted.has(mntPath(lab.name, node.name)));
	if (todo.length === 0) return;
	const python = pythonPath();
	if (!python) {
		await prepareEnvFolder(lab, mounted);
		for (const node of todo) await makeNodeEnvWithTools(lab, node);
		return;
	}
	// The helper makes the folder a private mount of its own where it is not yet (one process less).
	ensureNameFiles(lab);
	mkdirSync(envDir(lab.name), { recursive: true, mode: 0o700 });
	const argv = diesWithParent([python, "-I", "-S", projectPath("src", "apply", "node-envs.py"), String(process.pid)]);
	let failure: Extract<EnvLine, { failed: string }> | undefined;
	let unavailable = false;
	const result = await runStreaming(argv, {
		input: JSON.stringify({ folder: mounted.has(envDir(lab.name)) ? null : envDir(lab.name), roots: ["/run/netns", runDir()], nodes: todo.map((node) => nodeEnvJob(stateDir(lab.name), lab.name, node)) }),
		signal,
		onLine: (text) => {
			try {
				const line = JSON.parse(text) as EnvLine;
				if ("failed" in line) failure ??= line;
				if ("unavailable" in line) unavailable = true;
			} catch {}
		},
	});
	if (failure) {
		const node = todo.find((candidate) => candidate.name === failure!.failed)!;
		throw envError(lab, node, failure.step, failure.error);
	}
	// A kernel older than the mount API (Linux 5.2): nothing was made; the tools do it.
	if (unavailable) {
		await prepareEnvFolder(lab);
		for (const node of todo) await makeNodeEnvWithTools(lab, node);
		return;
	}
	if (result.exitCode !== 0) throw new ApplyError(`making the nodes' private directories failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`, { command: argv.join(" "), stderr: result.stderr, rolledBack: false });
}

function envError(lab: Lab, node: LabNode, step: string, error: string): ApplyError {
	const pos = node.private?.dirs[0]?.pos ?? node.pos;
	const source = `${lab.file}:${pos.line}:${pos.col}`;
	const what = node.private ? "its private directories" : "its hostname and names";
	return new ApplyError(`${source}: giving node "${node.name}" ${what} failed\n  step:   ${step}\n  kernel: ${error}`, { command: step, namespace: node.netns, stderr: error, source, rolledBack: false });
}

/**
 * Runs inside the new namespaces, in the node's network namespace; arguments, not text: $1 the
 * hostname, $2 hosts, $3 resolv.conf, then lower, upper and work of each private directory.
 * Overlays first (a bind over /etc's files below a later overlay would be hidden by it), then the
 * names and a sysfs that shows the node's own interfaces; then it drops this mount namespace's
 * copies of the namespaces other labs and nodes keep under /run/netns and /run/testbed (they would
 * keep those alive) — with one `umount`, not one per mount: a lab's nodes each copy every other
 * node's and namespace's mounts, so a process per mount made `up` of 40 nodes with programs take
 * 14 s. node-envs.py does the same with system calls.
 */
const setupScript = `hostname "$1" || exit 21
hosts=$2 resolv=$3; shift 3
while [ $# -ge 3 ]; do mount -t overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" testbed "$1" || exit 24; shift 3; done
mount --bind "$hosts" /etc/hosts || exit 22
mount --bind "$resolv" /etc/resolv.conf || exit 23
mount -t sysfs sysfs /sys 2>/dev/null
set -- $(awk '$5 ~ "^/run/(netns|testbed)(/|$)" { print $5 }' /proc/self/mountinfo | sort -r)
[ $# -eq 0 ] || umount -l "$@" 2>/dev/null
exit 0`;

/**
 * A node's namespaces made with processes: for a container node without python3, `mount` for its
 * tmpfs and its files written here first; then `unshare … sh` for the rest (every plain node's way).
 */
async function makeNodeEnvWithTools(lab: Lab, node: LabNode): Promise<void> {
	const job = nodeEnvJob(stateDir(lab.name), lab.name, node);
	const overlays: string[] = [];
	if (job.fs) {
		mkdirSync(job.fs.tmpfs, { recursive: true, mode: 0o700 });
		const mounted = await run(["mount", "-t", "tmpfs", "-o", `size=${job.fs.size},mode=0755,nosuid,nodev`, job.fs.name, job.fs.tmpfs]);
		if (mounted.exitCode !== 0) throw envError(lab, node, `mount tmpfs ${job.fs.tmpfs}`, mounted.stderr.trim());
		for (const dir of job.fs.dirs) {
			for (const path of [dir.upper, dir.work]) mkdirSync(path, { recursive: true, mode: 0o755 });
			copyAttributes(dir.path, dir.upper);
			overlays.push(dir.path, dir.upper, dir.work);
		}
		for (const file of job.fs.files) {
			try {
				const parts = dirname(file.relative).split("/").filter((part) => part !== ".");
				for (let depth = 1; depth <= parts.length; depth++) {
					const made = join(file.upper_root, ...parts.slice(0, depth));
					if (existsSync(made)) continue;
					mkdirSync(made, { mode: 0o755 });
					copyAttributes(join(file.dir, ...parts.slice(0, depth)), made);
				}
				const target = join(file.upper_root, file.relative);
				if ("from" in file) copyFileSync(file.from, target);
				else writeFileSync(target, file.text);
				chmodSync(target, file.mode);
			} catch (error) {
				throw envError(lab, node, `file ${file.path}`, (error as Error).message);
			}
		}
	}
	for (const path of [job.uts, job.mnt]) closeSync(openSync(path, "a", 0o600));
	const argv = ["nsenter", `--net=${job.netns}`, "unshare", `--uts=${job.uts}`, `--mount=${job.mnt}`, "--propagation", "private", "--", "sh", "-c", setupScript, "testbed-node", node.name, job.hosts, job.resolv, ...overlays];
	const made = await run(argv);
	if (made.exitCode !== 0) throw envError(lab, node, made.exitCode === 24 ? "mount overlay" : "unshare", made.stderr.trim() || `exit ${made.exitCode}`);
}

function copyAttributes(from: string, to: string): void {
	try {
		const stat = statSync(from);
		chownSync(to, stat.uid, stat.gid);
		chmodSync(to, stat.mode & 0o7777);
	} catch {}
}

/**
 * Joins the cgroups given before `--` (writes its own pid into each `cgroup.procs`), then runs what
 * follows it: a constant script, the files and the command as arguments. Exit 125 when a cgroup
 * cannot be joined, before the command runs.
 */
const joinScript = 'for f do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; done; while [ "$1" != -- ]; do shift; done; shift; exec "$@"';

/** The argv prefix that makes what follows a process of the node: its cgroups (with `limits:`), then its namespaces. */
export function nodeEntry(lab: string, node: LabNode, cwd?: string): string[] {
	const enter = ["nsenter", `--net=${netnsPath(node.netns)}`, `--uts=${utsPath(lab, node.name)}`, `--mount=${mntPath(lab, node.name)}`, ...(cwd === undefined ? [] : [`--wd=${cwd}`]), "--"];
	// Joined before entering the mount namespace: the node's /sys covers /sys/fs/cgroup.
	const join = node.limits ? joinFiles(lab, node) : [];
	return join.length > 0 ? ["sh", "-c", joinScript, "testbed-cgroup", ...join, "--", ...enter] : enter;
}

/**
 * The argv that runs `argv` inside the node as the user's programs run: its cgroups, its network,
 * hostname and mount namespaces, in `cwd` (which must exist there; the host's folders do).
 */
export function inNode(lab: string, node: LabNode, argv: string[], cwd: string): string[] {
	return [...nodeEntry(lab, node, cwd), ...argv];
}

/**
 * Unmount everything mounted under the lab's state folder (node namespaces, their layers, the folder
 * itself): the topmost mounts, lazily — one detach takes every mount below it (umount(8) per mount
 * reads the whole mount table each time: 0.6 s for the 600 mounts of 200 container nodes).
 */
export async function unmountLab(lab: string): Promise<string[]> {
	const prefix = `${stateDir(lab)}/`;
	const mounts = mountPoints().filter((path) => path.startsWith(prefix));
	if (mounts.length === 0) return [];
	const top = [...new Set(mounts.filter((path) => !mounts.some((other) => other !== path && path.startsWith(`${other}/`))))];
	const result = await run(["umount", "--lazy", ...top]);
	const left = mountPoints().filter((path) => path.startsWith(prefix));
	if (left.length > 0) throw new ApplyError(`could not unmount ${left.join(", ")}: ${result.stderr}`, { command: `umount --lazy ${left.join(" ")}`, stderr: result.stderr, rolledBack: false });
	return mounts;
}
