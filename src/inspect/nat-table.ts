// A NAT's live state, from the kernel: conntrack flows through it and testbed's own mapping maps.
import type { Lab, LabNode } from "../resolve/lab.ts";
import { LabStateError } from "../errors.ts";
import { inNamespace } from "../render/batch.ts";
import { parseNatState } from "../render/nat-state.ts";
import { run } from "../apply/run.ts";

export interface NatFlow {
	proto: string;
	/** The inside endpoint, the public endpoint it is translated to, and the remote endpoint. */
	inside: string;
	public: string;
	remote: string;
	/** Who started the flow: the inside host (outbound) or the outside (let in by a filter, or hairpin). */
	direction: "outbound" | "inbound";
	state: string;
	secondsLeft: number;
}

export interface NatMapping {
	/** From testbed's maps: public port → inside endpoint, with seconds to live. */
	publicPort: number;
	inside: string;
	secondsLeft: number;
}

export interface NatTable {
	lab: string;
	nat: string;
	publicAddress: string;
	behaviour: string;
	flows: NatFlow[];
	mappings: NatMapping[];
	at: string;
}

export function natNode(lab: Lab, name: string): LabNode {
	const node = lab.nodes.find((candidate) => candidate.name === name);
	const nats = lab.nodes.filter((candidate) => candidate.nat).map((candidate) => candidate.name);
	if (!node) throw new LabStateError(`lab "${lab.name}" has no node "${name}"; NATs: ${nats.join(", ") || "none"}`, "NODE_NOT_FOUND");
	if (!node.nat) throw new LabStateError(`"${name}" in lab "${lab.name}" is a ${node.kind}, not a NAT; NATs: ${nats.join(", ") || "none"}`, "NODE_NOT_FOUND");
	return node;
}

/** One line of `conntrack -L`: original tuple first, reply tuple second. */
export function parseConntrack(text: string, publicAddress: string): NatFlow[] {
	const flows: NatFlow[] = [];
	for (const line of text.split("\n")) {
		const proto = /^(\w+)\s+\d+\s+(\d+)\s/.exec(line);
		if (!proto) continue;
		const fields = (name: string) => [...line.matchAll(new RegExp(`\\b${name}=(\\S+)`, "g"))].map((match) => match[1]);
		const [src, replySrc] = fields("src");
		const [dst, replyDst] = fields("dst");
		const [sport, replySport] = fields("sport");
		const [dport, replyDport] = fields("dport");
		if (!src || !replySrc) continue;
		const endpoint = (ip: string, port?: string) => (port ? `${ip}:${port}` : ip);
		const state = /\[(ASSURED|UNREPLIED)\]/.exec(line)?.[1] ?? (/\s(ESTABLISHED|SYN_SENT|TIME_WAIT|CLOSE)\s/.exec(line)?.[1] ?? "seen both ways");
		// Outbound: the original source is inside and the reply goes to the public address.
		const outbound = replyDst === publicAddress && src !== publicAddress;
		const inbound = dst === publicAddress && replySrc !== publicAddress;
		if (!outbound && !inbound) continue; // the NAT box's own traffic
		flows.push(
			outbound
				? { proto: proto[1], inside: endpoint(src, sport), public: endpoint(replyDst, replyDport), remote: endpoint(dst, dport), direction: "outbound", state, secondsLeft: Number(proto[2]) }
				: { proto: proto[1], inside: endpoint(replySrc, replySport), public: endpoint(dst, dport), remote: endpoint(src, sport), direction: "inbound", state, secondsLeft: Number(proto[2]) },
		);
	}
	return flows.sort((a, b) => a.public.localeCompare(b.public) || a.remote.localeCompare(b.remote));
}

export async function readNatTable(lab: Lab, name: string): Promise<NatTable> {
	const node = natNode(lab, name);
	const publicAddress = node.nat!.publicAddress ?? "";
	const [conntrack, maps] = await Promise.all([run(inNamespace(node.netns, ["conntrack", "-L"])), run(inNamespace(node.netns, ["nft", "-j", "list", "map", "ip", "testbed", "public"]))]);
	const mappings: NatMapping[] = (parseNatState(maps.stdout, ["public"]).get("public") ?? []).map((element) => ({ publicPort: Number(element.key[0]), inside: `${element.value![0]}:${element.value![1]}`, secondsLeft: element.secondsLeft ?? 0 }));
	return {
		lab: lab.name,
		nat: name,
		publicAddress,
		behaviour: node.nat!.behaviour.label,
		flows: parseConntrack(conntrack.stdout, publicAddress),
		mappings: mappings.sort((a, b) => a.publicPort - b.publicPort),
		at: new Date().toISOString(),
	};
}
