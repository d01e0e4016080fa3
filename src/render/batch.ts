// Render a plan into what the kernel tools read: one `ip -batch` for the root namespace, one per
// namespace (with `netns exec` lines for sysctl, nft and tc), and the nft files they load. Pure.
import type { NamespacePlan, Operation, Plan } from "../plan/operations.ts";
import { renderNatRules } from "./nft.ts";
import { renderQdisc } from "./tc.ts";

export interface BatchLine {
	/** The line as `ip -batch` reads it (an `ip` command without the leading `ip`). */
	text: string;
	op: Operation;
}

export interface Batch {
	/** null: the root namespace. */
	netns: string | null;
	node?: string;
	kind?: string;
	lines: BatchLine[];
	/** Files the batch reads (nft rules), by absolute path. */
	files: { path: string; content: string }[];
}

export interface RenderedPlan {
	root: Batch;
	namespaces: Batch[];
}

/** `stateDir` is where the lab's files live while it is up (e.g. /run/testbed/LAB). */
export function renderPlan(plan: Plan, stateDir: string): RenderedPlan {
	return {
		root: { netns: null, lines: plan.root.map((op) => ({ text: renderOperation(op, stateDir), op })), files: [] },
		namespaces: plan.namespaces.map((ns) => renderNamespace(ns, stateDir)),
	};
}

function renderNamespace(ns: NamespacePlan, stateDir: string): Batch {
	const files: Batch["files"] = [];
	const lines = ns.operations.map((op) => {
		if (op.op === "nat") files.push({ path: nftPath(stateDir, op.netns), content: renderNatRules(ns.node, op.nat) });
		return { text: renderOperation(op, stateDir), op };
	});
	return { netns: ns.netns, node: ns.node, kind: ns.kind, lines, files };
}

export function nftPath(stateDir: string, netns: string): string {
	return `${stateDir}/${netns}.nft`;
}

export function renderOperation(op: Operation, stateDir: string): string {
	switch (op.op) {
		case "netns-add":
			return `netns add ${op.netns}`;
		case "veth-add":
			return `link add name ${op.a.iface} netns ${op.a.netns} type veth peer name ${op.b.iface} netns ${op.b.netns}`;
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
			return `address add ${op.cidr} dev ${op.iface}${op.noPrefixRoute ? " noprefixroute" : ""}`;
		case "sysctl":
			return `netns exec ${op.netns} sysctl -q -w ${op.settings.map(([key, value]) => `${key}=${value}`).join(" ")}`;
		case "route-add":
			return `route add ${op.to}${op.via ? ` via ${op.via}` : ""} dev ${op.dev}`;
		case "nat":
			return `netns exec ${op.netns} nft -f ${nftPath(stateDir, op.netns)}`;
		case "qdisc":
			return `netns exec ${op.netns} tc ${renderQdisc(op.iface, op.impair, op.netem).join(" ")}`;
	}
}
