// What this host's kernel and tools can do, probed once per boot in a scratch namespace.
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import type { HostFeatures } from "../plan/operations.ts";
import { featuresPath } from "./paths.ts";
import { run, which } from "./run.ts";

export interface KernelFeatures extends HostFeatures {
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
			if (cached.key === key) return cached.report as FeatureReport;
		} catch {}
	}
	const report = await probe();
	if (process.getuid?.() === 0) {
		writeFileSync(cache, JSON.stringify({ key, report }), { mode: 0o644 });
		chmodSync(cache, 0o644);
	}
	return report;
}

/** Features for `plan` without root: the cached probe if there is one, else assume a usual kernel. */
export function cachedFeatures(): HostFeatures | undefined {
	try {
		const cached = JSON.parse(readFileSync(featuresPath(), "utf8"));
		if (cached.key === bootKey()) return cached.report.features as HostFeatures;
	} catch {}
	return undefined;
}

async function probe(): Promise<FeatureReport> {
	const ns = `testbed-probe-${process.pid}`;
	const lines = probeLines(ns);
	const features: KernelFeatures = { netns: true, veth: true, dummy: true, bridge: true, netem: true, tbf: true, nftNat: true };
	const errors: FeatureReport["errors"] = {};
	if (!which("nft")) [features.nftNat, errors.nftNat] = [false, "nft is not installed"];
	if (!which("tc")) [features.netem, features.tbf, errors.netem, errors.tbf] = [false, false, "tc is not installed", "tc is not installed"];
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
	if (!features.netns) features.veth = features.dummy = features.bridge = features.netem = features.tbf = features.nftNat = false;
	if (!features.veth) features.netem = features.tbf = false;
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
