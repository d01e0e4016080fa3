// The NAT's dynamic state as nftables holds it: which maps and sets of the NAT table `up` built are
// dynamic (from the same rules text render/nft.ts writes), and `nft -j` output of them read back as
// data. Pure: events (which forget mappings) and nat-table (which shows them) read NAT state this way.
import type { LabNat } from "../resolve/lab.ts";
import { renderNatRules } from "./nft.ts";

/** The maps that mirror a port-mapping daemon's leases (render/miniupnpd.ts). */
const grantMaps = ["granted", "granted-public"];

/** The dynamic maps and sets of a NAT's table as `up` built it (`remap-pool` is static); none for a masquerade NAT (only conntrack). */
export function natStateSets(node: string, nat: LabNat): { kind: "map" | "set"; name: string }[] {
	if (nat.behaviour.masquerade) return [];
	const sets: { kind: "map" | "set"; name: string }[] = [];
	for (const match of renderNatRules(node, nat).matchAll(/^\t(map|set) (\S+) \{\n\t\ttype [^\n]+\n\t\tflags dynamic/gm))
		// The port-mapping daemon's grants are its own (mirrored from its leases), not the NAT's dynamic mappings.
		if (!grantMaps.includes(match[2])) sets.push({ kind: match[1] as "map" | "set", name: match[2] });
	return sets;
}

/** The live content of a NAT's dynamic maps and sets: each element as its key parts and value parts. */
export type NatState = Map<string, { key: (string | number)[]; value?: (string | number)[]; secondsLeft?: number }[]>;

/** Parse `nft -j list table|map|set …` of testbed's NAT table into NatState. Unknown shapes are skipped. */
export function parseNatState(json: string, sets: string[]): NatState {
	const state: NatState = new Map(sets.map((name) => [name, []]));
	const flat = (item: unknown): (string | number)[] => {
		if (typeof item === "string" || typeof item === "number") return [item];
		const record = item as { elem?: { val?: unknown }; concat?: unknown[] } | null;
		if (record?.elem) return flat(record.elem.val);
		if (Array.isArray(record?.concat)) return record!.concat.flatMap(flat);
		return [];
	};
	let parsed: { nftables?: Record<string, { name?: string; elem?: unknown[] }>[] };
	try {
		parsed = JSON.parse(json);
	} catch {
		return state;
	}
	for (const item of parsed.nftables ?? []) {
		const container = item.map ?? item.set;
		if (!container?.name || !state.has(container.name)) continue;
		for (const elem of container.elem ?? []) {
			const [key, value] = item.map && Array.isArray(elem) && elem.length === 2 ? elem : [elem, undefined];
			if (item.map && value === undefined) continue;
			const expires = (key as { elem?: { expires?: number } } | null)?.elem?.expires;
			state.get(container.name)!.push({ key: flat(key), ...(value === undefined ? {} : { value: flat(value) }), ...(expires === undefined ? {} : { secondsLeft: expires }) });
		}
	}
	return state;
}
