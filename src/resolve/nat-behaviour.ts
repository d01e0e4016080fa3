// What a declared NAT means in RFC 4787 terms: classic names and device presets map onto mapping × filtering.
import type { NatBehaviour, NatDecl, UnsolicitedTcp } from "../parse/topology.ts";

export interface NatBehaviourSpec {
	/** The name the user wrote, or the pair spelled out. */
	label: string;
	mapping: NatBehaviour;
	filtering: NatBehaviour;
	hairpin: boolean;
	portPreservation: boolean;
	/** Seconds an idle UDP mapping lives. */
	udpTimeout: number;
	/** Seconds an idle established TCP connection (and its mapping) lives. */
	tcpTimeout: number;
	/** Seconds a TCP connection that is opening or closing lives (RFC 5382: at least 4 minutes, never more than tcpTimeout). */
	tcpTransitoryTimeout: number;
	/**
	 * What an unsolicited inbound SYN gets: dropped silently (RFC 5382 REQ-4: no answer, so that a
	 * simultaneous open can still happen), or a reset — what a NAT box whose own stack sees the SYN does.
	 */
	unsolicitedTcp: UnsolicitedTcp;
	/** Static 1:1 address translation (no port mapping at all). */
	oneToOne: boolean;
	/**
	 * Built as the lecture's Linux MASQUERADE (`iptables -t nat -A POSTROUTING -s INSIDE -o OUTSIDE -j
	 * MASQUERADE`, `iptables -A FORWARD -j ACCEPT`) instead of testbed's nftables mapping tables: the
	 * kernel's own port choice, endpoint-independent only while ports do not collide.
	 */
	masquerade: boolean;
}

const EIM = "endpoint-independent";
const ADM = "address-dependent";
const APDM = "address-and-port-dependent";

/** Classic names and device presets. */
export const natPresets: Record<string, { mapping: NatBehaviour; filtering: NatBehaviour; hairpin: boolean; meaning: string }> = {
	"full-cone": { mapping: EIM, filtering: EIM, hairpin: true, meaning: "EIM + EIF: once mapped, anyone may send in" },
	"restricted-cone": { mapping: EIM, filtering: ADM, hairpin: true, meaning: "EIM + ADF: only addresses the inside host sent to" },
	"port-restricted": { mapping: EIM, filtering: APDM, hairpin: true, meaning: "EIM + APDF: only the exact address:port sent to" },
	symmetric: { mapping: APDM, filtering: APDM, hairpin: false, meaning: "APDM + APDF: a new public port per destination" },
	"home-router": { mapping: EIM, filtering: APDM, hairpin: true, meaning: "EIM + APDF, hairpinning: a typical home router" },
	carrier: { mapping: EIM, filtering: APDM, hairpin: false, meaning: "EIM + APDF shared by many homes, no hairpin (CGNAT)" },
	cgnat: { mapping: EIM, filtering: APDM, hairpin: false, meaning: "same as carrier" },
	corporate: { mapping: APDM, filtering: APDM, hairpin: false, meaning: "APDM + APDF: corporate or cloud NAT" },
	"one-to-one": { mapping: EIM, filtering: EIM, hairpin: false, meaning: "static 1:1 address translation" },
	masquerade: { mapping: EIM, filtering: APDM, hairpin: false, meaning: "the lecture's iptables MASQUERADE: EIM + APDF while ports do not collide, no hairpin" },
};

/** RFC 5382 REQ-5: an established TCP connection's mapping lives at least 2 h 4 min idle; a transitory one 4 min. */
export const defaultTcpTimeout = 7440;
export const tcpTransitoryTimeout = 240;

/**
 * Public ports handed out when a port cannot (or must not) be preserved, in turn. They come from an
 * explicit map indexed by `numgen` (render/nft.ts): some nft versions write numgen's value into a NAT
 * port without converting its byte order (20000 becomes 8270), a map lookup always converts.
 */
export const remapPorts = { first: 20000, count: 1024 } as const;

/** Default when a nat node declares nothing: what Linux masquerade gives. */
export const defaultNatType = "port-restricted";

/** Decide the behaviour; returns the disagreements between `type` and the explicit pair. */
export function natBehaviour(decl: NatDecl | undefined): { spec: NatBehaviourSpec; conflicts: string[] } {
	const type = decl?.type?.value ?? (decl?.mapping || decl?.filtering ? undefined : defaultNatType);
	const preset = type ? natPresets[type] : undefined;
	const conflicts: string[] = [];
	if (preset && decl?.mapping && decl.mapping.value !== preset.mapping) conflicts.push(`type ${type} has mapping ${preset.mapping}, not ${decl.mapping.value}`);
	if (preset && decl?.filtering && decl.filtering.value !== preset.filtering) conflicts.push(`type ${type} has filtering ${preset.filtering}, not ${decl.filtering.value}`);
	if (type === "one-to-one" && decl?.hairpin?.value) conflicts.push("a one-to-one NAT has no hairpin setting");
	if (type === "one-to-one" && decl?.portPreservation?.value === false) conflicts.push("a one-to-one NAT always keeps ports");
	if (type === "masquerade" && decl?.hairpin?.value) conflicts.push("plain MASQUERADE has no hairpin (that needs a DNAT rule); use type home-router");
	if (type === "masquerade" && decl?.unsolicitedTcp?.value === "drop") conflicts.push("plain MASQUERADE leaves an unsolicited SYN to the NAT box, which answers it with a reset; use type port-restricted to drop it");
	if (type === "masquerade" && decl?.portPreservation?.value === false) conflicts.push("plain MASQUERADE keeps the inside port when it is free; use type symmetric for random ports");
	const mapping = decl?.mapping?.value ?? preset?.mapping ?? EIM;
	const tcpTimeout = decl?.tcpTimeout?.value ?? defaultTcpTimeout;
	const filtering = decl?.filtering?.value ?? preset?.filtering ?? APDM;
	return {
		spec: {
			label: type ?? `${short(mapping)}M+${short(filtering)}F`,
			mapping,
			filtering,
			hairpin: decl?.hairpin?.value ?? preset?.hairpin ?? true,
			portPreservation: decl?.portPreservation?.value ?? mapping !== APDM,
			udpTimeout: decl?.udpTimeout?.value ?? 120,
			tcpTimeout,
			tcpTransitoryTimeout: Math.min(tcpTransitoryTimeout, tcpTimeout),
			unsolicitedTcp: decl?.unsolicitedTcp?.value ?? (type === "masquerade" ? "rst" : "drop"),
			oneToOne: type === "one-to-one",
			masquerade: type === "masquerade",
		},
		conflicts,
	};
}

export function short(behaviour: NatBehaviour): string {
	return behaviour === EIM ? "EI" : behaviour === ADM ? "AD" : "APD";
}
