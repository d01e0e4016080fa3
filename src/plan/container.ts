// Plan the nodes that are lightweight containers: for a node with `limits:`, its cgroup directory in
// each hierarchy the host has and the limit files written there; for a node with `private:`, its
// OverlayFS layers (applied by apply/node-env.ts). Pure: the host's cgroup layout comes in features.
import type { Lab, LabNode } from "../resolve/lab.ts";
import type { CgroupController, CgroupDir, CgroupLayout, ContainerPlan, HostFeatures, Requirement } from "./operations.ts";

/** The CFS period every quota is a share of (the kernel's default). */
export const cpuPeriodUs = 100_000;

/** Where cgroup v2 is mounted on most machines, with every controller: what `plan` assumes on a host it has not read. */
export const pureV2: CgroupLayout = { v2: "/sys/fs/cgroup", controllers: { cpu: { version: 2, mount: "/sys/fs/cgroup" }, memory: { version: 2, mount: "/sys/fs/cgroup" }, pids: { version: 2, mount: "/sys/fs/cgroup" } } };

/** The folder under each hierarchy's root that holds a lab's cgroups: testbed/LAB (LAB/NODE below it). */
export const labCgroup = (mount: string, lab: string) => `${mount}/testbed/${lab}`;

const controllerOf: Record<CgroupController, (limits: NonNullable<LabNode["limits"]>) => boolean> = {
	cpu: (limits) => limits.cpu !== undefined,
	memory: (limits) => limits.memoryBytes !== undefined,
	pids: (limits) => limits.pids !== undefined,
};

/** The files that set a limit, v1 and v2 (v1 memory: swap included where the kernel accounts it; v2: no swap). */
function limitWrites(controller: CgroupController, version: 1 | 2, limits: NonNullable<LabNode["limits"]>): CgroupDir["writes"] {
	if (controller === "cpu" && limits.cpu !== undefined) {
		const quota = String(Math.round(limits.cpu * cpuPeriodUs));
		return version === 2 ? [{ file: "cpu.max", value: `${quota} ${cpuPeriodUs}` }] : [{ file: "cpu.cfs_period_us", value: String(cpuPeriodUs) }, { file: "cpu.cfs_quota_us", value: quota }];
	}
	if (controller === "memory" && limits.memoryBytes !== undefined) {
		const bytes = String(limits.memoryBytes);
		return version === 2
			? [{ file: "memory.max", value: bytes }, { file: "memory.swap.max", value: "0", optional: true }]
			: [{ file: "memory.limit_in_bytes", value: bytes }, { file: "memory.memsw.limit_in_bytes", value: bytes, optional: true }];
	}
	if (controller === "pids" && limits.pids !== undefined) return [{ file: "pids.max", value: String(limits.pids) }];
	return [];
}

/**
 * A node's cgroup directories: one per hierarchy among cpu, memory and pids the host has (a limit is
 * written where declared; the others still count the node's use for `ps`), the v2 mount on a
 * hybrid host, and v1 cpuacct for CPU usage where there is no v2.
 */
export function cgroupDirs(layout: CgroupLayout, lab: string, node: LabNode): CgroupDir[] {
	const limits = node.limits;
	if (!limits) return [];
	const byMount = new Map<string, CgroupDir>();
	const dirOf = (mount: string, version: 1 | 2) => {
		let dir = byMount.get(mount);
		if (!dir) byMount.set(mount, (dir = { dir: `${labCgroup(mount, lab)}/${node.name}`, mount, version, controllers: [], writes: [] }));
		return dir;
	};
	if (layout.v2) dirOf(layout.v2, 2);
	for (const controller of ["cpu", "memory", "pids"] as const) {
		const where = layout.controllers[controller];
		if (!where) continue;
		const dir = dirOf(where.mount, where.version);
		dir.controllers.push(controller);
		dir.writes.push(...limitWrites(controller, where.version, limits));
	}
	if (!layout.v2 && layout.cpuacct) dirOf(layout.cpuacct, 1).controllers.push("cpuacct");
	return [...byMount.values()];
}

/** Every directory a lab's limits make, the lab's folders last (the order they are removed in is the reverse). */
export function labCgroupFolders(layout: CgroupLayout, lab: string, containers: ContainerPlan[]): string[] {
	const mounts = new Set(containers.flatMap((container) => container.cgroups.map((cgroup) => cgroup.mount)));
	return [...mounts].flatMap((mount) => [`${mount}/testbed`, labCgroup(mount, lab)]);
}

export function planContainers(lab: Lab, features: HostFeatures): { containers: ContainerPlan[]; unmet: Requirement[] } {
	const layout = features.cgroups ?? pureV2;
	const containers: ContainerPlan[] = [];
	const unmet: Requirement[] = [];
	for (const node of lab.nodes) {
		if (!node.limits && !node.private) continue;
		if (node.private && features.overlay === false) unmet.push({ feature: "overlay", why: `node ${node.name}'s private directories`, keys: ["private"], pos: node.private.dirs[0].pos });
		const enable: ContainerPlan["enable"] = [];
		if (node.limits) {
			for (const controller of ["cpu", "memory", "pids"] as const)
				if (controllerOf[controller](node.limits) && !layout.controllers[controller]) unmet.push({ feature: `cgroup ${controller}`, why: `node ${node.name}'s \`${controller}:\` limit`, keys: [`limits.${controller}`], pos: node.limits.pos });
			const v2 = (["cpu", "memory", "pids"] as const).filter((controller) => layout.controllers[controller]?.version === 2);
			// The host's own root is not testbed's to change: a controller must be enabled there already (see cgroups.ts).
			if (v2.length > 0 && layout.v2) for (const dir of [`${layout.v2}/testbed`, labCgroup(layout.v2, lab.name)]) enable.push({ dir, controllers: v2 });
		}
		containers.push({ node: node.name, netns: node.netns, pos: node.pos, cgroups: cgroupDirs(layout, lab.name, node), enable, ...(node.private ? { private: node.private } : {}) });
	}
	return { containers, unmet };
}
