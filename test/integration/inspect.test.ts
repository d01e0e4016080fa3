// Looking inside a running lab: a NAT's live table, before and after a punch, and while it happens.
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { loadLab } from "../../src/index.ts";
import { inLab, rootTest } from "../helpers/host.ts";

const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });

rootTest("nat-table shows the mappings a punch creates; --watch prints each change; bad names list what exists", async (t) => {
	const lab = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	await inLab(t, lab, async () => {
		const empty = JSON.parse((await testbed(["nat-table", "two-nats", "home1", "--json"])).stdout);
		t.deepEqual(empty.flows, []);
		const watch = execa(process.execPath, ["bin/testbed.js", "nat-table", "two-nats", "home1", "--watch", "--interval", "100", "--json"], { reject: false });
		await sleep(800);
		t.is((await testbed(["punch", "two-nats", "alice", "bob"])).exitCode, 0);
		await sleep(400);
		watch.kill("SIGINT");
		const states = (await watch).stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line));
		t.true(states.length >= 2, `watch printed ${states.length} states`);
		t.deepEqual(states[0].flows, []);
		const last = states.at(-1);
		t.true(last.flows.some((flow: { inside: string; remote: string }) => flow.inside.startsWith("192.168.1.2:") && flow.remote.startsWith("198.51.100.6:")), "alice's flow to bob's public address");
		t.true(last.mappings.some((mapping: { inside: string }) => mapping.inside.startsWith("192.168.1.2:")));
		const notNat = await testbed(["nat-table", "two-nats", "alice"]);
		t.is(notNat.exitCode, 1);
		t.regex(notNat.stderr, /"alice" in lab "two-nats" is a host, not a NAT; NATs: home1, home2/);
		const noLab = await testbed(["nat-table", "nope", "home1"]);
		t.regex(noLab.stderr, /no lab named "nope" is up on this host; labs: two-nats/);
	});
});

rootTest("capture writes a pcap around a punch; punch --capture writes one per NAT side; bad targets list what exists", async (t) => {
	const { mkdtempSync, rmSync, statSync } = await import("node:fs");
	const { tmpdir } = await import("node:os");
	const { join } = await import("node:path");
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	const lab = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	try {
		await inLab(t, lab, async () => {
			const file = join(dir, "wan.pcap");
			const capture = await testbed(["capture", "two-nats", "home1:wan", "-w", file, "--during", "testbed punch two-nats alice bob"]);
			t.is(capture.exitCode, 0, capture.stderr);
			t.regex(capture.stderr, /\d+ packets captured on home1:wan/);
			const udp = await execa("tcpdump", ["-nr", file, "udp"], { reject: false });
			t.regex(udp.stdout, /198\.51\.100\.2\.\d+ > 198\.51\.100\.6\.\d+/, "alice's punch packets to bob's public address");
			t.regex(udp.stdout, /198\.51\.100\.2\.\d+ > 203\.0\.113\.10\.7777: UDP, length \d+/, "the rendezvous traffic prints as plain UDP");
			t.notRegex(udp.stdout, / rx /, "tcpdump does not decode the punch protocol as AFS rx");
			const punch = await testbed(["punch", "two-nats", "alice", "bob", "--capture", join(dir, "caps")]);
			t.is(punch.exitCode, 0, punch.stderr);
			t.true(statSync(join(dir, "caps", "home1-wan.pcap")).size > 24 && statSync(join(dir, "caps", "home2-wan.pcap")).size > 24);
			const bad = await testbed(["capture", "two-nats", "home1:nope"]);
			t.regex(bad.stderr, /node "home1" has no interface "nope"; write NODE:IFACE with one of: lan, wan/);
		});
	} finally {
		rmSync(dir, { recursive: true });
	}
});

rootTest("punch --explain: a timeline of mappings and drops, and a verdict naming the NAT and the filter", async (t) => {
	const { readFileSync } = await import("node:fs");
	const { loadLabText } = await import("../../src/index.ts");
	const text = readFileSync("topologies/two-nats.yml", "utf8").replace("name: two-nats", "name: tb-explain").replace("home2:\n    kind: nat\n    nat: { type: port-restricted }", "home2:\n    kind: nat\n    nat: { type: symmetric }");
	const lab = loadLabText(text);
	await inLab(t, lab, async () => {
		const result = await testbed(["punch", "tb-explain", "alice", "bob", "--explain"]);
		t.is(result.exitCode, 0, result.stderr);
		t.regex(result.stdout, /why alice ↔ bob ended relayed:/);
		t.regex(result.stdout, /nat home1\s+new mapping: alice 192\.168\.1\.2:\d+ → 198\.51\.100\.2:\d+ ↔ 203\.0\.113\.10:7777/);
		t.regex(result.stdout, /nat home1\s+dropped \d+ unsolicited packets?/);
		t.regex(result.stdout, /verdict: .*bob's packets to 198\.51\.100\.2:\d+ were dropped at nat home1 \(address-and-port-dependent filtering\).*bob's NAT home2 maps per remote address and port/);
	});
});

rootTest("graph of a running lab by name, as SVG and as PNG", async (t) => {
	const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
	const { tmpdir } = await import("node:os");
	const { join } = await import("node:path");
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	const lab = loadLab(new URL("../../topologies/cgnat.yml", import.meta.url).pathname);
	try {
		await inLab(t, lab, async () => {
			const svg = await testbed(["graph", "cgnat", "-o", join(dir, "lab.svg")]);
			t.is(svg.exitCode, 0, svg.stderr);
			t.regex(readFileSync(join(dir, "lab.svg"), "utf8"), /<svg[\s\S]*carrier[\s\S]*<\/svg>/);
			const png = await testbed(["graph", "cgnat", "-o", join(dir, "lab.png")]);
			if (png.exitCode === 4) t.log(`PNG not checked: ${png.stderr}`);
			else t.deepEqual([...readFileSync(join(dir, "lab.png")).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], "a PNG file");
			const missing = await testbed(["graph", "nolab"]);
			t.regex(missing.stderr, /no lab named "nolab" is up on this host; labs: cgnat/);
		});
	} finally {
		rmSync(dir, { recursive: true });
	}
});

rootTest("capture on a host without tcpdump: exit 4 with the install command, nothing started", async (t) => {
	const lab = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	await inLab(t, lab, async () => {
		const result = await execa(process.execPath, ["bin/testbed.js", "capture", "two-nats", "home1:wan", "--seconds", "1"], { reject: false, env: { ...process.env, TESTBED_HIDE_TOOLS: "tcpdump" } });
		t.is(result.exitCode, 4);
		t.regex(result.stderr, /capture needs tcpdump, which this host lacks\n {2}fix: apt-get install -y tcpdump/);
		const doctor = await execa(process.execPath, ["bin/testbed.js", "doctor", "--json"], { reject: false, env: { ...process.env, TESTBED_HIDE_TOOLS: "tcpdump" } });
		t.false(JSON.parse(doctor.stdout).checks.find((check: { name: string }) => check.name === "tcpdump").ok);
	});
});
