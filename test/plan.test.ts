// Plan and render are pure: their text is compared with golden files (UPDATE_GOLDEN=1 rewrites them).
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import test from "ava";
import { loadLab } from "../src/load.ts";
import type { HostFeatures } from "../src/plan/operations.ts";
import { operationCount, planLab } from "../src/plan/plan.ts";
import { renderBatchText, renderPlanText } from "../src/render/plan-text.ts";

const everything: HostFeatures = { dummy: true, netem: true, tbf: true };
const thisKernel: HostFeatures = { dummy: false, netem: false, tbf: true };

function golden(t: { is(a: string, b: string): void }, name: string, actual: string): void {
	const path = new URL(`golden/${name}`, import.meta.url);
	if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual);
	if (!existsSync(path)) return t.is(actual, `(no golden file ${path.pathname}: run with UPDATE_GOLDEN=1 and review it)`);
	t.is(actual, readFileSync(path, "utf8"));
}

const examples = readdirSync(new URL("../topologies/", import.meta.url)).filter((name) => name.endsWith(".yml"));
for (const name of examples) {
	test(`plan of topologies/${name}`, (t) => {
		const lab = loadLab(new URL(`../topologies/${name}`, import.meta.url).pathname);
		golden(t, name.replace(/\.yml$/, ".plan.txt"), renderPlanText(planLab(lab, everything), `topologies/${name}`, `/run/testbed/${lab.name}`));
	});
}

test("without the dummy link type, dummy interfaces become empty bridges and the plan says so", (t) => {
	const lab = loadLab(new URL("../topologies/seed-p2p.yml", import.meta.url).pathname);
	const plan = planLab(lab, thisKernel);
	golden(t, "seed-p2p.no-dummy.plan.txt", renderPlanText(plan, "topologies/seed-p2p.yml", "/run/testbed/seed"));
	t.true(plan.notes.some((note) => note.includes("no dummy link type")));
});

test("the batch files up feeds to ip -batch", (t) => {
	const lab = loadLab(new URL("../topologies/two-nats.yml", import.meta.url).pathname);
	golden(t, "two-nats.batch.txt", renderBatchText(planLab(lab, everything), "/run/testbed/two-nats"));
});

test("impairments: netem where present, tbf for a plain rate, unmet features listed", (t) => {
	const lab = loadLab(new URL("fixtures/impaired.yml", import.meta.url).pathname);
	golden(t, "impaired.plan.txt", renderPlanText(planLab(lab, everything), "test/fixtures/impaired.yml", "/run/testbed/impaired"));
	const withoutNetem = planLab(lab, thisKernel);
	t.deepEqual(
		withoutNetem.unmet.map((unmet) => `${unmet.feature} line ${unmet.pos.line}`),
		["netem line 13", "netem line 13"],
	);
	const tbfOnly = withoutNetem.namespaces.flatMap((ns) => ns.operations).filter((op) => op.op === "qdisc" && !op.netem);
	t.is(tbfOnly.length, 2, "the rate-only link uses tbf on both ends");
});

test("planning is pure and deterministic", (t) => {
	const lab = loadLab(new URL("../topologies/cgnat.yml", import.meta.url).pathname);
	t.deepEqual(planLab(lab, everything), planLab(lab, everything));
	t.is(operationCount(planLab(lab, everything)), planLab(lab, everything).root.length + planLab(lab, everything).namespaces.reduce((sum, ns) => sum + ns.operations.length, 0));
});

test("every namespace sets ip_forward and rp_filter explicitly", (t) => {
	const lab = loadLab(new URL("../topologies/lan.yml", import.meta.url).pathname);
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
	const lab = loadLab(new URL("fixtures/lossy.yml", import.meta.url).pathname);
	const plan = planLab(lab, thisKernel);
	t.deepEqual(plan.unmet, []);
	golden(t, "lossy.no-netem.plan.txt", renderPlanText(plan, "test/fixtures/lossy.yml", "/run/testbed/lossy"));
	const withNetem = planLab(lab, everything).namespaces.flatMap((ns) => ns.operations.map((op) => op.op));
	t.false(withNetem.includes("nft-loss"), "netem does it where present");
});
