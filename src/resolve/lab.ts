// The resolved lab: every default applied, every name and address decided. Plan reads only this.
import type { PortMappingSpec } from "./port-mapping.ts";
import type { ImpairDecl, NatBehaviour, NatDecl, NodeKind } from "../parse/topology.ts";
import type { PunchOutcome } from "../vocabulary/punch.ts";
import type { InterfaceAddress } from "../validate/addresses.ts";
import type { Pos } from "../vocabulary/problems.ts";
import type { NatBehaviourSpec } from "./nat-behaviour.ts";
import type { LabCheck, LabProgram } from "./commands.ts";
import { NodeNotFoundError } from "../errors.ts";

export interface Lab {
	name: string;
	/** Absolute path of the topology file, or "<inline>". */
	file: string;
	nodes: LabNode[];
	links: LabLink[];
	/** Checks for `testbed test`, with node names checked and the user's commands resolved. */
	expect?: LabCheck[];
	/** Timed steps for `testbed test`, with every target checked. */
	steps?: LabStep[];
}

export interface LabNode {
	name: string;
	kind: NodeKind;
	netns: string;
	/** ip_forward: routers and NATs forward, hosts and switches do not. */
	forwarding: boolean;
	/** The node has IPv6 addresses (so its IPv6 forwarding is set, and agents may use IPv6). */
	ipv6?: boolean;
	interfaces: LabInterface[];
	routes: LabRoute[];
	nat?: LabNat;
	/** Programs `up` starts in this node, in file order. */
	programs?: LabProgram[];
	/** Host directories the node sees through an OverlayFS of its own, and files placed there. */
	private?: NodePrivate;
	/** The node's own cgroup. */
	limits?: NodeLimits;
	pos: Pos;
}

export interface NodePrivate {
	/** Parents before children; `key` names the directory's upper and work layers. */
	dirs: { path: string; key: string; pos: Pos }[];
	/** `dir` is the private directory the file is in, `relative` its path there; `from` is absolute. */
	files: { path: string; dir: string; relative: string; text?: string; from?: string; mode: number; pos: Pos }[];
	/** Size of the tmpfs that holds the upper layers: what the node's writes can take at most. */
	diskBytes: number;
}

export interface NodeLimits {
	/** Cores: 0.25 is a quarter of one. */
	cpu?: number;
	memoryBytes?: number;
	pids?: number;
	pos: Pos;
}

export interface LabInterface {
	name: string;
	/** veth: one end of a link; dummy: an address holder; bridge: a switch's own device. */
	type: "veth" | "dummy" | "bridge";
	addresses: InterfaceAddress[];
	/** IPv6 addresses (global ones: the link-local address is the kernel's). */
	addresses6?: InterfaceAddress[];
	/** For veth: index into Lab.links and the other end. */
	link?: number;
	peer?: { node: string; iface: string };
	/** For a switch port: the bridge it joins. */
	master?: string;
	/** L2 segment (a link, or all links of one switch). */
	segment?: number;
	mtu?: number;
	/** Impairment on this interface's egress. */
	impair?: ImpairDecl;
	/** Starts down: its link is unplugged until a `move` or `link-up`. */
	down?: boolean;
	pos: Pos;
}

export interface LabRoute {
	to: string;
	/** Gateway; absent for a device route. */
	via?: string;
	dev: string;
	/** An IPv6 route (absent: IPv4). */
	family?: 6;
	/** Added by testbed (single-homed host, NAT uplink) rather than declared. */
	auto: boolean;
	pos: Pos;
}

export interface LabNat {
	outside: string;
	inside: string[];
	/** The public address (first address on the outside interface). */
	publicAddress?: string;
	/** one-to-one: the inside host's address that the public address stands for. */
	oneToOneHost?: string;
	behaviour: NatBehaviourSpec;
	declared?: NatDecl;
	/** Its IPv6 side, when it has one: routed, behind a stateful firewall that filters as declared. */
	firewall6?: {
		filtering: NatBehaviour;
		/** NPTv6 (RFC 6296): the one inside prefix rewritten to an outside one of the same length. */
		npt?: { inside: string; outside: string };
		/** NAT66 with port translation: the inside prefixes leave from the outside address. */
		masquerade?: { inside: string[]; outside: string };
	};
	/** It answers port-mapping requests from inside (a daemon runs in its namespace). */
	portMapping?: PortMappingSpec;
	pos: Pos;
}

export interface LabLink {
	endpoints: [{ node: string; iface: string }, { node: string; iface: string }];
	segment: number;
	impair?: ImpairDecl;
	down?: boolean;
	pos: Pos;
}

export function findNode(lab: Lab, name: string): LabNode | undefined {
	return lab.nodes.find((node) => node.name === name);
}

/** The node named `name`, or a NodeNotFoundError (a usage mistake, exit 2) naming the nodes there are. */
export function requireNode(lab: Lab, name: string): LabNode {
	const node = findNode(lab, name);
	if (!node) throw new NodeNotFoundError(`lab "${lab.name}" has no node "${name}"; nodes: ${lab.nodes.map((candidate) => candidate.name).join(", ")}`);
	return node;
}

/** One end of a link, where commands run. */
export interface LinkEnd {
	node: string;
	netns: string;
	iface: string;
}

/** An event with its targets found in the lab: what `testbed event` and steps do. */
export type LabEvent = { label: string } & (
	/** Both ends of a link go down, or come up again with the routes through them. */
	| { kind: "link-down" | "link-up"; ends: [LinkEnd, LinkEnd]; routes: { netns: string; routes: LabRoute[] }[] }
	| { kind: "flap"; ends: [LinkEnd, LinkEnd]; routes: { netns: string; routes: LabRoute[] }[]; periodMs: number; downMs: number; count: number }
	/** The new egress impairment of each end (undefined: none). */
	| { kind: "impair"; changes: { end: LinkEnd; impair?: ImpairDecl }[] }
	| { kind: "nat-reboot"; nat: string; netns: string; outageMs: number }
	/** The inside addresses whose mappings go (all when absent). */
	| { kind: "rebind" | "expire"; nat: string; netns: string; host?: { node: string; addresses: string[] } }
	/** Unplug the node's other links (its ends go down), plug in `link` (both ends up), default route via `via`. */
	| { kind: "move"; node: string; netns: string; link: [LinkEnd, LinkEnd]; down: string[]; via: string }
	| { kind: "restart"; node: string; netns: string }
);

export type LabStep = { pos: Pos; atMs?: number } & (
	| { kind: "wait"; ms: number }
	| { kind: "connect"; a: string; b: string; result?: PunchOutcome[]; withinMs: number; keepaliveMs?: number; lossAfterMs?: number }
	| { kind: "event"; event: LabEvent }
	| { kind: "expect"; state: "connected" | "lost"; a: string; b: string; withinMs: number; result?: PunchOutcome[] }
);
