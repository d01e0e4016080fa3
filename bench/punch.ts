// Benchmark for hole punching (not a test): time to connect cone ↔ cone, the whole nat-matrix test
// with 3 runs per pair, and 100 peer pairs behind their own NATs punching at once (up and down included).
//   npm run bench:punch [-- --pairs 100] [--runs 20]
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { downLab } from "../src/apply/down.ts";
import { upLab } from "../src/apply/up.ts";
import { PunchSession } from "../src/drivers/punch.ts";
import { percentile, runChecks, theoryChecks } from "../src/expect/run.ts";
import { loadLab, loadLabText } from "../src/load.ts";

const { values } = parseArgs({ options: { pairs: { type: "string", default: "100" }, runs: { type: "string", default: "20" } } });
const pairs = Number(values.pairs);
const runs = Number(values.runs);
const figures: Record<string, unknown> = {};
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** N pairs: peer aN and bN, each behind its own port-restricted NAT, all NATs on one router, plus a rendezvous host. */
function pairsTopology(n: number): string {
	const lines = ["name: bench-pairs", "nodes:", "  internet: { kind: router }", "  rendezvous: {}"];
	const links = ["links:", "  - { endpoints: [rendezvous:eth0, internet:r0], subnet: 203.0.113.0/24 }"];
	for (let i = 0; i < 2 * n; i++) {
		lines.push(`  nat${i}: { kind: nat, nat: { type: port-restricted } }`, `  ${i % 2 ? "b" : "a"}${Math.floor(i / 2)}: {}`);
		links.push(`  - { endpoints: [${i % 2 ? "b" : "a"}${Math.floor(i / 2)}:eth0, nat${i}:lan], subnet: 10.${Math.floor(i / 256)}.${i % 256}.0/24 }`);
		const base = 4 * i;
		links.push(`  - { endpoints: [nat${i}:wan, internet:n${i}], subnet: 100.${64 + Math.floor(base / 65536)}.${Math.floor(base / 256) % 256}.${base % 256}/30 }`);
	}
	return [...lines, ...links].join("\n") + "\n";
}

// 1. cone ↔ cone on two-nats: p50 time to connect over `runs` runs.
{
	const lab = loadLabText(readFileSync(new URL("../topologies/two-nats.yml", import.meta.url), "utf8").replace("name: two-nats", "name: bench-cone"));
	await upLab(lab);
	const session = await PunchSession.start(lab);
	try {
		const times: number[] = [];
		for (let run = 0; run < runs; run++) {
			const result = await session.punch("alice", "bob");
			if (result.outcome === "direct" && result.timeToConnectMs !== null) times.push(result.timeToConnectMs);
		}
		figures.coneToCone = { runs, direct: times.length, p50Ms: percentile(times, 50), p95Ms: percentile(times, 95) };
		console.log(`cone ↔ cone (port-restricted both sides): ${times.length}/${runs} direct, time to connect p50 ${percentile(times, 50)?.toFixed(1)} ms, p95 ${percentile(times, 95)?.toFixed(1)} ms (target p50 ≤ 50 ms)`);
	} finally {
		await session.close();
		await downLab(lab.name);
	}
}

// 2. nat-matrix with 3 runs per pair, up and down included.
{
	const started = performance.now();
	const lab = loadLab(new URL("../topologies/nat-matrix.yml", import.meta.url).pathname);
	await upLab(lab);
	let passed = 0;
	let total = 0;
	try {
		const results = await runChecks(lab, theoryChecks(lab), { runs: 3 });
		total = results.length;
		passed = results.filter((check) => check.ok).length;
	} finally {
		await downLab(lab.name);
	}
	const ms = performance.now() - started;
	figures.natMatrix = { pairs: total, passed, runsPerPair: 3, seconds: ms / 1000 };
	console.log(`nat-matrix, ${total} pairs × 3 runs: ${passed}/${total} as expected in ${seconds(ms)} (target ≤ 60 s)`);
}

// 3. N pairs at once, behind their own NATs; up and down included.
{
	const started = performance.now();
	const lab = loadLabText(pairsTopology(pairs));
	await upLab(lab);
	const upMs = performance.now() - started;
	let ok = 0;
	let punchMs = 0;
	try {
		const session = await PunchSession.start(lab);
		try {
			const at = performance.now();
			const results = await session.punchMany(Array.from({ length: pairs }, (_, i) => [`a${i}`, `b${i}`] as [string, string]));
			punchMs = performance.now() - at;
			ok = results.filter((result) => result.outcome === "direct").length;
		} finally {
			await session.close();
		}
	} finally {
		await downLab(lab.name);
	}
	const ms = performance.now() - started;
	figures.pairs = { pairs, direct: ok, upSeconds: upMs / 1000, punchSeconds: punchMs / 1000, totalSeconds: ms / 1000 };
	console.log(`${pairs} pairs punching at once: ${ok}/${pairs} direct; up ${seconds(upMs)}, punch ${seconds(punchMs)}, total with down ${seconds(ms)} (target: all succeed, ≤ 30 s)`);
}
console.log(JSON.stringify({ bench: "punch", date: new Date().toISOString(), ...figures }));
