// Which NATs stand between two peers: what `punch --explain` samples and `punch --capture` records.
// Pure: the way out of each node (resolve/routing.ts) and where the rendezvous runs.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { requireNode } from "../resolve/lab.ts";
import { defaultPath } from "../resolve/routing.ts";
import { rendezvousHost } from "../drivers/rendezvous-host.ts";

export interface NatPath {
	/** Every NAT between the peers, in the order a's packets meet them: a's NATs outwards, then b's inwards (a NAT in front of both once). */
	nats: LabNode[];
	/** Each peer's NATs from its own outwards, up to the rendezvous' side (NATs in front of the rendezvous too translate nothing between them). */
	chains: Record<string, LabNode[]>;
	/**
	 * NATs in front of both peers (a carrier NAT): each peer sends to the public endpoint the rendezvous saw
	 * for the other, which is the outermost shared NAT's, so that NAT must hairpin; the ones inside it are crossed twice.
	 */
	shared: LabNode[];
	/** The shared NAT whose public address the rendezvous sees both peers at (the outermost): where the pair's packets must turn round. */
	hairpin?: LabNode;
}

/** The NATs between peers `a` and `b` (unknown names are a usage mistake listing the nodes). */
export function natPath(lab: Lab, a: string, b: string): NatPath {
	const rendezvous = rendezvousHost(lab)?.node;
	const beyond = new Set(rendezvous ? defaultPath(lab, rendezvous).nats : []);
	const chainOf = (peer: string) => defaultPath(lab, requireNode(lab, peer)).nats.filter((name) => !beyond.has(name)).map((name) => requireNode(lab, name));
	const chains: Record<string, LabNode[]> = { [a]: chainOf(a), [b]: chainOf(b) };
	const shared = chains[a].filter((nat) => chains[b].includes(nat));
	const nats = [...chains[a], ...[...chains[b]].reverse().filter((nat) => !shared.includes(nat))];
	return { nats, chains, shared, ...(shared.length ? { hairpin: shared.at(-1) } : {}) };
}

/** Who is behind `nat` with inside address `ip`: the peer itself, or the NAT just inside it on the peer's chain (by its public address). */
export function peerBehind(path: NatPath, lab: Lab, nat: LabNode, ip: string): string | undefined {
	for (const [peer, chain] of Object.entries(path.chains)) {
		const index = chain.indexOf(nat);
		if (index < 0) continue;
		const inner = index === 0 ? requireNode(lab, peer) : chain[index - 1];
		const addresses = index > 0 ? [inner.nat?.publicAddress] : inner.interfaces.flatMap((iface) => iface.addresses.map((address) => address.ip));
		if (addresses.includes(ip)) return peer;
	}
	return undefined;
}

/**
 * Where `punch --capture` records: the outside of every NAT on the path; the inside of a NAT in
 * front of both peers, where their packets turn round (or not: a carrier NAT without hairpin);
 * a peer's own link when no NAT stands in front of it. One capture per link: the two ends of a
 * veth see the same packets.
 */
export function captureSides(lab: Lab, a: string, b: string): { node: LabNode; iface: string }[] {
	const path = natPath(lab, a, b);
	const candidates: { node: LabNode; iface: string }[] = path.nats.map((nat) => ({ node: nat, iface: nat.nat!.outside }));
	for (const peer of [a, b]) {
		const start = requireNode(lab, peer);
		const hops = defaultPath(lab, start).hops.map((name) => requireNode(lab, name));
		for (const nat of path.shared) {
			const index = hops.indexOf(nat);
			const segments = new Set(hops[index - 1]?.interfaces.map((iface) => iface.segment));
			const inside = nat.interfaces.find((iface) => nat.nat!.inside.includes(iface.name) && segments.has(iface.segment));
			if (inside) candidates.push({ node: nat, iface: inside.name });
		}
		const uplink = start.interfaces.find((iface) => iface.type === "veth");
		if (path.chains[peer].length === 0 && uplink) candidates.push({ node: start, iface: uplink.name });
	}
	const segmentOf = (side: { node: LabNode; iface: string }) => side.node.interfaces.find((iface) => iface.name === side.iface)?.segment;
	return candidates.filter((side, index) => candidates.findIndex((other) => segmentOf(other) === segmentOf(side)) === index);
}
