// `testbed test` as CI runs it: the nat-matrix passes with the NAT × NAT matrix printed, JUnit and
// JSON reports are written; a file with a wrong expectation fails with exit 1 and says why.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { leftovers, rootTest } from "../helpers/host.ts";

const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });

rootTest("testbed test topologies/nat-matrix.yml: every pair as theory says, matrix and JUnit", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	try {
		const junit = join(dir, "report.xml");
		const html = join(dir, "report.html");
		const result = await testbed(["test", "topologies/nat-matrix.yml", "--junit", junit, "--html", html]);
		t.is(result.exitCode, 0, result.stdout + result.stderr);
		t.regex(result.stdout, /^✓\s+punch p-port ↔ p-sym\s+relayed\s+relayed/m);
		t.regex(result.stdout, /^✓\s+punch lan1 ↔ lan2\s+lan or hairpin\s+lan/m);
		t.regex(result.stdout, /21 passed, 0 failed/);
		t.regex(result.stdout, /hole-punching matrix/);
		const xml = readFileSync(junit, "utf8");
		t.is((xml.match(/<testcase /g) ?? []).length, 21);
		t.regex(xml, /failures="0"/);
		// The HTML report, as a browser sees it.
		const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((path) => existsSync(path));
		if (!chromium) t.log("HTML report not checked in a browser: Debian's chromium is not installed (make test installs it)");
		else {
			const profile = mkdtempSync(join(tmpdir(), "testbed-chromium-"));
			const dom = await execa(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${profile}`, "--dump-dom", `file://${html}`], { reject: false, timeout: 60_000 });
			rmSync(profile, { recursive: true, force: true });
			t.regex(dom.stdout, /<p class="summary ok" id="summary">21 passed, 0 failed/);
			t.regex(dom.stdout, /<pre id="matrix">[^<]*p-full[^<]*relay ✓/);
			t.is((dom.stdout.match(/<tr class="ok">/g) ?? []).length, 21);
			t.regex(dom.stdout, /<svg[^>]*>[\s\S]*p-sym[\s\S]*<\/svg>/, "the lab's picture is inline");
		}
	} finally {
		rmSync(dir, { recursive: true });
	}
	t.deepEqual(leftovers("nat-matrix", ["nat-matrix-p-sym", "nat-matrix-stun"]), []);
});

rootTest("a wrong expectation fails with exit 1, expected vs measured, and the lab is gone", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	try {
		const file = join(dir, "wrong.yml");
		writeFileSync(
			file,
			readFileSync("topologies/two-nats.yml", "utf8").replace("name: two-nats", "name: tb-wrong") +
				"expect:\n  - punch: [alice, bob]\n    result: relayed\n  - reach: [alice, stun]\n  - reach: [stun, alice]\n    result: false\n  - probe: home1\n    filtering: address-and-port-dependent\n",
		);
		const result = await testbed(["test", file, "--json"]);
		t.is(result.exitCode, 1, result.stderr);
		const report = JSON.parse(result.stdout);
		t.deepEqual(
			report.checks.map((check: { name: string; ok: boolean }) => `${check.ok ? "✓" : "✗"} ${check.name}`),
			["✗ punch alice ↔ bob", "✓ reach alice → stun (udp)", "✓ reach stun → alice (udp)", "✓ probe home1"],
		);
		t.is(report.checks[0].measured, "direct");
		t.is(report.checks[0].line, 36);
	} finally {
		rmSync(dir, { recursive: true });
	}
	t.deepEqual(leftovers("tb-wrong", ["tb-wrong-alice", "tb-wrong-stun"]), []);
});

rootTest("a file with nothing to check (no expect:, no steps:, no peers behind NATs) fails with exit 1 and says so, building nothing", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	try {
		const file = join(dir, "solo.yml");
		writeFileSync(file, "name: tb-solo\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - { endpoints: [a:eth0, b:eth0], subnet: 10.0.0.0/30 }\n");
		const result = await testbed(["test", file]);
		t.is(result.exitCode, 1);
		t.regex(result.stderr, /lab "tb-solo" has nothing to test: no `expect:` checks, no `steps:`, and not two peers \(hosts behind a NAT\) to punch between; add checks/);
		t.false(existsSync("/run/testbed/tb-solo.json"), "nothing was built");
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
	t.deepEqual(leftovers("tb-solo", ["tb-solo-a", "tb-solo-b"]), []);
});
