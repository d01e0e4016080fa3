// Benchmark for events on a running lab (not a test), ours against a naive baseline in the same run:
//   1. `expire` of one host's M mappings on a NAT: testbed (one listing, one `nft -f` transaction,
//      two `conntrack -D`) against a script with one `nft delete element` process per element.
//   2. Event latency on topologies/nat-reboot.yml and roaming.yml: link-down, link-up (routes put
//      back), nat-reboot (no outage), rebind (a few mappings), move and an impairment change, each
//      through applyEvent and as the `--dry-run` commands run one process per line (`bash -c`).
//   3. Reconnection of a held hole-punched session after a NAT reboot, a rebinding, a 1 s link flap
//      and a move, with the default keepalive timing and a fast one.
//
//   npm run bench:events [-- --mappings 1000] [--runs 10] [--hold-runs 3] [--parts 1,2,3]
//
// Labs are named bench-…; each is brought down in `finally`, and the run refuses to start one that
// is up already. Nothing touches the root namespace. The naive commands use `ip netns exec`, as a
// person types them (describeActions prints them so).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, release, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { HeldSession, type HoldOptions } from "../src/drivers/held-session.ts";
import { PunchSession } from "../src/drivers/punch.ts";
import { downLab } from "../src/apply/down.ts";
import { applyEvent, describeEvent } from "../src/apply/apply-event.ts";
import { detectFeatures } from "../src/apply/features.ts";
import { readLedger } from "../src/apply/ledger.ts";
import { run } from "../src/apply/run.ts";
import { systemPath } from "../src/apply/which.ts";
import { upLab } from "../src/apply/up.ts";
import { eventFromArguments, type EventOptions } from "../src/cli/commands/event.ts";
import { percentile } from "../src/expect/run.ts";
import { loadLabText } from "../src/load.ts";
import type { HostFeatures } from "../src/plan/operations.ts";
import { inNamespace } from "../src/render/batch.ts";
import { forgetMappings } from "../src/render/event-actions.ts";
import { natStateSets, parseNatState, type NatState } from "../src/render/nat-state.ts";
import { findNode, type Lab, type LabEvent, type LabNode } from "../src/resolve/lab.ts";

const { values } = parseArgs({
	options: {
		mappings: { type: "string", default: "1000" },
		runs: { type: "string", default: "10" },
		"hold-runs": { type: "string", default: "3" },
		parts: { type: "string", default: "1,2,3" },
	},
});
const mappings = Number(values.mappings);
const runs = Number(values.runs);
const holdRuns = Number(values["hold-runs"]);
const parts = new Set(values.parts.split(",").map((part) => part.trim()));
if (!Number.isInteger(mappings) || mappings < 1 || mappings > 20_000) throw new Error(`--mappings ${values.mappings}: use 1..20000`);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(holdRuns) || holdRuns < 1) throw new Error("--runs and --hold-runs: whole numbers ≥ 1");
if (process.getuid?.() !== 0) throw new Error("bench: run as root (it builds network namespaces)");

// Under `npm run`, node_modules/.bin comes first on PATH and its `nft` is not nftables: the naive
// commands get the system's tools, as testbed's own do.
process.env.PATH = systemPath();
process.env.LC_ALL = "C";

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const)
	process.on(signal, () => {
		if (!interrupted) process.stderr.write(`\n${signal}: stopping after the current step; removing the labs…\n`);
		interrupted = true;
	});
const checkpoint = () => {
	if (interrupted) throw new Error("interrupted");
};

const figures: Record<string, unknown> = {};
const notes: string[] = [];
const log = (text: string) => process.stderr.write(`${text}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const median = (list: number[]) => (list.length ? percentile(list, 50)! : undefined);
const ms = (value: number | undefined) => (value === undefined ? "—" : value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`);
const ratio = (naive: number | undefined, ours: number | undefined) => (naive !== undefined && ours ? `${(naive / ours).toFixed(1)}×` : "—");

function table(header: string[], rows: string[][]): void {
	const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
	const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column])).join(" | ");
	console.log(line(header));
	console.log(widths.map((width) => "-".repeat(width)).join("-+-"));
	for (const row of rows) console.log(line(row));
}

// ── host helpers ────────────────────────────────────────────────────────────

/** A command in a lab namespace (nsenter, as testbed runs its own); fails loudly unless `mayFail`. */
async function inNs(netns: string, argv: string[], mayFail = false): Promise<string> {
	const result = await run(inNamespace(netns, argv));
	if (result.failed && !mayFail) throw new Error(`${argv.join(" ")} in ${netns}: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
	return result.stdout;
}

/** One process, the naive way (no buffering of what it prints); resolves with its exit code. */
function spawnNaive(file: string, args: string[]): Promise<number> {
	return new Promise((resolve) => {
		const child = spawn(file, args, { stdio: "ignore" });
		child.on("error", () => resolve(127));
		child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
	});
}

/** The lab's topology file under a bench- name. */
function renamed(file: string, name: string): Lab {
	const text = readFileSync(new URL(`../topologies/${file}`, import.meta.url), "utf8");
	const renamedText = text.replace(/^name: .*$/m, `name: ${name}`);
	return loadLabText(renamedText, `topologies/${file} (as ${name})`);
}

/** Up, body, down (always); refuses a lab that is up already (it is not ours to remove). */
async function withLab<T>(lab: Lab, body: (lab: Lab) => Promise<T>): Promise<T> {
	if (readLedger(lab.name)) throw new Error(`lab "${lab.name}" is already up (not by this run); bring it down first: testbed down ${lab.name}`);
	checkpoint();
	await upLab(lab);
	try {
		return await body(lab);
	} finally {
		await downLab(lab.name);
	}
}

const node = (lab: Lab, name: string): LabNode => findNode(lab, name)!;
const address = (node: LabNode) => node.interfaces.flatMap((iface) => iface.addresses.map((entry) => entry.ip))[0];

/** UDP datagrams from `count` source ports (base, base+1, …) of a node to to:port, from one node process in its namespace. */
async function sendFromPorts(from: LabNode, to: string, port: number, base: number, count: number): Promise<void> {
	const script = `
const dgram = require("node:dgram");
const [to, port, base, count] = process.argv.slice(1);
const one = (p) => new Promise((resolve, reject) => {
	const socket = dgram.createSocket("udp4");
	socket.on("error", reject);
	socket.bind(p, () => socket.send("m", Number(port), to, (error) => { socket.close(); error ? reject(error) : resolve(); }));
});
(async () => {
	for (let i = 0; i < Number(count); i += 200) await Promise.all(Array.from({ length: Math.min(200, Number(count) - i) }, (_, k) => one(Number(base) + i + k)));
})().catch((error) => { console.error(String(error)); process.exit(1); });
`;
	await inNs(from.netns, [process.execPath, "-e", script, to, String(port), String(base), String(count)]);
}

async function natState(nat: LabNode): Promise<NatState> {
	const sets = natStateSets(nat.name, nat.nat!).map((set) => set.name);
	return parseNatState(await inNs(nat.netns, ["nft", "-j", "list", "table", "ip", "testbed"]), sets);
}

/** A host's entries in the NAT's maps (inside endpoint in the key of eim/adm/seen, in the value of public/adf), and `used` ports in a range. */
function hostEntries(state: NatState, ip: string, ports?: [number, number]): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const [name, elements] of state) {
		if (name === "used") {
			if (ports) counts.used = elements.filter((entry) => Number(entry.key[0]) >= ports[0] && Number(entry.key[0]) <= ports[1]).length;
			continue;
		}
		counts[name] = elements.filter((entry) => String((name === "public" || name === "adf" ? entry.value : entry.key)?.[0]) === ip).length;
	}
	return counts;
}

async function conntrackCount(nat: LabNode, ip: string): Promise<number> {
	const out = await inNs(nat.netns, ["conntrack", "-L", "-p", "udp", "--orig-src", ip], true);
	return out.split("\n").filter((line) => line.startsWith("udp")).length;
}

// ── 1. expire with many mappings ────────────────────────────────────────────

async function expireBench(): Promise<void> {
	const text = [
		"name: bench-expire",
		"nodes:",
		"  nat: { kind: nat, nat: { type: port-restricted, udp-timeout: 120s } }",
		"  inside: {}",
		"  public: {}",
		"links:",
		"  - { endpoints: [inside:eth0, nat:lan], subnet: 192.168.1.0/24 }",
		"  - { endpoints: [nat:wan, public:eth0], subnet: 203.0.113.0/24 }",
	].join("\n");
	await withLab(loadLabText(text, "bench/events.ts (expire)"), async (lab) => {
		const features = (await detectFeatures()).features;
		const [nat, inside, pub] = ["nat", "inside", "public"].map((name) => node(lab, name));
		const ip = address(inside);
		const base = 30000;
		const range: [number, number] = [base, base + mappings - 1];
		const event = eventFromArguments(lab, ["expire", "nat"], { host: "inside" });

		const build = async (label: string) => {
			const at = performance.now();
			await sendFromPorts(inside, address(pub), 9, base, mappings);
			const counts = hostEntries(await natState(nat), ip, range);
			const flows = await conntrackCount(nat, ip);
			if (counts.public !== mappings || counts.eim !== mappings || counts.used !== mappings || flows < mappings)
				throw new Error(`${label}: after sending from ${mappings} ports the NAT holds ${JSON.stringify(counts)} and ${flows} flows of ${ip}`);
			log(`[expire] ${label}: ${mappings} mappings (public, eim, used) and ${flows} flows built in ${ms(performance.now() - at)}`);
		};
		const verify = async (label: string) => {
			const counts = hostEntries(await natState(nat), ip, range);
			const flows = await conntrackCount(nat, ip);
			const left = Object.values(counts).reduce((sum, value) => sum + value, 0);
			if (left > 0 || flows > 0) throw new Error(`${label}: after expire ${JSON.stringify(counts)} and ${flows} flows of ${ip} remain`);
		};

		// Ours.
		await build("testbed");
		checkpoint();
		let at = performance.now();
		await applyEvent(lab, event, features);
		const oursMs = performance.now() - at;
		await verify("testbed");

		// Naive: the listing (one process), then one process per element and per conntrack deletion.
		await build("naive");
		checkpoint();
		const dir = mkdtempSync(join(tmpdir(), "testbed-bench-events-"));
		let naiveMs: number;
		let processes = 0;
		try {
			at = performance.now();
			const listed = await new Promise<string>((resolve, reject) => {
				const child = spawn("ip", ["netns", "exec", nat.netns, "nft", "-j", "list", "table", "ip", "testbed"], { stdio: ["ignore", "pipe", "ignore"] });
				let out = "";
				child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
				child.on("error", reject);
				child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`nft -j list exited ${code}`))));
			});
			const forget = forgetMappings(event as Extract<LabEvent, { kind: "expire" }>, parseNatState(listed, natStateSets(nat.name, nat.nat!).map((set) => set.name)));
			const lines = forget.nft
				.split("\n")
				.filter(Boolean)
				.map((line) => `ip netns exec ${nat.netns} nft '${line}'`);
			lines.push(...forget.conntrack.map((argv) => `ip netns exec ${nat.netns} ${argv.join(" ")}`));
			processes = lines.length + 1;
			writeFileSync(join(dir, "expire.sh"), ["#!/bin/bash", "# one process per element, as typed by hand", ...lines].join("\n") + "\n", { mode: 0o700 });
			const code = await spawnNaive("bash", [join(dir, "expire.sh")]);
			naiveMs = performance.now() - at;
			if (code !== 0 && code !== 1) throw new Error(`naive expire script exited ${code}`); // conntrack -D exits 1 when it finds nothing
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
		await verify("naive");

		figures.expire = { mappings, elementsDeleted: processes - 3, oursMs: round(oursMs), naiveMs: round(naiveMs), naiveProcesses: processes, ratio: round(naiveMs / oursMs) };
		console.log(`\n1. expire of one host's mappings on a port-restricted NAT (M = ${mappings}: ${processes - 3} map/set elements + ${mappings} conntrack flows); both leave no entry of the host`);
		table(["M", "testbed", "naive", "naive processes", "ratio"], [[String(mappings), ms(oursMs), ms(naiveMs), String(processes), ratio(naiveMs, oursMs)]]);
	});
}

// ── 2. event latency ───────────────────────────────────────────────────────

/** The `--dry-run` text as commands, one per line (a here-document goes with its line); comments and sleeps skipped. */
function naiveLines(text: string): string[] {
	const out: string[] = [];
	const lines = text.split("\n");
	for (let i = 0; i < lines.length; i++) {
		const line = lines[i];
		if (!line.trim() || line.startsWith("#") || /^sleep\s/.test(line)) continue;
		if (/<<'EOF'$/.test(line)) {
			const body = [line];
			while (++i < lines.length && lines[i] !== "EOF") body.push(lines[i]);
			out.push(`${body.join("\n")}\nEOF\n`);
		} else out.push(line);
	}
	return out;
}

interface Latency {
	ours: number[];
	naive: number[];
	naiveProcesses: number;
	naiveFailures: number;
}

async function oursOnce(lab: Lab, event: LabEvent, features: HostFeatures): Promise<number> {
	const at = performance.now();
	await applyEvent(lab, event, features);
	return performance.now() - at;
}

/** The same commands, one `bash -c` per line in turn; the rendering (and a NAT's listing) included, as for ours. */
async function naiveOnce(lab: Lab, event: LabEvent, features: HostFeatures, entry: Latency): Promise<number> {
	const at = performance.now();
	const lines = naiveLines(await describeEvent(lab, event, features));
	for (const line of lines) {
		const code = await spawnNaive("bash", ["-c", line]);
		if (code !== 0 && !/\bconntrack\b/.test(line)) entry.naiveFailures++;
	}
	const took = performance.now() - at;
	entry.naiveProcesses = lines.length + (event.kind === "rebind" || event.kind === "expire" ? 1 : 0);
	return took;
}

async function latencyBench(): Promise<void> {
	const results = new Map<string, Latency>();
	const entry = (label: string) => results.get(label) ?? results.set(label, { ours: [], naive: [], naiveProcesses: 0, naiveFailures: 0 }).get(label)!;
	const features = (await detectFeatures()).features;
	const problems: string[] = [];

	await withLab(renamed("nat-reboot.yml", "bench-nat-reboot"), async (lab) => {
		const ev = (args: string[], options: EventOptions = {}) => eventFromArguments(lab, args, options);
		const home1 = node(lab, "home1");
		const alice = node(lab, "alice");
		const stun = address(node(lab, "stun"));
		const down = ev(["link-down", "home1:wan"]);
		const up = ev(["link-up", "home1:wan"]);
		const reboot = ev(["nat-reboot", "home1"]);
		const rebind = ev(["rebind", "home1"], { host: "alice" });
		const impairs = (features.netem ? ["delay=20ms loss=1%", "delay=30ms loss=2%"] : ["loss=1% rate=10mbit", "loss=2% rate=20mbit"]).map((change) => ev(["impair", "home1:wan", ...change.split(" ")]));
		const hasDefault = async () => (await inNs(home1.netns, ["ip", "route", "show", "default"])).trim() !== "";
		const aliceMappings = async () => {
			const counts = hostEntries(await natState(home1), address(alice));
			return (counts.public ?? 0) + (counts.eim ?? 0);
		};
		for (let i = 0; i < runs; i++) {
			checkpoint();
			// Each variant once per run, ours first in even runs and naive first in odd ones.
			for (const variant of i % 2 ? (["naive", "ours"] as const) : (["ours", "naive"] as const)) {
				const once = (label: string, event: LabEvent) => (variant === "ours" ? oursOnce(lab, event, features) : naiveOnce(lab, event, features, entry(label)));
				entry("link-down")[variant].push(await once("link-down", down));
				entry("link-up (routes back)")[variant].push(await once("link-up (routes back)", up));
				if (!(await hasDefault())) problems.push(`${variant} link-up: home1 has no default route afterwards`);
				entry("nat-reboot (no outage)")[variant].push(await once("nat-reboot (no outage)", reboot));
				await sendFromPorts(alice, stun, 9, 31000, 4);
				const before = await aliceMappings();
				entry("rebind (4 mappings)")[variant].push(await once("rebind (4 mappings)", rebind));
				const after = await aliceMappings();
				if (before < 8 || after !== 0) problems.push(`${variant} rebind: alice's map entries ${before} before, ${after} after`);
				entry(`impair (${impairs.length} settings in turn)`)[variant].push(await once(`impair (${impairs.length} settings in turn)`, impairs[i % impairs.length]));
			}
		}
	});

	await withLab(renamed("roaming.yml", "bench-roaming"), async (lab) => {
		const ev = (args: string[]) => eventFromArguments(lab, args, {});
		const phone = node(lab, "phone");
		const toCell = ev(["move", "phone:cell"]);
		const toWifi = ev(["move", "phone:wifi"]);
		const label = "move (wifi ↔ cell)";
		const via = async () => /dev (\S+)/.exec(await inNs(phone.netns, ["ip", "route", "show", "default"]))?.[1];
		for (let i = 0; i < runs; i++) {
			checkpoint();
			for (const variant of i % 2 ? (["naive", "ours"] as const) : (["ours", "naive"] as const)) {
				for (const [event, iface] of [
					[toCell, "cell"],
					[toWifi, "wifi"],
				] as const) {
					entry(label)[variant].push(variant === "ours" ? await oursOnce(lab, event, features) : await naiveOnce(lab, event, features, entry(label)));
					const now = await via();
					if (now !== iface) problems.push(`${variant} move to ${iface}: default route via ${now ?? "nothing"}`);
				}
			}
		}
	});

	const rows: string[][] = [];
	const summary: Record<string, unknown> = {};
	for (const [label, entryOf] of results) {
		const [ours, naive] = [median(entryOf.ours), median(entryOf.naive)];
		rows.push([label, ms(ours), ms(naive), String(entryOf.naiveProcesses), ratio(naive, ours), String(entryOf.ours.length)]);
		summary[label] = { oursMedianMs: ours === undefined ? null : round(ours, 2), naiveMedianMs: naive === undefined ? null : round(naive, 2), naiveProcesses: entryOf.naiveProcesses, ratio: ours && naive ? round(naive / ours) : null, runs: entryOf.ours.length, naiveFailures: entryOf.naiveFailures };
	}
	figures.latency = summary;
	if (problems.length) figures.latencyProblems = problems;
	console.log(`\n2. event latency, median of ${runs} runs (move: ${2 * runs}, both directions); naive = the --dry-run lines, one \`bash -c\` each, in turn`);
	table(["event", "testbed", "naive", "naive processes", "ratio", "runs"], rows);
	for (const problem of problems) console.log(`WARNING ${problem}`);
	for (const [label, entryOf] of results) if (entryOf.naiveFailures) console.log(`WARNING ${label}: ${entryOf.naiveFailures} naive commands failed`);
}

// ── 3. reconnection of a held session ──────────────────────────────────────

interface Fault {
	label: string;
	/** The event for run i. */
	event: (i: number) => LabEvent;
}

interface Reconnect {
	fault: string;
	timing: string;
	keepaliveMs: number;
	lossAfterMs: number;
	reconnectMs: (number | null)[];
	lostMs: (number | null)[];
	/** Per run: "re-punched" (a side declared the path lost), "migrated" (the peer followed the new source), or "kept" (keepalives simply resumed). */
	how: string[];
}

async function holdFaults(lab: Lab, a: string, b: string, faults: Fault[], features: HostFeatures, out: Reconnect[]): Promise<void> {
	const timings: { name: string; options: HoldOptions }[] = [
		{ name: "default", options: {} },
		{ name: "fast", options: { keepaliveMs: 200, lossAfterMs: 800 } },
	];
	const punch = await PunchSession.start(lab);
	try {
		for (const timing of timings) {
			const held = await HeldSession.open(punch, a, b, timing.options);
			try {
				if (held.state !== "connected") throw new Error(`${lab.name}: ${a} ↔ ${b} did not connect (${held.state}): ${JSON.stringify(held.events)}`);
				const timeoutMs = 4 * held.timing.lossAfterMs + 5000;
				for (const fault of faults) {
					const record: Reconnect = { fault: fault.label, timing: timing.name, ...held.timing, reconnectMs: [], lostMs: [], how: [] };
					out.push(record);
					for (let i = 0; i < holdRuns; i++) {
						checkpoint();
						// Steady first: connected, keepalives both ways.
						if ((await held.waitConnected(performance.now(), timeoutMs)) === undefined) log(`[hold] ${lab.name} ${fault.label} (${timing.name}): not steady before run ${i + 1}`);
						await sleep(300);
						const event = fault.event(i);
						const start = performance.now();
						const done = await applyEvent(lab, event, features);
						// Heard again after the fault is complete (after the link is up again, for the flap), counted from its start.
						const at = await held.waitConnected(done.endedAt, timeoutMs);
						const lost = held.events.find((entry) => entry.kind === "lost" && entry.at >= start);
						record.reconnectMs.push(at === undefined ? null : round(at - start));
						record.lostMs.push(lost ? round(lost.at - start) : null);
						record.how.push(lost ? "re-punched" : held.events.some((entry) => entry.kind === "migrated" && entry.at >= start) ? "migrated" : "kept");
						const happened = held.events.filter((entry) => entry.at >= start).map((entry) => `${Math.round(entry.at - start)} ms ${entry.side ?? "pair"} ${entry.kind}`);
						log(`[hold] ${lab.name} ${fault.label} (${timing.name}) run ${i + 1}: reconnected ${at === undefined ? "never" : ms(at - start)}, lost ${lost ? ms(lost.at - start) : "—"}; ${happened.join(", ") || "no session events"}`);
					}
				}
			} finally {
				await held.close();
			}
		}
	} finally {
		await punch.close();
	}
}

async function reconnectBench(): Promise<void> {
	const features = (await detectFeatures()).features;
	const results: Reconnect[] = [];
	await withLab(renamed("nat-reboot.yml", "bench-nat-reboot"), async (lab) => {
		const reboot = eventFromArguments(lab, ["nat-reboot", "home1"], {});
		const rebind = eventFromArguments(lab, ["rebind", "home1"], { host: "alice" });
		const flap = eventFromArguments(lab, ["flap", "home1:wan"], { period: "2s", "down-for": "1s", count: "1" });
		await holdFaults(
			lab,
			"alice",
			"bob",
			[
				{ label: "nat-reboot home1 (no outage)", event: () => reboot },
				{ label: "rebind home1 (alice)", event: () => rebind },
				{ label: "flap home1:wan (down 1 s)", event: () => flap },
			],
			features,
			results,
		);
	});
	await withLab(renamed("roaming.yml", "bench-roaming"), async (lab) => {
		// In turn across both timings: the phone is always moved away from where it is.
		const moves = [eventFromArguments(lab, ["move", "phone:cell"], {}), eventFromArguments(lab, ["move", "phone:wifi"], {})];
		let moved = 0;
		await holdFaults(lab, "phone", "bob", [{ label: "move phone (wifi ↔ cell)", event: () => moves[moved++ % 2] }], features, results);
	});

	const present = (list: (number | null)[]) => list.filter((value): value is number => value !== null);
	const rows = results.map((r) => {
		const back = present(r.reconnectMs);
		const lost = present(r.lostMs);
		return [
			r.fault,
			`${r.timing} (${r.keepaliveMs}/${r.lossAfterMs} ms)`,
			`${back.length}/${r.reconnectMs.length}`,
			ms(median(back)),
			back.length ? `${ms(Math.min(...back))}–${ms(Math.max(...back))}` : "—",
			lost.length ? `${ms(median(lost))} (${lost.length}/${r.lostMs.length})` : `none (0/${r.lostMs.length})`,
			["re-punched", "migrated", "kept"].map((how) => [how, r.how.filter((entry) => entry === how).length] as const).filter(([, count]) => count > 0).map(([how, count]) => `${how} ${count}`).join(", "),
		];
	});
	figures.reconnect = results.map((r) => ({ ...r, medianReconnectMs: median(present(r.reconnectMs)) ?? null, medianLostMs: median(present(r.lostMs)) ?? null }));
	console.log(`\n3. reconnection of a held session (direct, re-punched through the rendezvous when lost), ${holdRuns} runs each: from the event's start until both sides heard each other after it`);
	table(["fault", "timing (keepalive/loss)", "back", "median", "range", "first lost after (runs)", "how"], rows);
	console.log("no naive baseline: a session that does not re-punch never comes back where a row says re-punched; migrated = the peer followed the new source (its NAT had let that endpoint in before), kept = keepalives simply resumed");
}

// ── main ───────────────────────────────────────────────────────────────────

const started = performance.now();
let failed = false;
for (const [part, bench] of [
	["1", expireBench],
	["2", latencyBench],
	["3", reconnectBench],
] as const) {
	if (!parts.has(part) || interrupted) continue;
	try {
		await bench();
	} catch (error) {
		failed = true;
		const text = error instanceof Error ? error.message : String(error);
		notes.push(`part ${part}: ${text}`);
		console.log(`\npart ${part} FAILED: ${text}`);
	}
}
const totalS = round((performance.now() - started) / 1000);
console.log(`\ntotal ${totalS} s`);
console.log(JSON.stringify({ bench: "events", date: new Date().toISOString(), host: { cpus: availableParallelism(), kernel: release(), node: process.version }, totalSeconds: totalS, ...figures, ...(notes.length ? { failures: notes } : {}) }));
process.exit(failed || interrupted ? 1 : 0);
