// Benchmark: `testbed up` and `testbed down` through the CLI (what users run), against a naive shell
// script that builds the same lab with one process per command, as the network-namespace lecture
// does (`ip netns add`, `ip link add … type veth`, `ip netns exec NS ip …`, `nft -f`, `sysctl -w`).
//
//   npm run bench:up-down                        # N = 10, 100, 500, 1000; the naive script for N ≤ 100
//   npm run bench:up-down -- --sizes 100         # other sizes
//   npm run bench:up-down -- --naive-all         # the naive script for every N (N=1000 takes minutes)
//   npm run bench:up-down -- --no-naive          # testbed only
//   npm run bench:up-down -- --runs 3            # testbed up/down 3 times per N; the median is reported
//
// Between phases it waits until the machine is quiet (the kernel frees deleted namespaces in the
// background after `down` returns; that work is not billed to the next `up`).
//
// Topology per N: one router `internet`; per unit i a NAT `nat<i>` (the default NAT type) and a host
// `peer<i>` behind it. The naive script is written from testbed's own plan of that lab (the same
// addresses, routes, sysctls and nftables rule files), so both build the same lab; after both are
// built, every node of a sample is compared (addresses, routes, links, sysctls, nftables ruleset) and
// a difference fails the benchmark.
//
// Safety: only namespaces this run creates are deleted, each by its exact name; a size is refused when
// any of those names exists already. Root-namespace veths exist only transiently inside the naive
// script. Nothing touches the root namespace's firewall, routes or sysctls.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, release, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { detectFeatures } from "../src/apply/features.ts";
import { systemPath } from "../src/apply/which.ts";
import { loadLabText } from "../src/load.ts";
import { planLab } from "../src/plan/plan.ts";
import { renderPlan, stepContent } from "../src/render/batch.ts";
import { unitsTopology } from "../test/helpers/generate.ts";

const TARGETS: Record<number, { upS?: number; downS?: number }> = { 100: { upS: 1.2, downS: 0.3 }, 500: { upS: 6 }, 1000: { upS: 12, downS: 2 } };

interface Options {
	sizes: number[];
	naive: "none" | "small" | "all";
	runs: number;
	settleMs: number;
}

const log = (text: string) => process.stderr.write(`${text}\n`);
const env = () => ({ ...process.env, LC_ALL: "C", PATH: systemPath() });
const netnsExists = (name: string) => existsSync(`/run/netns/${name}`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Busy and total CPU time of the whole machine so far (/proc/stat), in clock ticks. */
function cpuTicks(): { busy: number; total: number } {
	const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
	const total = fields.reduce((sum, value) => sum + value, 0);
	return { busy: total - fields[3] - (fields[4] ?? 0), total };
}

/**
 * Wait until the machine is quiet: the kernel frees deleted namespaces in a work queue after `down`
 * has returned, and that work would otherwise be billed to the next `up`. At least `minMs`, then
 * until a 300 ms window is 90% idle, at most 15 s.
 */
async function quiet(minMs: number): Promise<void> {
	await sleep(minMs);
	for (let tries = 0; tries < 50; tries++) {
		const before = cpuTicks();
		await sleep(300);
		const after = cpuTicks();
		if (after.total > before.total && (after.busy - before.busy) / (after.total - before.total) < 0.1) return;
	}
}

function sh(argv: string[]): { code: number; stdout: string; stderr: string } {
	const result = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", env: env() });
	return { code: result.status ?? 1, stdout: result.stdout ?? "", stderr: result.stderr ?? String(result.error ?? "") };
}

/** Run a command, timing it from spawn to exit; its stdout is kept (JSON reports). */
function timed(argv: string[], signal: AbortSignal): Promise<{ ms: number; code: number; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		const started = performance.now();
		const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", "pipe", "pipe"], env: env() });
		let stdout = "";
		let stderr = "";
		child.stdout!.on("data", (chunk) => (stdout += chunk));
		child.stderr!.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
		const abort = () => {
			try {
				process.kill(-child.pid!, "SIGTERM");
			} catch {}
		};
		signal.addEventListener("abort", abort, { once: true });
		child.on("close", (code) => {
			signal.removeEventListener("abort", abort);
			resolve({ ms: performance.now() - started, code: code ?? 1, stdout, stderr: stderr.trim() });
		});
	});
}

/** Delete exactly these namespaces (if present) and these root-namespace links (if present). */
function removeExact(namespaces: string[], rootLinks: string[] = []): void {
	for (const name of rootLinks) if (existsSync(`/sys/class/net/${name}`)) sh(["ip", "link", "del", "dev", name]);
	const present = namespaces.filter(netnsExists);
	if (present.length > 0) spawnSync("ip", ["-force", "-batch", "-"], { input: present.map((name) => `netns del ${name}\n`).join(""), env: env() });
}

// ---- the naive script, written from testbed's plan ------------------------------------------

interface Naive {
	up: string;
	down: string;
	namespaces: string[];
	rootVeths: string[];
	upCommands: number;
}

/** One process per command: the lab as a shell script a person would write from the lecture. */
async function naiveScript(topology: string, n: number, dir: string): Promise<Naive> {
	const lab = loadLabText(topology, "bench.yml");
	const plan = planLab(lab, (await detectFeatures()).features);
	const rendered = renderPlan(plan, join(dir, "rules"));
	const rename = (netns: string) => netns.replace(/^bench\d+-/, `naive${n}-`);
	const up: string[] = [];
	const rootVeths: string[] = [];
	for (const op of plan.root) if (op.op === "netns-add") up.push(`ip netns add ${rename(op.netns)}`);
	plan.root.forEach((op, index) => {
		if (op.op !== "veth-add") return;
		const [a, b] = [`nv${n}x${index}a`, `nv${n}x${index}b`];
		rootVeths.push(a, b);
		up.push(`ip link add ${a} type veth peer name ${b}`);
		up.push(`ip link set ${a} netns ${rename(op.a.netns)}`, `ip link set ${b} netns ${rename(op.b.netns)}`);
		up.push(`ip netns exec ${rename(op.a.netns)} ip link set ${a} name ${op.a.iface}`, `ip netns exec ${rename(op.b.netns)} ip link set ${b} name ${op.b.iface}`);
	});
	spawnSync("mkdir", ["-p", join(dir, "rules")]);
	for (const batch of rendered.namespaces) {
		const exec = `ip netns exec ${rename(batch.netns!)}`;
		for (const step of batch.steps) {
			if (step.tool === "ip") for (const line of step.lines) up.push(`${exec} ip ${line.text}`);
			if (step.tool === "nft") {
				writeFileSync(step.file!, stepContent(step));
				up.push(`${exec} nft -f ${step.file}`);
			}
			if (step.tool === "sysctl") for (const line of step.lines) up.push(`${exec} sysctl -q -w ${line.text.replace(" = ", "=")}`);
			if (step.tool === "tc") for (const line of step.lines) up.push(`${exec} tc ${line.text}`);
		}
	}
	// sysctl runs after nft (which loads conntrack and creates the net.netfilter settings), as in testbed.
	const header = ["#!/bin/bash", "# generated by bench/up-down.ts from testbed's plan; one process per command", "set -eu", `trap 'echo "failed at line $LINENO: $BASH_COMMAND" >&2' ERR`];
	const namespaces = lab.nodes.map((node) => rename(node.netns));
	return {
		up: [...header, ...up].join("\n") + "\n",
		down: [...header, ...namespaces.map((name) => `ip netns del ${name}`)].join("\n") + "\n",
		namespaces,
		rootVeths,
		upCommands: up.length,
	};
}

// ---- comparing the two builds ---------------------------------------------------------------

/** What a node looks like, minus what legitimately differs between two builds (indexes, MACs, link-local addresses). */
function snapshot(netns: string, sysctlKeys: string[]): Record<string, string> {
	const addresses = sh(["ip", "-n", netns, "-br", "addr"])
		.stdout.split("\n")
		.filter(Boolean)
		.map((line) => line.replace(/@\S+/, "").replace(/\s+fe80::\S+/g, "").replace(/^(\S+)\s+\S+/, "$1").replace(/\s+/g, " ").trim())
		.sort();
	const routes = sh(["ip", "-n", netns, "-4", "route", "show", "table", "all"]).stdout.split("\n").filter(Boolean).map((line) => line.replace(/\s*linkdown/, "").trim()).sort();
	const links = sh(["ip", "-n", netns, "-br", "link"]).stdout.split("\n").filter(Boolean).map((line) => line.replace(/@\S+/, "").split(/\s+/)[0]).sort();
	const sysctls = sh(["ip", "netns", "exec", netns, "sysctl", ...sysctlKeys]).stdout.trim();
	const nft = sh(["ip", "netns", "exec", netns, "nft", "list", "ruleset"]).stdout.replace(/\s+/g, " ").trim();
	return { addresses: addresses.join(" | "), routes: routes.join(" | "), links: links.join(" "), sysctls, nft };
}

// ---- one size ---------------------------------------------------------------------------------

interface SizeResult {
	n: number;
	namespaces: number;
	testbed: { upS: number[]; downS: number[]; up?: number; down?: number; report?: UpReport; error?: string };
	naive: { upS?: number; downS?: number; upCommands?: number; skipped?: string; error?: string };
	ratioUp?: number;
	ratioDown?: number;
	sameLab?: boolean;
	differences?: string[];
	targets: { up?: { limitS: number; pass: boolean }; down?: { limitS: number; pass: boolean } };
}

interface UpReport {
	timings: { rootMs: number; namespacesMs: number; totalMs: number };
	configured: { method: string; processes: number; toolMs?: Record<string, number> };
}

async function benchSize(n: number, options: Options, signal: AbortSignal): Promise<SizeResult> {
	const labName = `bench${n}`;
	const topology = unitsTopology(labName, n);
	const dir = mkdtempSync(join(tmpdir(), "testbed-bench-"));
	const file = join(dir, `${labName}.yml`);
	writeFileSync(file, topology);
	const lab = loadLabText(topology, file);
	const tbNamespaces = lab.nodes.map((node) => node.netns);
	const result: SizeResult = { n, namespaces: tbNamespaces.length, testbed: { upS: [], downS: [] }, naive: {}, targets: {} };
	const sample = [...new Set(["internet", "nat0", "peer0", `nat${n - 1}`, `peer${n - 1}`])];
	const snapshots = new Map<string, Record<string, string>>();
	const sysctlKeys = (node: string) => planLab(lab, { dummy: false, netem: false, tbf: true }).namespaces.find((ns) => ns.node === node)!.operations.flatMap((op) => (op.op === "sysctl" ? op.settings.map(([key]) => key) : []));
	try {
		const taken = tbNamespaces.filter(netnsExists);
		if (taken.length > 0) throw new Error(`namespaces exist already, not created by this run: ${taken.slice(0, 5).join(", ")}`);
		// --- testbed, through the CLI ---
		for (let run = 0; run < options.runs && !signal.aborted; run++) {
			log(`[N=${n}] testbed up (${tbNamespaces.length} namespaces), run ${run + 1}/${options.runs}…`);
			const up = await timed([process.execPath, "bin/testbed.js", "up", file, "--json"], signal);
			if (up.code !== 0) throw new Error(`testbed up exited ${up.code}: ${up.stderr}`);
			result.testbed.upS.push(up.ms / 1000);
			result.testbed.report = JSON.parse(up.stdout) as UpReport;
			if (run === 0) for (const node of sample) snapshots.set(node, snapshot(`${labName}-${node}`, sysctlKeys(node)));
			await quiet(options.settleMs);
			const down = await timed([process.execPath, "bin/testbed.js", "down", labName], signal);
			if (down.code !== 0) throw new Error(`testbed down exited ${down.code}: ${down.stderr}`);
			result.testbed.downS.push(down.ms / 1000);
			await quiet(options.settleMs);
		}
		result.testbed.up = round(median(result.testbed.upS));
		result.testbed.down = round(median(result.testbed.downS));
	} catch (error) {
		result.testbed.error = (error as Error).message;
	} finally {
		if (netnsExists(`${labName}-internet`)) sh([process.execPath, "bin/testbed.js", "down", labName]);
		removeExact(tbNamespaces);
	}

	// --- naive ---
	if (options.naive === "none") result.naive.skipped = "--no-naive";
	else if (options.naive === "small" && n > 100) result.naive.skipped = "N > 100 (minutes); --naive-all runs it";
	else if (signal.aborted) result.naive.skipped = "interrupted";
	if (!result.naive.skipped) {
		const naive = await naiveScript(topology, n, dir);
		result.naive.upCommands = naive.upCommands;
		try {
			const taken = naive.namespaces.filter(netnsExists);
			if (taken.length > 0) throw new Error(`namespaces exist already, not created by this run: ${taken.slice(0, 5).join(", ")}`);
			writeFileSync(join(dir, "up.sh"), naive.up, { mode: 0o700 });
			writeFileSync(join(dir, "down.sh"), naive.down, { mode: 0o700 });
			log(`[N=${n}] naive up (${naive.upCommands} processes)…`);
			const up = await timed(["bash", join(dir, "up.sh")], signal);
			if (up.code !== 0) throw new Error(signal.aborted ? "interrupted" : `naive up.sh exited ${up.code}: ${up.stderr}`);
			result.naive.upS = round(up.ms / 1000);
			const differences: string[] = [];
			for (const [node, built] of snapshots) {
				const other = snapshot(`naive${n}-${node}`, sysctlKeys(node));
				for (const key of Object.keys(built)) if (built[key] !== other[key]) differences.push(`${node} ${key}: testbed ${built[key].slice(0, 200)} / naive ${other[key].slice(0, 200)}`);
			}
			result.sameLab = snapshots.size > 0 && differences.length === 0;
			if (differences.length > 0) result.differences = differences;
			await quiet(options.settleMs);
			log(`[N=${n}] naive down (${naive.namespaces.length} processes)…`);
			const down = await timed(["bash", join(dir, "down.sh")], signal);
			if (down.code !== 0) throw new Error(`naive down.sh exited ${down.code}: ${down.stderr}`);
			result.naive.downS = round(down.ms / 1000);
		} catch (error) {
			result.naive.error = (error as Error).message;
		} finally {
			removeExact(naive.namespaces, naive.rootVeths);
		}
	}
	rmSync(dir, { recursive: true, force: true });

	const { up, down } = result.testbed;
	if (up && result.naive.upS) result.ratioUp = round(result.naive.upS / up, 1);
	if (down && result.naive.downS) result.ratioDown = round(result.naive.downS / down, 1);
	const target = TARGETS[n];
	if (target?.upS !== undefined && up !== undefined) result.targets.up = { limitS: target.upS, pass: up <= target.upS };
	if (target?.downS !== undefined && down !== undefined) result.targets.down = { limitS: target.downS, pass: down <= target.downS };
	return result;
}

// ---- output -----------------------------------------------------------------------------------

function printTable(results: SizeResult[], options: Options): void {
	const fmt = (value: number | undefined) => (value === undefined ? "—" : value.toFixed(3));
	const withTarget = (value: number | undefined, target?: { limitS: number; pass: boolean }) => (value === undefined ? "—" : target ? `${fmt(value)} ${target.pass ? "pass" : "MISS"} ≤${target.limitS}` : fmt(value));
	const header = ["N", "namespaces", "testbed up s", "testbed down s", "naive up s", "naive down s", "ratio up", "ratio down"];
	const rows = results.map((r) => [
		String(r.n),
		String(r.namespaces),
		r.testbed.error ? "ERROR" : withTarget(r.testbed.up, r.targets.up),
		r.testbed.error ? "ERROR" : withTarget(r.testbed.down, r.targets.down),
		r.naive.skipped ? "skipped" : r.naive.error ? "ERROR" : fmt(r.naive.upS),
		r.naive.skipped ? "skipped" : r.naive.error ? "ERROR" : fmt(r.naive.downS),
		r.ratioUp === undefined ? "—" : `${r.ratioUp.toFixed(1)}×`,
		r.ratioDown === undefined ? "—" : `${r.ratioDown.toFixed(1)}×`,
	]);
	const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
	const line = (cells: string[]) => cells.map((cell, column) => (column < 2 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join(" | ");
	console.log(`\n${line(header)}\n${widths.map((width) => "-".repeat(width)).join("-+-")}`);
	for (const row of rows) console.log(line(row));
	console.log("");
	for (const r of results) {
		const report = r.testbed.report;
		if (report) {
			const { rootMs, namespacesMs, totalMs } = report.timings;
			const cli = r.testbed.up! * 1000 - totalMs;
			const tools = report.configured.toolMs ? Object.entries(report.configured.toolMs).map(([tool, ms]) => `${tool} ${Math.round(ms)}`).join(", ") : "not measured per tool";
			console.log(
				`N=${r.n}: where up's time went (last run): CLI start, load and plan ${Math.round(cli)} ms; ledger, render and the root ip -batch ${Math.round(rootMs)} ms; namespaces ${Math.round(namespacesMs)} ms ` +
					`(${report.configured.method}, ${report.configured.processes} processes; ${(namespacesMs / r.namespaces).toFixed(2)} ms per namespace; per tool, summed: ${tools} ms)`,
			);
			if (options.runs > 1) console.log(`N=${r.n}: testbed up ${r.testbed.upS.map((s) => s.toFixed(3)).join(", ")} s; down ${r.testbed.downS.map((s) => s.toFixed(3)).join(", ")} s (median shown)`);
		}
		if (r.naive.upCommands !== undefined) console.log(`N=${r.n}: the naive script starts ${r.naive.upCommands} processes to build, ${r.namespaces} to remove; testbed starts 1 ip -batch and ${report?.configured.processes ?? "?"} helpers`);
		if (r.naive.skipped) console.log(`N=${r.n}: naive run skipped: ${r.naive.skipped}`);
		if (r.sameLab) console.log(`N=${r.n}: both builds agree on internet, nat0, peer0, nat${r.n - 1}, peer${r.n - 1} (addresses, routes, links, sysctls, nftables ruleset)`);
		if (r.differences) console.log(`N=${r.n}: FAIL the builds differ:\n  ${r.differences.join("\n  ")}`);
		if (r.testbed.error) console.log(`N=${r.n}: testbed ERROR: ${r.testbed.error}`);
		if (r.naive.error) console.log(`N=${r.n}: naive ERROR: ${r.naive.error}`);
	}
	console.log(`targets (through the CLI): N=100 up ≤ 1.2 s, down ≤ 0.3 s; N=500 up ≤ 6 s; N=1000 up ≤ 12 s, down ≤ 2 s`);
}

function parseOptions(): Options {
	const { values } = parseArgs({
		options: {
			sizes: { type: "string", default: "10,100,500,1000" },
			"no-naive": { type: "boolean", default: false },
			"naive-all": { type: "boolean", default: false },
			runs: { type: "string", default: "1" },
			"settle-ms": { type: "string", default: "1000" },
			help: { type: "boolean", short: "h", default: false },
		},
		strict: true,
	});
	if (values.help) {
		console.log("usage: npm run bench:up-down -- [--sizes 10,100,500,1000] [--no-naive | --naive-all] [--runs N] [--settle-ms 1000]");
		process.exit(0);
	}
	const sizes = values.sizes.split(",").map(Number);
	for (const size of sizes) if (!Number.isInteger(size) || size < 1 || size > 5000) throw new Error(`--sizes: "${values.sizes}" is not a list of sizes 1..5000`);
	const runs = Number(values.runs);
	if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: "${values.runs}" is not a count`);
	return { sizes, naive: values["no-naive"] ? "none" : values["naive-all"] ? "all" : "small", runs, settleMs: Number(values["settle-ms"]) };
}

async function main(): Promise<number> {
	const options = parseOptions();
	if (process.getuid?.() !== 0) {
		console.error("bench: run as root (it builds network namespaces)");
		return 1;
	}
	const controller = new AbortController();
	for (const signal of ["SIGINT", "SIGTERM"] as const)
		process.on(signal, () => {
			log(`\n${signal}: stopping; removing what this benchmark created…`);
			controller.abort();
		});
	// The CLI runs dist/: build it from these sources first, as `npm ci` would.
	if (sh([process.execPath, "scripts/build.js", "--quiet"]).code !== 0) throw new Error("scripts/build.js failed");
	await detectFeatures(); // probed once per boot; any `up` after the first reads the cache
	log(`bench: sizes ${options.sizes.join(", ")}; ${availableParallelism()} CPUs; kernel ${release()}; node ${process.version}`);
	const results: SizeResult[] = [];
	for (const n of options.sizes) {
		if (controller.signal.aborted) break;
		await quiet(options.settleMs);
		results.push(await benchSize(n, options, controller.signal));
	}
	printTable(results, options);
	console.log(JSON.stringify({ bench: "up-down", date: new Date().toISOString(), host: { cpus: availableParallelism(), kernel: release(), node: process.version }, results }));
	if (controller.signal.aborted) return 130;
	return results.some((r) => r.testbed.error || r.naive.error || r.differences) ? 1 : 0;
}

main().then(
	(code) => process.exit(code),
	(error) => {
		console.error(`bench: ${(error as Error).message}`);
		process.exit(1);
	},
);
