// Render a plan into what the kernel tools read: one `ip -batch` for the root namespace, and per
// namespace an `ip -batch`, one `sysctl -w` and, where needed, an `nft -f`, an `iptables-restore`
// and a `tc -batch` file.
// Pure: paths are computed, nothing is written.
import type { ImpairDecl } from "../parse/topology.ts";
import type { HostFeatures, NamespacePlan, Operation, Plan } from "../plan/operations.ts";
import { impairmentSupport, planImpairment } from "../plan/plan.ts";
import { MissingFeatureError } from "../errors.ts";
import { renderLossChange, renderLossRules, renderNatRules } from "./nft.ts";
import { renderFirewall6 } from "./firewall6.ts";
import { renderQdisc, renderQdiscChange } from "./tc.ts";
import { iptablesCommand, renderIptablesRestore, type IptablesOperation } from "./iptables.ts";

export type Tool = "ip" | "sysctl" | "nft" | "iptables" | "tc";

/**
 * A route as `ip route add|replace` takes it. `ip` tells the family by the addresses; an IPv6
 * default without a gateway names itself `::/0` (`default` alone would be IPv4's).
 */
export function routeArgs(route: { to: string; via?: string; dev: string; family?: 6 }): string {
	const to = route.family === 6 && route.to === "default" && !route.via ? "::/0" : route.to;
	return `${to}${route.via ? ` via ${route.via}` : ""} dev ${route.dev}`;
}

export interface BatchLine {
	/** One line of the file. */
	text: string;
	op: Operation;
}

/** One tool run. `ip` reads its lines on stdin, `sysctl` takes them as arguments, `nft`, `iptables-restore` and `tc` read `file`. */
export interface Step {
	tool: Tool;
	lines: BatchLine[];
	/** The tool's arguments (without entering a namespace). */
	argv: string[];
	/** Written before the run (nft rules, tc batch); absent when the lines travel on stdin or argv. */
	file?: string;
}

export interface Batch {
	/** null: the root namespace. */
	netns: string | null;
	node?: string;
	kind?: string;
	steps: Step[];
}

export interface RenderedPlan {
	root: Batch;
	namespaces: Batch[];
}

/** `stateDir` is where the lab's files live while it is up (e.g. /run/testbed/LAB). */
export function renderPlan(plan: Plan, stateDir: string): RenderedPlan {
	return {
		root: { netns: null, steps: [{ tool: "ip", argv: ["ip", "-batch", "-"], lines: plan.root.map((op) => ({ text: ipLine(op), op })) }] },
		namespaces: plan.namespaces.map((ns) => renderNamespace(ns, stateDir)),
	};
}

/** Enter a namespace's network stack only (no mount namespace copy, unlike `ip -n`/`ip netns exec`). */
export function inNamespace(netns: string, argv: string[]): string[] {
	return ["nsenter", `--net=/run/netns/${netns}`, ...argv];
}

export function stepContent(step: Step): string {
	return step.lines.map((line) => line.text).join("\n") + "\n";
}

function renderNamespace(ns: NamespacePlan, stateDir: string): Batch {
	const base = `${stateDir}/${ns.netns}`;
	const ip: BatchLine[] = [];
	const sysctl: BatchLine[] = [];
	const nft: BatchLine[] = [];
	const tc: BatchLine[] = [];
	const iptables: IptablesOperation[] = [];
	for (const op of ns.operations) {
		if (op.op === "sysctl") for (const [key, value] of op.settings) sysctl.push({ text: `${key} = ${value}`, op });
		else if (op.op === "nat") for (const text of renderNatRules(ns.node, op.nat).trimEnd().split("\n")) nft.push({ text, op });
		else if (op.op === "firewall6") for (const text of renderFirewall6(ns.node, op.nat).trimEnd().split("\n")) nft.push({ text, op });
		else if (op.op === "nft-loss") for (const text of renderLossRules(op.iface, op).trimEnd().split("\n")) nft.push({ text, op });
		else if (op.op === "iptables") iptables.push(op);
		else if (op.op === "qdisc") for (const text of renderQdisc(op.iface, op.impair, op.qdisc)) tc.push({ text, op });
		else ip.push({ text: ipLine(op), op });
	}
	const steps: Step[] = [{ tool: "ip", argv: ["ip", "-batch", "-"], lines: ip }];
	if (nft.length) steps.push({ tool: "nft", file: `${base}.nft`, argv: ["nft", "-f", `${base}.nft`], lines: nft });
	if (iptables.length) steps.push({ tool: "iptables", file: `${base}.iptables`, argv: ["iptables-restore", `${base}.iptables`], lines: renderIptablesRestore(iptables) });
	if (sysctl.length) steps.push({ tool: "sysctl", argv: ["sysctl", "-q", "-w", ...sysctl.map((line) => line.text.replace(" = ", "="))], lines: sysctl });
	if (tc.length) steps.push({ tool: "tc", file: `${base}.tc`, argv: ["tc", "-batch", `${base}.tc`], lines: tc });
	return { netns: ns.netns, node: ns.node, kind: ns.kind, steps };
}

/** An operation as an `ip` command without the leading `ip` (what `ip -batch` reads). */
export function ipLine(op: Operation): string {
	switch (op.op) {
		case "netns-add":
			return `netns add ${op.netns}`;
		case "veth-add":
			// One end is created up: namespaces are configured in parallel, and on kernels with a
			// per-namespace RTNL lock both ends coming up at once can race and leave the pair without
			// carrier. With one end up already, the other's `link set up` turns the carrier on.
			return `link add name ${op.a.iface} netns ${op.a.netns}${op.down ? "" : " up"} type veth peer name ${op.b.iface} netns ${op.b.netns}`;
		case "bridge-add":
			return `link add name ${op.iface} type bridge`;
		case "dummy-add":
			return `link add name ${op.iface} type dummy`;
		case "link-master":
			return `link set dev ${op.iface} master ${op.master}`;
		case "link-mtu":
			return `link set dev ${op.iface} mtu ${op.mtu}`;
		case "link-up":
			return `link set dev ${op.iface} up`;
		case "address-add":
			return `address add ${op.cidr} dev ${op.iface}${op.noPrefixRoute ? " noprefixroute" : ""}${op.nodad ? " nodad" : ""}`;
		case "route-add":
			return `route add ${routeArgs(op)}`;
		case "sysctl":
			return `netns exec ${op.netns} sysctl -q -w ${op.settings.map(([key, value]) => `${key}=${value}`).join(" ")}`;
		case "nat":
		case "firewall6":
			return `netns exec ${op.netns} nft -f -`;
		case "iptables":
			return `netns exec ${op.netns} ${iptablesCommand(op)}`;
		case "qdisc":
			return renderQdisc(op.iface, op.impair, op.qdisc)
				.map((line) => `netns exec ${op.netns} tc ${line}`)
				.join("; ");
		case "nft-loss":
			return `netns exec ${op.netns} nft -f -`;
	}
}

/** What replaces an interface's impairment on a running lab: a `tc -batch` file and an `nft -f` file. */
export interface ImpairmentChange {
	/** `tc -batch` text; absent where this host has no qdisc `up` could have used. */
	tc?: string;
	/** `nft -f` text; absent where this host has no nftables egress hook `up` could have used. */
	nft?: string;
}

/**
 * The commands, run inside the interface's namespace, that replace its impairment (whatever `up` or
 * an earlier change built, or nothing) with `impair`, or remove it (undefined). They touch only this
 * interface's qdisc and its own nftables table, under the names `up` uses. Throws MissingFeatureError
 * where the host cannot (`impairmentSupport` says so beforehand).
 */
export function renderImpairmentChange(iface: string, impair: ImpairDecl | undefined, features: HostFeatures): ImpairmentChange {
	if (impair) {
		const support = impairmentSupport(impair, features);
		if (!support.ok)
			throw new MissingFeatureError(`this kernel has no ${support.needs}, needed for ${support.keys.join(", ")} on ${iface}`, support.needs, support.needs === "netem" ? "modprobe sch_netem" : "modprobe sch_tbf");
	}
	const plan = impair ? planImpairment(impair, features) : {};
	const change: ImpairmentChange = {};
	if (features.netem || features.tbf || features.pfifo !== false) change.tc = renderQdiscChange(iface, plan.qdisc).join("\n") + "\n";
	if (features.nftEgress !== false) change.nft = renderLossChange(iface, plan.loss);
	return change;
}
