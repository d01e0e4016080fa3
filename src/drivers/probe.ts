// `probe`: RFC 5780 behaviour discovery from a node behind each NAT, against a two-address STUN
// server on the public side, compared with what the file declares; over UDP, or over TCP (the same
// server answers STUN over TCP and connects back for the filtering tests).
import type { NatBehaviour } from "../parse/topology.ts";
import type { Lab, LabNode } from "../resolve/lab.ts";
import { defaultPath, probeNodeFor, publicNodes } from "../resolve/routing.ts";
import { attachHost, type AttachedHost } from "../apply/attach.ts";
import { LabStateError } from "../errors.ts";
import { contains6 } from "../validate/addresses6.ts";
import { translation6 } from "../render/firewall6.ts";
import { AgentProcess, agentPlace, runAgentOnce } from "./agent-process.ts";

export interface ExpectedBehaviour {
	mapping: NatBehaviour;
	filtering: NatBehaviour;
	/** null: not predictable end to end through several NATs. */
	hairpin: boolean | null;
	portPreservation: boolean;
	udpTimeoutS: number;
	/** TCP: what a filtered SYN gets; null through several NATs (the outer one may answer first). */
	unsolicitedTcp: "drop" | "rst" | null;
}

export interface MeasuredBehaviour {
	mapping: string;
	filtering: string;
	hairpin: boolean | null;
	portPreservation: boolean | null;
	mappedAddress?: string;
	natDetected: boolean | null;
	/** TCP: what a SYN the filter refused got (null: no test was refused). */
	unsolicitedTcp?: "drop" | "rst" | null;
	/** With --timeouts: the mapping survived `aliveS` idle seconds and not `expiredS`. */
	lifetime?: { aliveS: number; expiredS: number | null };
	error?: string;
	durationMs: number;
}

export interface NatVerdict {
	nat: string;
	/** Declared type label, e.g. "port-restricted". */
	declared: string;
	/** The node the probe ran on, and the NATs its traffic crosses (innermost first). */
	from?: string;
	layers: string[];
	expected: ExpectedBehaviour;
	measured?: MeasuredBehaviour;
	/** Human-readable differences; empty when everything matches. */
	mismatches: string[];
	ok: boolean;
	note?: string;
	/**
	 * Port mapping, asked from a node whose gateway the NAT is: the protocols declared and those that
	 * answered; those that answered with an error (NAT-PMP and UPnP where the NAT cannot map: its
	 * outside address is not public; PCP's ANNOUNCE succeeds even there).
	 */
	portMapping?: { declared: string[]; answered: string[]; refusing: string[]; error?: string };
}

export interface ProbeReport {
	lab: string;
	server: { node: string; addresses: string[]; temporary: boolean };
	timeouts: boolean;
	proto: "udp" | "tcp";
	family: 4 | 6;
	nats: NatVerdict[];
	ok: boolean;
	durationMs: number;
}

const rank: Record<NatBehaviour, number> = { "endpoint-independent": 0, "address-dependent": 1, "address-and-port-dependent": 2 };
const byRank = Object.fromEntries(Object.entries(rank).map(([name, value]) => [value, name])) as Record<number, NatBehaviour>;

/** What a peer should see through `layers` (innermost first): the most dependent behaviour wins. */
export function composeBehaviour(lab: Lab, layers: string[]): ExpectedBehaviour {
	const specs = layers.map((name) => lab.nodes.find((node) => node.name === name)!.nat!.behaviour);
	return {
		mapping: byRank[Math.max(...specs.map((spec) => (spec.oneToOne ? 0 : rank[spec.mapping])))],
		filtering: byRank[Math.max(...specs.map((spec) => (spec.oneToOne ? 0 : rank[spec.filtering])))],
		hairpin: specs.length === 1 ? specs[0].hairpin && !specs[0].oneToOne : null,
		portPreservation: specs.every((spec) => spec.oneToOne || spec.portPreservation),
		udpTimeoutS: Math.min(...specs.map((spec) => spec.udpTimeout)),
		unsolicitedTcp: specs.length === 1 ? specs[0].unsolicitedTcp : null,
	};
}

/** Compare; lifetime counts when measured: the declared timeout must lie within the measured bracket (± one step). */
export function judge(expected: ExpectedBehaviour, measured: MeasuredBehaviour, stepS: number): string[] {
	const mismatches: string[] = [];
	if (measured.error) return [`probe failed: ${measured.error}`];
	if (measured.mapping !== expected.mapping) mismatches.push(`mapping: declared ${expected.mapping}, measured ${measured.mapping}`);
	if (measured.filtering !== expected.filtering) mismatches.push(`filtering: declared ${expected.filtering}, measured ${measured.filtering}`);
	if (expected.hairpin !== null && measured.hairpin !== expected.hairpin) mismatches.push(`hairpin: declared ${onOff(expected.hairpin)}, measured ${measured.hairpin === null ? "unknown" : onOff(measured.hairpin)}`);
	if (measured.portPreservation !== expected.portPreservation) mismatches.push(`port preservation: declared ${onOff(expected.portPreservation)}, measured ${measured.portPreservation === null ? "unknown" : onOff(measured.portPreservation)}`);
	if (expected.unsolicitedTcp !== null && measured.unsolicitedTcp && measured.unsolicitedTcp !== expected.unsolicitedTcp) mismatches.push(`unsolicited SYN: declared ${expected.unsolicitedTcp}, measured ${measured.unsolicitedTcp}`);
	if (measured.lifetime) {
		const { aliveS, expiredS } = measured.lifetime;
		if (expected.udpTimeoutS < aliveS - stepS || (expiredS !== null && expected.udpTimeoutS > expiredS + stepS) || (expiredS === null && expected.udpTimeoutS <= aliveS - stepS))
			mismatches.push(`udp-timeout: declared ${expected.udpTimeoutS}s, measured alive after ${aliveS}s, ${expiredS === null ? "never expired" : `gone after ${expiredS}s`}`);
	}
	return mismatches;
}

const onOff = (value: boolean) => (value ? "on" : "off");

export interface ProbeOptions {
	/** Also measure each mapping's idle lifetime (takes up to 1.5 × the longest udp-timeout). */
	timeouts?: boolean;
	/** Only these NATs. */
	nats?: string[];
	/** Over UDP (default) or TCP. */
	proto?: "udp" | "tcp";
	/** IPv4 (default: the NATs), or IPv6: each gateway's firewall, probed from an IPv6 host behind it. */
	family?: 4 | 6;
}

/** A public host with two addresses (IPv6 too, for family 6) to serve STUN from, or undefined. */
function publicStunHost(lab: Lab, family: 4 | 6 = 4): { node: LabNode; addresses: string[]; addresses6: string[] } | undefined {
	for (const node of publicNodes(lab)) {
		if (node.kind !== "host") continue;
		// Link addresses first: the primary address is the one the host is routed by.
		const ordered = [...node.interfaces].sort((a, b) => Number(a.type !== "veth") - Number(b.type !== "veth"));
		const addresses = ordered.flatMap((iface) => iface.addresses.map((address) => address.ip));
		const addresses6 = ordered.flatMap((iface) => (iface.addresses6 ?? []).map((address) => address.ip));
		if (addresses.length >= 2 && (family === 4 || addresses6.length >= 2)) return { node, addresses, addresses6 };
	}
	return undefined;
}

/** Whether the server saw the translation an IPv6 gateway declares: none, NPTv6 to its outside prefix, or NAT66 to its outside address. */
function judgeTranslation6(nat: LabNode, from: string, measured: MeasuredBehaviour): string[] {
	if (measured.error) return [];
	const { npt, masquerade } = nat.nat!.firewall6!;
	const declared = translation6(nat.nat!.firewall6!);
	if (measured.natDetected !== Boolean(declared))
		return [declared ? `translation: declared ${declared}, but the server saw ${from}'s own address` : `translation: the server saw another address than ${from}'s own (IPv6 is routed, not translated)`];
	const seen = measured.mappedAddress?.replace(/^\[?([^\]]*?)\]?:\d+$/, "$1");
	if (seen && ((npt && !contains6(npt.outside, seen)) || (masquerade && seen !== masquerade.outside))) return [`translation: declared ${declared}, measured ${measured.mappedAddress}`];
	return [];
}

/**
 * What a probe over IPv6 should see of a gateway: a mapping that does not change (none, NPTv6's
 * prefix, or NAT66's port kept), its firewall's filtering, and over TCP what it does with a SYN it
 * filters (the NAT's `unsolicited-tcp:`, for both families).
 */
function expected6(nat: LabNode, proto: "udp" | "tcp"): ExpectedBehaviour {
	return { mapping: "endpoint-independent", filtering: nat.nat!.firewall6!.filtering, hairpin: null, portPreservation: true, udpTimeoutS: nat.nat!.behaviour.udpTimeout, unsolicitedTcp: proto === "tcp" ? nat.nat!.behaviour.unsolicitedTcp : null };
}

/** The router where most NATs' default paths end: where a temporary STUN host is attached. */
function publicRouter(lab: Lab, nats: LabNode[]): LabNode | undefined {
	const counts = new Map<string, number>();
	for (const nat of nats) {
		const end = defaultPath(lab, nat).end;
		counts.set(end, (counts.get(end) ?? 0) + 1);
	}
	const best = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
	const router = lab.nodes.find((node) => node.name === best && node.kind === "router");
	return router ?? lab.nodes.find((node) => node.kind === "router" && publicNodes(lab).includes(node));
}

export async function probeLab(lab: Lab, options: ProbeOptions = {}): Promise<ProbeReport> {
	const started = performance.now();
	const family = options.family ?? 4;
	const nats = lab.nodes.filter((node) => node.nat && (family === 4 || node.nat.firewall6) && (!options.nats || options.nats.includes(node.name)));
	if (options.nats) for (const name of options.nats) if (!nats.some((nat) => nat.name === name)) throw new LabStateError(`lab "${lab.name}" has no NAT "${name}"; NATs: ${lab.nodes.filter((node) => node.nat).map((node) => node.name).join(", ") || "none"}`, "NODE_NOT_FOUND");
	let stun = publicStunHost(lab, family);
	if (family === 6 && !stun) throw new LabStateError(`lab "${lab.name}" has no public host with two IPv6 addresses to serve STUN over IPv6 from`, "NO_STUN_HOST");
	let attached: AttachedHost | undefined;
	let server: AgentProcess | undefined;
	try {
		if (!stun) {
			const router = publicRouter(lab, nats);
			if (!router) throw new LabStateError(`lab "${lab.name}" has no public host with two addresses and no public router to attach a temporary STUN server to`, "NO_STUN_HOST");
			attached = await attachHost(lab, router, "tb-stun", 2);
			stun = { node: attached.node, addresses: attached.addresses, addresses6: [] };
		}
		const [primary, alternate] = stun.addresses;
		const [primary6, alternate6] = stun.addresses6;
		const v6 = family === 6 ? ["--primary6", primary6, "--alternate6", alternate6] : [];
		server = new AgentProcess(agentPlace(lab.name, stun.node), stun.node.name, "stun-server", ["--primary", primary, "--alternate", alternate, ...v6, "--port", "3478", "--alt-port", "3479"]);
		await server.started();
		const verdicts = await Promise.all(nats.map((nat) => probeOne(lab, nat, family === 6 ? primary6 : primary, options)));
		return {
			lab: lab.name,
			server: { node: stun.node.name, addresses: family === 6 ? stun.addresses6.slice(0, 2) : stun.addresses, temporary: Boolean(attached) },
			timeouts: Boolean(options.timeouts),
			proto: options.proto ?? "udp",
			family,
			nats: verdicts,
			ok: verdicts.every((verdict) => verdict.ok),
			durationMs: Math.round(performance.now() - started),
		};
	} finally {
		await server?.stop().catch(() => undefined);
		await attached?.detach();
	}
}

/** What the stun-probe agent found out about the gateway's port mapping (agents/portmap/client.ts' Discovery). */
type DiscoveryResult = { methods?: { method: string; answered: boolean; ok: boolean }[]; error?: string };

/** Declared against answered: the protocols that answer; a difference goes to `mismatches`. */
export function judgePortMapping(nat: LabNode, discovery: DiscoveryResult | undefined, mismatches: string[]): NonNullable<NatVerdict["portMapping"]> {
	const declared = nat.nat!.portMapping?.protocols ?? [];
	const methods = discovery?.methods ?? [];
	const answered = methods.filter((method) => method.answered).map((method) => method.method);
	const refusing = methods.filter((method) => method.answered && !method.ok).map((method) => method.method);
	const sorted = (list: readonly string[]) => [...list].sort().join(", ") || "none";
	if (!discovery || discovery.error) mismatches.push(`port mapping: not asked (${discovery?.error ?? "no answer from the probe"})`);
	else if (sorted(answered) !== sorted(declared)) mismatches.push(`port mapping: declared ${sorted(declared)}, answered ${sorted(answered)}`);
	return { declared, answered, refusing, ...(discovery?.error ? { error: discovery.error } : {}) };
}

async function probeOne(lab: Lab, nat: LabNode, server: string, options: ProbeOptions): Promise<NatVerdict> {
	const v6 = options.family === 6;
	const declared = v6 ? `${nat.nat!.firewall6!.npt ? "NPTv6 + " : nat.nat!.firewall6!.masquerade ? "NAT66 masquerade + " : ""}firewall ${nat.nat!.firewall6!.filtering}` : nat.nat!.behaviour.label;
	const from = v6 ? lab.nodes.find((node) => node.kind === "host" && node.ipv6 && defaultPath(lab, node).nats[0] === nat.name) : probeNodeFor(lab, nat);
	if (!from) {
		const expected = composeBehaviour(lab, [nat.name]);
		return { nat: nat.name, declared, layers: [nat.name], expected, mismatches: [], ok: true, note: "not measured: nothing sits behind this NAT to probe from" };
	}
	const layers = v6 ? [nat.name] : defaultPath(lab, from).nats;
	const expected = v6 ? expected6(nat, options.proto ?? "udp") : composeBehaviour(lab, layers);
	const stepS = Math.max(1, Math.round(expected.udpTimeoutS / 10));
	const maxS = Math.ceil(expected.udpTimeoutS * 1.5) + stepS;
	// Port mapping is asked of the gateway: only when the probe runs right behind this NAT (over UDP and IPv4).
	const askMapping = !v6 && options.proto !== "tcp" && layers[0] === nat.name && from.kind === "host";
	const args = ["--server", server, "--port", "3478", ...(options.proto === "tcp" ? ["--proto", "tcp"] : ["--filter-wait-ms", "400"]), ...(askMapping ? ["--port-mapping"] : [])];
	if (options.timeouts) args.push("--timeouts", "--max-timeout-s", String(maxS), "--timeout-step-s", String(stepS));
	const started = performance.now();
	const result = await runAgentOnce(agentPlace(lab.name, from), from.name, "stun-probe", args, (options.timeouts ? maxS * 1000 : 0) + 30_000);
	const lifetime = result.mappingLifetime as { aliveS?: number; expiredS?: number | null } | undefined;
	const measured: MeasuredBehaviour = {
		mapping: String(result.mapping ?? "unknown"),
		filtering: String(result.filtering ?? "unknown"),
		hairpin: (result.hairpin as boolean | null | undefined) ?? null,
		portPreservation: (result.portPreservation as boolean | null | undefined) ?? null,
		natDetected: (result.natDetected as boolean | null | undefined) ?? null,
		...(options.proto === "tcp" ? { unsolicitedTcp: (result.unsolicitedTcp as "drop" | "rst" | null | undefined) ?? null } : {}),
		mappedAddress: result.mappedAddress ? `${(result.mappedAddress as { address: string }).address}:${(result.mappedAddress as { port: number }).port}` : undefined,
		lifetime: lifetime && typeof lifetime.aliveS === "number" ? { aliveS: lifetime.aliveS, expiredS: lifetime.expiredS ?? null } : undefined,
		error: result.event === "fatal" ? String(result.error) : (result.error as string | undefined),
		durationMs: Math.round(performance.now() - started),
	};
	const mismatches = judge(expected, measured, stepS);
	const portMapping = askMapping ? judgePortMapping(nat, result.portMapping as DiscoveryResult | undefined, mismatches) : undefined;
	if (v6) mismatches.push(...judgeTranslation6(nat, from.name, measured));
	return {
		nat: nat.name,
		declared,
		from: from.name,
		layers,
		expected,
		measured,
		mismatches,
		ok: mismatches.length === 0,
		...(portMapping ? { portMapping } : {}),
		note: layers.length > 1 ? `end to end through ${layers.join(" → ")}: ${from.name} sees all of them` : from.kind === "nat" ? `from the NAT box ${from.name} (its own traffic)` : undefined,
	};
}
