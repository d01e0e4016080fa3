// The closed set of things `up` does to the kernel. A plan is a list of these; nothing here runs.
import type { ImpairDecl } from "../parse/topology.ts";
import type { LabNat, LabNode } from "../resolve/lab.ts";
import type { Pos } from "../vocabulary/problems.ts";

interface Base {
	/** The node this operation builds (for messages). */
	node?: string;
	/** Where in the topology file it comes from. */
	pos: Pos;
}

export type Operation = Base &
	(
		| { op: "netns-add"; netns: string }
		| { op: "veth-add"; a: { netns: string; iface: string }; b: { netns: string; iface: string }; down?: boolean }
		| { op: "bridge-add"; netns: string; iface: string; why: "switch" | "dummy-fallback" }
		| { op: "dummy-add"; netns: string; iface: string }
		| { op: "link-master"; netns: string; iface: string; master: string }
		| { op: "link-mtu"; netns: string; iface: string; mtu: number }
		| { op: "link-up"; netns: string; iface: string }
		/** An IPv6 address is added `nodad`: usable at once, not after a second and a half of duplicate address detection. */
		| { op: "address-add"; netns: string; iface: string; cidr: string; noPrefixRoute: boolean; nodad?: boolean }
		| { op: "sysctl"; netns: string; settings: [key: string, value: string][] }
		| { op: "route-add"; netns: string; to: string; via?: string; dev: string; family?: 6; auto: boolean }
		| { op: "nat"; netns: string; nat: LabNat }
		/** A NAT's IPv6 side: a stateful firewall (nftables, whether its IPv4 side is nftables or iptables). */
		| { op: "firewall6"; netns: string; nat: LabNat }
		/** One iptables rule as the lecture types it after `iptables -t TABLE` (`nat: { type: masquerade }`). */
		| { op: "iptables"; netns: string; table: "nat" | "filter"; rule: string }
		| { op: "qdisc"; netns: string; iface: string; impair: ImpairDecl; qdisc: QdiscKind }
		| { op: "nft-loss"; netns: string; iface: string; percent: number; burst?: number }
	);

export type OperationKind = Operation["op"];

/**
 * The root queueing discipline of an impaired interface: netem does everything it is given; tbf a
 * rate (with a pfifo child for a queue limit); pfifo a queue limit alone.
 */
export type QdiscKind = "netem" | "tbf" | "pfifo";

/** What the host must support for a plan, and which file position asks for it. */
export interface Requirement {
	feature: "netem" | "tbf" | "overlay" | "ipv6" | `cgroup ${CgroupController}`;
	why: string;
	/** The impairment keys (as written in YAML) that need the feature. */
	keys?: string[];
	pos: Pos;
}

/**
 * Kernel features that change the plan. The fallbacks for a kernel without netem are optional here:
 * absent means present (what was assumed before they were probed; `detectFeatures` always sets them).
 */
export interface HostFeatures {
	dummy: boolean;
	netem: boolean;
	tbf: boolean;
	/** pfifo: a queue limit without netem. */
	pfifo?: boolean;
	/** nftables netdev egress hook with numgen: random loss without netem. */
	nftEgress?: boolean;
	/** nftables sets written from the packet path (add/delete): burst loss without netem. */
	nftBurst?: boolean;
	/** OverlayFS (private directories). Read from the host at each run, never cached; absent means present. */
	overlay?: boolean;
	/** IPv6 in new namespaces (not disabled at boot or inherited disabled). Read at each run; absent means present. */
	ipv6?: boolean;
	/** Where the cgroup controllers are mounted (limits). Read from the host at each run; absent: pure cgroup v2 at /sys/fs/cgroup. */
	cgroups?: CgroupLayout;
}

/** The controllers `limits:` uses: cpu (cpu:), memory (memory:), pids (pids:). */
export type CgroupController = "cpu" | "memory" | "pids";

/**
 * The host's cgroup hierarchies: for each controller, the mount that has it (cgroup v2's, or its own
 * v1 hierarchy); `v2` is the cgroup2 mount even where it has no controllers (a hybrid host's
 * `unified`): it still gives membership, `cgroup.kill` and CPU usage. `cpuacct`: a v1 hierarchy for
 * CPU usage where there is no v2.
 */
export interface CgroupLayout {
	v2?: string;
	controllers: Partial<Record<CgroupController, { version: 1 | 2; mount: string }>>;
	cpuacct?: string;
}

/** A node's cgroup directory in one hierarchy, and what `up` writes there (files of the directory, in order). */
export interface CgroupDir {
	dir: string;
	/** The hierarchy's mount point the directory is in. */
	mount: string;
	version: 1 | 2;
	/** Controllers of this hierarchy the node uses (empty: the v2 mount of a hybrid host, for membership). */
	controllers: (CgroupController | "cpuacct")[];
	/** `optional`: written where the file exists (swap accounting is a kernel option). */
	writes: { file: string; value: string; optional?: boolean }[];
}

/** What makes a node a lightweight container (plan/container.ts): its cgroups and its private files. */
export interface ContainerPlan {
	node: string;
	netns: string;
	pos: Pos;
	/** Every hierarchy's directory for the node, parents' `cgroup.subtree_control` first on v2. */
	cgroups: CgroupDir[];
	/** v2: controllers to enable in testbed's own parents (`+cpu` in cgroup.subtree_control) so the node's directory has them; never the host's root. */
	enable: { dir: string; controllers: CgroupController[] }[];
	/** The node's private directories (OverlayFS over each); absent without `private:`. */
	private?: LabNode["private"];
}

export const allFeatures: HostFeatures = { dummy: true, netem: true, tbf: true, pfifo: true, nftEgress: true, nftBurst: true };

export interface NamespacePlan {
	netns: string;
	node: string;
	kind: string;
	operations: Operation[];
}

export interface Plan {
	lab: string;
	file: string;
	features: HostFeatures;
	/** Done from the root namespace in one `ip -batch`: namespaces and veth pairs (both ends placed directly). */
	root: Operation[];
	/** Done inside each namespace, one batch each, in parallel. */
	namespaces: NamespacePlan[];
	/** Nodes with private files or limits, in file order. */
	containers: ContainerPlan[];
	/** Features the plan needs that the host lacks. */
	unmet: Requirement[];
	/** Notes for the reader: fallbacks taken, behaviours not yet enforced. */
	notes: string[];
}
