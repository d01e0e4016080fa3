// An event on a running lab as the commands that do it: `ip`, `nft`, `tc` and `conntrack` runs per
// namespace, and the pauses between them. Pure: the NAT's live maps come in as data.
import type { HostFeatures } from "../plan/operations.ts";
import type { LabEvent, LabNat, LabRoute, LinkEnd } from "../resolve/lab.ts";
import { natStateSets, type NatState } from "./nat-state.ts";
import { renderForgetGrants } from "./miniupnpd.ts";
import { routeArgs } from "./batch.ts";
import { firewall6Sets, firewall6Table } from "./firewall6.ts";

export interface EventCommand {
	netns: string;
	argv: string[];
	/** Sent on stdin (batches). */
	input?: string;
	/** A command whose failure is expected at times (conntrack -D with nothing to delete). */
	mayFail?: boolean;
}

export type EventAction =
	/** Commands run at once, one per namespace at most. */
	| { kind: "run"; why: string; commands: EventCommand[] }
	| { kind: "sleep"; why: string; ms: number }
	/** A NAT's port-mapping daemon stops (and its lease file is emptied: it would reload it), or starts again. */
	| { kind: "daemon"; why: string; node: string; action: "stop" | "start" };


const outageTable = "testbed-outage";
/** Forwarding stops: the NAT is rebooting (or its state is being changed in one piece). */
// inet: an outage stops IPv6 as well as IPv4 (a rebooting home gateway forwards neither).
const stopForwarding = `table inet ${outageTable} {\n\tchain forward {\n\t\ttype filter hook forward priority -200; policy drop;\n\t}\n}\n`;
const resumeForwarding = `delete table inet ${outageTable}\n`;

/** The NAT forwards again (after an outage, or when an event failed midway). */
export const forwardAgain = (netns: string): EventCommand => ({ netns, argv: ["nft", "-f", "-"], input: resumeForwarding });

const ip = (netns: string, lines: string[]): EventCommand => ({ netns, argv: ["ip", "-batch", "-"], input: lines.join("\n") + "\n" });
const nft = (netns: string, text: string): EventCommand => ({ netns, argv: ["nft", "-f", "-"], input: text });

/** Link ends down, both at once. */
function linkDown(ends: LinkEnd[]): EventAction {
	return { kind: "run", why: `down ${ends.map((end) => `${end.node}:${end.iface}`).join(", ")}`, commands: ends.map((end) => ip(end.netns, [`link set dev ${end.iface} down`])) };
}

/**
 * Link ends up, one after the other (both coming up at once can leave a veth pair without carrier),
 * then the routes the kernel removed with the link put back.
 */
function linkUp(ends: LinkEnd[], routes: { netns: string; routes: LabRoute[] }[]): EventAction[] {
	const actions: EventAction[] = ends.map((end) => ({ kind: "run", why: `up ${end.node}:${end.iface}`, commands: [ip(end.netns, [`link set dev ${end.iface} up`])] }));
	if (routes.length)
		actions.push({ kind: "run", why: "routes through the link again", commands: routes.map((entry) => ip(entry.netns, entry.routes.map((route) => `route replace ${routeArgs(route)}`))) });
	return actions;
}

export interface EventContext {
	features: HostFeatures;
	/** For nat-reboot, rebind and expire: the NAT's declared behaviour. */
	nat?: LabNat;
	/** For rebind and expire: what the NAT's maps hold now. */
	natState?: NatState;
	/** For impair: the commands replacing an interface's impairment (from the impairment renderer). */
	impairment?: (end: LinkEnd, change: Extract<LabEvent, { kind: "impair" }>["changes"][number]) => EventCommand[];
}

export function renderEvent(event: LabEvent, context: EventContext): EventAction[] {
	switch (event.kind) {
		case "link-down":
			return [linkDown(event.ends)];
		case "link-up":
			return linkUp(event.ends, event.routes);
		case "flap": {
			const actions: EventAction[] = [];
			for (let round = 1; round <= event.count; round++) {
				actions.push(linkDown(event.ends), { kind: "sleep", why: `down (${round}/${event.count})`, ms: event.downMs });
				actions.push(...linkUp(event.ends, event.routes));
				if (round < event.count) actions.push({ kind: "sleep", why: "up", ms: event.periodMs - event.downMs });
			}
			return actions;
		}
		case "impair":
			return [{ kind: "run", why: event.label, commands: event.changes.flatMap((change) => context.impairment?.(change.end, change) ?? []) }];
		case "nat-reboot": {
			// A gateway with IPv6 forgets its firewall's state too: what each inside endpoint had opened.
			const flush = [...natStateSets(event.nat, context.nat!).map((set) => `flush ${set.kind} ip testbed ${set.name}`), ...firewall6Sets(context.nat!).map((set) => `flush set ip6 ${firewall6Table} ${set}`)];
			const granting = context.nat?.portMapping !== undefined;
			const actions: EventAction[] = [
				...(granting ? [{ kind: "daemon", why: "its port-mapping daemon stops, and its leases are gone", node: event.nat, action: "stop" } as const] : []),
				{ kind: "run", why: `the NAT stops forwarding and forgets its mappings${granting ? ", the granted ones too" : ""}`, commands: [nft(event.netns, stopForwarding + flush.join("\n") + "\n" + (granting ? renderForgetGrants() : ""))] },
				// Every family's flows: conntrack -F without -f empties the whole table (IPv6's NAT66 and firewall flows too).
				{ kind: "run", why: "and its connection tracking", commands: [{ netns: event.netns, argv: ["conntrack", "-F"], mayFail: true }] },
			];
			if (event.outageMs > 0) actions.push({ kind: "sleep", why: "rebooting", ms: event.outageMs });
			actions.push({ kind: "run", why: "the NAT forwards again", commands: [forwardAgain(event.netns)] });
			if (granting) actions.push({ kind: "daemon", why: "its port-mapping daemon starts again (NAT-PMP and PCP clients see a new epoch)", node: event.nat, action: "start" });
			return actions;
		}
		case "rebind":
		case "expire": {
			const forget = forgetMappings(event, context.natState ?? new Map());
			return [
				{ kind: "run", why: `the NAT pauses and ${event.kind === "rebind" ? "drops the mappings (their public ports stay taken, so new ones are handed out)" : "forgets the mappings (as after their idle timeout)"}`, commands: [nft(event.netns, stopForwarding + forget.nft)] },
				{ kind: "run", why: "and their connection tracking entries", commands: forget.conntrack.map((argv) => ({ netns: event.netns, argv, mayFail: true })) },
				{ kind: "run", why: "the NAT forwards again", commands: [forwardAgain(event.netns)] },
			];
		}
		case "move": {
			const [own, peer] = event.link;
			const down = event.down.map((iface) => ({ node: event.node, netns: event.netns, iface }));
			return [
				...(down.length ? [linkDown(down)] : []),
				...linkUp([peer, own], []),
				{ kind: "run", why: `default route through ${own.iface}`, commands: [ip(event.netns, [`route replace default via ${event.via} dev ${own.iface}`])] },
			];
		}
		case "restart":
			return [];
	}
}

/**
 * Which elements to delete for rebind/expire, and the conntrack entries that go with them. An
 * element belongs to the host when its inside endpoint (the key of eim/adm/seen, the value of
 * public/adf) has one of the host's addresses; the keys of public and used are protocol . port. Rebind keeps the public ports in `used`, so the next
 * packet is mapped to a fresh port; expire frees them, so port preservation may hand out the same one.
 */
export function forgetMappings(event: Extract<LabEvent, { kind: "rebind" | "expire" }>, state: NatState): { nft: string; conntrack: string[][] } {
	const addresses = event.host ? new Set(event.host.addresses) : undefined;
	const ours = (ip: string | number | undefined) => addresses === undefined || addresses.has(String(ip));
	const lines: string[] = [];
	const freed = new Set<string>();
	const element = (parts: (string | number)[]) => parts.join(" . ");
	for (const [name, elements] of state) {
		if (name === "used") continue;
		for (const entry of elements) {
			const inside = name === "public" || name === "adf" ? entry.value : entry.key;
			if (!inside || !ours(inside[0])) continue;
			lines.push(`delete element ip testbed ${name} { ${element(entry.key)} }`);
			if (name === "public") freed.add(element(entry.key));
		}
	}
	if (event.kind === "expire") for (const entry of state.get("used") ?? []) if (freed.has(element(entry.key))) lines.push(`delete element ip testbed used { ${element(entry.key)} }`);
	// The host's flows of every protocol (a TCP connection holds its mapping as a UDP flow does).
	const conntrack = addresses === undefined ? [["conntrack", "-F"]] : [...addresses].flatMap((address) => [["conntrack", "-D", "--orig-src", address], ["conntrack", "-D", "--reply-src", address]]);
	return { nft: lines.join("\n") + (lines.length ? "\n" : ""), conntrack };
}

/** The commands as a reader would type them (for `testbed event --dry-run`). */
export function describeActions(actions: EventAction[]): string {
	const lines: string[] = [];
	for (const action of actions) {
		if (action.kind === "sleep") {
			lines.push(`sleep ${action.ms / 1000}    # ${action.why}`);
			continue;
		}
		if (action.kind === "daemon") {
			lines.push(`# ${action.why}`, `testbed ${action.action === "stop" ? "stops" : "starts"} program portmap of ${action.node} (miniupnpd)`);
			continue;
		}
		lines.push(`# ${action.why}`);
		for (const command of action.commands) {
			const prefix = `ip netns exec ${command.netns} `;
			if (command.input !== undefined && command.argv[0] === "ip") for (const line of command.input.trim().split("\n")) lines.push(`${prefix}ip ${line}`);
			else if (command.input !== undefined) lines.push(`${prefix}${command.argv.join(" ")} <<'EOF'\n${command.input.trimEnd()}\nEOF`);
			else lines.push(`${prefix}${command.argv.join(" ")}`);
		}
	}
	return lines.join("\n");
}
