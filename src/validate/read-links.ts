// Reading `links:`: endpoints, subnet or addresses, state, MTU and impairments (also for `impair` steps).
import { isScalar, isSeq, type Node as YamlNode, type Pair } from "yaml";
import type { EndpointDecl, ImpairDecl, LinkDecl, Located } from "../parse/topology.ts";
import { parseDuration, parsePercent, parseRate } from "./units.ts";
import type { Pos } from "../vocabulary/problems.ts";
import { topologyKeys } from "./topology-keys.ts";
import { isCidr6 } from "./addresses6.ts";
import type { YamlReader } from "./yaml-reader.ts";

export function readLink(r: YamlReader, item: YamlNode, links: LinkDecl[]): void {
	const map = r.map(item, "link", "write `- endpoints: [alice:eth0, home:lan]`");
	if (!map) return;
	const entries = r.entries(map, topologyKeys.link, "link");
	const endpointsPair = entries.get("endpoints");
	if (!endpointsPair) {
		r.report("MISSING_KEY", map, "link has no `endpoints:`", "add `endpoints: [node:iface, node:iface]`");
		return;
	}
	const seq = r.resolve(endpointsPair.value as YamlNode);
	if (!seq || !isSeq(seq) || seq.items.length !== 2) {
		r.report("BAD_ENDPOINT", seq ?? endpointsPair.key, "a link has exactly two endpoints", "write `endpoints: [alice:eth0, home:lan]`");
		return;
	}
	const endpoints: EndpointDecl[] = [];
	for (const element of seq.items) {
		const node = r.resolve(element as YamlNode);
		const text = isScalar(node) ? String(node.value) : "";
		const match = /^([^:]+):([^:]+)$/.exec(text);
		if (!match) {
			r.report("BAD_ENDPOINT", node ?? seq, `endpoint "${text}" is not node:interface`, "write e.g. `alice:eth0`");
			continue;
		}
		const endpoint = { node: match[1], iface: match[2], pos: r.pos(node!) };
		r.checkInterfaceName({ value: endpoint.iface, pos: { ...endpoint.pos, col: endpoint.pos.col + match[1].length + 1 } });
		endpoints.push(endpoint);
	}
	if (endpoints.length !== 2) return;
	const link: LinkDecl = { pos: r.pos(map), endpoints: endpoints as [EndpointDecl, EndpointDecl] };
	link.subnet = r.string(entries.get("subnet"), "subnet");
	if (link.subnet) {
		if (isCidr6(link.subnet.value)) r.problem("BAD_CIDR", link.subnet.pos, `subnet "${link.subnet.value}" is an IPv6 prefix`, "put IPv6 prefixes in `subnet6:`, e.g. `subnet6: 2001:db8:1::/64`");
		else r.checkCidr(link.subnet, false);
	}
	const subnet6 = r.string(entries.get("subnet6"), "subnet6");
	if (subnet6 && r.checkCidr6(subnet6)) link.subnet6 = subnet6;
	const addressesPair = entries.get("addresses");
	if (addressesPair) {
		const list = r.resolve(addressesPair.value as YamlNode);
		link.addressesPos = r.pos(list ?? addressesPair.key);
		if (!list || !isSeq(list)) r.report("WRONG_TYPE", list ?? addressesPair.key, "`addresses:` must be a list, one per endpoint", "write `addresses: [10.0.2.2/24, 10.0.2.1/24]`");
		else {
			// Each endpoint's entry: one address (either family), `~`, or a list of one of each family.
			const v4: (Located<string> | null)[] = [];
			const v6: (Located<string> | null)[] = [];
			for (const element of list.items) {
				const node = r.resolve(element as YamlNode);
				const found: { 4?: Located<string>; 6?: Located<string> } = {};
				const values = node && isSeq(node) ? node.items.map((item) => r.resolve(item as YamlNode)) : [node];
				for (const value of values) {
					if (!value || (isScalar(value) && (value.value === null || value.value === ""))) continue;
					const address = r.string(r.pairOf(value), "addresses");
					const family = address && r.checkAnyCidr(address);
					if (!address || !family) continue;
					if (found[family]) r.problem("BAD_CIDR", address.pos, `this endpoint has two IPv${family} addresses`, "give each endpoint at most one address of each family, e.g. `[10.0.2.2/24, 2001:db8:2::2/64]`");
					else found[family] = address;
				}
				v4.push(found[4] ?? null);
				v6.push(found[6] ?? null);
			}
			link.addresses = v4;
			if (v6.some(Boolean)) link.addresses6 = v6;
		}
	}
	const impair = entries.get("impair");
	if (impair) {
		const map = r.map(r.resolve(impair.value as YamlNode), "impair", "write `impair: { delay: 20ms, loss: 1% }`");
		if (map) {
			const impairEntries = r.entries(map, topologyKeys.impair, "impair");
			link.impair = readImpair(r, impairEntries, r.pos(impair.key as YamlNode));
			const from = impairEntries.get("from");
			if (from) link.impairFrom = readImpairFrom(r, from);
		}
	}
	const state = r.choice(entries.get("state"), "state", ["up", "down"] as const);
	if (state) link.down = { value: state.value === "down", pos: state.pos };
	const mtu = entries.get("mtu");
	if (mtu) {
		const node = r.resolve(mtu.value as YamlNode);
		const value = isScalar(node) ? Number(node.value) : NaN;
		if (!Number.isInteger(value) || value < 68 || value > 65535) r.problem("BAD_VALUE", r.pos(node ?? mtu.key), "mtu must be a whole number from 68 to 65535", "write e.g. `mtu: 1400`");
		else link.mtu = { value, pos: r.pos(node!) };
	}
	links.push(link);
}

/** The impairment keys among `entries` (a link's `impair:` map, or an impair step); undefined when there are none. */
export function readImpair(r: YamlReader, entries: Map<string, Pair>, pos: Pos): ImpairDecl | undefined {
	const impair: ImpairDecl = { pos };
	let any = false;
	const field = (key: string, name: keyof ImpairDecl, parse: (value: unknown) => number | undefined, fix: string) => {
		const entry = entries.get(key);
		if (!entry) return;
		const node = r.resolve(entry.value as YamlNode);
		const value = isScalar(node) ? parse(node.value) : undefined;
		if (value === undefined) r.problem("BAD_IMPAIRMENT", r.pos(node ?? entry.key), `${key}: "${isScalar(node) ? String(node.value) : "?"}" is not valid`, fix);
		else (impair as unknown as Record<string, Located<number>>)[name] = { value, pos: r.pos(node!) };
		any = true;
	};
	field("delay", "delay", (value) => parseDuration(value, "ms"), "write a duration such as `20ms`");
	field("jitter", "jitter", (value) => parseDuration(value, "ms"), "write a duration such as `2ms`");
	for (const key of ["loss", "duplicate", "reorder", "corrupt"] as const) field(key, key, parsePercent, "write a percentage from 0% to 100%, e.g. `1%`");
	field("loss-burst", "lossBurst", (value) => (Number(value) >= 1 && Number(value) <= 10_000 ? Number(value) : undefined), "write the mean burst length in packets, e.g. `loss-burst: 4` (at least 1)");
	field("rate", "rate", parseRate, "write a rate such as `10mbit` or `512kbit`");
	field("limit", "limit", (value) => (Number.isInteger(Number(value)) && Number(value) > 0 ? Number(value) : undefined), "write a queue length in packets, e.g. `1000`");
	if (impair.lossBurst && !impair.loss) r.problem("BAD_IMPAIRMENT", impair.lossBurst.pos, "loss-burst without loss", "add the average loss rate, e.g. `loss: 5%`");
	// In bursts of B on average, at most B of every B+1 packets can be lost (a good packet ends each burst).
	if (impair.loss && impair.lossBurst && impair.loss.value > (100 * impair.lossBurst.value) / (impair.lossBurst.value + 1))
		r.problem("BAD_IMPAIRMENT", impair.loss.pos, `loss ${impair.loss.value}% cannot be reached in bursts of ${impair.lossBurst.value} on average (at most ${Math.floor((1000 * impair.lossBurst.value) / (impair.lossBurst.value + 1)) / 10}%)`, "lower `loss:` or raise `loss-burst:`");
	return any ? impair : undefined;
}

/** `from: { node: { impair keys } }`: one direction each. */
function readImpairFrom(r: YamlReader, pair: Pair): { node: Located<string>; impair: ImpairDecl }[] {
	const map = r.map(r.resolve(pair.value as YamlNode), "impair `from:`", "write `from: { alice: { rate: 1mbit } }`: the impairment of what alice sends on this link");
	if (!map || !r.spend(map.items.length, map)) return [];
	const result: { node: Located<string>; impair: ImpairDecl }[] = [];
	for (const item of map.items) {
		const node = r.string(r.pairOf(item.key as YamlNode), "from");
		const inner = r.map(r.resolve(item.value as YamlNode), `impair from "${node?.value ?? "?"}"`, "write e.g. `alice: { loss: 5% }`");
		if (!node || !inner) continue;
		const impair = readImpair(r, r.entries(inner, topologyKeys.impair.filter((key) => key !== "from"), `impair from "${node.value}"`), node.pos);
		if (impair) result.push({ node, impair });
	}
	return result;
}
