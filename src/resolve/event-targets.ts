// Events and steps against a resolved lab: every target found (link ends, NATs, hosts, gateways) or
// reported with its position. Pure: `testbed event` and `testbed test` apply what this returns.
import { stringify } from "yaml";
import { EventError } from "../errors.ts";
import { parseSource } from "../parse/source.ts";
import { eventKinds, type EventDecl, type Located, type StepDecl } from "../parse/topology.ts";
import { contains } from "../validate/addresses.ts";
import type { Pos, Problem } from "../vocabulary/problems.ts";
import { readStep } from "../validate/read.ts";
import { closest, describeImpairment } from "../validate/units.ts";
import { findNode, type Lab, type LabEvent, type LabInterface, type LabNode, type LabStep, type LinkEnd } from "./lab.ts";
import { defaultPath, gatewayFor } from "./routing.ts";

export type EventReport = (code: Problem["code"], pos: Pos, message: string, fix?: string) => void;

/** An event asked for by name, as a step of a file would say it: `{ "nat-reboot": "home1", outage: "1s" }`. */
export type EventRequest = Record<string, string | number>;

/**
 * An event asked for by kind and settings — from the command line, the library or `punch --event` —
 * read and checked against the lab exactly as a step in a file is. Problems become one EventError.
 */
export function readEvent(lab: Lab, kind: string, request: EventRequest): LabEvent {
	if (!(eventKinds as readonly string[]).includes(kind)) {
		const guess = closest(kind, eventKinds);
		throw new EventError(`unknown event "${kind}"${guess ? ` (did you mean "${guess}"?)` : ""}; events: ${eventKinds.join(", ")}`);
	}
	const problems: Problem[] = [];
	const decl = readStep(parseSource("<command line>", stringify(request)), problems);
	const event = decl?.kind === "event" && problems.length === 0 ? resolveEvent(lab, decl.event, (code, pos, message, fix) => problems.push({ code, pos, message, fix })) : undefined;
	if (!event || problems.length) throw new EventError(problems.map((problem) => `${problem.message.replace(/^(\S+ step|step)/, kind)}${problem.fix ? ` (${problem.fix.replaceAll("`", "")})` : ""}`).join("\n") || `cannot read the ${kind} event`);
	return event;
}

/** The event with its targets, or undefined after reporting why not. */
export function resolveEvent(lab: Lab, decl: EventDecl, report: EventReport): LabEvent | undefined {
	const node = (name: Located<string>, what: string, accept: (node: LabNode) => string | undefined): LabNode | undefined => {
		const found = findNode(lab, name.value);
		if (!found) {
			const guess = closest(name.value, lab.nodes.map((candidate) => candidate.name));
			report("UNKNOWN_NODE", name.pos, `${decl.kind}: no node "${name.value}" in lab "${lab.name}"${guess ? `; did you mean "${guess}"?` : ""}`, guess ? `write \`${guess}\`` : `name a node of the lab: ${names(lab.nodes)}`);
			return undefined;
		}
		const why = accept(found);
		if (why) {
			report("BAD_STEP", name.pos, `${decl.kind}: "${name.value}" ${why}`, `name ${what}`);
			return undefined;
		}
		return found;
	};
	const linkEnd = (target: Located<string>): { node: LabNode; iface: LabInterface } | undefined => {
		const match = /^([^:]+):([^:]+)$/.exec(target.value);
		if (!match) {
			report("BAD_STEP", target.pos, `${decl.kind}: "${target.value}" is not node:interface`, "write an end of a link, e.g. `home:wan`");
			return undefined;
		}
		const owner = node({ value: match[1], pos: target.pos }, "a node with links", (candidate) => (candidate.kind === "switch" ? "is a switch: name the other end of the link" : undefined));
		if (!owner) return undefined;
		const iface = owner.interfaces.find((candidate) => candidate.name === match[2] && candidate.type === "veth");
		if (!iface) {
			const links = owner.interfaces.filter((candidate) => candidate.type === "veth").map((candidate) => `${owner.name}:${candidate.name}`);
			report("BAD_STEP", { ...target.pos, col: target.pos.col + match[1].length + 1 }, `${decl.kind}: node "${owner.name}" has no link interface "${match[2]}"`, links.length ? `use one of: ${links.join(", ")}` : `"${owner.name}" has no links`);
			return undefined;
		}
		return { node: owner, iface };
	};
	const ends = (end: { node: LabNode; iface: LabInterface }): [LinkEnd, LinkEnd] => {
		const peer = findNode(lab, end.iface.peer!.node)!;
		return [
			{ node: end.node.name, netns: end.node.netns, iface: end.iface.name },
			{ node: peer.name, netns: peer.netns, iface: end.iface.peer!.iface },
		];
	};
	const routesThrough = (pair: [LinkEnd, LinkEnd]) =>
		pair.map((end) => ({ netns: end.netns, routes: findNode(lab, end.node)!.routes.filter((route) => route.dev === end.iface) })).filter((entry) => entry.routes.length > 0);
	const natNode = (name: Located<string>, mapped: boolean, rebind = false) =>
		node(name, "a node with `kind: nat`", (candidate) =>
			!candidate.nat
				? `is a ${candidate.kind}, not a nat`
				: mapped && candidate.nat.behaviour.oneToOne
					? "is a one-to-one NAT: it keeps no mappings"
					: rebind && candidate.nat.behaviour.masquerade
						? "is a masquerade NAT: the kernel gives a forgotten flow its old port again; use expire"
						: undefined,
		);

	switch (decl.kind) {
		case "link-down":
		case "link-up":
		case "flap": {
			const end = linkEnd(decl.link);
			if (!end) return undefined;
			const pair = ends(end);
			const label = `${decl.kind} ${pair[0].node}:${pair[0].iface} — ${pair[1].node}:${pair[1].iface}`;
			if (decl.kind !== "flap") return { kind: decl.kind, label, ends: pair, routes: routesThrough(pair) };
			const downMs = decl.downMs ?? decl.periodMs / 2;
			return { kind: "flap", label: `${label} every ${decl.periodMs} ms (down ${downMs} ms) × ${decl.count}`, ends: pair, routes: routesThrough(pair), periodMs: decl.periodMs, downMs, count: decl.count };
		}
		case "impair": {
			const end = linkEnd(decl.link);
			if (!end) return undefined;
			let pair = ends(end);
			if (decl.from) {
				const from = decl.from;
				const side = pair.find((candidate) => candidate.node === from.value);
				if (!side) {
					report("BAD_STEP", from.pos, `impair from "${from.value}": that node is not an end of this link`, `name one of its ends: ${pair[0].node} or ${pair[1].node}`);
					return undefined;
				}
				pair = [side, side];
			}
			const changes = (pair[0] === pair[1] ? [pair[0]] : pair).map((change) => ({ end: change, ...(decl.impair ? { impair: decl.impair } : {}) }));
			return { kind: "impair", label: `impair ${changes.map((change) => `${change.end.node}:${change.end.iface}`).join(" and ")} → ${decl.impair ? describeImpairment(decl.impair) : "none"}`, changes };
		}
		case "nat-reboot": {
			const nat = natNode(decl.nat, false);
			return nat && { kind: "nat-reboot", label: `nat-reboot ${nat.name}${decl.outageMs ? ` (down ${decl.outageMs} ms)` : ""}`, nat: nat.name, netns: nat.netns, outageMs: decl.outageMs };
		}
		case "rebind":
		case "expire": {
			const nat = natNode(decl.nat, true, decl.kind === "rebind");
			if (!nat) return undefined;
			let host: { node: string; addresses: string[] } | undefined;
			if (decl.host) {
				const inside = node(decl.host, `a host behind "${nat.name}"`, (candidate) => (defaultPath(lab, candidate).nats.includes(nat.name) ? undefined : `is not behind NAT "${nat.name}"`));
				if (!inside) return undefined;
				host = { node: inside.name, addresses: addressesSeenBy(lab, inside, nat) };
			}
			return { kind: decl.kind, label: `${decl.kind} ${nat.name}${host ? ` (mappings of ${host.node})` : " (all mappings)"}`, nat: nat.name, netns: nat.netns, host };
		}
		case "move": {
			const end = linkEnd(decl.to);
			if (!end) return undefined;
			if (end.node.kind !== "host") {
				report("BAD_STEP", decl.to.pos, `move: "${end.node.name}" is a ${end.node.kind}; only hosts move`, "name an interface of a host, e.g. `phone:cell`");
				return undefined;
			}
			const members = lab.nodes.flatMap((node) => (node.kind === "switch" ? [] : node.interfaces.filter((iface) => iface.segment === end.iface.segment).map((iface) => ({ node, iface }))));
			const via = decl.via?.value ?? gatewayFor(members, end.node, end.iface);
			if (!via) {
				report("BAD_STEP", decl.to.pos, `move: no single router or NAT on the network of ${end.node.name}:${end.iface.name} to route through`, "give the gateway: `via: 100.64.0.1`");
				return undefined;
			}
			if (!end.iface.addresses.some((address) => contains(address.network, via))) {
				report("BAD_STEP", decl.via?.pos ?? decl.to.pos, `move: gateway ${via} is not on the network of ${end.node.name}:${end.iface.name}`, `use an address in ${end.iface.addresses.map((address) => address.network).join(", ") || "its subnet"}`);
				return undefined;
			}
			const down = end.node.interfaces.filter((iface) => iface.type === "veth" && iface !== end.iface).map((iface) => iface.name);
			return { kind: "move", label: `move ${end.node.name} to ${end.iface.name} (via ${via})`, node: end.node.name, netns: end.node.netns, link: ends(end), down, via };
		}
		case "restart": {
			const target = node(decl.node, "a host, router or nat", (candidate) => (candidate.kind === "switch" ? "is a switch: it runs no processes" : undefined));
			return target && { kind: "restart", label: `restart ${target.name}`, node: target.name, netns: target.netns };
		}
	}
}

/** Steps with their targets; a step's peers must be connected by an earlier `connect` step. */
export function resolveSteps(lab: Lab, steps: StepDecl[], report: EventReport): LabStep[] {
	const resolved: LabStep[] = [];
	const sessions: [string, string][] = [];
	const peer = (name: Located<string>): string | undefined => {
		const found = findNode(lab, name.value);
		if (!found) {
			const guess = closest(name.value, lab.nodes.map((candidate) => candidate.name));
			report("UNKNOWN_NODE", name.pos, `step names no node "${name.value}"${guess ? `; did you mean "${guess}"?` : ""}`, guess ? `write \`${guess}\`` : `name a node of the lab: ${names(lab.nodes)}`);
		} else if (found.kind === "switch") report("BAD_STEP", name.pos, `"${name.value}" is a switch; sessions run between hosts`, "name a host");
		else return found.name;
		return undefined;
	};
	for (const step of steps) {
		const timing = { pos: step.pos, ...(step.atMs === undefined ? {} : { atMs: step.atMs }) };
		if (step.kind === "wait") resolved.push({ ...timing, kind: "wait", ms: step.ms });
		else if (step.kind === "event") {
			const event = resolveEvent(lab, step.event, report);
			if (event) resolved.push({ ...timing, kind: "event", event });
		} else if (step.kind === "connect") {
			const [a, b] = [peer(step.a), peer(step.b)];
			if (!a || !b) continue;
			if (a === b) {
				report("BAD_STEP", step.b.pos, "connect: a session needs two different nodes", "name two hosts");
				continue;
			}
			sessions.push([a, b]);
			resolved.push({ ...timing, kind: "connect", a, b, withinMs: step.withinMs, ...(step.result ? { result: step.result.value } : {}), ...(step.keepaliveMs ? { keepaliveMs: step.keepaliveMs } : {}), ...(step.lossAfterMs ? { lossAfterMs: step.lossAfterMs } : {}) });
		} else {
			let pair: [string, string] | undefined;
			if (step.a && step.b) {
				const [a, b] = [peer(step.a), peer(step.b)];
				if (!a || !b) continue;
				pair = sessions.find(([x, y]) => (x === a && y === b) || (x === b && y === a));
				if (!pair) {
					report("BAD_STEP", step.a.pos, `expect: no session between "${a}" and "${b}" yet`, `add \`- connect: [${a}, ${b}]\` before this step`);
					continue;
				}
			} else if (sessions.length === 1) pair = sessions[0];
			else {
				report("BAD_STEP", step.pos, sessions.length ? "expect: which session? there are several" : "expect: no session yet", sessions.length ? "add `between: [alice, bob]`" : "add `- connect: [alice, bob]` before this step");
				continue;
			}
			resolved.push({ ...timing, kind: "expect", state: step.state, a: pair[0], b: pair[1], withinMs: step.withinMs, ...(step.result ? { result: step.result.value } : {}) });
		}
	}
	return resolved;
}

/** The source addresses a NAT sees from a host: the host's own, or the public address of the NAT in between. */
function addressesSeenBy(lab: Lab, host: LabNode, nat: LabNode): string[] {
	const nats = defaultPath(lab, host).nats;
	const index = nats.indexOf(nat.name);
	if (index > 0) {
		const inner = findNode(lab, nats[index - 1])?.nat?.publicAddress;
		return inner ? [inner] : [];
	}
	return host.interfaces.filter((iface) => iface.type === "veth").flatMap((iface) => iface.addresses.map((address) => address.ip));
}

function names(nodes: LabNode[]): string {
	const list = nodes.map((node) => node.name);
	return list.length > 12 ? `${list.slice(0, 12).join(", ")}, …` : list.join(", ");
}

/**
 * The lab as it is after an event: links up or down, impairments, a moved host's default route.
 * `testbed event` keeps it in the ledger, so `graph`, `punch` and `nat-table` of a running lab
 * show it as it is now, not as the file declared it. NAT state and processes are not part of a Lab.
 */
export function labAfter(lab: Lab, event: LabEvent): Lab {
	const next: Lab = structuredClone(lab);
	const iface = (node: string, name: string) => findNode(next, node)?.interfaces.find((candidate) => candidate.name === name);
	const setDown = (end: { node: string; iface: string }, down: boolean) => {
		const found = iface(end.node, end.iface);
		if (found) found.down = down || undefined;
	};
	const syncLinks = () => {
		for (const link of next.links) link.down = link.endpoints.some((end) => iface(end.node, end.iface)?.down) || undefined;
	};
	switch (event.kind) {
		case "link-down":
		case "link-up":
		case "flap":
			for (const end of event.ends) setDown(end, event.kind === "link-down");
			break;
		case "impair":
			for (const change of event.changes) {
				const found = iface(change.end.node, change.end.iface);
				if (found && change.impair) found.impair = change.impair;
				else if (found) delete found.impair;
			}
			break;
		case "move": {
			const node = findNode(next, event.node)!;
			for (const name of event.down) setDown({ node: event.node, iface: name }, true);
			for (const end of event.link) setDown(end, false);
			node.routes = [...node.routes.filter((route) => route.to !== "default"), { to: "default", via: event.via, dev: event.link[0].iface, auto: false, pos: node.pos }];
			break;
		}
		default:
			return lab;
	}
	syncLinks();
	return next;
}
