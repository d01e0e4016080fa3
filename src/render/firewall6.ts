// nftables rules for a home gateway's IPv6 side: routed, not translated, behind a stateful firewall
// whose filtering is declared like a NAT's (RFC 4787 terms, RFC 6092's recommended default being
// address-and-port-dependent). What goes out opens the way back: conntrack lets exactly the replies
// in (APDF); for ADF a set remembers each inside endpoint's remote addresses, for EIF the inside
// endpoints that have sent at all. Nothing is translated, so there is no mapping, no port choice and
// no hairpin: inside hosts reach each other directly. With NPTv6 (RFC 6296) the inside prefix is
// rewritten to an outside one on the way out and back on the way in (stateless, ports kept); the
// filter sees inside addresses either way (it runs between the two rewrites). With NAT66 masquerade
// the inside prefixes leave from the gateway's outside address, a mapping per flow with the port
// kept where it is free, as the IPv4 lecture's MASQUERADE line does.
import type { LabNat } from "../resolve/lab.ts";
import { unsolicitedToGateway } from "./nft.ts";

export const firewall6Table = "testbed6";

/** What a gateway translates of IPv6, in words (NPTv6's two prefixes, NAT66's outside address); undefined: routed. */
export function translation6({ npt, masquerade }: NonNullable<LabNat["firewall6"]>): string | undefined {
	if (npt) return `NPTv6 ${npt.inside} ↔ ${npt.outside}`;
	if (masquerade) return `NAT66 masquerade to ${masquerade.outside}`;
	return undefined;
}

/** The sets a gateway's IPv6 firewall learns into (what a reboot forgets): by its filtering. */
export function firewall6Sets(nat: LabNat): string[] {
	const filtering = nat.firewall6?.filtering;
	return filtering === "endpoint-independent" ? ["eif"] : filtering === "address-dependent" ? ["adf"] : [];
}

export function renderFirewall6(node: string, nat: LabNat): string {
	const filtering = nat.firewall6!.filtering;
	const b = nat.behaviour;
	const out = `"${nat.outside}"`;
	const inside = nat.inside.length === 1 ? `"${nat.inside[0]}"` : `{ ${nat.inside.map((name) => `"${name}"`).join(", ")} }`;
	const set = (name: string, type: string, why: string) => [`\t# ${why}`, `\tset ${name} {`, `\t\ttype ${type}`, `\t\tflags dynamic,timeout`, `\t}`];
	// What an outgoing packet teaches the filter, per protocol with its idle timeout.
	const learn = (name: string, key: string) => [
		`\t\tiifname ${inside} oifname ${out} meta l4proto udp update @${name} { ${key} timeout ${b.udpTimeout}s }`,
		`\t\tiifname ${inside} oifname ${out} meta l4proto tcp update @${name} { ${key} timeout ${b.tcpTimeout}s }`,
	];
	const endpoint = "ip6 saddr . meta l4proto . th sport";
	const sets: string[] = [];
	const rules: string[] = [];
	if (filtering === "endpoint-independent") {
		sets.push(...set("eif", "ipv6_addr . inet_proto . inet_service", "inside endpoints that have sent out: anyone may answer them (endpoint-independent filtering)"));
		rules.push(...learn("eif", endpoint));
	}
	if (filtering === "address-dependent") {
		sets.push(...set("adf", "ipv6_addr . inet_proto . inet_service . ipv6_addr", "inside endpoint . remote address it sent to (address-dependent filtering)"));
		rules.push(...learn("adf", `${endpoint} . ip6 daddr`));
	}
	const allowed =
		filtering === "endpoint-independent"
			? [`\t\tiifname ${out} oifname ${inside} meta l4proto { tcp, udp } ip6 daddr . meta l4proto . th dport @eif accept comment "EIF: anyone may reach an endpoint that has sent out"`]
			: filtering === "address-dependent"
				? [`\t\tiifname ${out} oifname ${inside} meta l4proto { tcp, udp } ip6 daddr . meta l4proto . th dport . ip6 saddr @adf accept comment "ADF: only addresses the inside endpoint sent to"`]
				: [];
	const unsolicited =
		b.unsolicitedTcp === "rst"
			? [`\t\tiifname ${out} meta l4proto tcp counter reject with tcp reset comment "unsolicited SYN: answered with a reset"`, `\t\tiifname ${out} counter drop comment "unsolicited"`]
			: [`\t\tiifname ${out} counter drop comment "unsolicited: dropped (a SYN gets no answer, RFC 6092 and RFC 5382 REQ-4)"`];
	const { npt, masquerade } = nat.firewall6!;
	const translation = translationChains(out, nat.firewall6!);
	// Behind NAT66 a packet for no flow is addressed to the gateway itself: it meets the IPv4 NATs'
	// input filter there (else the kernel would answer a SYN with a reset, whatever `unsolicited-tcp:` says).
	const input = masquerade ? [`\tchain input {`, `\t\ttype filter hook input priority filter; policy accept;`, ...unsolicitedToGateway(out, b.unsolicitedTcp), `\t}`] : [];
	return [
		`# ipv6 firewall ${node}: ${translation6(nat.firewall6!) ?? "routed, not translated"}${npt ? " (ports kept)" : ""}; filtering ${filtering}${filtering === "address-and-port-dependent" ? " (RFC 6092's recommended default)" : ""}`,
		`table ip6 ${firewall6Table} {`,
		...sets,
		...translation,
		...input,
		`\tchain forward {`,
		`\t\ttype filter hook forward priority filter; policy drop;`,
		`\t\tct state established,related accept comment "replies, and ICMPv6 errors about our flows (path MTU discovery)"`,
		...rules,
		`\t\tiifname ${inside} oifname ${out} accept`,
		`\t\tiifname ${inside} oifname ${inside} accept`,
		...allowed,
		...unsolicited,
		`\t}`,
		`}`,
		``,
	].join("\n");
}

/** The nat chains of a gateway that translates IPv6: NPTv6's two prefix rewrites, or NAT66's masquerade. */
function translationChains(out: string, { npt, masquerade }: NonNullable<LabNat["firewall6"]>): string[] {
	const chain = (name: string, hook: string, rule: string) => [`\tchain ${name} {`, `\t\ttype nat hook ${hook} priority ${name}; policy accept;`, `\t\t${rule}`, `\t}`];
	if (masquerade) {
		const inside = masquerade.inside.length === 1 ? masquerade.inside[0] : `{ ${masquerade.inside.join(", ")} }`;
		return chain("srcnat", "postrouting", `oifname ${out} ip6 saddr ${inside} masquerade comment "NAT66: the inside leaves from ${masquerade.outside}, a mapping per flow"`);
	}
	if (npt)
		return [
			...chain("dstnat", "prerouting", `iifname ${out} ip6 daddr ${npt.outside} dnat ip6 prefix to ${npt.inside} comment "NPTv6: the outside prefix stands for the inside one"`),
			...chain("srcnat", "postrouting", `oifname ${out} ip6 saddr ${npt.inside} snat ip6 prefix to ${npt.outside}`),
		];
	return [];
}
