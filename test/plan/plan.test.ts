// Plan and render are pure: their text is compared with golden files (UPDATE_GOLDEN=1 rewrites them).
import { readdirSync } from "node:fs";
import test from "ava";
import { loadLab } from "../../src/load.ts";
import type { ImpairDecl } from "../../src/parse/topology.ts";
import type { HostFeatures } from "../../src/plan/operations.ts";
import { impairmentSupport, operationCount, planAttachment, planLab } from "../../src/plan/plan.ts";
import type { LabNode } from "../../src/resolve/lab.ts";
import { renderImpairmentChange } from "../../src/render/batch.ts";
import { renderBatchText, renderPlanText } from "../../src/render/plan-text.ts";
import { golden } from "../helpers/golden.ts";

const everything: HostFeatures = { dummy: true, netem: true, tbf: true, pfifo: true, nftEgress: true, nftBurst: true };
const thisKernel: HostFeatures = { dummy: false, netem: false, tbf: true, pfifo: true, nftEgress: true, nftBurst: true };


const examples = readdirSync(new URL("../../topologies/", import.meta.url)).filter((name) => name.endsWith(".yml"));
for (const name of examples) {
	test(`plan of topologies/${name}`, (t) => {
		const lab = loadLab(new URL(`../../topologies/${name}`, import.meta.url).pathname);
		golden(t, name.replace(/\.yml$/, ".plan.txt"), renderPlanText(planLab(lab, everything), `topologies/${name}`, `/run/testbed/${lab.name}`));
	});
}

test("without the dummy link type, dummy interfaces become empty bridges and the plan says so", (t) => {
	const lab = loadLab(new URL("../../topologies/seed-p2p.yml", import.meta.url).pathname);
	const plan = planLab(lab, thisKernel);
	golden(t, "seed-p2p.no-dummy.plan.txt", renderPlanText(plan, "topologies/seed-p2p.yml", "/run/testbed/seed"));
	t.true(plan.notes.some((note) => note.includes("no dummy link type")));
});

test("the batch files up feeds to ip -batch", (t) => {
	const lab = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	golden(t, "two-nats.batch.txt", renderBatchText(planLab(lab, everything), "/run/testbed/two-nats"));
});

test("impairments: netem where present, tbf for a plain rate, unmet features listed", (t) => {
	const lab = loadLab(new URL("../fixtures/impaired.yml", import.meta.url).pathname);
	golden(t, "impaired.plan.txt", renderPlanText(planLab(lab, everything), "test/fixtures/impaired.yml", "/run/testbed/impaired"));
	const withoutNetem = planLab(lab, thisKernel);
	t.deepEqual(
		withoutNetem.unmet.map((unmet) => `${unmet.feature} line ${unmet.pos.line}`),
		["netem line 13", "netem line 13"],
	);
	const tbfOnly = withoutNetem.namespaces.flatMap((ns) => ns.operations).filter((op) => op.op === "qdisc" && op.qdisc === "tbf");
	t.is(tbfOnly.length, 2, "the rate-only link uses tbf on both ends");
});

test("planning is pure and deterministic", (t) => {
	const lab = loadLab(new URL("../../topologies/cgnat.yml", import.meta.url).pathname);
	t.deepEqual(planLab(lab, everything), planLab(lab, everything));
	t.is(operationCount(planLab(lab, everything)), planLab(lab, everything).root.length + planLab(lab, everything).namespaces.reduce((sum, ns) => sum + ns.operations.length, 0));
});

test("every namespace sets ip_forward and rp_filter explicitly", (t) => {
	const lab = loadLab(new URL("../../topologies/lan.yml", import.meta.url).pathname);
	for (const ns of planLab(lab, everything).namespaces) {
		const sysctl = ns.operations.find((op) => op.op === "sysctl");
		t.truthy(sysctl, ns.netns);
		if (sysctl?.op !== "sysctl") continue;
		const keys = Object.fromEntries(sysctl.settings);
		t.is(keys["net.ipv4.ip_forward"], ns.kind === "router" || ns.kind === "nat" ? "1" : "0");
		t.is(keys["net.ipv4.conf.all.rp_filter"], "0");
	}
});

test("without netem, random loss becomes an nftables netdev egress rule and a rate stays tbf", (t) => {
	const lab = loadLab(new URL("../fixtures/lossy.yml", import.meta.url).pathname);
	const plan = planLab(lab, thisKernel);
	t.deepEqual(plan.unmet, []);
	golden(t, "lossy.no-netem.plan.txt", renderPlanText(plan, "test/fixtures/lossy.yml", "/run/testbed/lossy"));
	const withNetem = planLab(lab, everything).namespaces.flatMap((ns) => ns.operations.map((op) => op.op));
	t.false(withNetem.includes("nft-loss"), "netem does it where present");
});

test("impairments without netem: burst loss in nftables (Gilbert model), tbf with a pfifo child, pfifo alone, one direction more", (t) => {
	const lab = loadLab(new URL("../fixtures/impair-kinds.yml", import.meta.url).pathname);
	const plan = planLab(lab, thisKernel);
	t.deepEqual(plan.unmet, []);
	golden(t, "impair-kinds.no-netem.plan.txt", renderPlanText(plan, "test/fixtures/impair-kinds.yml", "/run/testbed/impair-kinds"));
	golden(t, "impair-kinds.plan.txt", renderPlanText(planLab(lab, everything), "test/fixtures/impair-kinds.yml", "/run/testbed/impair-kinds"));
	const ops = (node: string) => plan.namespaces.find((ns) => ns.node === node)!.operations;
	const qdisc = (node: string, iface = "eth0") => ops(node).flatMap((op) => (op.op === "qdisc" && op.iface === iface ? [op.qdisc] : []));
	t.deepEqual([qdisc("d"), qdisc("r", "e4")], [["tbf"], []], "the rate is d's direction only");
	t.deepEqual([qdisc("b"), qdisc("r", "e2")], [["tbf"], ["tbf"]]);
	t.deepEqual(qdisc("c"), ["pfifo"]);
	t.like(ops("a").find((op) => op.op === "nft-loss"), { percent: 20, burst: 4 });
	t.like(ops("r").find((op) => op.op === "nft-loss" && op.iface === "e4"), { percent: 5 }, "the loss is both directions'");
});

test("a masquerade NAT is the lecture's iptables lines, one iptables-restore per namespace; no nftables", (t) => {
	const lab = loadLab(new URL("../../topologies/lecture-nat.yml", import.meta.url).pathname);
	const plan = planLab(lab, everything);
	const host = plan.namespaces.find((ns) => ns.node === "host")!;
	t.deepEqual(
		host.operations.flatMap((op) => (op.op === "iptables" ? [`${op.table} ${op.rule}`] : [])),
		["nat -A POSTROUTING -s 10.1.1.0/24 -o enp6s0 -j MASQUERADE", "filter -A FORWARD -j ACCEPT"],
	);
	t.false(host.operations.some((op) => op.op === "nat"), "no nftables NAT table");
	const text = renderPlanText(plan, "topologies/lecture-nat.yml", "/run/testbed/lecture-nat");
	t.true(text.includes("\nip netns exec lecture-nat-host iptables -t nat -A POSTROUTING -s 10.1.1.0/24 -o enp6s0 -j MASQUERADE\nip netns exec lecture-nat-host iptables -A FORWARD -j ACCEPT\n"), text);
	t.false(text.includes("nft -f"));
	const batch = renderBatchText(plan, "/run/testbed/lecture-nat");
	t.true(batch.includes("nsenter --net=/run/netns/lecture-nat-host iptables-restore /run/testbed/lecture-nat/lecture-nat-host.iptables # reads\n*nat\n-A POSTROUTING -s 10.1.1.0/24 -o enp6s0 -j MASQUERADE\nCOMMIT\n*filter\n-A FORWARD -j ACCEPT\nCOMMIT\n"), batch);
	t.true(plan.namespaces.find((ns) => ns.node === "host")!.operations.some((op) => op.op === "sysctl" && op.settings.some(([key, value]) => key === "net.ipv4.ip_forward" && value === "1")), "echo 1 > /proc/sys/net/ipv4/ip_forward");
});

test("plan shortens a NAT's 1,024-port pool to one line; --full prints every element", (t) => {
	const lab = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	const plan = planLab(lab, everything);
	const short = renderPlanText(plan, "topologies/two-nats.yml", "/run/testbed/two-nats");
	const full = renderPlanText(plan, "topologies/two-nats.yml", "/run/testbed/two-nats", { full: true });
	t.regex(short, /^\t\t\t… 1,024 ports 20000–21023: 0 : 20000, … 1023 : 21023 \(`testbed plan --full` lists them\)$/m);
	t.regex(short, /^# long element lists are shortened to one line; `testbed plan --full` prints every element$/m);
	t.false(short.includes("1023 : 21023\n") || short.includes("16 : 20016"));
	t.true(full.includes("\t\t\t1008 : 21008, 1009 : 21009, 1010 : 21010, 1011 : 21011, 1012 : 21012, 1013 : 21013, 1014 : 21014, 1015 : 21015, 1016 : 21016, 1017 : 21017, 1018 : 21018, 1019 : 21019, 1020 : 21020, 1021 : 21021, 1022 : 21022, 1023 : 21023\n"));
	t.false(full.includes("…") || full.includes("long element lists"));
	t.is(full.split("\n").length - short.split("\n").length, 2 * 63 - 1, "64 lines become one in each NAT; the short text has one header line more");
	const batchFull = renderBatchText(plan, "/run/testbed/two-nats", { full: true });
	t.is(batchFull.split("\n").filter((line) => /^\t\t\t\d+ : \d+/.test(line)).length, 2 * 64, "--batch --full: the files as up writes them");
	t.false(renderBatchText(plan, "/run/testbed/two-nats").includes("16 : 20016"));
});

const at = { line: 1, col: 1 };
const decl = (fields: Record<string, number>): ImpairDecl => Object.fromEntries([["pos", at], ...Object.entries(fields).map(([key, value]) => [key, { value, pos: at }])]) as ImpairDecl;

const supportCases: [string, Record<string, number>, HostFeatures, ReturnType<typeof impairmentSupport>][] = [
	["everything with netem", { delay: 20, jitter: 2, loss: 1, lossBurst: 3, duplicate: 1, reorder: 1, corrupt: 1, rate: 1e6, limit: 10 }, everything, { ok: true }],
	["loss, loss-burst, rate and limit without netem", { loss: 5, lossBurst: 4, rate: 1e6, limit: 10 }, thisKernel, { ok: true }],
	["delay and jitter need netem", { delay: 20, jitter: 2, loss: 1 }, thisKernel, { ok: false, needs: "netem", keys: ["delay", "jitter"] }],
	["duplicate, reorder, corrupt need netem", { duplicate: 1, reorder: 1, corrupt: 1 }, thisKernel, { ok: false, needs: "netem", keys: ["duplicate", "reorder", "corrupt"] }],
	["burst loss without settable sets", { loss: 5, lossBurst: 4 }, { ...thisKernel, nftBurst: false }, { ok: false, needs: "netem", keys: ["loss-burst"] }],
	["loss without the egress hook", { loss: 5 }, { ...thisKernel, nftEgress: false, nftBurst: false }, { ok: false, needs: "netem", keys: ["loss"] }],
	["a rate without tbf", { rate: 1e6 }, { ...thisKernel, tbf: false }, { ok: false, needs: "tbf", keys: ["rate"] }],
	["a rate without tbf, with netem", { rate: 1e6 }, { ...everything, tbf: false }, { ok: true }],
	["features from before the fallbacks were probed", { loss: 5, limit: 10 }, { dummy: false, netem: false, tbf: true }, { ok: true }],
];
for (const [title, fields, features, expected] of supportCases) test(`impairmentSupport: ${title}`, (t) => t.deepEqual(impairmentSupport(decl(fields), features), expected));

test("the commands for a live impairment change replace whatever is there, on this interface only", (t) => {
	const cases: [string, ImpairDecl | undefined, HostFeatures][] = [
		["burst loss, rate and limit without netem", decl({ loss: 20, lossBurst: 4, rate: 1e6, limit: 20 }), thisKernel],
		["random loss without netem", decl({ loss: 2.5 }), thisKernel],
		["a queue limit alone", decl({ limit: 30 }), thisKernel],
		["delay and burst loss with netem", decl({ delay: 20, loss: 10, lossBurst: 3 }), everything],
		["none: back to no impairment", undefined, thisKernel],
	];
	const text = cases.map(([title, impair, features]) => {
		const change = renderImpairmentChange("nat_wan", impair, features);
		return [`## ${title}`, "# tc -batch", change.tc ?? "(none)", "# nft -f", change.nft ?? "(none)"].join("\n");
	});
	golden(t, "impair-change.txt", `${text.join("\n")}`);
	t.throws(() => renderImpairmentChange("eth0", decl({ delay: 20 }), thisKernel), { message: /no netem, needed for delay on eth0/ });
});

test("a host attached to a running lab (probe's temporary STUN host) is planned as any node is (golden)", (t) => {
	const lab = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	const router = lab.nodes.find((node) => node.name === "internet")!;
	const host: LabNode = {
		name: "tb-stun",
		kind: "host",
		netns: "two-nats-tb-stun",
		forwarding: false,
		interfaces: [{ name: "eth0", type: "veth", addresses: ["198.18.0.2", "198.18.0.3"].map((ip) => ({ ip, prefix: 29, cidr: `${ip}/29`, network: "198.18.0.0/29" })), pos: { line: 1, col: 1 } }],
		routes: [{ to: "default", via: "198.18.0.1", dev: "eth0", auto: true, pos: { line: 1, col: 1 } }],
		pos: { line: 1, col: 1 },
	};
	golden(t, "attach.plan.txt", renderPlanText(planAttachment(lab, host, { node: router, iface: "tb-attach0", gateway: "198.18.0.1/29" }, thisKernel), "topologies/two-nats.yml", "/run/testbed/two-nats"));
});
