// Render what makes nodes lightweight containers: the input of node-envs.py (the helper that makes
// their namespaces and private directories), and the same work as the commands a person would type
// (`testbed plan`): mkdir and echo for cgroups, mount for tmpfs and OverlayFS, unshare for the namespaces.
// Pure: paths are computed from the lab's state folder, nothing is read or written.
import type { ContainerPlan } from "../plan/operations.ts";
import type { LabNode } from "../resolve/lab.ts";
import { formatSize } from "../validate/units.ts";

/** Where a node's namespaces and layers are kept while the lab is up (under the lab's state folder). */
export function nodeEnvPaths(stateDir: string, node: string) {
	const ns = `${stateDir}/ns`;
	return { folder: ns, uts: `${ns}/${node}.uts`, mnt: `${ns}/${node}.mnt`, layers: `${ns}/${node}.fs`, hosts: `${stateDir}/hosts`, resolv: `${stateDir}/resolv.conf` };
}

/** node-envs.py's job for one node (see its header): namespaces, tmpfs, layers and files. */
export function nodeEnvJob(stateDir: string, lab: string, node: Pick<LabNode, "name" | "netns" | "private">) {
	const paths = nodeEnvPaths(stateDir, node.name);
	const layerOf = (dir: string) => `${paths.layers}/${node.private!.dirs.find((candidate) => candidate.path === dir)!.key}`;
	const fs = node.private && {
		tmpfs: paths.layers,
		size: node.private.diskBytes,
		name: `testbed-${lab}-${node.name}`,
		dirs: node.private.dirs.map((dir) => ({ path: dir.path, upper: `${layerOf(dir.path)}/upper`, work: `${layerOf(dir.path)}/work` })),
		files: node.private.files.map((file) => ({
			path: file.path,
			dir: file.dir,
			relative: file.relative,
			upper_root: `${layerOf(file.dir)}/upper`,
			...(file.from === undefined ? { text: file.text ?? "" } : { from: file.from }),
			mode: file.mode,
		})),
	};
	return { node: node.name, netns: `/run/netns/${node.netns}`, uts: paths.uts, mnt: paths.mnt, hostname: node.name, hosts: paths.hosts, resolv: paths.resolv, fs: fs ?? null };
}

const quote = (text: string) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`);

/** A node's cgroups as commands: the directories, the limits written into them, and how its processes join. */
export function cgroupCommands(container: ContainerPlan, enabled: Set<string>): string[] {
	const out: string[] = [];
	for (const { dir, controllers } of container.enable) {
		if (enabled.has(dir)) continue;
		enabled.add(dir);
		out.push(`echo '${controllers.map((controller) => `+${controller}`).join(" ")}' > ${dir}/cgroup.subtree_control   # where not enabled yet`);
	}
	if (container.cgroups.length === 0) return out;
	out.push(`mkdir -p ${container.cgroups.map((cgroup) => cgroup.dir).join(" ")}`);
	for (const cgroup of container.cgroups) for (const write of cgroup.writes) out.push(`echo ${quote(write.value)} > ${cgroup.dir}/${write.file}${write.optional ? "   # where the kernel has it" : ""}`);
	out.push(`# each process of ${container.node} (programs, exec, shell, agents) joins first: sh -c 'echo $$ > DIR/cgroup.procs … ; exec nsenter …' for each DIR above`);
	return out;
}

/** A node's namespaces and private directories as commands: tmpfs, layers, files, then `unshare` with the overlays. */
export function nodeEnvCommands(stateDir: string, lab: string, node: Pick<LabNode, "name" | "netns" | "private">): string[] {
	const job = nodeEnvJob(stateDir, lab, node);
	const out: string[] = [];
	if (job.fs) {
		out.push(`mount -t tmpfs -o size=${job.fs.size % 1024 ** 2 === 0 ? `${job.fs.size / 1024 ** 2}M` : job.fs.size},mode=0755,nosuid,nodev ${job.fs.name} ${job.fs.tmpfs}   # the node's writes: ${formatSize(job.fs.size)} at most`);
		out.push(`mkdir -p ${job.fs.dirs.flatMap((dir) => [dir.upper, dir.work]).join(" ")}`);
		for (const file of job.fs.files) {
			const target = `${file.upper_root}/${file.relative}`;
			if (file.relative.includes("/")) out.push(`mkdir -p ${target.slice(0, target.lastIndexOf("/"))}`);
			if ("from" in file) out.push(`cp ${quote(file.from)} ${target}`);
			else out.push(`cat > ${target} <<'EOF'`, ...file.text.replace(/\n$/, "").split("\n"), "EOF");
			out.push(`chmod ${file.mode.toString(8).padStart(4, "0")} ${target}`);
		}
	}
	out.push(`touch ${job.uts} ${job.mnt}`);
	out.push(`nsenter --net=${job.netns} unshare --uts=${job.uts} --mount=${job.mnt} --propagation private sh -c '`);
	out.push(`  hostname ${quote(node.name)}`);
	for (const dir of job.fs?.dirs ?? []) out.push(`  mount -t overlay -o lowerdir=${dir.path},upperdir=${dir.upper},workdir=${dir.work} testbed ${dir.path}`);
	out.push(`  mount --bind ${job.hosts} /etc/hosts`, `  mount --bind ${job.resolv} /etc/resolv.conf`, "  mount -t sysfs sysfs /sys", "  umount -l /run/netns /run/testbed/*/ns   # this namespace's copies of other nodes' namespaces", "'");
	return out;
}
