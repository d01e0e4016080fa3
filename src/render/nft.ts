// nftables rules for a NAT box with a declared RFC 4787 behaviour, as the text `nft -f` reads.
//
// UDP and TCP mappings are kept in the kernel, in nftables dynamic maps learned from outgoing packets
// after source NAT (the `learn` chain): which public port an inside endpoint has (EIM), per remote
// address (ADM), which inside endpoint owns a public port (for EIF filtering and hairpinning), and
// which remote addresses it has sent to (ADF). Every key carries the protocol: a UDP and a TCP
// mapping of the same port are independent (RFC 4787, RFC 5382). New flows are mapped by the
// `mapping` chain from those maps; inbound packets that start a new flow are let in only through the
// filtering maps. APDF needs no map: conntrack lets exactly the replies in (and a TCP simultaneous
// open: the peer's SYN is the reply of ours). Other protocols (ICMP) are masqueraded.
import type { LabNat } from "../resolve/lab.ts";
import type { UnsolicitedTcp } from "../parse/topology.ts";
import { remapPorts } from "../resolve/nat-behaviour.ts";
import { portMappingPorts } from "../vocabulary/port-mapping.ts";
import { renderDaemonTable } from "./miniupnpd.ts";
import { gilbert } from "./tc.ts";


let poolLines: readonly string[] | undefined;

/** The pool map's text, the same in every NAT (made once: a lab of 1,000 NATs would make it 1,000 times). */
function remapPool(): readonly string[] {
	return (poolLines ??= makeRemapPool());
}

function makeRemapPool(): string[] {
	const lines: string[] = [];
	for (let i = 0; i < remapPorts.count; i += 16) {
		const row = Array.from({ length: Math.min(16, remapPorts.count - i) }, (_, k) => `${i + k} : ${remapPorts.first + i + k}`);
		lines.push(`\t\t\t${row.join(", ")}${i + 16 < remapPorts.count ? "," : ""}`);
	}
	return [`\t# the ports handed out in turn when a port is not preserved`, `\tmap remap-pool {`, `\t\ttypeof numgen inc mod ${remapPorts.count} : udp sport`, `\t\tsize ${remapPorts.count}`, `\t\telements = {`, ...lines, `\t\t}`, `\t}`];
}

export function renderNatRules(node: string, nat: LabNat): string {
	return nat.behaviour.oneToOne ? oneToOne(node, nat) : mappedNat(node, nat);
}

const quoted = (names: string[]) => (names.length === 1 ? `"${names[0]}"` : `{ ${names.map((name) => `"${name}"`).join(", ")} }`);

function header(node: string, nat: LabNat): string[] {
	const b = nat.behaviour;
	return [
		`# nat ${node}: ${b.label} — mapping ${b.mapping}, filtering ${b.filtering},`,
		`# hairpin ${b.hairpin ? "on" : "off"}, port preservation ${b.portPreservation ? "on" : "off"}, udp timeout ${b.udpTimeout}s, tcp timeout ${b.tcpTimeout}s (closing ${b.tcpTransitoryTimeout}s),`,
		`# unsolicited tcp ${b.unsolicitedTcp === "rst" ? "answered with a reset" : "dropped"}; public ${nat.publicAddress} on ${nat.outside}`,
	];
}

function forward(nat: LabNat, inbound: boolean): string[] {
	const inside = quoted(nat.inside);
	return [
		`\tchain forward {`,
		`\t\ttype filter hook forward priority filter; policy drop;`,
		`\t\tct state established,related accept`,
		`\t\tiifname ${inside} oifname "${nat.outside}" accept`,
		`\t\tiifname ${inside} oifname ${inside} accept`,
		...(inbound ? [`\t\tiifname "${nat.outside}" oifname ${inside} ct status dnat accept comment "let in what the filter maps allowed"`] : []),
		`\t}`,
	];
}

function oneToOne(node: string, nat: LabNat): string {
	const pub = nat.publicAddress;
	return [
		...header(node, nat),
		`table ip testbed {`,
		...forward(nat, true),
		`\tchain dstnat {`,
		`\t\ttype nat hook prerouting priority dstnat; policy accept;`,
		`\t\tiifname "${nat.outside}" ip daddr ${pub} dnat ip to ${nat.oneToOneHost} comment "static 1:1: everything for the public address goes to the host"`,
		`\t}`,
		`\tchain srcnat {`,
		`\t\ttype nat hook postrouting priority srcnat; policy accept;`,
		`\t\toifname "${nat.outside}" ip saddr ${nat.oneToOneHost} snat ip to ${pub}`,
		`\t\toifname "${nat.outside}" masquerade`,
		`\t}`,
		`}`,
		``,
	].join("\n");
}

function mappedNat(node: string, nat: LabNat): string {
	const b = nat.behaviour;
	const pub = nat.publicAddress;
	const out = `"${nat.outside}"`;
	const inside = quoted(nat.inside);
	const both = "meta l4proto { tcp, udp }";
	const map = (name: string, type: string, why: string) => [`\t# ${why}`, `\tmap ${name} {`, `\t\ttype ${type}`, `\t\tflags dynamic,timeout`, `\t}`];
	const set = (name: string, type: string, why: string) => [`\t# ${why}`, `\tset ${name} {`, `\t\ttype ${type}`, `\t\tflags dynamic,timeout`, `\t}`];
	const granting = nat.portMapping !== undefined;
	const inbound = b.filtering !== "address-and-port-dependent" || b.hairpin || granting;
	const remap = `numgen inc mod ${remapPorts.count} map @remap-pool`;
	const range = `${remapPorts.first}-${remapPorts.first + remapPorts.count - 1}`;
	// An inside endpoint (address, protocol, port): mappings are per protocol (RFC 4787, RFC 5382).
	const endpoint = "ip saddr . meta l4proto . th sport";

	// How a new outgoing flow gets its public port.
	const mapping: string[] = [];
	if (granting) mapping.push(`\t\t${both} ${endpoint} @granted snat ip to ${pub} : ${endpoint} map @granted comment "a port mapping granted to this endpoint (UPnP, NAT-PMP, PCP): its public port"`);
	if (b.mapping === "endpoint-independent") mapping.push(`\t\t${both} ${endpoint} @eim snat ip to ${pub} : ${endpoint} map @eim comment "this endpoint's mapping, whatever the destination"`);
	if (b.mapping === "address-dependent") mapping.push(`\t\t${both} ${endpoint} . ct original ip daddr @adm snat ip to ${pub} : ${endpoint} . ct original ip daddr map @adm comment "this endpoint's mapping for this remote address"`);
	if (b.mapping !== "endpoint-independent") mapping.push(`\t\t${endpoint} @seen jump remap comment "a new destination: a new public port"`);
	if (b.portPreservation) {
		mapping.push(`\t\tmeta l4proto . th sport @used jump remap comment "port taken by another mapping or by the NAT itself"`);
		if (granting) mapping.push(`\t\tmeta l4proto . th sport @granted-public jump remap comment "port granted to a port mapping"`);
		mapping.push(`\t\tth sport ${range} jump remap comment "ports of the remap range are never preserved"`);
		mapping.push(`\t\t${both} snat ip to ${pub} comment "port preservation: keep the inside port"`);
	} else mapping.push(`\t\tjump remap comment "no port preservation"`);

	// What the learn chain remembers, from the original direction of our own mappings and from the
	// reply direction of flows let in by a filter map; each element lives as long as the protocol's
	// idle timeout (a TCP connection that closes: the transitory one).
	const learn = (saddr: string, sport: string, timeout: string): string[] => {
		const inner = `${saddr} . ${sport}`;
		const rules = [`update @public { meta l4proto . th sport timeout ${timeout} : ${inner} }`];
		if (b.mapping === "endpoint-independent") rules.push(`update @eim { ${saddr} . meta l4proto . ${sport} timeout ${timeout} : th sport }`);
		if (b.mapping === "address-dependent") rules.push(`update @adm { ${saddr} . meta l4proto . ${sport} . ip daddr timeout ${timeout} : th sport }`);
		if (b.mapping !== "endpoint-independent") rules.push(`update @seen { ${saddr} . meta l4proto . ${sport} timeout ${timeout} }`);
		if (b.filtering === "address-dependent") rules.push(`update @adf { meta l4proto . th sport . ip daddr timeout ${timeout} : ${inner} }`);
		return rules;
	};
	const learned = (protocol: string, timeout: number, match = ""): string[] => [
		...learn("ct original ip saddr", "ct original proto-src", `${timeout}s`).map((rule) => `\t\toifname ${out} meta l4proto ${protocol} ${match}ct direction original ct status snat ${rule}`),
		...learn("ct reply ip saddr", "ct reply proto-src", `${timeout}s`).map((rule) => `\t\toifname ${out} meta l4proto ${protocol} ${match}ct direction reply ct status dnat ${rule}`),
		`\t\toifname ${out} meta l4proto ${protocol} ${match}update @used { meta l4proto . th sport timeout ${timeout}s }`,
	];

	const filters: string[] = [];
	if (b.filtering === "endpoint-independent")
		filters.push(`\t\tiifname ${out} ip daddr ${pub} ${both} meta l4proto . th dport @public dnat ip to meta l4proto . th dport map @public comment "EIF: anyone may send to a live mapping"`);
	if (b.filtering === "address-dependent")
		filters.push(`\t\tiifname ${out} ip daddr ${pub} ${both} meta l4proto . th dport . ip saddr @adf dnat ip to meta l4proto . th dport . ip saddr map @adf comment "ADF: only addresses the inside endpoint sent to"`);
	if (b.hairpin && granting) filters.push(`\t\tiifname ${inside} ip daddr ${pub} ${both} meta l4proto . th dport @granted-public dnat ip to meta l4proto . th dport map @granted-public comment "hairpin: inside to a granted port mapping"`);
	if (b.hairpin) filters.push(`\t\tiifname ${inside} ip daddr ${pub} ${both} meta l4proto . th dport @public dnat ip to meta l4proto . th dport map @public comment "hairpin: inside to a public mapping of this NAT"`);

	return [
		...header(node, nat),
		`table ip testbed {`,
		...map("public", "inet_proto . inet_service : ipv4_addr . inet_service", "protocol . public port → the inside endpoint that owns it"),
		...(b.mapping === "endpoint-independent" ? map("eim", "ipv4_addr . inet_proto . inet_service : inet_service", "inside endpoint → its public port (endpoint-independent mapping)") : []),
		...(b.mapping === "address-dependent" ? map("adm", "ipv4_addr . inet_proto . inet_service . ipv4_addr : inet_service", "inside endpoint . remote address → public port (address-dependent mapping)") : []),
		...(b.mapping !== "endpoint-independent" ? set("seen", "ipv4_addr . inet_proto . inet_service", "inside endpoints that already have a mapping") : []),
		...(b.filtering === "address-dependent" ? map("adf", "inet_proto . inet_service . ipv4_addr : ipv4_addr . inet_service", "protocol . public port . remote address it was sent to → inside endpoint (address-dependent filtering)") : []),
		...set("used", "inet_proto . inet_service", "protocol . public ports in use, by mappings or by the NAT box itself"),
		...(granting ? map("granted", "ipv4_addr . inet_proto . inet_service : inet_service", "inside endpoint → the public port a port-mapping client was granted (from the daemon's leases)") : []),
		...(granting ? map("granted-public", "inet_proto . inet_service : ipv4_addr . inet_service", "protocol . granted public port → its inside endpoint") : []),
		...remapPool(),
		...forward(nat, inbound),
		`\tchain input {`,
		`\t\ttype filter hook input priority filter; policy accept;`,
		...(granting ? [`\t\tiifname ${out} udp dport { ${portMappingPorts.ssdp}, ${portMappingPorts.pmp} } drop comment "port mapping is for the inside only"`, `\t\tiifname ${out} tcp dport ${portMappingPorts.http} drop`] : []),
		...refused(nat),
		...unsolicitedToGateway(out, b.unsolicitedTcp),
		`\t}`,
		`\tchain dstnat {`,
		`\t\ttype nat hook prerouting priority dstnat; policy accept;`,
		...filters,
		`\t}`,
		`\tchain remap {`,
		`\t\t${both} snat ip to ${pub} : ${remap} comment "a fresh public port from ${range}"`,
		`\t}`,
		`\tchain mapping {`,
		...mapping,
		`\t}`,
		`\tchain srcnat {`,
		`\t\ttype nat hook postrouting priority srcnat; policy accept;`,
		`\t\toifname ${out} ${both} ip saddr != ${pub} jump mapping`,
		...(b.hairpin ? [`\t\tiifname ${inside} oifname ${inside} ${both} ct original ip daddr ${pub} jump mapping comment "hairpin: the peer sees our public endpoint"`] : []),
		`\t\toifname ${out} masquerade`,
		`\t}`,
		`\tchain learn {`,
		`\t\ttype filter hook postrouting priority srcnat + 10; policy accept;`,
		...learned("udp", b.udpTimeout),
		...learned("tcp", b.tcpTimeout, "tcp flags & (fin | rst) == 0 "),
		...learned("tcp", b.tcpTransitoryTimeout, "tcp flags & (fin | rst) != 0 "),
		`\t}`,
		`}`,
		...(granting ? renderDaemonTable() : []),
		``,
	].join("\n");
}

/**
 * A gateway's input rules for what comes in from outside addressed to the box itself: its own
 * services (a listening socket) are reached; anything else new is dropped before conntrack keeps it,
 * so it cannot shadow a later mapping — or, with `unsolicited-tcp: rst`, a SYN gets a reset. For
 * testbed's IPv4 NATs, and for NAT66, where a packet for no flow is addressed to the gateway too.
 */
export function unsolicitedToGateway(out: string, unsolicitedTcp: UnsolicitedTcp): string[] {
	const both = "meta l4proto { tcp, udp }";
	return [
		`\t\tiifname ${out} ${both} ct state new socket wildcard 0 accept comment "the NAT box's own services"`,
		`\t\tiifname ${out} ${both} ct state new socket wildcard 1 accept`,
		...(unsolicitedTcp === "rst"
			? [`\t\tiifname ${out} meta l4proto tcp ct state new counter reject with tcp reset comment "unsolicited SYN: answered with a reset"`, `\t\tiifname ${out} meta l4proto udp ct state new counter drop comment "unsolicited: dropped before conntrack keeps it, so it cannot shadow a later mapping"`]
			: [`\t\tiifname ${out} ${both} ct state new counter drop comment "unsolicited: dropped before conntrack keeps it, so it cannot shadow a later mapping (a SYN gets no answer, RFC 5382 REQ-4)"`]),
	];
}

/**
 * NAT-PMP and PCP share a port and one switch of the daemon: the one not offered is dropped by its
 * version byte (NAT-PMP 0, PCP 2), as a router that does not speak it.
 */
function refused(nat: LabNat): string[] {
	const protocols = nat.portMapping?.protocols ?? [];
	const inside = quoted(nat.inside);
	const rules: string[] = [];
	if (protocols.includes("pcp") && !protocols.includes("nat-pmp")) rules.push(`\t\tiifname ${inside} udp dport ${portMappingPorts.pmp} @th,64,8 0 drop comment "NAT-PMP is not offered"`);
	if (protocols.includes("nat-pmp") && !protocols.includes("pcp")) rules.push(`\t\tiifname ${inside} udp dport ${portMappingPorts.pmp} @th,64,8 2 drop comment "PCP is not offered"`);
	return rules;
}

/** The netdev table that holds an interface's loss rules: one per interface, so each can be replaced alone. */
export function impairTable(iface: string): string {
	return `testbed_impair_${iface}`;
}

/** numgen's range for the Gilbert model's transitions (finer than for random loss: they can be small). */
const burstScale = 1_000_000;

/**
 * Loss on an interface's egress without netem, in a netdev egress chain (unlike a drop in the IP
 * output path, a UDP sender sees no error). Random loss: numgen draws 0-9999 per packet, below the
 * threshold is dropped. Burst loss (Gilbert model): a set holding the interface is the state — while
 * it is there, packets are lost and each ends the burst with r = 1/B; outside it, each packet starts
 * one with p = L·r/(1−L). Bursts then last B packets on average and L of all packets are lost.
 */
export function renderLossRules(iface: string, loss: { percent: number; burst?: number }): string {
	const head = [`table netdev ${impairTable(iface)} {`];
	const chain = [`\tchain egress {`, `\t\ttype filter hook egress device "${iface}" priority filter; policy accept;`];
	if (!loss.burst)
		return [
			`# random loss without netem: numgen draws 0-9999 per packet, below the threshold is dropped`,
			...head,
			...chain,
			`\t\tnumgen random mod 10000 < ${Math.round(loss.percent * 100)} counter drop comment "loss ${loss.percent}%"`,
			`\t}`,
			`}`,
			``,
		].join("\n");
	const { p, r } = gilbert(loss.percent, loss.burst);
	const below = (probability: number) => `numgen random mod ${burstScale} < ${Math.round(probability * burstScale)}`;
	return [
		`# burst loss without netem (Gilbert model): while the set holds the interface, packets are lost`,
		...head,
		`\tset burst {`,
		`\t\ttype iface_index`,
		`\t\tflags dynamic`,
		`\t}`,
		...chain,
		`\t\tmeta oif @burst ${below(r)} delete @burst { meta oif } counter drop comment "lost, and the burst ends (mean length ${loss.burst})"`,
		`\t\tmeta oif @burst counter drop comment "lost: in a burst"`,
		`\t\t${below(p)} add @burst { meta oif } counter comment "a burst starts with the next packet (loss ${loss.percent}%)"`,
		`\t}`,
		`}`,
		``,
	].join("\n");
}

/**
 * `nft -f` text that replaces an interface's loss rules (whatever `up` or an earlier change made, or
 * nothing) with these, or removes them. Adding the table first makes the delete succeed either way;
 * the file is one transaction.
 */
export function renderLossChange(iface: string, loss: { percent: number; burst?: number } | undefined): string {
	const table = `netdev ${impairTable(iface)}`;
	return [`add table ${table}`, `delete table ${table}`, ...(loss ? [renderLossRules(iface, loss).trimEnd()] : []), ``].join("\n");
}
