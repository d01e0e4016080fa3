// `testbed doctor`: what this host supports, and the fix for what it lacks.
import { detectFeatures, type KernelFeatures } from "./features.ts";
import { installHint, isRoot } from "./preflight.ts";
import { which } from "./run.ts";

export interface Check {
	name: string;
	ok: boolean;
	/** Required for `up`; optional ones only limit what a lab may ask for. */
	required: boolean;
	detail: string;
	fix?: string;
}

export async function doctor(): Promise<{ ok: boolean; kernel: string; checks: Check[] }> {
	const checks: Check[] = [];
	const root = isRoot();
	const [major, minor] = process.versions.node.split(".").map(Number);
	checks.push({ name: "node", ok: major > 20 || (major === 20 && minor >= 19), required: true, detail: `v${process.versions.node}`, fix: "install Node.js 20.19 or newer" });
	checks.push({ name: "root", ok: root, required: true, detail: root ? "running as root" : "not root: validate and plan work; up/down/exec need root", fix: "run with sudo" });
	const tools: [string, boolean, string][] = [
		["ip", true, "iproute2: namespaces, veth, addresses, routes"],
		["sysctl", true, "procps: ip_forward and rp_filter per namespace"],
		["nsenter", true, "util-linux: enter a namespace's network stack"],
		["setpriv", true, "util-linux: batches die with testbed if it is killed"],
		["nft", true, "nftables: NAT rules"],
		["tc", false, "iproute2: link impairments"],
		["conntrack", false, "conntrack: NAT tables (nat-table, probe)"],
		["iptables", false, "iptables: optional"],
		["tcpdump", false, "packet captures"],
	];
	for (const [tool, required, what] of tools) {
		const path = which(tool);
		checks.push({ name: tool, ok: Boolean(path), required, detail: path ? `${path} (${what})` : `not found (${what})`, fix: installHint });
	}
	let kernel = "unknown";
	if (root && which("ip")) {
		const report = await detectFeatures({ fresh: true });
		kernel = report.kernel;
		const describe: Record<keyof KernelFeatures, [boolean, string, string]> = {
			netns: [true, "network namespaces", "a kernel with CONFIG_NET_NS"],
			veth: [true, "veth pairs (links)", "modprobe veth"],
			bridge: [true, "Linux bridges (switches)", "modprobe bridge"],
			nftNat: [true, "nftables NAT (masquerade)", "modprobe nft_nat nft_masq; install nftables"],
			dummy: [false, "dummy interfaces", "modprobe dummy — until then testbed uses an empty bridge to hold the address (works the same for addresses)"],
			netem: [false, "netem: delay, jitter, loss, duplicate, reorder, corrupt", "modprobe sch_netem (package linux-modules-extra on some distributions) — until then random loss is done with nftables and a rate with tbf; labs asking for delay, jitter, duplicate, reorder, corrupt or a queue limit stop with exit 4"],
			tbf: [false, "tbf: rate limits", "modprobe sch_tbf"],
		};
		for (const [feature, [required, what, fix]] of Object.entries(describe) as [keyof KernelFeatures, [boolean, string, string]][]) {
			const ok = report.features[feature];
			checks.push({ name: feature, ok, required, detail: ok ? what : `${what}: ${report.errors[feature] ?? "missing"}`, fix });
		}
	}
	return { ok: checks.every((check) => check.ok || !check.required), kernel, checks };
}
