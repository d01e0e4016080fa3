// What this host's kernel and tools can do, probed once per boot in a scratch namespace.
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import type { HostFeatures } from "../plan/operations.ts";
import { featuresPath } from "./state-files.ts";
import { run } from "./run.ts";
import { which } from "./which.ts";

export interface KernelFeatures extends Required<Omit<HostFeatures, "overlay" | "cgroups" | "ipv6">> {
	netns: boolean;
	veth: boolean;
	bridge: boolean;
	nftNat: boolean;
}

export interface FeatureReport {
	kernel: string;
	features: KernelFeatures;
	/** Error text per missing feature, as the kernel said it. */
	errors: Partial<Record<keyof KernelFeatures, string>>;
}

const probeLines = (ns: string): [keyof KernelFeatures | null, string][] => [
	["netns", `netns add ${ns}`],
	["veth", `link add tbp-v0 netns ${ns} type veth peer name tbp-v1 netns ${ns}`],
	["dummy", `link add tbp-d0 netns ${ns} type dummy`],
	["bridge", `link add tbp-b0 netns ${ns} type bridge`],
	["netem", `netns exec ${ns} tc qdisc add dev tbp-v0 root netem delay 1ms`],
	["tbf", `netns exec ${ns} tc qdisc add dev tbp-v1 root tbf rate 1mbit burst 3200 latency 50ms`],
	["nftNat", `netns exec ${ns} nft add table ip tbp ; add chain ip tbp post { type nat hook postrouting priority srcnat ; } ; add rule ip tbp post masquerade`],
	["pfifo", `netns exec ${ns} tc qdisc add dev lo root pfifo limit 10`],
	["nftEgress", `netns exec ${ns} nft add table netdev tbp ; add chain netdev tbp egress { type filter hook egress device "tbp-v1" priority filter ; } ; add rule netdev tbp egress numgen random mod 100 < 1 drop`],
	["nftBurst", `netns exec ${ns} nft add set netdev tbp burst { type iface_index ; flags dynamic ; } ; add rule netdev tbp egress meta oif @burst delete @burst { meta oif } drop ; add rule netdev tbp egress add @burst { meta oif }`],
	[null, `netns del ${ns}`],
];

function bootKey(): string {
	const read = (path: string) => {
		try {
			return readFileSync(path, "utf8").trim();
		} catch {
			return "?";
		}
	};
	return `${read("/proc/sys/kernel/random/boot_id")} ${read("/proc/sys/kernel/osrelease")}`;
}

/** Probe (as root) or read the cached result for this boot. */
export async function detectFeatures(options: { fresh?: boolean } = {}): Promise<FeatureReport> {
	const cache = featuresPath();
	const key = bootKey();
	if (!options.fresh) {
		try {
			const cached = JSON.parse(readFileSync(cache, "utf8"));
			if (cached.key === key && complete(cached.report?.features)) return cached.report as FeatureReport;
		} catch {}
	}
	const report = await probe();
	// With tools hidden (TESTBED_HIDE_TOOLS) the result is not this host's: it is not kept.
	if (process.getuid?.() === 0 && !process.env.TESTBED_HIDE_TOOLS) {
		writeFileSync(cache, JSON.stringify({ key, report }), { mode: 0o644 });
		chmodSync(cache, 0o644);
	}
	return report;
}

/** Features for `plan` without root: the cached probe if there is one, else assume a usual kernel. */
export function cachedFeatures(): HostFeatures | undefined {
	try {
		const cached = JSON.parse(readFileSync(featuresPath(), "utf8"));
		if (cached.key === bootKey() && complete(cached.report?.features)) return cached.report.features as HostFeatures;
	} catch {}
	return undefined;
}

/** Every feature this version probes: a cache written by an older version lacks some, and is probed again. */
const featureNames: (keyof KernelFeatures)[] = ["netns", "veth", "dummy", "bridge", "netem", "tbf", "pfifo", "nftNat", "nftEgress", "nftBurst"];

function complete(features: unknown): boolean {
	return typeof features === "object" && features !== null && featureNames.every((name) => typeof (features as Record<string, unknown>)[name] === "boolean");
}

async function probe(): Promise<FeatureReport> {
	const ns = `testbed-probe-${process.pid}`;
	const lines = probeLines(ns);
	const features: KernelFeatures = { netns: true, veth: true, dummy: true, bridge: true, netem: true, tbf: true, pfifo: true, nftNat: true, nftEgress: true, nftBurst: true };
	const errors: FeatureReport["errors"] = {};
	const absent = (names: (keyof KernelFeatures)[], why: string) => {
		for (const name of names) [features[name], errors[name]] = [false, why];
	};
	if (!which("nft")) absent(["nftNat", "nftEgress", "nftBurst"], "nft is not installed");
	if (!which("tc")) absent(["netem", "tbf", "pfifo"], "tc is not installed");
	const result = await run(["ip", "-force", "-batch", "-"], { input: lines.map(([, line]) => line).join("\n") + "\n" });
	// stderr: the error text, then "Command failed -:N" for each failing line.
	let pending: string[] = [];
	for (const text of result.stderr.split("\n")) {
		const failed = /^Command failed -:(\d+)$/.exec(text.trim());
		if (!failed) {
			pending.push(text);
			continue;
		}
		const feature = lines[Number(failed[1]) - 1]?.[0];
		if (feature) {
			features[feature] = false;
			errors[feature] ??= pending.join(" ").trim() || "failed";
		}
		pending = [];
	}
	if (!features.netns) for (const name of Object.keys(features) as (keyof KernelFeatures)[]) features[name] = false;
	if (!features.veth) features.netem = features.tbf = features.nftEgress = features.nftBurst = false;
	if (!features.nftEgress) features.nftBurst = false;
	await run(["ip", "netns", "del", ns]); // in case the batch stopped early
	return { kernel: readRelease(), features, errors };
}

function readRelease(): string {
	try {
		return readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
	} catch {
		return "unknown";
	}
}
