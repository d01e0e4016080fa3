// Reading YAML with positions and problems: the helpers every part of the topology reader uses —
// keys checked against the known ones, typed values, aliases resolved (bounded), line:col for each.
import { isAlias, isMap, isPair, isScalar, isSeq, visit, type Node as YamlNode, type Pair, type YAMLMap } from "yaml";
import type { TopologySource } from "../parse/source.ts";
import type { Located } from "../parse/topology.ts";
import type { Pos, Problem, ProblemCode } from "../vocabulary/problems.ts";
import { interfaceNamePattern } from "../vocabulary/names.ts";
import { closest, parseDuration } from "./units.ts";
import { isCidr } from "./addresses.ts";
import { isCidr6 } from "./addresses6.ts";

/** How many map entries and list items reading may visit: aliases can multiply a small file. */
export const itemBudget = 200_000;

export class YamlReader {
	private budget = itemBudget;
	private readonly anchors = new Map<string, YamlNode[]>();

	constructor(
		readonly source: TopologySource,
		readonly problems: Problem[],
	) {
		// Anchors once, in document order: yaml's Alias.resolve walks the whole document per alias.
		visit(source.document, (_key, node) => {
			const anchor = (node as { anchor?: string } | null)?.anchor;
			if (!anchor || isAlias(node)) return;
			const list = this.anchors.get(anchor);
			if (list) list.push(node as YamlNode);
			else this.anchors.set(anchor, [node as YamlNode]);
		});
	}

	/** Count visited items; past the budget, report once and read nothing more. */
	spend(count: number, at: unknown): boolean {
		if (this.budget < 0) return false;
		this.budget -= count;
		if (this.budget >= 0) return true;
		this.report("YAML_SYNTAX", at, `the document expands to more than ${itemBudget} entries (through aliases?)`, "write the values out instead of aliasing large parts");
		return false;
	}

	/** A regular expression, checked now so that a bad one is a problem with a position, not a crash later. */
	pattern(pair: Pair | undefined, what: string): Located<string> | undefined {
		const text = this.string(pair, what);
		if (!text) return undefined;
		try {
			new RegExp(text.value);
			return text;
		} catch (error) {
			this.problem("BAD_VALUE", text.pos, `\`${what}:\` is not a valid regular expression: ${(error as Error).message.replace(/^Invalid regular expression: /, "")}`, "escape special characters with \\, e.g. `1 received`, `ready\\.`");
			return undefined;
		}
	}

	within(pair: Pair | undefined, fallback: number): number {
		if (!pair) return fallback;
		const node = this.resolve(pair.value as YamlNode);
		const value = isScalar(node) ? parseDuration(node.value, "s") : undefined;
		if (value === undefined || value <= 0 || value > 3_600_000) {
			this.report("BAD_VALUE", node ?? pair.key, "`within:` must be a duration from 1ms to 1h", "write e.g. `within: 10s`");
			return fallback;
		}
		return value;
	}

	checkInterfaceName(name: Located<string>): void {
		if (name.value.length > 15)
			this.problem("BAD_INTERFACE_NAME", name.pos, `interface name "${name.value}" is ${name.value.length} characters; Linux allows 15`, "use a shorter name such as `eth0` or `wan`");
		else if (!interfaceNamePattern.test(name.value) || name.value === "lo")
			this.problem("BAD_INTERFACE_NAME", name.pos, `interface name "${name.value}" is not valid`, "use letters, digits, _ . and - (not `lo`)");
	}

	checkCidr(address: Located<string>, hostAddress: boolean): void {
		if (!isCidr(address.value))
			this.problem("BAD_CIDR", address.pos, `"${address.value}" is not an IPv4 address with a prefix length`, hostAddress ? "write e.g. `10.0.1.2/24`" : "write e.g. `10.0.1.0/24`");
	}

	/** An IPv6 prefix (`subnet6:`): a v4 subnet there, or a prefix longer than /127, is named. */
	checkCidr6(subnet: Located<string>): boolean {
		if (isCidr6(subnet.value)) {
			if (Number(subnet.value.split("/")[1]) <= 127) return true;
			this.problem("BAD_CIDR", subnet.pos, `subnet6 ${subnet.value} has no room for two interfaces`, "use a /64 (or at most /127 for a point-to-point link)");
			return false;
		}
		this.problem("BAD_CIDR", subnet.pos, isCidr(subnet.value) ? `subnet6 "${subnet.value}" is an IPv4 subnet` : `"${subnet.value}" is not an IPv6 prefix`, isCidr(subnet.value) ? "put IPv4 subnets in `subnet:`, IPv6 prefixes such as `2001:db8:1::/64` in `subnet6:`" : "write e.g. `subnet6: 2001:db8:1::/64`");
		return false;
	}

	/** An interface address of either family: `10.0.1.2/24` or `2001:db8:1::2/64`. */
	checkAnyCidr(address: Located<string>): 4 | 6 | undefined {
		if (isCidr(address.value)) return 4;
		if (isCidr6(address.value)) return 6;
		this.problem("BAD_CIDR", address.pos, `"${address.value}" is not an IPv4 or IPv6 address with a prefix length`, "write e.g. `10.0.1.2/24` or `2001:db8:1::2/64`");
		return undefined;
	}

	entries(map: YAMLMap, known: readonly string[], where: string): Map<string, Pair> {
		const entries = new Map<string, Pair>();
		if (!this.spend(map.items.length, map)) return entries;
		for (const pair of map.items) {
			const keyNode = pair.key as YamlNode;
			const key = isScalar(keyNode) ? String(keyNode.value) : "";
			if (entries.has(key)) {
				this.problem("DUPLICATE_KEY", this.pos(keyNode), `key "${key}" appears twice in ${where}`, "remove or merge one of them");
				continue;
			}
			if (!known.includes(key)) {
				const guess = closest(key, known);
				this.problem("UNKNOWN_KEY", this.pos(keyNode), `unknown key "${key}" in ${where}${guess ? `; did you mean "${guess}"?` : ""}`, guess ? `rename it to \`${guess}\`` : `known keys: ${known.filter((k) => k !== "$schema").join(", ")}`);
				continue;
			}
			entries.set(key, pair);
		}
		return entries;
	}

	string(pair: Pair | undefined, what: string, allowEmpty = false): Located<string> | undefined {
		if (!pair) return undefined;
		const node = this.resolve(pair.value as YamlNode);
		if (!node || !isScalar(node) || node.value === null || typeof node.value === "object" || (!allowEmpty && String(node.value) === "")) {
			this.report("WRONG_TYPE", node ?? (pair.key as YamlNode), `\`${what}:\` must be a text value`, undefined);
			return undefined;
		}
		return { value: String(node.value), pos: this.pos(node) };
	}

	boolean(pair: Pair | undefined, what: string): Located<boolean> | undefined {
		if (!pair) return undefined;
		const node = this.resolve(pair.value as YamlNode);
		if (!isScalar(node) || typeof node.value !== "boolean") {
			this.report("WRONG_TYPE", node ?? (pair.key as YamlNode), `\`${what}:\` must be true or false`, `write \`${what}: true\``);
			return undefined;
		}
		return { value: node.value, pos: this.pos(node) };
	}

	choice<T extends string>(pair: Pair | undefined, what: string, choices: readonly T[]): Located<T> | undefined {
		const text = this.string(pair, what);
		if (!text) return undefined;
		if (!(choices as readonly string[]).includes(text.value)) {
			const guess = closest(text.value, choices);
			this.problem("BAD_VALUE", text.pos, `${what} "${text.value}" is not one of: ${choices.join(", ")}${guess ? `; did you mean "${guess}"?` : ""}`, guess ? `write \`${what}: ${guess}\`` : undefined);
			return undefined;
		}
		return text as Located<T>;
	}

	list(pair: Pair | undefined, what: string): YamlNode[] {
		if (!pair) return [];
		const node = this.resolve(pair.value as YamlNode);
		if (!node || (isScalar(node) && node.value === null)) return [];
		if (!isSeq(node)) {
			this.report("WRONG_TYPE", node, `\`${what}:\` must be a list`, `write \`${what}:\` followed by \`- …\` items`);
			return [];
		}
		if (!this.spend(node.items.length, node)) return [];
		return node.items.map((item) => this.resolve(item as YamlNode)).filter((item): item is YamlNode => item !== null);
	}

	map(node: YamlNode | null, what: string, fix: string): YAMLMap | undefined {
		const resolved = this.resolve(node);
		if (!resolved || !isMap(resolved)) {
			this.report("WRONG_TYPE", resolved ?? undefined, `${what} must be a map`, fix);
			return undefined;
		}
		return resolved;
	}

	/** Wrap a bare node as a pair so `string()` can read it. */
	pairOf(node: YamlNode): Pair {
		return { key: node, value: node } as unknown as Pair;
	}

	resolve(node: unknown): YamlNode | null {
		let current = node as YamlNode | null | undefined;
		for (let depth = 0; current && isAlias(current) && depth < 32; depth++) {
			const alias = current;
			// The latest definition of the anchor before the alias (definitions are in document order).
			const definitions = this.anchors.get(alias.source) ?? [];
			const at = alias.range?.[0] ?? 0;
			let low = 0;
			let high = definitions.length;
			while (low < high) {
				const middle = (low + high) >> 1;
				if ((definitions[middle].range?.[0] ?? 0) < at) low = middle + 1;
				else high = middle;
			}
			current = definitions[low - 1];
		}
		if (!current || isAlias(current) || isPair(current)) return null;
		return current;
	}

	/** Where a scalar's text begins: after its opening quote, if it has one (placeholder columns count from there). */
	textPos(node: YamlNode): Pos {
		const pos = this.pos(node);
		const quoted = isScalar(node) && (node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE");
		return quoted ? { line: pos.line, col: pos.col + 1 } : pos;
	}

	pos(node: unknown): Pos {
		const offset = (node as YamlNode | undefined | null)?.range?.[0];
		return offset === undefined ? { line: 1, col: 1 } : this.source.position(offset);
	}

	report(code: ProblemCode, node: unknown, message: string, fix: string | undefined): void {
		this.problem(code, this.pos(node), message, fix);
	}

	problem(code: ProblemCode, pos: Pos, message: string, fix?: string): void {
		this.problems.push({ code, pos, message, fix });
	}
}
