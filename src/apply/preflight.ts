// Checks before touching the kernel: root, and the tools a plan needs.
import { MissingFeatureError } from "../errors.ts";
import type { Plan } from "../plan/operations.ts";
import { which } from "./which.ts";

export const installHint = "apt-get install -y iproute2 nftables iptables conntrack procps util-linux (or `make setup`)";

export function isRoot(): boolean {
	return process.getuid?.() === 0;
}

export function requireRoot(command: string): void {
	if (!isRoot())
		throw new MissingFeatureError(`\`testbed ${command}\` changes network namespaces and needs root; run it with sudo (validate and plan work without root)`, "root", "sudo testbed …");
}

export function requireTools(plan: Plan): void {
	const ops = [...plan.root, ...plan.namespaces.flatMap((ns) => ns.operations)];
	const needed = new Set(["ip", "sysctl", "nsenter", "setpriv"]);
	if (ops.some((op) => op.op === "nat" || op.op === "nft-loss")) needed.add("nft");
	if (ops.some((op) => op.op === "qdisc")) needed.add("tc");
	const missing = [...needed].filter((tool) => !which(tool));
	if (missing.length > 0) throw new MissingFeatureError(`this host lacks ${missing.join(", ")}; install with: ${installHint}`, missing[0], installHint);
}
