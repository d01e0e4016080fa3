// Nodes as lightweight containers, planned without a host: where each controller lives (v1, v2 or
// hybrid mountinfo), the cgroup files a limit writes, what a host lacks, and the plan's text (golden).
import test from "ava";
import { parseCgroupLayout } from "../../src/apply/cgroups.ts";
import { loadLab, loadLabText } from "../../src/load.ts";
import { cgroupDirs, labCgroupFolders, planContainers, pureV2 } from "../../src/plan/container.ts";
import type { CgroupLayout, HostFeatures } from "../../src/plan/operations.ts";
import { planLab } from "../../src/plan/plan.ts";
import { renderBatchText, renderPlanText } from "../../src/render/plan-text.ts";
import { containerLines } from "../../src/report/graph-model.ts";
import { formatSize, parseSize } from "../../src/validate/units.ts";
import { golden } from "../helpers/golden.ts";

/** This machine's: each v1 controller alone, cgroup2 at `unified` without controllers. */
const hybrid = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;
/** A systemd machine: everything in cgroup v2. */
const unified = "25 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";
/** An old v1 machine: cpu and cpuacct share a hierarchy, no v2, no pids. */
const legacy = "26 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n27 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";

test("the cgroup layout is read from mountinfo: hybrid, pure v2 and old v1 hosts", (t) => {
	const v2Of = (mount: string) => (mount === "/sys/fs/cgroup" ? ["cpuset", "cpu", "io", "memory", "pids"] : []);
	t.deepEqual(parseCgroupLayout(hybrid, () => ["hugetlb"]), {
		v2: "/sys/fs/cgroup/unified",
		controllers: { cpu: { version: 1, mount: "/sys/fs/cgroup/cpu" }, memory: { version: 1, mount: "/sys/fs/cgroup/memory" }, pids: { version: 1, mount: "/sys/fs/cgroup/pids" } },
		cpuacct: "/sys/fs/cgroup/cpuacct",
	});
	t.deepEqual(parseCgroupLayout(unified, v2Of), pureV2);
	t.deepEqual(parseCgroupLayout(legacy, v2Of), { controllers: { cpu: { version: 1, mount: "/sys/fs/cgroup/cpu,cpuacct" }, memory: { version: 1, mount: "/sys/fs/cgroup/memory" } }, cpuacct: "/sys/fs/cgroup/cpu,cpuacct" });
});

const lab = loadLabText("name: box\nnodes:\n  a: { limits: { cpu: 0.25, memory: 128M, pids: 64 } }\n  b: { limits: { pids: 8 } }\nlinks:\n  - { endpoints: [a:eth0, b:eth0], subnet: 10.0.0.0/24 }\n");
const a = lab.nodes.find((node) => node.name === "a")!;
const b = lab.nodes.find((node) => node.name === "b")!;
const layoutOf = (text: string, v2: string[] = []): CgroupLayout => parseCgroupLayout(text, () => v2);

test("a limit is written as that version's file: cfs quota and memory.limit_in_bytes (v1), cpu.max and memory.max (v2)", (t) => {
	const v1 = cgroupDirs(layoutOf(hybrid), "box", a);
	t.deepEqual(v1.map((dir) => dir.dir), ["/sys/fs/cgroup/unified/testbed/box/a", "/sys/fs/cgroup/cpu/testbed/box/a", "/sys/fs/cgroup/memory/testbed/box/a", "/sys/fs/cgroup/pids/testbed/box/a"]);
	t.deepEqual(v1.flatMap((dir) => dir.writes.map((write) => `${write.file}=${write.value}${write.optional ? "?" : ""}`)), ["cpu.cfs_period_us=100000", "cpu.cfs_quota_us=25000", "memory.limit_in_bytes=134217728", "memory.memsw.limit_in_bytes=134217728?", "pids.max=64"]);
	const v2 = cgroupDirs(pureV2, "box", a);
	t.deepEqual(v2.map((dir) => dir.dir), ["/sys/fs/cgroup/testbed/box/a"]);
	t.deepEqual(v2[0].writes.map((write) => `${write.file}=${write.value}`), ["cpu.max=25000 100000", "memory.max=134217728", "memory.swap.max=0", "pids.max=64"]);
	// A node limited in one controller still gets the others' directories: ps shows its CPU and memory use.
	t.deepEqual(cgroupDirs(layoutOf(hybrid), "box", b).flatMap((dir) => dir.writes.map((write) => write.file)), ["pids.max"]);
	t.is(cgroupDirs(layoutOf(hybrid), "box", b).length, 4);
	// Without v2, CPU use is read from v1's cpuacct.
	t.true(cgroupDirs(layoutOf(legacy), "box", a).some((dir) => dir.controllers.includes("cpuacct")));
});

test("the lab's folders are removed last; v2 parents enable the controllers", (t) => {
	const features: HostFeatures = { dummy: true, netem: true, tbf: true, cgroups: pureV2, overlay: true };
	const { containers, unmet } = planContainers(lab, features);
	t.deepEqual(unmet, []);
	// Never the host's root: what it does not hand down already is missing (up: exit 4), not changed.
	t.deepEqual(containers[0].enable, [
		{ dir: "/sys/fs/cgroup/testbed", controllers: ["cpu", "memory", "pids"] },
		{ dir: "/sys/fs/cgroup/testbed/box", controllers: ["cpu", "memory", "pids"] },
	]);
	t.deepEqual(labCgroupFolders(pureV2, "box", containers), ["/sys/fs/cgroup/testbed", "/sys/fs/cgroup/testbed/box"]);
	// A lab named "testbed" (its folder is testbed/testbed): the folders are still the right two.
	const named = loadLabText("name: testbed\nnodes:\n  a: { limits: { pids: 8 } }\n  b: {}\nlinks:\n  - { endpoints: [a:eth0, b:eth0], subnet: 10.0.0.0/24 }\n");
	t.deepEqual(labCgroupFolders(pureV2, "testbed", planContainers(named, features).containers), ["/sys/fs/cgroup/testbed", "/sys/fs/cgroup/testbed/testbed"]);
	t.deepEqual(planContainers(lab, { ...features, cgroups: layoutOf(hybrid) }).containers[0].enable, [], "v1 controllers need nothing enabled");
});

test("a controller or OverlayFS the host lacks is a requirement with the file position (up: exit 4)", (t) => {
	const { unmet } = planContainers(lab, { dummy: true, netem: true, tbf: true, cgroups: layoutOf(legacy), overlay: true });
	t.deepEqual(unmet.map((requirement) => `${requirement.feature} ${requirement.pos.line}:${requirement.pos.col} ${requirement.keys}`), ["cgroup pids 3:8 limits.pids", "cgroup pids 4:8 limits.pids"]);
	const phones = loadLab("examples/phones/phones.yml");
	const noOverlay = planContainers(phones, { dummy: true, netem: true, tbf: true, cgroups: pureV2, overlay: false }).unmet;
	t.is(noOverlay.length, 4);
	t.is(noOverlay[0].feature, "overlay");
});

test("plan of examples/phones: cgroups, tmpfs, layers, files and overlays as commands (golden)", (t) => {
	const phones = loadLab("examples/phones/phones.yml");
	const features: HostFeatures = { dummy: true, netem: true, tbf: true, cgroups: layoutOf(hybrid), overlay: true };
	golden(t, "phones.plan.txt", renderPlanText(planLab(phones, features), "examples/phones/phones.yml", "/run/testbed/phones").replaceAll(process.cwd(), "<repo>"));
	t.regex(renderBatchText(planLab(phones, features), "/run/testbed/phones"), /node-envs\.py[\s\S]*mount -t overlay -o lowerdir=\/srv,upperdir=\/run\/testbed\/phones\/ns\/phone4\.fs\/1-srv\/upper/);
});

test("sizes: 128M, 1G, 512k, 64MiB and bytes; shown back the same way; graph labels", (t) => {
	t.deepEqual(["128M", "1G", "512k", "64MiB", "1.5G", 4096, "4096", "64mb"].map(parseSize), [128 * 2 ** 20, 2 ** 30, 512 * 1024, 64 * 2 ** 20, 1.5 * 2 ** 30, 4096, 4096, 64 * 2 ** 20]);
	t.deepEqual(["lots", "-1M", "1.5.5M", 1.5].map(parseSize), [undefined, undefined, undefined, undefined]);
	t.deepEqual([128 * 2 ** 20, 4_280_320, 1000, 2 ** 30].map(formatSize), ["128M", "4.1M", "1000", "1G"]);
	t.deepEqual(containerLines(a), ["0.25 cpu · 128M · 64 pids"]);
	t.deepEqual(containerLines(loadLab("examples/phones/phones.yml").nodes.find((node) => node.name === "phone4")!), ["0.1 cpu · 64M · 32 pids", "private /etc /srv /tmp"]);
});
