// A NAT that answers port-mapping requests (UPnP-IGD, NAT-PMP, PCP), resolved: which protocols, the
// leases and public ports it grants, and whether the NAT can grant anything at all where it stands.
// The daemon that answers is Debian's miniupnpd (nftables backend); what it needs is rendered in
// render/miniupnpd.ts.
import type { PortMappingDecl } from "../parse/topology.ts";
import type { PortMappingProtocol } from "../vocabulary/port-mapping.ts";
import type { Pos, Problem } from "../vocabulary/problems.ts";
import { contains } from "../validate/addresses.ts";
import type { LabNat } from "./lab.ts";
import { remapPorts } from "./nat-behaviour.ts";

export interface PortMappingSpec {
	protocols: PortMappingProtocol[];
	/** NAT-PMP and PCP clients get a lifetime clamped to these (seconds). */
	leaseMinS: number;
	leaseMaxS: number;
	/** The public ports the daemon may grant, without the NAT's own dynamic range (remapPorts). */
	ports: [number, number][];
	/** Clients may map only their own address. */
	secure: boolean;
	/** Who may ask: the subnets of the NAT's inside interfaces. */
	insideNetworks: string[];
	pos: Pos;
}

type Report = (code: Problem["code"], pos: Pos, message: string, fix?: string) => void;

/** miniupnpd's own defaults for NAT-PMP and PCP lifetimes. */
export const defaultLease = { minS: 120, maxS: 86_400 } as const;

/**
 * Address blocks miniupnpd 2.3.1 refuses to map on (its reserved list) that a lab uses for public
 * addresses: the documentation and benchmarking blocks. A NAT whose outside address is private or
 * shared (10/8, 192.168/16, 100.64/10: a NAT behind another NAT) is allowed: the daemon answers that it
 * cannot map, as a real router behind a carrier NAT does.
 */
const documentationBlocks = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"];

export const documentationBlock = (address: string): string | undefined => documentationBlocks.find((block) => contains(block, address));

/**
 * Every block on miniupnpd 2.3.1's reserved list: on an outside address in one of them it answers
 * but maps nothing ("port forwarding is impossible"). A home router behind a carrier NAT (100.64/10)
 * or another NAT (10/8, 172.16/12, 192.168/16) is the case a lab meets.
 */
const reservedBlocks = [...documentationBlocks, "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "224.0.0.0/4", "240.0.0.0/4"];

/** Whether the NAT's daemon can grant mappings where it stands (its outside address is not on the reserved list). */
export const canGrant = (nat: LabNat): boolean => nat.portMapping !== undefined && nat.publicAddress !== undefined && !reservedBlocks.some((block) => contains(block, nat.publicAddress!));

export function resolvePortMapping(name: string, nat: LabNat, insideNetworks: string[], decl: PortMappingDecl, problem: Report): PortMappingSpec | undefined {
	const type = nat.declared?.type?.value;
	if (nat.behaviour.oneToOne || nat.behaviour.masquerade) {
		problem("BAD_NAT", decl.pos, `nat "${name}" is ${type}: it ${nat.behaviour.oneToOne ? "forwards every port to its host already" : "is the lecture's iptables MASQUERADE, which has no port-mapping daemon"}`, "remove `port-mapping:`, or use `type: home-router`");
		return undefined;
	}
	const carrier = type === "carrier" || type === "cgnat";
	const protocols = decl.protocols ?? (carrier ? [{ value: "pcp" as const, pos: decl.pos }] : (["upnp", "nat-pmp", "pcp"] as const).map((value) => ({ value, pos: decl.pos })));
	let ok = true;
	for (const protocol of protocols)
		if (carrier && protocol.value !== "pcp") {
			problem("BAD_NAT", protocol.pos, `nat "${name}" is a ${type} NAT: carriers do not answer ${protocol.value === "upnp" ? "UPnP" : "NAT-PMP"}, a protocol of home networks`, "use `port-mapping: [pcp]` (PCP, RFC 6887, is the carrier's protocol), or another NAT type");
			ok = false;
		}
	const block = nat.publicAddress ? documentationBlock(nat.publicAddress) : undefined;
	if (block) {
		problem(
			"BAD_NAT",
			decl.pos,
			`nat "${name}" offers port mapping, but its public address ${nat.publicAddress} is in ${block}, a documentation block: the port-mapping daemon (miniupnpd) refuses to map on it`,
			"give its outside link addresses outside 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 198.18.0.0/15, e.g. `subnet: 11.0.0.0/30` (the lab is isolated: any range works)",
		);
		ok = false;
	}
	const [low, high] = decl.ports?.value ?? [1024, 65535];
	const poolEnd = remapPorts.first + remapPorts.count - 1;
	const ports = ([[low, Math.min(high, remapPorts.first - 1)], [Math.max(low, poolEnd + 1), high]] as [number, number][]).filter(([from, to]) => from <= to);
	if (ports.length === 0) {
		problem("BAD_VALUE", decl.ports!.pos, `ports ${low}-${high} are all in ${remapPorts.first}-${poolEnd}, the NAT's own dynamic ports`, "write a range outside it, e.g. `ports: 1024-19999`");
		ok = false;
	}
	if (!ok) return undefined;
	const leaseMinS = decl.leaseMin?.value ?? Math.min(defaultLease.minS, decl.leaseMax?.value ?? defaultLease.minS);
	const leaseMaxS = decl.leaseMax?.value ?? Math.max(defaultLease.maxS, leaseMinS);
	return { protocols: protocols.map((protocol) => protocol.value), leaseMinS, leaseMaxS, ports, secure: decl.secure?.value ?? true, insideNetworks, pos: decl.pos };
}
