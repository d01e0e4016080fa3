// Impairments this host can do, measured with the UDP tool agent: random and burst loss (netem, or
// nftables where the kernel lacks netem), a rate (tbf), a queue limit (pfifo), one direction impaired
// more than the other, and a live change of what `up` built. What needs netem stops `up` with exit 4
// where it is missing; where netem is there, a delay is measured as round-trip time.
import { readFileSync } from "node:fs";
import test, { type ExecutionContext } from "ava";
import { execa } from "execa";
import { upLab } from "../../src/apply/up.ts";
import { MissingFeatureError } from "../../src/errors.ts";
import { loadLabText } from "../../src/load.ts";
import type { Lab } from "../../src/resolve/lab.ts";
import { missingRuns, UdpTool, type SocketStats } from "../../src/drivers/udp-tool.ts";
import { detectFeatures } from "../../src/apply/features.ts";
import type { ImpairDecl } from "../../src/parse/topology.ts";
import { planImpairment } from "../../src/plan/plan.ts";
import { renderImpairmentChange } from "../../src/render/batch.ts";
import { inLab, inNamespace, isRoot, leftovers, rootTest } from "../helpers/host.ts";

const features = isRoot ? (await detectFeatures()).features : undefined;

/** A root test that is skipped, saying why, when the host lacks what it measures. */
function hostTest(title: string, missing: string | false, implementation: (t: ExecutionContext) => Promise<void>): void {
	if (isRoot && missing) test.skip(`${title} — skipped: ${missing}`, () => undefined);
	else rootTest(title, implementation);
}

/** Bytes per datagram that tbf counts besides the UDP payload: Ethernet 14, IPv4 20, UDP 8. */
const headers = 42;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Running {
	lab: Lab;
	tool(node: string): UdpTool;
	address(node: string): string;
}

/** Up a lab from YAML, start a UDP tool in every node, run, then stop them and tear down, checking nothing is left. */
async function withTools(t: ExecutionContext, yaml: string, body: (lab: Running) => Promise<void>): Promise<void> {
	await inLab(t, loadLabText(yaml), async (lab) => {
		const tools = new Map<string, UdpTool>();
		try {
			for (const tool of await Promise.all(lab.nodes.map((node) => UdpTool.start(node)))) tools.set(tool.node.name, tool);
			await body({
				lab,
				tool: (node) => tools.get(node)!,
				address: (node) => lab.nodes.find((candidate) => candidate.name === node)!.interfaces[0].addresses[0].ip,
			});
		} finally {
			await Promise.all([...tools.values()].map((tool) => tool.stop()));
		}
	});
}

let port = 6000;

/**
 * Datagrams from one node until one arrives at the other: the neighbour (ARP) entry is resolved
 * before a measurement starts. Without this an ARP exchange lost to the impairment holds the first
 * datagrams back for a second and drops what does not fit in the neighbour queue.
 */
async function warmUp(lab: Running, from: string, to: string): Promise<void> {
	const [sender, receiver] = [lab.tool(from), lab.tool(to)];
	const [inbound, outbound] = [`warm-from-${from}-${port}`, `warm-to-${to}-${port}`];
	const target = `${lab.address(to)}:${await receiver.bind(inbound, port++)}`;
	await sender.bind(outbound);
	for (let tries = 0; tries < 200; tries++) {
		await sender.send(outbound, target, "warm");
		if (await receiver.receive(inbound, { timeoutMs: 50 })) return;
	}
	throw new Error(`no datagram from ${from} reached ${to} in 10 s`);
}

/** A counting socket's figures once datagrams have stopped arriving (queues drain, reports come late). */
async function quietStats(tool: UdpTool, sock: string, seqs = false): Promise<SocketStats> {
	let last = await tool.stats(sock);
	for (let quiet = 0, polls = 0; quiet < 3 && polls < 100; polls++) {
		await sleep(100);
		const now = await tool.stats(sock);
		quiet = now.datagrams === last.datagrams ? quiet + 1 : 0;
		last = now;
	}
	return seqs ? tool.stats(sock, { seqs: true }) : last;
}

/** Flood from one node to another; what arrived. */
async function flood(lab: Running, from: string, to: string, options: { size: number; count?: number; durationMs?: number; pps?: number }, seqs = false) {
	const sock = `in-${from}-${port}`;
	const target = `${lab.address(to)}:${await lab.tool(to).bind(sock, port++, { count: true })}`;
	const out = `out-${port++}`;
	await lab.tool(from).bind(out);
	const sent = await lab.tool(from).flood(out, target, options);
	return { sent, received: await quietStats(lab.tool(to), sock, seqs) };
}

/** Bits per second on the wire as tbf counts them, between the first and the last arrival. */
function wireRate(stats: SocketStats, size: number): number {
	return ((stats.datagrams - 1) * (size + headers) * 8) / ((stats.lastMs! - stats.firstMs!) / 1000);
}

/** UDP datagrams the receiving namespace dropped for a full socket buffer (would count as loss). */
async function receiveBufferErrors(netns: string): Promise<number> {
	const snmp = (await inNamespace(netns, ["cat", "/proc/net/snmp"])).stdout.split("\n").filter((line) => line.startsWith("Udp:"));
	const [names, values] = snmp.map((line) => line.split(/\s+/));
	return Number(values?.[names?.indexOf("RcvbufErrors") ?? -1] ?? 0);
}

const pair = (name: string, impair: string) => `name: ${name}\nnodes:\n  alice: {}\n  bob: {}\nlinks:\n  - endpoints: [alice:eth0, bob:eth0]\n    subnet: 10.9.0.0/24\n    impair: ${impair}\n`;
const how = (what: string) => (features?.netem ? `netem does the ${what}` : `this kernel has no netem: nftables does the ${what}`);

hostTest("20% loss drops 15–25% of 1000 datagrams (netem, or nftables numgen without it)", !features?.netem && features?.nftEgress === false && "no netem and no nftables egress hook", async (t) => {
	t.log(how("loss"));
	await withTools(t, pair("tb-loss", "{ loss: 20% }"), async (lab) => {
		await warmUp(lab, "alice", "bob");
		const { sent, received } = await flood(lab, "alice", "bob", { size: 16, count: 1000, pps: 2000 });
		const loss = (100 * (sent.sent - received.datagrams)) / sent.sent;
		t.log(`declared 20%, measured ${loss.toFixed(1)}% of ${sent.sent} datagrams`);
		t.true(loss >= 15 && loss <= 25, `${loss}%`);
	});
});

hostTest(
	"20% loss in bursts of 4 packets: 15–25% of 10000 datagrams lost, runs of lost datagrams 3–5 long on average",
	!features?.netem && !(features?.nftEgress && features?.nftBurst) && "no netem, and nftables cannot update sets from the packet path",
	async (t) => {
		t.log(how("burst loss (Gilbert model)"));
		await withTools(t, pair("tb-burst", "{ loss: 20%, loss-burst: 4 }"), async (lab) => {
			await warmUp(lab, "alice", "bob");
			const before = await receiveBufferErrors("tb-burst-bob");
			const { sent, received } = await flood(lab, "alice", "bob", { size: 16, count: 10_000, pps: 5000 }, true);
			const runs = missingRuns(received.seqs!, sent.sent);
			const loss = (100 * (sent.sent - received.datagrams)) / sent.sent;
			const burst = runs.reduce((sum, run) => sum + run, 0) / runs.length;
			const socketDrops = (await receiveBufferErrors("tb-burst-bob")) - before;
			t.log(`declared 20% in bursts of 4; measured ${loss.toFixed(1)}% of ${sent.sent} datagrams, ${runs.length} bursts of ${burst.toFixed(2)} on average (longest ${Math.max(...runs)}); receive buffer drops: ${socketDrops}`);
			t.true(loss >= 15 && loss <= 25, `loss ${loss}%`);
			t.true(burst >= 3 && burst <= 5, `mean burst ${burst}`);
		});
	},
);

hostTest("a 1mbit rate caps a 4 Mbit/s UDP flood within 10% (tbf)", !features?.tbf && !features?.netem && "no tbf (modprobe sch_tbf)", async (t) => {
	await withTools(t, pair("tb-rate", "{ rate: 1mbit }"), async (lab) => {
		await warmUp(lab, "alice", "bob");
		const size = 1000;
		const { sent, received } = await flood(lab, "alice", "bob", { size, durationMs: 2000, pps: Math.round(4e6 / 8 / (size + headers)) });
		const rate = wireRate(received, size);
		t.log(`declared 1 Mbit/s; sent ${sent.sent} datagrams of ${size} bytes in ${(sent.ms / 1000).toFixed(2)} s, received ${received.datagrams}: ${(rate / 1e6).toFixed(3)} Mbit/s on the wire`);
		t.true(Math.abs(rate - 1e6) <= 1e5, `${rate} bit/s`);
	});
});

hostTest("a queue limit: 60 back-to-back datagrams through 1mbit — a 5-packet queue drops most, a 100-packet queue none", !features?.tbf && !features?.netem && "no tbf (modprobe sch_tbf)", async (t) => {
	const yaml = `name: tb-limit
nodes:
  s1: {}
  d1: {}
  s2: {}
  d2: {}
  s3: {}
  d3: {}
links:
  - { endpoints: [s1:eth0, d1:eth0], subnet: 10.9.1.0/24, impair: { rate: 1mbit, limit: 5 } }
  - { endpoints: [s2:eth0, d2:eth0], subnet: 10.9.2.0/24, impair: { rate: 1mbit, limit: 100 } }
  - { endpoints: [s3:eth0, d3:eth0], subnet: 10.9.3.0/24, impair: { limit: 7 } }
`;
	await withTools(t, yaml, async (lab) => {
		const delivered: number[] = [];
		for (const [from, to] of [["s1", "d1"], ["s2", "d2"]]) {
			await warmUp(lab, from, to);
			const { sent, received } = await flood(lab, from, to, { size: 1000, count: 60 });
			delivered.push(received.datagrams);
			t.is(sent.sent, 60);
		}
		t.log(`60 datagrams of 1000 bytes at once through 1 Mbit/s: limit 5 delivered ${delivered[0]}, limit 100 delivered ${delivered[1]}`);
		// 5 queued, about 3 through the 3200-byte bucket, a few sent while the burst was still being written.
		t.true(delivered[0] <= 15, `limit 5: ${delivered[0]}`);
		t.is(delivered[1], 60);
		const qdiscs = JSON.parse((await execa("tc", ["-n", "tb-limit-s3", "-j", "qdisc", "show", "dev", "eth0"])).stdout) as { kind: string; options?: { limit?: number } }[];
		t.like(qdiscs[0], { kind: features?.pfifo !== false ? "pfifo" : "netem", options: { limit: 7 } }, "a limit alone is a pfifo of that length");
	});
});

hostTest(
	"one direction impaired more: loss 5% both ways, alice's egress also 1mbit — rate measured alice→bob only",
	!features?.tbf && !features?.netem && "no tbf (modprobe sch_tbf)",
	async (t) => {
		t.log(how("loss"));
		await withTools(t, pair("tb-oneway", "{ loss: 5%, from: { alice: { rate: 1mbit } } }"), async (lab) => {
			await warmUp(lab, "alice", "bob");
			await warmUp(lab, "bob", "alice");
			const size = 1000;
			const pps = Math.round(4e6 / 8 / (size + headers));
			const rates: Record<string, number> = {};
			const losses: Record<string, number> = {};
			for (const [from, to] of [["alice", "bob"], ["bob", "alice"]]) {
				const fast = await flood(lab, from, to, { size, durationMs: 1000, pps });
				rates[from] = wireRate(fast.received, size);
				// Small datagrams well under the rate: only the loss takes any.
				const { sent, received } = await flood(lab, from, to, { size: 16, count: 1000, pps: 1500 });
				losses[from] = (100 * (sent.sent - received.datagrams)) / sent.sent;
			}
			t.log(`alice→bob: ${(rates.alice / 1e6).toFixed(3)} Mbit/s (declared 1), loss ${losses.alice.toFixed(1)}% (declared 5%)`);
			t.log(`bob→alice: ${(rates.bob / 1e6).toFixed(3)} Mbit/s (sent at 4, no rate declared), loss ${losses.bob.toFixed(1)}% (declared 5%)`);
			t.true(Math.abs(rates.alice - 1e6) <= 1e5, `alice→bob ${rates.alice} bit/s`);
			t.true(rates.bob > 2.5e6, `bob→alice ${rates.bob} bit/s: not rate limited`);
			for (const from of ["alice", "bob"]) t.true(losses[from] >= 1.5 && losses[from] <= 9, `${from}: loss ${losses[from]}%`);
		});
	},
);

rootTest("without netem, delay, jitter, duplicate, reorder and corrupt stop `up` with exit 4 at their position; nothing is built", async (t) => {
	if (features?.netem) {
		t.log("this kernel has netem: the refusal is checked with netem hidden from the plan");
	}
	const lab = loadLabText(pair("tb-nonetem", "{ loss: 5%, delay: 20ms, jitter: 2ms }"));
	const error = await t.throwsAsync(upLab(lab, { features: { ...features!, netem: false } }), { instanceOf: MissingFeatureError });
	t.is(error!.exitCode, 4);
	t.log(error!.message);
	t.regex(error!.message, /^<[^>]+>:8:32: this kernel has no netem, needed for impairments on alice:eth0 \(delay, jitter\)$/m);
	t.regex(error!.message, /bob:eth0 \(delay, jitter\)/);
	t.regex(error!.fix ?? "", /remove delay, jitter, or run on a kernel with sch_netem/);
	t.deepEqual(leftovers("tb-nonetem", ["tb-nonetem-alice", "tb-nonetem-bob"]), []);
});

hostTest("a 20ms delay each way adds 40 ms to the round trip (netem)", !features?.netem && "this kernel has no sch_netem (modprobe sch_netem): delay cannot be built here", async (t) => {
	await withTools(t, pair("tb-delay", "{ delay: 20ms }"), async (lab) => {
		await warmUp(lab, "alice", "bob");
		await lab.tool("bob").bind("echo", 7000, { echo: true });
		await lab.tool("alice").bind("ping");
		const rtts: number[] = [];
		for (let i = 0; i < 5; i++) {
			const started = performance.now();
			if (await lab.tool("alice").mappedEndpoint("ping", `${lab.address("bob")}:7000`, 1000)) rtts.push(performance.now() - started);
		}
		const best = Math.min(...rtts);
		t.log(`declared 20 ms each way; round trips ${rtts.map((rtt) => rtt.toFixed(1)).join(", ")} ms`);
		t.true(best >= 39 && best <= 60, `${best} ms`);
	});
});

/** Run a live change's files in a namespace, as the lead's `testbed event … impair` does. */
async function applyChange(netns: string, iface: string, impair: ImpairDecl | undefined): Promise<void> {
	const change = renderImpairmentChange(iface, impair, features!);
	if (change.nft) await execa("ip", ["netns", "exec", netns, "nft", "-f", "-"], { input: change.nft });
	if (change.tc) await execa("ip", ["netns", "exec", netns, "tc", "-batch", "-"], { input: change.tc });
}

/** What is on an interface: root qdisc kinds (children after) and whether its loss table exists. */
async function impairmentOn(netns: string, iface: string): Promise<{ qdiscs: string[]; lossTable: boolean }> {
	const qdiscs = JSON.parse((await execa("tc", ["-n", netns, "-j", "qdisc", "show", "dev", iface])).stdout) as { kind: string; root?: boolean }[];
	const tables = (await execa("ip", ["netns", "exec", netns, "nft", "list", "tables"])).stdout;
	return { qdiscs: qdiscs.map((qdisc) => qdisc.kind), lossTable: tables.includes(`netdev testbed_impair_${iface}\n`) || tables.endsWith(`netdev testbed_impair_${iface}`) };
}

/** What the plan says should be on an interface with this impairment. */
function expected(impair: ImpairDecl | undefined): { qdiscs: string[]; lossTable: boolean } {
	const plan = impair ? planImpairment(impair, features!) : {};
	const qdiscs = !plan.qdisc ? ["noqueue"] : plan.qdisc.kind === "tbf" && plan.qdisc.impair.limit ? ["tbf", "pfifo"] : [plan.qdisc.kind];
	return { qdiscs, lossTable: Boolean(plan.loss) };
}

rootTest("a live impairment change replaces what up built (or an earlier change), on that interface only", async (t) => {
	const yaml = `name: tb-change
nodes:
  r: { kind: router }
  a: {}
  b: {}
links:
  - { endpoints: [a:eth0, r:e1], subnet: 10.9.1.0/24, impair: { loss: 20%, loss-burst: 4, rate: 1mbit, limit: 20 } }
  - { endpoints: [b:eth0, r:e2], subnet: 10.9.2.0/24, impair: { loss: 10% } }
`;
	const at = { line: 1, col: 1 };
	const decl = (fields: Record<string, number>) => Object.fromEntries([["pos", at], ...Object.entries(fields).map(([key, value]) => [key, { value, pos: at }])]) as ImpairDecl;
	await withTools(t, yaml, async (lab) => {
		const declared = lab.lab.nodes.find((node) => node.name === "r")!.interfaces.find((iface) => iface.name === "e1")!.impair;
		t.deepEqual(await impairmentOn("tb-change-r", "e1"), expected(declared), "as up built it");
		const other = await impairmentOn("tb-change-r", "e2");
		for (const next of [decl({ loss: 3 }), decl({ rate: 2e6, limit: 10 }), decl({ limit: 30 }), decl({ loss: 40, lossBurst: 5 }), undefined, undefined, decl({ loss: 1, rate: 5e5 })]) {
			await applyChange("tb-change-r", "e1", next);
			t.deepEqual(await impairmentOn("tb-change-r", "e1"), expected(next), JSON.stringify(next));
		}
		t.deepEqual(await impairmentOn("tb-change-r", "e2"), other, "the other interface is untouched");
		// The interface still carries traffic after all these changes (1% loss, 464 kbit/s under its 500).
		await warmUp(lab, "r", "a");
		t.true((await flood(lab, "r", "a", { size: 16, count: 200, pps: 1000 })).received.datagrams >= 180);
	});
});

rootTest("doctor lists every impairment kind and how this host does it; with tc hidden, what needs tc says so", async (t) => {
	const doctor = async (env: Record<string, string> = {}) => {
		const result = await execa(process.execPath, ["bin/testbed.js", "doctor", "--json"], { reject: false, env: { ...process.env, ...env } });
		const report = JSON.parse(result.stdout) as { impairments: { name: string; ok: boolean; how: string }[] };
		return Object.fromEntries(report.impairments.map((check) => [check.name, check.how]));
	};
	const how = await doctor();
	t.log(Object.entries(how).map(([name, text]) => `${name}: ${text}`).join("\n"));
	t.deepEqual(Object.keys(how), ["delay", "jitter", "loss", "loss-burst", "duplicate", "reorder", "corrupt", "rate", "limit"]);
	const netem = features!.netem ? "netem" : "no — needs sch_netem (modprobe sch_netem)";
	t.like(how, { delay: netem, jitter: netem, duplicate: netem, reorder: netem, corrupt: netem, rate: "tbf", limit: "pfifo" });
	t.like(how, features!.netem ? { loss: "netem", "loss-burst": "netem" } : { loss: "nftables numgen", "loss-burst": "nftables numgen + set (Gilbert model)" });
	const cache = readFileSync("/run/testbed.features.json", "utf8");
	const withoutTc = await doctor({ TESTBED_HIDE_TOOLS: "tc" });
	t.like(withoutTc, { delay: "no — needs tc (apt-get install iproute2)", rate: "no — needs tc (apt-get install iproute2)", limit: "no — needs tc (apt-get install iproute2)" });
	t.is(readFileSync("/run/testbed.features.json", "utf8"), cache, "a probe with hidden tools is not cached");
	const text = await execa(process.execPath, ["bin/testbed.js", "doctor"], { reject: false });
	t.regex(text.stdout, /^loss-burst +\S/m);
});
