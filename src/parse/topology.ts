// The topology file as declared: plain data with the source position of every value.
import type { Pos } from "../validate/problem.ts";

export interface Located<T> {
	value: T;
	pos: Pos;
}

export const nodeKinds = ["host", "router", "nat", "switch"] as const;
export type NodeKind = (typeof nodeKinds)[number];

export const natTypes = ["full-cone", "restricted-cone", "port-restricted", "symmetric", "home-router", "carrier", "cgnat", "corporate", "one-to-one"] as const;
export const natBehaviours = ["endpoint-independent", "address-dependent", "address-and-port-dependent"] as const;
export type NatBehaviour = (typeof natBehaviours)[number];

export interface TopologyDecl {
	file: string;
	name: Located<string>;
	/** Namespace name prefix; default `<name>-`. */
	prefix?: Located<string>;
	description?: string;
	nodes: NodeDecl[];
	links: LinkDecl[];
	/** Checks for `testbed test`. */
	expect?: ExpectDecl[];
}

export const punchOutcomes = ["lan", "hairpin", "direct", "relayed", "failed"] as const;
export type PunchOutcomeName = (typeof punchOutcomes)[number];

/** One check of `testbed test`, as written. */
export type ExpectDecl =
	| { kind: "punch"; pos: Pos; a: Located<string>; b: Located<string>; result?: Located<PunchOutcomeName[]>; runs?: Located<number>; maxTimeMs?: Located<number> }
	| { kind: "reach"; pos: Pos; from: Located<string>; to: Located<string>; proto: "udp" | "tcp" | "icmp"; result: boolean }
	| { kind: "probe"; pos: Pos; nat: Located<string>; mapping?: NatBehaviour; filtering?: NatBehaviour; hairpin?: boolean; portPreservation?: boolean };

export interface NodeDecl {
	name: string;
	pos: Pos;
	kind: NodeKind;
	kindPos: Pos;
	/** Explicit namespace name, overriding the prefix rule. */
	netns?: Located<string>;
	interfaces: InterfaceDecl[];
	routes: RouteDecl[];
	nat?: NatDecl;
}

export interface InterfaceDecl {
	name: Located<string>;
	type: "dummy";
	addresses: Located<string>[];
	pos: Pos;
}

export interface RouteDecl {
	to: Located<string>;
	/** Gateway; without it the route is a device route (`dev:`). */
	via?: Located<string>;
	dev?: Located<string>;
	pos: Pos;
}

export interface NatDecl {
	pos: Pos;
	type?: Located<string>;
	mapping?: Located<NatBehaviour>;
	filtering?: Located<NatBehaviour>;
	hairpin?: Located<boolean>;
	portPreservation?: Located<boolean>;
	/** Seconds. */
	udpTimeout?: Located<number>;
	outside?: Located<string>;
}

export interface EndpointDecl {
	node: string;
	iface: string;
	pos: Pos;
}

export interface ImpairDecl {
	pos: Pos;
	/** Milliseconds. */
	delay?: Located<number>;
	jitter?: Located<number>;
	/** Percentages 0..100. */
	loss?: Located<number>;
	duplicate?: Located<number>;
	reorder?: Located<number>;
	corrupt?: Located<number>;
	/** Bits per second. */
	rate?: Located<number>;
	/** Packets. */
	limit?: Located<number>;
}

export interface LinkDecl {
	pos: Pos;
	endpoints: [EndpointDecl, EndpointDecl];
	subnet?: Located<string>;
	/** One per endpoint; null where the endpoint gets no (or an automatic) address. */
	addresses?: (Located<string> | null)[];
	addressesPos?: Pos;
	impair?: ImpairDecl;
	mtu?: Located<number>;
}
