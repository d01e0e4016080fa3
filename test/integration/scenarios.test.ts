// The fault scenarios of topologies/ as users run them: `testbed test` holds sessions open, does the
// file's steps to the lab (NAT reboot, rebinding, expiry, restart, link flaps, live impairments, a
// host moving) and passes; what this kernel cannot do (delay without netem) is skipped and said.
// A step that must fail fails with exit 1 and says why; `testbed punch --hold --event` reports
// the reconnection time.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { loadLab } from "../../src/load.ts";
import { leftovers, rootTest } from "../helpers/host.ts";

const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });

interface Step {
	name: string;
	ok: boolean;
	measured: string;
	atMs?: number;
	reconnectMs?: number;
	skipped?: string;
}

async function scenario(t: import("ava").ExecutionContext, file: string): Promise<{ checks: Step[]; notes?: string[] }> {
	const result = await testbed(["test", `topologies/${file}`, "--json"]);
	t.is(result.exitCode, 0, `${file}: ${result.stdout}${result.stderr}`);
	const report = JSON.parse(result.stdout) as { checks: Step[]; failed: number; notes?: string[] };
	t.is(report.failed, 0);
	for (const check of report.checks) t.log(`${file}: ${check.ok ? "✓" : "✗"} ${check.name}: ${check.measured}`);
	const lab = loadLab(`topologies/${file}`);
	t.deepEqual(leftovers(lab.name, lab.nodes.map((node) => node.netns)), []);
	return report;
}

const expectations = (checks: Step[]) => checks.filter((check) => /connected$/.test(check.name));

// The three scenario files at once: each is its own lab, and most of a scenario is waiting for its
// steps' times (a few seconds of CPU in a minute), so together they take about as long as the longest.
rootTest("the scenario files at once — nat-reboot.yml: the session comes back after a NAT reboot, a rebinding, an expiry and a restart (the file's steps say within 5 s); roaming.yml: the phone moves from the home NAT to the carrier NAT and back, and its session reconnects; flaky-uplink.yml: punching through burst loss, a session through flaps and a bad spell, netem-only parts skipped with the reason", async (t) => {
	const doctor = JSON.parse((await testbed(["doctor", "--json"])).stdout) as { impairments: { name: string; ok: boolean }[] };
	const netem = doctor.impairments.find((entry) => entry.name === "delay")!.ok;
	const [reboot, roaming, flaky] = await Promise.all(["nat-reboot.yml", "roaming.yml", "flaky-uplink.yml"].map((file) => scenario(t, file)));

	const afterReboot = expectations(reboot.checks);
	t.is(afterReboot.length, 4);
	for (const check of afterReboot) t.is(typeof check.reconnectMs, "number", `${check.name}: ${check.measured}`);
	// home1 keeps no ports: after its reboot alice's public port changes, bob's NAT drops the new
	// port, so the pair must notice the loss and punch again (not just carry on).
	t.regex(afterReboot[0].measured, /reconnected/);
	t.regex(afterReboot[1].measured, /reconnected/);

	const afterMoves = expectations(roaming.checks);
	t.is(afterMoves.length, 2);
	t.regex(afterMoves[0].measured, /^direct, reconnected/);
	for (const check of afterMoves) t.is(typeof check.reconnectMs, "number", check.measured);

	t.true(flaky.checks.some((check) => /^punch alice ↔ bob$/.test(check.name) && check.ok));
	t.is(expectations(flaky.checks).length, 2);
	if (!netem) {
		t.truthy(flaky.notes?.length, "the skipped impairments are said");
		t.regex(flaky.notes!.join("\n"), /delay, jitter skipped — needs sch_netem/);
	} else t.falsy(flaky.notes?.length, "with netem nothing is skipped");
});

rootTest("a step that cannot hold fails: exit 1, the step, the line and why; `expect: lost` sees the loss", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "testbed-steps-"));
	try {
		const file = join(dir, "cut.yml");
		const text = readFileSync("topologies/two-nats.yml", "utf8").replace("name: two-nats", "name: tb-cut") + `steps:
  - connect: [alice, bob]
    keepalive: 100ms
    loss-after: 500ms
  - at: 1s                     # timed: one second after the steps began
    link-down: home1:wan
  - expect: lost
    within: 2s
  - expect: connected
    within: 1500ms
`;
		writeFileSync(file, text);
		const result = await testbed(["test", file]);
		t.is(result.exitCode, 1, result.stdout + result.stderr);
		t.regex(result.stdout, /✓\s+\+1\.0\d s\s+link-down home1:wan — internet:e1\s+done/, "the timed step ran at 1 s");
		t.regex(result.stdout, /✓\s+\+\d\.\d\d s\s+alice ↔ bob notices the loss\s+within 2\.00 s\s+lost after 0\.\d+ s/);
		t.regex(result.stdout, /✗\s+\+\d\.\d\d s\s+alice ↔ bob connected\s+within 1\.50 s\s+not connected/);
		t.regex(result.stdout, /✗ alice ↔ bob connected \(line \d+\): no keepalive round trip within 1\.50 s/);
		t.regex(result.stdout, /3 passed, 1 failed/);
	} finally {
		rmSync(dir, { recursive: true });
	}
	t.deepEqual(leftovers("tb-cut", ["tb-cut-alice", "tb-cut-home1"]), []);
});

rootTest("testbed punch --hold --event: the reconnection time after a NAT reboot", async (t) => {
	t.is((await testbed(["up", "topologies/nat-reboot.yml"])).exitCode, 0);
	try {
		const result = await testbed(["punch", "nat-reboot", "alice", "bob", "--hold", "4s", "--keepalive", "200ms", "--loss-after", "800ms", "--event", "@500ms nat-reboot home1 --outage 300ms", "--json"]);
		t.is(result.exitCode, 0, result.stdout + result.stderr);
		const report = JSON.parse(result.stdout) as { marks: { label: string; interrupted: boolean; reconnectMs: number | null }[]; state: string; keepaliveMs: number };
		t.is(report.keepaliveMs, 200);
		t.is(report.state, "connected");
		t.is(report.marks.length, 1);
		t.true(report.marks[0].interrupted, "without port preservation the reboot breaks the session");
		t.log(`reconnected ${report.marks[0].reconnectMs} ms after the reboot began (300 ms outage, loss after 800 ms)`);
		t.true(report.marks[0].reconnectMs! > 300, `not before the 300 ms outage ended: ${report.marks[0].reconnectMs}`);
		// What `testbed watch` shows of it: the session's life and the event, from the lab's journal.
		const journal = readFileSync("/run/testbed/nat-reboot/journal.jsonl", "utf8").trim().split("\n").map((line) => JSON.parse(line) as { kind: string; what?: string; label?: string });
		const told = journal.map((entry) => (entry.kind === "held" ? `held ${entry.what}` : entry.kind === "event" ? `event ${entry.label}` : entry.kind));
		t.true(told.includes("held connected"), told.join(", "));
		t.true(told.some((line) => line.startsWith("event nat-reboot home1")), told.join(", "));
		t.true(told.includes("held reconnected") || told.includes("held migrated"), told.join(", "));
	} finally {
		await testbed(["down", "nat-reboot"]);
	}
	t.deepEqual(leftovers("nat-reboot", ["nat-reboot-alice", "nat-reboot-home1"]), []);
});
