// The topology file as declared: plain data with the source position of every value.
import type { PortMappingProtocol } from "../vocabulary/port-mapping.ts";
import type { Pos } from "../vocabulary/problems.ts";
import type { PunchOutcome, PunchProto } from "../vocabulary/punch.ts";

export interface Located<T> {
	value: T;
	pos: Pos;
}

export const nodeKinds = ["host", "router", "nat", "switch"] as const;
export type NodeKind = (typeof nodeKinds)[number];

export const natTypes = ["full-cone", "restricted-cone", "port-restricted", "symmetric", "home-router", "carrier", "cgnat", "corporate", "one-to-one", "masquerade"] as const;
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
	/** Timed steps for `testbed test`: sessions, events, waits and expectations, in order. */
	steps?: StepDecl[];
}

export const eventKinds = ["link-down", "link-up", "flap", "impair", "nat-reboot", "rebind", "expire", "move", "restart"] as const;
export type EventKind = (typeof eventKinds)[number];

/** Something done to a running lab: from `testbed event` or a step. Targets are names as written. */
export type EventDecl = { pos: Pos } & (
	| { kind: "link-down" | "link-up"; link: Located<string> }
	/** Down for `downMs` (default half the period), up for the rest of each period, `count` times. */
	| { kind: "flap"; link: Located<string>; periodMs: number; downMs?: number; count: number }
	/** Replace the link's impairment (both directions, or only `from` that node's side); none: clear it. */
	| { kind: "impair"; link: Located<string>; from?: Located<string>; impair?: ImpairDecl }
	/** All mappings and connection state lost; forwarding stops for `outageMs` first. */
	| { kind: "nat-reboot"; nat: Located<string>; outageMs: number }
	/** rebind: mappings of `host` (or all) move to new public ports; expire: they are forgotten, as after the udp-timeout. */
	| { kind: "rebind" | "expire"; nat: Located<string>; host?: Located<string> }
	/** Re-plug a node: only interface `to` (node:iface) stays up, and the default route goes through it. */
	| { kind: "move"; to: Located<string>; via?: Located<string> }
	/** Restart the node's processes (in `testbed test`: its peer agent). */
	| { kind: "restart"; node: Located<string> }
);

/** One step of a scenario; `atMs` waits until that long after the steps began. */
export type StepDecl = { pos: Pos; atMs?: number } & (
	| { kind: "wait"; ms: number }
	/** Punch a session between a and b and hold it open (keepalives, re-punch on loss). */
	| { kind: "connect"; a: Located<string>; b: Located<string>; result?: Located<PunchOutcome[]>; withinMs: number; keepaliveMs?: number; lossAfterMs?: number }
	| { kind: "event"; event: EventDecl }
	/** connected: the pair exchanges traffic again within the time (since this step); lost: the pair notices the loss. */
	| { kind: "expect"; state: "connected" | "lost"; a?: Located<string>; b?: Located<string>; withinMs: number; result?: Located<PunchOutcome[]> }
);


/** One check of `testbed test`, as written. */
export type ExpectDecl =
	| { kind: "punch"; pos: Pos; a: Located<string>; b: Located<string>; proto?: PunchProto; family?: 4 | 6; result?: Located<PunchOutcome[]>; runs?: Located<number>; maxTimeMs?: Located<number>; portMapping?: PortMappingProtocol[] }
	| { kind: "reach"; pos: Pos; from: Located<string>; to: Located<string>; proto: "udp" | "tcp" | "icmp"; result: boolean }
	| { kind: "probe"; pos: Pos; nat: Located<string>; mapping?: NatBehaviour; filtering?: NatBehaviour; hairpin?: boolean; portPreservation?: boolean }
	/** The user's program on one node: passes on exit status `exit` within the time, its output matching `output` if given. */
	| { kind: "run"; pos: Pos; node: Located<string>; command: CommandDecl; env: EnvDecl[]; exit: number; output?: Located<string>; withinMs: number }
	/** `listen` on b, then `dial` on a; the dialer's exit status decides (0: pass). */
	| { kind: "pair"; pos: Pos; a: Located<string>; b: Located<string>; listen: CommandDecl; dial: CommandDecl; env: EnvDecl[]; result: Located<CheckVerdict>; withinMs: number }
	/** The same listen/dial pair over many pairs of peers, both ways; `except` overrides the default result per pair. */
	| { kind: "matrix"; pos: Pos; listen: CommandDecl; dial: CommandDecl; env: EnvDecl[]; pairs: "all" | [Located<string>, Located<string>][]; result: Located<CheckVerdict>; except: { pair: [Located<string>, Located<string>]; result: Located<CheckVerdict>; pos: Pos }[]; withinMs: number };

/** What a check of the user's program should find: it works (exit 0) or it does not. */
export type CheckVerdict = "pass" | "fail";

/** A command as written: an argv list, or one string run by `sh -c`; placeholders not yet replaced. */
export interface CommandDecl {
	pos: Pos;
	/** Each element located (for placeholders); a string command is one element and `shell` is true. */
	argv: Located<string>[];
	shell: boolean;
}

/** One environment variable as written; its value may hold placeholders. */
export interface EnvDecl {
	key: Located<string>;
	value: Located<string>;
}

/** When a program counts as ready: a port bound inside its node, a line of its output, or a file. */
export type ReadyDecl = { pos: Pos; withinMs: number } & ({ kind: "udp" | "tcp"; port: number } | { kind: "output"; pattern: Located<string> } | { kind: "file"; path: Located<string> });

/** A program a node runs while the lab is up: started by `up` (in `after:` order), stopped by `down`. */
export interface ProgramDecl {
	name: Located<string>;
	pos: Pos;
	command: CommandDecl;
	env: EnvDecl[];
	cwd?: Located<string>;
	ready?: ReadyDecl;
	after: Located<string>[];
}

export interface NodeDecl {
	name: string;
	pos: Pos;
	kind: NodeKind;
	kindPos: Pos;
	/** Explicit namespace name, overriding the prefix rule. */
	netns?: Located<string>;
	interfaces: InterfaceDecl[];
	routes: RouteDecl[];
	/** false: no automatic default route (`default-route: false`); only `routes:` are added. */
	defaultRoute?: Located<boolean>;
	nat?: NatDecl;
	/** A NAT's IPv6 side: routed, not translated, behind a stateful firewall with this filtering. */
	ipv6?: { pos: Pos; filtering?: Located<NatBehaviour>; nat?: Located<"npt" | "masquerade">; prefix?: Located<string> };
	/** Programs started by `up`, in file order where `after:` allows. */
	programs: ProgramDecl[];
	/** Host directories the node sees privately (an OverlayFS over each), as written. */
	private?: Located<string>[];
	/** Files placed in those directories before the node starts. */
	files?: FileDecl[];
	/** The node's own cgroup: CPU, memory, process count, and the size of its private files. */
	limits?: LimitsDecl;
}

/** A file placed in a node's private directory: text (address placeholders allowed), or a copy of a file next to the topology. */
export interface FileDecl {
	path: Located<string>;
	text?: Located<string>;
	from?: Located<string>;
	/** Permission bits, e.g. 0o600; default 0o644. */
	mode?: Located<number>;
	pos: Pos;
}

export interface LimitsDecl {
	pos: Pos;
	/** Cores (0.25 = a quarter of one core). */
	cpu?: Located<number>;
	/** Bytes. */
	memory?: Located<number>;
	pids?: Located<number>;
	/** Bytes the node's private files may take (its upper layers' tmpfs). */
	disk?: Located<number>;
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
	/** IPv6: an IPv6 destination (`::/0` is the default), or `default` through an IPv6 gateway. */
	family?: 6;
	pos: Pos;
}

export const unsolicitedTcpAnswers = ["drop", "rst"] as const;
export type UnsolicitedTcp = (typeof unsolicitedTcpAnswers)[number];

export interface NatDecl {
	pos: Pos;
	type?: Located<string>;
	mapping?: Located<NatBehaviour>;
	filtering?: Located<NatBehaviour>;
	hairpin?: Located<boolean>;
	portPreservation?: Located<boolean>;
	/** Seconds. */
	udpTimeout?: Located<number>;
	/** Seconds an idle established TCP connection's mapping lives. */
	tcpTimeout?: Located<number>;
	/** An unsolicited inbound TCP SYN: dropped silently, or answered with a reset. */
	unsolicitedTcp?: Located<UnsolicitedTcp>;
	outside?: Located<string>;
	/** The NAT answers port-mapping requests from inside hosts (UPnP-IGD, NAT-PMP, PCP). */
	portMapping?: PortMappingDecl;
}

/** `port-mapping:` as written: `true` (the preset's usual protocols), a list of protocols, or a map. */
export interface PortMappingDecl {
	pos: Pos;
	/** Absent or `true`: the usual ones for the NAT's type. */
	protocols?: Located<PortMappingProtocol>[];
	/** Seconds: the shortest and longest lease a NAT-PMP or PCP client gets (its asked lifetime is clamped). */
	leaseMin?: Located<number>;
	leaseMax?: Located<number>;
	/** The public ports a client may be given. */
	ports?: Located<[number, number]>;
	/** Clients may map only their own address (miniupnpd's secure_mode); default true. */
	secure?: Located<boolean>;
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
	/** Mean length of a loss burst, in packets (Gilbert model; `loss` stays the average rate). */
	lossBurst?: Located<number>;
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
	/** The IPv6 prefix the endpoints' automatic IPv6 addresses come from. */
	subnet6?: Located<string>;
	/** One per endpoint; null where the endpoint gets no (or an automatic) address. */
	addresses?: (Located<string> | null)[];
	/** The IPv6 addresses written in `addresses:` (an entry may hold one of each family), one per endpoint. */
	addresses6?: (Located<string> | null)[];
	addressesPos?: Pos;
	/** Both directions. */
	impair?: ImpairDecl;
	/** One direction: the egress of one endpoint's node, on top of `impair`. */
	impairFrom?: { node: Located<string>; impair: ImpairDecl }[];
	mtu?: Located<number>;
	/** A link that starts unplugged (for `move`): its interfaces exist but are down. */
	down?: Located<boolean>;
}
