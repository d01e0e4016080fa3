// nftables rules for a NAT box, as the text `nft -f` reads.
import type { LabNat } from "../resolve/lab.ts";

/** Masquerade out of the outside interface; forward inside → outside and replies only. */
export function renderNatRules(node: string, nat: LabNat): string {
	const inside = set(nat.inside);
	return [
		`# nat ${node}: masquerade out of ${nat.outside}; only replies come back in`,
		`table ip testbed {`,
		`\tchain forward {`,
		`\t\ttype filter hook forward priority filter; policy drop;`,
		`\t\tct state established,related accept`,
		`\t\tiifname ${inside} oifname "${nat.outside}" accept`,
		...(nat.inside.length > 1 ? [`\t\tiifname ${inside} oifname ${inside} accept`] : []),
		`\t}`,
		`\tchain postrouting {`,
		`\t\ttype nat hook postrouting priority srcnat; policy accept;`,
		`\t\toifname "${nat.outside}" masquerade`,
		`\t}`,
		`}`,
		``,
	].join("\n");
}

function set(names: string[]): string {
	return names.length === 1 ? `"${names[0]}"` : `{ ${names.map((name) => `"${name}"`).join(", ")} }`;
}
