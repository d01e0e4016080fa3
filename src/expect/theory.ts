// What the standard hole-punching algorithm should achieve between two peers, from the declared NATs
// alone: a small, deterministic simulation of RFC 4787 NATs (mapping tables and filters) and of the
// algorithm (register with a rendezvous server, simultaneous sends to the other's candidates,
// answering peer-reflexive sources), run before anything is built.
import type { NatBehaviour } from "../parse/topology.ts";
import type { Lab, LabNode } from "../resolve/lab.ts";
import { defaultPath } from "../resolve/routing.ts";
import { composeBehaviour } from "../drivers/probe.ts";
import { rendezvousPort, type PunchProto } from "../vocabulary/punch.ts";
import type { PortMappingProtocol } from "../vocabulary/port-mapping.ts";
import { canGrant } from "../resolve/port-mapping.ts";

export type ExpectedOutcome = "lan" | "hairpin" | "direct" | "relayed";

export interface NatModel {
	name: string;
	mapping: NatBehaviour;
	filtering: NatBehaviour;
	hairpin: boolean;
	/** Public address (a stand-in; only equality matters). */
	publicIp: string;
	/**
	 * Plain MASQUERADE: an unsolicited packet that is filtered is still kept by conntrack (the NAT box
	 * answers it itself), and an inside host's later packet back to that sender would clash with it,
	 * so that flow gets another public port. testbed's nftables NATs drop such packets unkept.
	 */
	keepsUnsolicited?: boolean;
	/**
	 * For TCP: the NAT answers an unsolicited SYN with a reset (plain MASQUERADE's box, or
	 * `unsolicited-tcp: rst`). The peer whose SYN comes too early sees its attempt refused, and its
	 * own NAT forgets that connection; whether a later SYN gets through is a race (RFC 5382 REQ-4).
	 */
	resetsUnsolicited?: boolean;
}

export interface PeerModel {
	name: string;
	/** The NAT in front (layers composed), or undefined for a public host. */
	nat?: NatModel;
	/** Peers with the same LAN key reach each other's host candidates. */
	lan: string;
}

interface Endpoint {
	ip: string;
	port: number;
}

const key = (endpoint: Endpoint) => `${endpoint.ip}:${endpoint.port}`;

/** One NAT's state: mappings and what each has sent to. */
class NatState {
	private nextPort = 40000;
	private readonly mappings = new Map<string, { port: number; owner: string; sentTo: Set<string> }>();
	private readonly byPort = new Map<number, { owner: string; sentTo: Set<string> }>();
	/** keepsUnsolicited: each flow's public port once it exists, and the (public port, remote) pairs kept from unsolicited packets. */
	private readonly flows = new Map<string, { port: number; owner: string; sentTo: Set<string> }>();
	private readonly kept = new Set<string>();
	constructor(readonly model: NatModel) {}

	private newEntry(owner: string) {
		const entry = { port: this.nextPort++, owner, sentTo: new Set<string>() };
		this.byPort.set(entry.port, entry);
		return entry;
	}

	/** Map an outgoing packet from `owner` to `destination`; returns the public source. */
	outbound(owner: string, destination: Endpoint): Endpoint {
		const { mapping } = this.model;
		const mapKey = mapping === "endpoint-independent" ? owner : mapping === "address-dependent" ? `${owner}>${destination.ip}` : `${owner}>${key(destination)}`;
		let entry = this.mappings.get(mapKey);
		if (!entry) {
			entry = this.newEntry(owner);
			this.mappings.set(mapKey, entry);
		}
		if (this.model.keepsUnsolicited) {
			// A flow keeps the port it got; a new one whose port clashes with a kept packet gets another.
			const flow = `${owner}>${key(destination)}`;
			const existing = this.flows.get(flow);
			if (existing) entry = existing;
			else if (this.kept.has(`${entry.port}<${key(destination)}`)) entry = this.newEntry(owner);
			this.flows.set(flow, entry);
		}
		entry.sentTo.add(key(destination));
		return { ip: this.model.publicIp, port: entry.port };
	}

	/** An inbound packet from `source` to public `port`: the owner it reaches, or undefined (filtered). */
	inbound(source: Endpoint, port: number, hairpinned: boolean): string | undefined {
		const entry = this.byPort.get(port);
		if (hairpinned) return entry && this.model.hairpin ? entry.owner : undefined;
		const owner = entry && this.admits(entry, source) ? entry.owner : undefined;
		if (!owner && this.model.keepsUnsolicited) this.kept.add(`${port}<${key(source)}`);
		return owner;
	}

	private admits(entry: { sentTo: Set<string> }, source: Endpoint): boolean {
		const { filtering } = this.model;
		if (filtering === "endpoint-independent") return true;
		if (filtering === "address-dependent") return [...entry.sentTo].some((sent) => sent.startsWith(`${source.ip}:`));
		return entry.sentTo.has(key(source));
	}
}

/**
 * Simulate the algorithm between peers `a` and `b`; `rounds` of simultaneous sends, `a`'s packet
 * first in each. `crossing`: the first packets cross — both have left their NATs before either
 * arrives (the rendezvous starts both sides at once; on a fast path this is a race, rarely won).
 */
export function simulatePunch(a: PeerModel, b: PeerModel, rounds = 6, crossing = false): ExpectedOutcome {
	if (a.lan === b.lan) return "lan";
	const nats = new Map<string, NatState>();
	const natOf = (peer: PeerModel) => {
		if (!peer.nat) return undefined;
		if (!nats.has(peer.nat.name)) nats.set(peer.nat.name, new NatState(peer.nat));
		return nats.get(peer.nat.name)!;
	};
	const privateOf = (peer: PeerModel): Endpoint => ({ ip: `private-${peer.name}`, port: 5000 });
	const rendezvous: Endpoint = { ip: "rendezvous", port: rendezvousPort };
	// Send a packet; returns the peer it reaches and the source it appears to come from.
	const send = (from: PeerModel, to: Endpoint): { peer: PeerModel; source: Endpoint } | undefined => {
		const nat = natOf(from);
		const source = nat ? nat.outbound(from.name, to) : privateOf(from);
		for (const peer of [a, b]) {
			if (peer === from) continue;
			const peerNat = natOf(peer);
			if (peerNat && to.ip === peerNat.model.publicIp) {
				const hairpinned = Boolean(nat && nat === peerNat);
				const owner = peerNat.inbound(source, to.port, hairpinned);
				if (owner === peer.name) return { peer, source };
			}
			if (!peerNat && key(to) === key(privateOf(peer))) return { peer, source };
		}
		return undefined;
	};
	const reflexive = new Map<string, Endpoint>();
	for (const peer of [a, b]) reflexive.set(peer.name, natOf(peer) ? natOf(peer)!.outbound(peer.name, rendezvous) : privateOf(peer));
	const targets = new Map<string, Endpoint[]>([
		[a.name, [reflexive.get(b.name)!]],
		[b.name, [reflexive.get(a.name)!]],
	]);
	const heard = new Map<string, boolean>([
		[a.name, false],
		[b.name, false],
	]);
	let sameNatPath = false;
	// Crossing: each side's first packet has gone out (and opened its own NAT) before the other's comes in.
	if (crossing) for (const from of [a, b]) for (const to of targets.get(from.name)!) natOf(from)?.outbound(from.name, to);
	for (let round = 0; round < rounds; round++) {
		for (const from of [a, b]) {
			for (const to of [...targets.get(from.name)!]) {
				const arrived = send(from, to);
				if (!arrived) continue;
				heard.set(arrived.peer.name, true);
				const known = targets.get(arrived.peer.name)!;
				if (!known.some((endpoint) => key(endpoint) === key(arrived.source))) known.push(arrived.source); // peer-reflexive
				if (natOf(from) && natOf(from) === natOf(arrived.peer)) sameNatPath = true;
			}
		}
		if (heard.get(a.name) && heard.get(b.name)) return sameNatPath ? "hairpin" : "direct";
	}
	return "relayed";
}

/**
 * Whether a peer that asks with `asked` gets a port mapping: its NAT — the only one in front of it
 * (the daemon maps that NAT's ports; a carrier NAT beyond is out of its reach) — offers one of the
 * protocols, and its public address is one the daemon maps on.
 */
export function mappingGranted(lab: Lab, node: LabNode, asked: readonly PortMappingProtocol[]): PortMappingProtocol | undefined {
	const nats = defaultPath(lab, node).nats;
	const nat = nats.length === 1 ? lab.nodes.find((candidate) => candidate.name === nats[0])!.nat! : undefined;
	if (!nat?.portMapping || !canGrant(nat)) return undefined;
	return asked.find((protocol) => nat.portMapping!.protocols.includes(protocol));
}

/**
 * The model of a lab peer: the NATs in front of it (composed) and its LAN. A peer that got a port
 * mapping (`asked`): its endpoint has a static public port that anyone may send to and that its own
 * traffic leaves from — endpoint-independent mapping and filtering, for this peer alone.
 */
export function peerModel(lab: Lab, node: LabNode, asked: readonly PortMappingProtocol[] = []): PeerModel {
	const model = natPeerModel(lab, node);
	if (model.nat && asked.length > 0 && mappingGranted(lab, node, asked)) model.nat = { ...model.nat, mapping: "endpoint-independent", filtering: "endpoint-independent", keepsUnsolicited: false };
	return model;
}

function natPeerModel(lab: Lab, node: LabNode): PeerModel {
	const path = defaultPath(lab, node);
	const lanSegment = node.interfaces.find((iface) => iface.type === "veth" && iface.addresses.length > 0)?.segment;
	if (path.nats.length === 0) return { name: node.name, lan: `segment-${lanSegment}` };
	const composed = composeBehaviour(lab, path.nats);
	const outer = lab.nodes.find((candidate) => candidate.name === path.nats.at(-1))!;
	const inner = lab.nodes.find((candidate) => candidate.name === path.nats[0])!;
	return {
		name: node.name,
		// Peers whose outermost NAT is the same share its public address; inside, the innermost NAT
		// decides hairpinning for peers that share it.
		nat: {
			name: outer.name,
			mapping: composed.mapping,
			filtering: composed.filtering,
			hairpin: inner.nat!.behaviour.hairpin && path.nats.length === 1 ? true : outer.nat!.behaviour.hairpin,
			publicIp: outer.nat!.publicAddress ?? outer.name,
			keepsUnsolicited: path.nats.some((name) => lab.nodes.find((candidate) => candidate.name === name)!.nat!.behaviour.masquerade),
			resetsUnsolicited: path.nats.some((name) => lab.nodes.find((candidate) => candidate.name === name)!.nat!.behaviour.unsolicitedTcp === "rst"),
		},
		lan: `segment-${lanSegment}`,
	};
}

/** The expected outcome for two lab peers (`a`'s packets arriving first where that matters; see expectedOutcomes). */
export function expectedPunch(lab: Lab, a: string, b: string, proto: PunchProto = "udp", family: 4 | 6 = 4, portMapping: readonly PortMappingProtocol[] = []): ExpectedOutcome {
	return expectedOutcomes(lab, a, b, proto, family, portMapping)[0];
}

/**
 * Every outcome the pair may have: `a`'s packets arriving first, then `b`'s where that differs. It
 * differs only where a NAT keeps unsolicited packets (plain MASQUERADE): whichever peer's first
 * packet reaches the other's NAT before that NAT's own host has sent decides the outcome — and
 * when the first packets cross (each out before the other arrives: a race of microseconds here,
 * lost about once in 60 runs on a loaded machine) nothing is kept, and that may end differently too.
 *
 * TCP punches by simultaneous open: each side listens on the port it dials from, so a SYN from an
 * unexpected port is accepted (the peer-reflexive candidate of UDP). Through NATs that drop
 * unsolicited SYNs the outcome is UDP's; where a NAT on either path answers them with a reset, a
 * direct path is a race the relay may win.
 *
 * With `portMapping` both peers ask their NAT for a mapping with those protocols first; a peer that
 * gets one is reachable at it by anyone (see peerModel).
 */
export function expectedOutcomes(lab: Lab, a: string, b: string, proto: PunchProto = "udp", family: 4 | 6 = 4, portMapping: readonly PortMappingProtocol[] = []): ExpectedOutcome[] {
	const node = (name: string) => lab.nodes.find((candidate) => candidate.name === name)!;
	if (family === 6) return expectedOutcomes6(lab, node(a), node(b), proto);
	const [pa, pb] = [peerModel(lab, node(a), portMapping), peerModel(lab, node(b), portMapping)];
	// Behind the same innermost NAT, inside links are routed: host candidates work.
	const innerA = defaultPath(lab, node(a)).nats[0];
	if (innerA && innerA === defaultPath(lab, node(b)).nats[0]) return ["lan"];
	const outcomes = new Set([simulatePunch(pa, pb), simulatePunch(pb, pa)]);
	if (pa.nat?.keepsUnsolicited || pb.nat?.keepsUnsolicited) outcomes.add(simulatePunch(pa, pb, 6, true));
	if (proto === "tcp" && (pa.nat?.resetsUnsolicited || pb.nat?.resetsUnsolicited) && outcomes.has("direct")) outcomes.add("relayed");
	return [...outcomes];
}

/**
 * Over IPv6 nothing is translated: each peer's address is its own, and a gateway's firewall only
 * filters. Each side's first packet to the other opens its own firewall for exactly the other's
 * endpoint, so whatever the filtering the path is direct (a TCP SYN reset by a firewall makes it a
 * race, as over IPv4).
 */
function expectedOutcomes6(lab: Lab, a: LabNode, b: LabNode, proto: PunchProto): ExpectedOutcome[] {
	const resets = [a, b].some((peer) => defaultPath(lab, peer).nats.some((name) => lab.nodes.find((candidate) => candidate.name === name)!.nat!.behaviour.unsolicitedTcp === "rst"));
	return proto === "tcp" && resets ? ["direct", "relayed"] : ["direct"];
}

/** Peers that can punch over IPv6: hosts behind a gateway with IPv6 (its firewall), with IPv6 themselves. */
export function labPeers6(lab: Lab): string[] {
	return labPeers(lab).filter((name) => {
		const node = lab.nodes.find((candidate) => candidate.name === name)!;
		return node.ipv6 && defaultPath(lab, node).nats.some((nat) => lab.nodes.find((candidate) => candidate.name === nat)!.nat!.firewall6);
	});
}

/** Peers of a lab: hosts behind at least one NAT. */
export function labPeers(lab: Lab): string[] {
	return lab.nodes.filter((node) => node.kind === "host" && defaultPath(lab, node).nats.length > 0).map((node) => node.name);
}
