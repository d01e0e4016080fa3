// Reading `steps:`: the timed events and checks of a scenario (and one step from `testbed event`).
import { isScalar, isSeq, type Node as YamlNode, type Pair } from "yaml";
import type { Located, StepDecl, EventDecl } from "../parse/topology.ts";
import { punchOutcomes, type PunchOutcome } from "../vocabulary/punch.ts";
import { closest, parseDuration } from "./units.ts";
import { stepKeys } from "./topology-keys.ts";
import type { YamlReader } from "./yaml-reader.ts";
import { readImpair } from "./read-links.ts";

export function readSteps(r: YamlReader, pair: Pair): StepDecl[] {
	const steps: StepDecl[] = [];
	for (const item of r.list(pair, "steps")) {
		const step = readStepItem(r, item);
		if (step) steps.push(step);
	}
	return steps;
}

export function readStepItem(r: YamlReader, item: YamlNode): StepDecl | undefined {
	const map = r.map(item, "step", "write e.g. `- connect: [alice, bob]`, `- wait: 2s`, `- nat-reboot: home` or `- expect: connected`");
	if (!map) return undefined;
	const kindPair = map.items.find((pair) => isScalar(pair.key) && String((pair.key as { value: unknown }).value) !== "at");
	const kind = kindPair && isScalar(kindPair.key) ? String(kindPair.key.value) : "";
	const pos = r.pos(kindPair?.key ?? map);
	if (!(kind in stepKeys)) {
		const guess = closest(kind, Object.keys(stepKeys));
		r.report("BAD_STEP", kindPair?.key ?? map, `unknown step "${kind}"${guess ? `; did you mean "${guess}"?` : ""}`, `a step starts with one of: ${Object.keys(stepKeys).join(", ")}`);
		return undefined;
	}
	const entries = r.entries(map, ["at", kind, ...stepKeys[kind]], `${kind} step`);
	const duration = (key: string, fix: string): number | undefined => {
		const entry = entries.get(key);
		if (!entry) return undefined;
		const node = r.resolve(entry.value as YamlNode);
		const value = isScalar(node) ? parseDuration(node.value, "s") : undefined;
		if (value === undefined) r.report("BAD_STEP", node ?? entry.key, `\`${key}:\` must be a duration`, fix);
		return value;
	};
	const atMs = duration("at", "write e.g. `at: 5s` (from the start of the steps)");
	const name = (key: string) => r.string(entries.get(key), key);
	const pairOf = (key: string): [Located<string>, Located<string>] | undefined => {
		const seq = r.resolve(entries.get(key)?.value);
		const names = isSeq(seq) ? seq.items.map((element) => r.string(r.pairOf(element as YamlNode), key)) : [];
		if (names.length !== 2 || names.some((entry) => !entry)) {
			r.report("BAD_STEP", seq ?? map, `\`${key}:\` takes two node names`, `write \`${key}: [alice, bob]\``);
			return undefined;
		}
		return names as [Located<string>, Located<string>];
	};
	const result = (): Located<PunchOutcome[]> | undefined => {
		const entry = entries.get("result");
		if (!entry) return undefined;
		const node = r.resolve(entry.value as YamlNode);
		const values = isSeq(node) ? node.items.map((element) => r.resolve(element as YamlNode)) : [node];
		const outcomes = values.map((value) => (isScalar(value) ? String(value.value) : ""));
		const bad = outcomes.find((outcome) => !(punchOutcomes as readonly string[]).includes(outcome) || outcome === "failed");
		if (bad === undefined) return { value: outcomes as PunchOutcome[], pos: r.pos(node) };
		r.report("BAD_STEP", node ?? entry.key, `result "${bad}" is not one of: lan, hairpin, direct, relayed`, "write e.g. `result: direct` or `result: [direct, relayed]`");
		return undefined;
	};
	const base = { pos, ...(atMs === undefined ? {} : { atMs }) };
	const event = (decl: EventDecl): StepDecl => ({ ...base, kind: "event", event: decl });
	switch (kind) {
		case "wait": {
			const ms = duration("wait", "write e.g. `wait: 2s`");
			return ms === undefined ? undefined : { ...base, kind: "wait", ms };
		}
		case "connect": {
			const peers = pairOf("connect");
			if (!peers) return undefined;
			const keepaliveMs = duration("keepalive", "write e.g. `keepalive: 250ms`: how often the peers ping each other");
			const lossAfterMs = duration("loss-after", "write e.g. `loss-after: 1s`: how long a silence means the path is lost");
			if (keepaliveMs !== undefined && (keepaliveMs < 10 || keepaliveMs > 60_000)) r.report("BAD_STEP", entries.get("keepalive")!.value, "keepalive must be from 10ms to 60s", "write e.g. `keepalive: 250ms`");
			else if (lossAfterMs !== undefined && (lossAfterMs < 100 || lossAfterMs > 600_000 || lossAfterMs <= (keepaliveMs ?? 0)))
				r.report("BAD_STEP", entries.get("loss-after")!.value, "loss-after must be from 100ms to 10m, and longer than the keepalive", "write e.g. `loss-after: 1s`");
			else
				return {
					...base,
					kind: "connect",
					a: peers[0],
					b: peers[1],
					result: result(),
					withinMs: duration("within", "write e.g. `within: 5s`") ?? 10_000,
					...(keepaliveMs !== undefined ? { keepaliveMs } : {}),
					...(lossAfterMs !== undefined ? { lossAfterMs } : {}),
				};
			return undefined;
		}
		case "expect": {
			const state = r.choice(entries.get("expect"), "expect", ["connected", "lost"] as const);
			if (!state) return undefined;
			const peers = entries.has("between") ? pairOf("between") : undefined;
			if (entries.has("between") && !peers) return undefined;
			const withinMs = duration("within", "write e.g. `within: 5s`");
			if (withinMs === undefined && !entries.has("within")) r.report("BAD_STEP", map, `\`expect: ${state.value}\` needs \`within:\``, "add e.g. `within: 5s`: how long the pair may take");
			if (withinMs === undefined) return undefined;
			return { ...base, kind: "expect", state: state.value, a: peers?.[0], b: peers?.[1], withinMs, result: result() };
		}
		case "link-down":
		case "link-up":
		case "impair":
		case "flap": {
			const link = name(kind);
			if (!link) return undefined;
			if (kind === "link-down" || kind === "link-up") return event({ pos, kind, link });
			if (kind === "impair") return event({ pos, kind, link, from: name("from"), impair: readImpair(r, entries, pos) });
			const periodMs = duration("period", "write e.g. `period: 2s`") ?? 2000;
			const downMs = duration("down-for", "write e.g. `down-for: 500ms`");
			const countEntry = entries.get("count");
			const countNode = countEntry && r.resolve(countEntry.value as YamlNode);
			const count = countEntry ? (isScalar(countNode) ? Number(countNode.value) : NaN) : 3;
			if (!Number.isInteger(count) || count < 1 || count > 10_000) r.report("BAD_STEP", countNode ?? map, "count must be a whole number from 1 to 10000", "write e.g. `count: 3`");
			else if (downMs !== undefined && downMs >= periodMs) r.report("BAD_STEP", entries.get("down-for")!.value, "down-for must be shorter than the period", "make `down-for:` less than `period:`");
			else return event({ pos, kind, link, periodMs, downMs, count });
			return undefined;
		}
		case "nat-reboot": {
			const nat = name("nat-reboot");
			return nat && event({ pos, kind, nat, outageMs: duration("outage", "write e.g. `outage: 1s`") ?? 0 });
		}
		case "rebind":
		case "expire": {
			const nat = name(kind);
			return nat && event({ pos, kind, nat, host: name("host") });
		}
		case "move": {
			const to = name("move");
			return to && event({ pos, kind, to, via: name("via") });
		}
		case "restart": {
			const node = name("restart");
			return node && event({ pos, kind, node });
		}
	}
	return undefined;
}
