// `testbed doctor`: what this host supports, and the fix for what it lacks.
import { daemonInstall, daemonPath } from "./port-mapping.ts";
import { existsSync, readdirSync } from "node:fs";
import type { CgroupController, CgroupLayout, HostFeatures } from "../plan/operations.ts";
import { cgroupLayout, controllerFix, ipv6Supported, overlaySupported } from "./cgroups.ts";
import { ledgerPath } from "./state-files.ts";
import { impairmentKinds, impairmentMethod, type ImpairmentKind } from "../plan/plan.ts";
import { helperCheck } from "./configure.ts";
import { cachedFeatures, detectFeatures, type KernelFeatures } from "./features.ts";
import { installHint, isRoot } from "./preflight.ts";
import { which } from "./which.ts";

export interface Check {
	name: string;
	ok: boolean;
	/** Required for `up`; optional ones only limit what a lab may ask for. */
	required: boolean;
	detail: string;
	fix?: string;
}

/** One kind of link impairment: whether this host can do it, and how. */
export interface ImpairmentCheck {
	name: ImpairmentKind;
	ok: boolean;
	/** "netem", "nftables numgen", "tbf", "pfifo", … or "no — needs …"; "unknown" before features were probed. */
	how: string;
}

/** Each impairment kind, declared alone, on a host with these features (and `tc`, or not). */
export function impairmentChecks(features: HostFeatures | undefined, tools: { tc: boolean } = { tc: true }): ImpairmentCheck[] {
	return impairmentKinds.map(({ key }) => {
		if (!features) return { name: key, ok: false, how: "unknown — `sudo testbed doctor` probes the kernel" };
		const method = impairmentMethod(key, features);
		if (method.ok) return { name: key, ok: true, how: method.how };
		if (!tools.tc) return { name: key, ok: false, how: "no — needs tc (apt-get install iproute2)" };
		return { name: key, ok: false, how: method.needs === "netem" ? "no — needs sch_netem (modprobe sch_netem)" : "no — needs sch_tbf (modprobe sch_tbf)" };
	});
}

export async function doctor(): Promise<{ ok: boolean; kernel: string; checks: Check[]; impairments: ImpairmentCheck[] }> {
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
		["iptables", false, "iptables-restore: `nat: { type: masquerade }` (the lecture's MASQUERADE rules), iptables -L inside nodes"],
		["tcpdump", false, "packet captures"],
	];
	for (const [tool, required, what] of tools) {
		// A masquerade NAT is loaded with iptables-restore (the same package as iptables).
		const path = which(tool === "iptables" ? "iptables-restore" : tool);
		checks.push({ name: tool, ok: Boolean(path), required, detail: path ? `${path} (${what})` : `not found (${what})`, fix: installHint });
	}
	const daemon = daemonPath();
	checks.push({ name: "miniupnpd", ok: Boolean(daemon), required: false, detail: daemon ? `${daemon} (port mapping: \`nat: { port-mapping: … }\`; UPnP-IGD, NAT-PMP, PCP)` : `not found (port mapping: \`nat: { port-mapping: … }\`)`, fix: daemonInstall });
	const helper = await helperCheck();
	checks.push({ name: "python3", ok: helper.ok, required: false, detail: helper.detail, fix: "apt-get install -y python3 nftables (python3 and libnftables1; or `make setup`)" });
	let kernel = "unknown";
	let features: HostFeatures | undefined = root ? undefined : cachedFeatures();
	if (root && which("ip")) {
		const report = await detectFeatures({ fresh: true });
		kernel = report.kernel;
		features = report.features;
		const describe: Record<keyof KernelFeatures, [boolean, string, string]> = {
			netns: [true, "network namespaces", "a kernel with CONFIG_NET_NS"],
			veth: [true, "veth pairs (links)", "modprobe veth"],
			bridge: [true, "Linux bridges (switches)", "modprobe bridge"],
			nftNat: [true, "nftables NAT (masquerade)", "modprobe nft_nat nft_masq; install nftables"],
			dummy: [false, "dummy interfaces", "modprobe dummy — until then testbed uses an empty bridge to hold the address (works the same for addresses)"],
			netem: [false, "netem: delay, jitter, loss, duplicate, reorder, corrupt", "modprobe sch_netem (package linux-modules-extra on some distributions) — until then loss (random and in bursts) is done with nftables, a rate with tbf and a queue limit with pfifo; labs asking for delay, jitter, duplicate, reorder or corrupt stop with exit 4"],
			tbf: [false, "tbf: rate limits", "modprobe sch_tbf"],
			pfifo: [false, "pfifo: queue limits without netem", "a kernel with CONFIG_NET_SCHED (sch_fifo)"],
			nftEgress: [false, "nftables netdev egress hook: loss without netem", "a kernel 5.16 or newer with CONFIG_NETFILTER_EGRESS, and nftables 1.0.1 or newer"],
			nftBurst: [false, "nftables sets written from the packet path: burst loss without netem", "a kernel 5.13 or newer (nft_dynset delete) and nftables 1.0 or newer"],
		};
		for (const [feature, [required, what, fix]] of Object.entries(describe) as [keyof KernelFeatures, [boolean, string, string]][]) {
			const ok = report.features[feature];
			checks.push({ name: feature, ok, required, detail: ok ? what : `${what}: ${report.errors[feature] ?? "missing"}`, fix });
		}
	}
	checks.push(...containerChecks());
	return { ok: checks.every((check) => check.ok || !check.required), kernel, checks, impairments: impairmentChecks(features, { tc: Boolean(which("tc")) }) };
}

/** What nodes as lightweight containers need: OverlayFS (`private:`), and each controller `limits:` uses — v2 or v1, as this host mounts it. */
export function containerChecks(): Check[] {
	const layout = cgroupLayout();
	const checks: Check[] = [];
	const ipv6 = ipv6Supported();
	checks.push({ name: "ipv6", ok: ipv6, required: false, detail: ipv6 ? "IPv6 in new namespaces: dual-stack labs (`subnet6:`)" : "no IPv6 in new namespaces (disabled at boot, or inherited disabled): labs with `subnet6:` stop with exit 4", fix: "boot without ipv6.disable=1; where net.core.devconf_inherit_init_net is set, `sysctl -w net.ipv6.conf.default.disable_ipv6=0`" });
	const overlay = overlaySupported();
	checks.push({ name: "overlay", ok: overlay, required: false, detail: overlay ? "OverlayFS: nodes' `private:` directories" : "no OverlayFS: labs with `private:` stop with exit 4", fix: controllerFix("overlay") });
	const uses: Record<CgroupController, string> = { cpu: "`limits: { cpu }` (CFS quota)", memory: "`limits: { memory }` (and OOM kills)", pids: "`limits: { pids }` (a fork bomb stops there)" };
	for (const controller of ["cpu", "memory", "pids"] as const) {
		const where = layout.controllers[controller];
		checks.push({ name: `cgroup ${controller}`, ok: Boolean(where), required: false, detail: where ? `cgroup v${where.version} at ${where.mount}: ${uses[controller]}` : `not mounted: labs with ${uses[controller]} stop with exit 4`, fix: controllerFix(controller) });
	}
	if (layout.v2 && !Object.values(layout.controllers).some((where) => where?.version === 2)) checks.push({ name: "cgroup v2", ok: true, required: false, detail: `${layout.v2} (no controllers; used for membership, cgroup.kill and CPU usage)` });
	const stray = strayCgroups(layout);
	if (stray.length > 0) checks.push({ name: "cgroups left", ok: false, required: false, detail: `testbed cgroups of labs that are not up: ${stray.join(", ")}`, fix: "remove them with `rmdir` (after `cat DIR/cgroup.procs` is empty), or `testbed down LAB` if the lab's ledger is back" });
	return checks;
}

/** `testbed/LAB` cgroup folders for which no ledger exists (a crash that lost its ledger). */
function strayCgroups(layout: CgroupLayout): string[] {
	const mounts = new Set([layout.v2, layout.cpuacct, ...Object.values(layout.controllers).map((where) => where?.mount)].filter((mount): mount is string => Boolean(mount)));
	const stray: string[] = [];
	for (const mount of mounts) {
		let labs: string[] = [];
		try {
			labs = readdirSync(`${mount}/testbed`, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
		} catch {
			continue;
		}
		for (const lab of labs) if (!existsSync(ledgerPath(lab))) stray.push(`${mount}/testbed/${lab}`);
	}
	return stray;
}
