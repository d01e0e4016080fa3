// Benchmark: variants of one lab. `testbed up` and `down` through the CLI of the same generated lab
// (N units of a NAT and a peer behind it, one internet router: 2N + 1 nodes), in these variants:
//   plain       no private directories, no limits;
//   containers  every node with private /etc and /tmp (OverlayFS, a tmpfs of 4M), a file placed, and
//               cpu, memory and pids limits — its cgroups written by testbed, its namespaces and
//               mounts made by one node-envs.py process (system calls);
//   tools       the same containers built the naive way, one process per mount and namespace
//               (`mount -t tmpfs`, `unshare … sh -c 'mount -t overlay …'`): testbed without python3;
//   dual-stack  every link with IPv6 too (`subnet6:`): addresses nodad, an IPv6 firewall per NAT, the
//               router's routes to every home, DAD off before the links exist (`npm run bench:dual-stack`);
//   port-mapping every NAT offers UPnP-IGD, NAT-PMP and PCP: a miniupnpd per NAT, started by the lab's
//               supervisor once every rule is in place, ready when it listens (`npm run bench:port-mapping`).
// Runs alternate (plain, containers, tools, …) and the median of each is reported, with each ratio to
// plain (target: at most 1.5 at N = 100 for containers and for dual stack).
//
//   npm run bench:containers                     # N = 100, 3 runs each
//   npm run bench:containers -- --units 50 --runs 5
//   npm run bench:containers -- --no-tools       # without the naive variant (a minute per run at N = 100)
//   npm run bench:containers -- --variants plain,dual-stack
//
// The lab is named bench-ct; it is brought down after every run (and in `finally`). Nothing touches
// the root namespace.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { systemPath } from "../src/apply/which.ts";
import { unitsTopology } from "../test/helpers/generate.ts";

const { values } = parseArgs({ options: { units: { type: "string", default: "100" }, runs: { type: "string", default: "3" }, "no-tools": { type: "boolean", default: false }, variants: { type: "string", default: "plain,containers,tools" } } });
const chosen = new Set(values.variants.split(","));
const units = Number(values.units);
const runs = Number(values.runs);
if (!Number.isInteger(units) || units < 1 || units > 1000 || !Number.isInteger(runs) || runs < 1) throw new Error("--units 1..1000, --runs ≥ 1");
if (process.getuid?.() !== 0) throw new Error("bench: run as root (it builds network namespaces)");

const testbed = resolve("bin/testbed.js");
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function cpuTicks(): { busy: number; total: number } {
	const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
	const total = fields.reduce((sum, value) => sum + value, 0);
	return { busy: total - fields[3] - (fields[4] ?? 0), total };
}

/** Until a 300 ms window is 90% idle (the kernel frees deleted namespaces after `down` returns). */
async function quiet(): Promise<void> {
	await sleep(300);
	for (let tries = 0; tries < 50; tries++) {
		const before = cpuTicks();
		await sleep(300);
		const after = cpuTicks();
		if (after.total > before.total && (after.busy - before.busy) / (after.total - before.total) < 0.1) return;
	}
}

function timed(args: string[], env: Record<string, string> = {}): number {
	const started = performance.now();
	const result = spawnSync(process.execPath, [testbed, ...args], { encoding: "utf8", env: { ...process.env, PATH: systemPath(), ...env } });
	const ms = performance.now() - started;
	if (result.status !== 0) throw new Error(`testbed ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
	return ms;
}

const dir = mkdtempSync(join(tmpdir(), "testbed-bench-ct-"));
type Variant = { name: string; file: string; text: string; env: Record<string, string> };
const variants = ([
	{ name: "plain", file: join(dir, "plain.yml"), text: unitsTopology("bench-ct", units), env: {} },
	{ name: "containers", file: join(dir, "containers.yml"), text: unitsTopology("bench-ct", units, { containers: "all" }), env: {} },
	{ name: "tools", file: join(dir, "containers.yml"), text: unitsTopology("bench-ct", units, { containers: "all" }), env: { TESTBED_HIDE_TOOLS: "python3" } },
	{ name: "dual-stack", file: join(dir, "dual-stack.yml"), text: unitsTopology("bench-ct", units, { dualStack: true }), env: {} },
	{ name: "port-mapping", file: join(dir, "port-mapping.yml"), text: unitsTopology("bench-ct", units).replaceAll("{ kind: nat }", "{ kind: nat, nat: { port-mapping: true } }"), env: {} },
] as Variant[]).filter((variant) => chosen.has(variant.name) && (variant.name !== "tools" || !values["no-tools"]));
if (!variants.some((variant) => variant.name === "plain")) throw new Error("--variants must include plain (the ratios are to it)");
for (const variant of variants) writeFileSync(variant.file, variant.text);
const times = new Map(variants.map((variant) => [variant.name, { up: [] as number[], down: [] as number[] }]));
try {
	process.stderr.write(`bench: ${2 * units + 1} nodes, ${runs} runs each, on ${availableParallelism()} CPUs, Linux ${release()}, Node ${process.versions.node}\n`);
	for (let run = 0; run < runs; run++) {
		for (const variant of variants) {
			await quiet();
			const up = timed(["up", variant.file], variant.env);
			const down = timed(["down", "bench-ct"], variant.env);
			times.get(variant.name)!.up.push(up);
			times.get(variant.name)!.down.push(down);
			process.stderr.write(`  run ${run + 1} ${variant.name}: up ${seconds(up)}, down ${seconds(down)}\n`);
		}
	}
} finally {
	spawnSync(process.execPath, [testbed, "down", "bench-ct"], { encoding: "utf8" });
	rmSync(dir, { recursive: true, force: true });
}
const plain = median(times.get("plain")!.up);
console.log(`\nN = ${units} units (${2 * units + 1} nodes), median of ${runs}:`);
console.log("variant      up        down      up vs plain");
for (const variant of variants) {
	const { up, down } = times.get(variant.name)!;
	console.log(`${variant.name.padEnd(12)} ${seconds(median(up)).padEnd(9)} ${seconds(median(down)).padEnd(9)} ${(median(up) / plain).toFixed(2)}×`);
}
const tools = times.get("tools");
const containers = times.get("containers");
if (times.has("port-mapping")) console.log(`port-mapping / plain: ${(median(times.get("port-mapping")!.up) / plain).toFixed(2)}× (a daemon per NAT)`);
for (const name of ["containers", "dual-stack"]) if (times.has(name)) console.log(`${name} / plain: ${(median(times.get(name)!.up) / plain).toFixed(2)}× (target ≤ 1.5×)`);
if (tools && containers) console.log(`tools / containers: ${(median(tools.up) / median(containers.up)).toFixed(1)}×`);
