// The closed set of things `up` does to the kernel. A plan is a list of these; nothing here runs.
import type { ImpairDecl } from "../parse/topology.ts";
import type { LabNat } from "../resolve/lab.ts";
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
		| { op: "address-add"; netns: string; iface: string; cidr: string; noPrefixRoute: boolean }
		| { op: "sysctl"; netns: string; settings: [key: string, value: string][] }
		| { op: "route-add"; netns: string; to: string; via?: string; dev: string; auto: boolean }
		| { op: "nat"; netns: string; nat: LabNat }
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
	feature: "netem" | "tbf";
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
	/** Features the plan needs that the host lacks. */
	unmet: Requirement[];
	/** Notes for the reader: fallbacks taken, behaviours not yet enforced. */
	notes: string[];
}
