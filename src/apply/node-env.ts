// What the user's processes in a node see besides its network: the node's name as hostname, and
// every node name resolving to its address. Each node gets a UTS namespace (hostname) and a mount
// namespace (the lab's hosts and resolv.conf bind-mounted over /etc's, /sys showing the node's
// interfaces), both kept by bind mounts under the lab's state folder, so that all of a node's
// processes share them: `exec`, `shell`, programs and checks enter them with the network namespace.
// They are made on first use (a mount namespace copies the host's mount table: cheap for a few
// nodes, not for thousands at every `up`); `down` unmounts everything under the lab's folder.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApplyError } from "../errors.ts";
import { hostsFile, resolvConf } from "../render/names.ts";
import type { Lab, LabNode } from "../resolve/lab.ts";
import { lockLab } from "./lock.ts";
import { netnsPath, stateDir } from "./state-files.ts";
import { run } from "./run.ts";

const envDir = (lab: string) => join(stateDir(lab), "ns");
const utsPath = (lab: string, node: string) => join(envDir(lab), `${node}.uts`);
const mntPath = (lab: string, node: string) => join(envDir(lab), `${node}.mnt`);
const hostsPath = (lab: string) => join(stateDir(lab), "hosts");
const resolvPath = (lab: string) => join(stateDir(lab), "resolv.conf");

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
 * Runs inside the new namespaces, in the node's network namespace; arguments, not text: $1 the
 * hostname, $2 hosts, $3 resolv.conf. It also drops this mount namespace's copies of the
 * namespaces other labs and nodes keep under /run/netns and /run/testbed (they would keep those
 * alive) — with one `umount`, not one per mount: a lab's nodes each copy every other node's and
 * namespace's mounts, so a process per mount made `up` of 40 nodes with programs take 14 s — and
 * mounts a sysfs that shows the node's own interfaces.
 */
const setupScript = `hostname "$1" || exit 21
mount --bind "$2" /etc/hosts || exit 22
mount --bind "$3" /etc/resolv.conf || exit 23
mount -t sysfs sysfs /sys 2>/dev/null
set -- $(awk '$5 ~ "^/run/(netns|testbed)(/|$)" { print $5 }' /proc/self/mountinfo | sort -r)
[ $# -eq 0 ] || umount -l "$@" 2>/dev/null
exit 0`;

/**
 * Make the node's UTS and mount namespaces if they do not exist yet. `locked`: the caller holds the
 * lab's lock (`up` starting programs); otherwise it is taken for the few milliseconds this needs.
 */
export async function ensureNodeEnv(lab: Lab, node: LabNode, options: { locked?: boolean } = {}): Promise<void> {
	if (nodeEnvExists(lab.name, node.name)) return;
	const lock = options.locked ? undefined : await lockLab(lab.name);
	try {
		if (nodeEnvExists(lab.name, node.name)) return;
		if (!existsSync(hostsPath(lab.name)) || !existsSync(resolvPath(lab.name))) writeNameFiles(lab);
		const dir = envDir(lab.name);
		// Namespace files can be kept only on a mount that does not share its mounts: the folder is
		// bind-mounted onto itself, private (once per lab).
		if (!mountPoints().includes(dir)) {
			mkdirSync(dir, { recursive: true, mode: 0o700 });
			const made = await run(["sh", "-c", 'mount --bind "$1" "$1" && mount --make-private "$1"', "testbed-ns-folder", dir]);
			if (made.exitCode !== 0) throw new ApplyError(`cannot prepare ${dir} for node namespaces: ${made.stderr}`, { command: `mount --bind ${dir} ${dir}`, stderr: made.stderr, rolledBack: false });
		}
		for (const path of [utsPath(lab.name, node.name), mntPath(lab.name, node.name)]) closeSync(openSync(path, "a", 0o600));
		const argv = ["nsenter", `--net=${netnsPath(node.netns)}`, "unshare", `--uts=${utsPath(lab.name, node.name)}`, `--mount=${mntPath(lab.name, node.name)}`, "--propagation", "private", "--", "sh", "-c", setupScript, "testbed-node", node.name, hostsPath(lab.name), resolvPath(lab.name)];
		const made = await run(argv);
		if (made.exitCode !== 0)
			throw new ApplyError(`cannot give node "${node.name}" its hostname and names: ${made.stderr.trim() || `exit ${made.exitCode}`}`, { command: argv.join(" "), namespace: node.netns, stderr: made.stderr, rolledBack: false });
	} finally {
		lock?.release();
	}
}

/**
 * The argv that runs `argv` inside the node as the user's programs run: its network, hostname and
 * mount namespaces, in `cwd` (which must exist there; the host's folders do).
 */
export function inNode(lab: string, node: LabNode, argv: string[], cwd: string): string[] {
	return ["nsenter", `--net=${netnsPath(node.netns)}`, `--uts=${utsPath(lab, node.name)}`, `--mount=${mntPath(lab, node.name)}`, `--wd=${cwd}`, "--", ...argv];
}

/** Unmount everything mounted under the lab's state folder (node namespaces, the folder itself), deepest first. */
export async function unmountLab(lab: string): Promise<string[]> {
	const prefix = `${stateDir(lab)}/`;
	const mounts = mountPoints()
		.filter((path) => path.startsWith(prefix))
		.sort((a, b) => b.length - a.length);
	if (mounts.length === 0) return [];
	const result = await run(["umount", "--lazy", ...mounts]);
	const left = mountPoints().filter((path) => path.startsWith(prefix));
	if (left.length > 0) throw new ApplyError(`could not unmount ${left.join(", ")}: ${result.stderr}`, { command: `umount --lazy ${left.join(" ")}`, stderr: result.stderr, rolledBack: false });
	return mounts;
}
