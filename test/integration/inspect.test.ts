// Looking inside a running lab: a NAT's live table, before and after a punch, and while it happens.
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { loadLab, loadLabText } from "../../src/index.ts";
import { inLab, rootTest } from "../helpers/host.ts";

const testbed = (args: string[]) => execa(process.execPath, ["bin/testbed.js", ...args], { reject: false });

rootTest("nat-table shows the mappings a punch creates; --watch prints each change; bad names list what exists", async (t) => {
	const lab = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	await inLab(t, lab, async () => {
		const empty = JSON.parse((await testbed(["nat-table", "two-nats", "home1", "--json"])).stdout);
		t.deepEqual(empty.flows, []);
		const watch = execa(process.execPath, ["bin/testbed.js", "nat-table", "two-nats", "home1", "--watch", "--interval", "100", "--json"], { reject: false });
		// Until watch printed its first state (the empty table), then until a state shows the punch's
		// flow (it polls every 100 ms); the guards only stop a hang, the assertions below decide.
		let printed = "";
		watch.stdout!.on("data", (chunk: Buffer) => void (printed += chunk.toString()));
		const until = async (done: () => boolean, guardMs: number) => {
			for (const started = Date.now(); !done() && Date.now() - started < guardMs; ) await sleep(20);
		};
		await until(() => printed.includes("\n"), 10_000);
		t.is((await testbed(["punch", "two-nats", "alice", "bob"])).exitCode, 0);
		const alicesFlow = (state: { flows: { inside: string; remote: string }[] }) => state.flows.some((flow) => flow.inside.startsWith("192.168.1.2:") && flow.remote.startsWith("198.51.100.6:"));
		await until(() => printed.endsWith("\n") && alicesFlow(JSON.parse(printed.trim().split("\n").at(-1)!)), 5000);
		watch.kill("SIGINT");
		const states = (await watch).stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line));
		t.true(states.length >= 2, `watch printed ${states.length} states`);
		t.deepEqual(states[0].flows, []);
		const last = states.at(-1);
		t.true(alicesFlow(last), "alice's flow to bob's public address");
		t.true(last.mappings.some((mapping: { inside: string }) => mapping.inside.startsWith("192.168.1.2:")));
		const notNat = await testbed(["nat-table", "two-nats", "alice"]);
		t.is(notNat.exitCode, 0, notNat.stderr);
		t.regex(notNat.stdout, /^no translations on alice in lab "two-nats": conntrack shows no flow whose address or port alice changed/);
		const unknown = await testbed(["nat-table", "two-nats", "nobody"]);
		t.is(unknown.exitCode, 2);
		t.regex(unknown.stderr, /lab "two-nats" has no node "nobody"; nodes: internet, stun, home1, home2, alice, bob/);
		const noLab = await testbed(["nat-table", "nope", "home1"]);
		t.regex(noLab.stderr, /no lab named "nope" is up on this host; labs: (.*, )?two-nats\b/);
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
			t.is(bad.exitCode, 2);
			t.regex(bad.stderr, /node "home1" has no interface "nope"; write NODE:IFACE with one of: lan, wan/);
		});
	} finally {
		rmSync(dir, { recursive: true });
	}
});

rootTest("punch --explain: a timeline of mappings and drops, and a verdict naming the NAT and the filter", async (t) => {
	const { readFileSync } = await import("node:fs");
	const text = readFileSync("topologies/two-nats.yml", "utf8").replace("name: two-nats", "name: tb-explain").replace("home2:\n    kind: nat\n    nat: { type: port-restricted }", "home2:\n    kind: nat\n    nat: { type: symmetric }");
	const lab = loadLabText(text);
	await inLab(t, lab, async () => {
		// Expected to end relayed: a 1 s deadline checks the same, in a third of the time.
		const result = await testbed(["punch", "tb-explain", "alice", "bob", "--explain", "--deadline", "1s"]);
		t.is(result.exitCode, 0, result.stderr);
		t.regex(result.stdout, /why alice ↔ bob ended relayed:/);
		t.regex(result.stdout, /nat home1\s+new mapping: alice 192\.168\.1\.2:\d+ → 198\.51\.100\.2:\d+ ↔ 203\.0\.113\.10:7777/);
		t.regex(result.stdout, /nat home1\s+dropped \d+ unsolicited packets?/);
		t.regex(result.stdout, /verdict: .*bob's packets to 198\.51\.100\.2:\d+ were dropped at nat home1 \(address-and-port-dependent filtering\).*bob's NAT home2 maps per remote address and port/);
	});
});

rootTest("behind one carrier NAT without hairpin: --explain --runs explains each run and names the carrier; --capture writes a pcap of the carrier's outside", async (t) => {
	const { mkdtempSync, readdirSync, rmSync } = await import("node:fs");
	const { tmpdir } = await import("node:os");
	const { join } = await import("node:path");
	const dir = mkdtempSync(join(tmpdir(), "testbed-"));
	// topologies/cgnat.yml: alice and bob behind home NATs behind one carrier NAT (type carrier: hairpin off).
	const lab = loadLab(new URL("../../topologies/cgnat.yml", import.meta.url).pathname, { name: "insp-cgn" });
	t.false(lab.nodes.find((node) => node.name === "carrier")!.nat!.behaviour.hairpin, "the carrier does not hairpin");
	try {
		await inLab(t, lab, async () => {
			const text = await testbed(["punch", "insp-cgn", "alice", "bob", "--explain", "--runs", "2", "--deadline", "1s", "--capture", join(dir, "caps")]);
			t.is(text.exitCode, 0, text.stderr);
			t.regex(text.stdout, /^2 +relayed /m, "the table has both runs");
			for (const run of [1, 2]) t.regex(text.stdout, new RegExp(`run ${run} of 2: why alice ↔ bob ended relayed:`));
			t.regex(text.stdout, /nat carrier\s+new mapping: alice 100\.64\.0\.2:\d+ → 198\.51\.100\.2:\d+ ↔ 203\.0\.113\.10:7777/, "the carrier's own mappings are sampled");
			t.regex(text.stdout, /nat carrier\s+dropped \d+ packets? from its inside to its own public address .*\(hairpin off\)/);
			const verdicts = text.stdout.split("\n").filter((line) => line.startsWith("verdict: "));
			t.is(verdicts.length, 2, "a verdict per run");
			for (const verdict of verdicts) {
				t.regex(verdict, /reached nat carrier from its inside and were dropped there: alice and bob are both behind carrier, which does not hairpin \(carrier: hairpin off\)/);
				t.notRegex(verdict, /home1|home2/, "the home NATs are not blamed");
			}
			t.regex(text.stdout, /over 2 runs:\n {2}every run: .*nat carrier.*\n {2}nat carrier dropped packets from its inside to its own public address \(no hairpin\) in every run/);
			t.deepEqual(readdirSync(join(dir, "caps")).sort(), ["carrier-wan.pcap", "home1-wan.pcap", "home2-wan.pcap"]);
			t.regex(text.stderr, /carrier-wan\.pcap: \d+ packets \(carrier:wan\)/);
			const outside = await execa("tcpdump", ["-nr", join(dir, "caps", "carrier-wan.pcap"), "udp"], { reject: false });
			t.regex(outside.stdout, /198\.51\.100\.2\.\d+ > 203\.0\.113\.10\.7777: UDP/, "the carrier's outside: both peers' rendezvous traffic from its public address");
			const inside = await execa("tcpdump", ["-nr", join(dir, "caps", "home1-wan.pcap"), "udp"], { reject: false });
			t.regex(inside.stdout, /100\.64\.0\.2\.\d+ > 198\.51\.100\.2\.\d+: UDP/, "alice's punch packets to bob's endpoint at the carrier, which go no further");

			// JSON (one run, to keep the test short; the text above had two): `explanation` as before, and `explanations`.
			const json = JSON.parse((await testbed(["punch", "insp-cgn", "alice", "bob", "--explain", "--deadline", "1s", "--json"])).stdout);
			t.is(json.results.length, 1);
			t.is(json.explanations.length, 1);
			t.deepEqual(json.explanation, json.explanations[0], "one run: `explanation` as before, and `explanations`");
			t.deepEqual(json.explanation.nats, ["home1", "carrier", "home2"]);
			t.deepEqual(json.explanation.drops.map((drop: { nat: string; why: string }) => `${drop.nat} ${drop.why}`), ["carrier hairpin"]);
			t.deepEqual(json.explained.drops, [{ nat: "carrier", why: "hairpin", runs: [1] }]);
			t.is(json.explained.verdicts.length, 1, JSON.stringify(json.explained.verdicts));
			t.regex(json.explained.verdicts[0].verdict, /198\.51\.100\.2:PORT/);
		});
	} finally {
		rmSync(dir, { recursive: true });
	}
});

rootTest("nat-table of a plain router: no translations until a MASQUERADE is added by hand, then the mapping conntrack keeps", async (t) => {
	const lab = loadLabText(["name: insp-masq", "nodes:", "  r: { kind: router }", "  a: {}", "  s: {}", "links:", "  - { endpoints: [a:eth0, r:eth0], subnet: 10.1.1.0/24 }", "  - { endpoints: [r:eth1, s:eth0], subnet: 198.51.100.0/24 }", ""].join("\n"));
	await inLab(t, lab, async () => {
		const before = await testbed(["nat-table", "insp-masq", "r"]);
		t.is(before.exitCode, 0, before.stderr);
		t.regex(before.stdout, /^no translations on r in lab "insp-masq"/);
		const masquerade = await testbed(["exec", "insp-masq", "r", "--", "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth1", "-j", "MASQUERADE"]);
		t.is(masquerade.exitCode, 0, masquerade.stderr);
		const send = await testbed(["exec", "insp-masq", "a", "--", "bash", "-c", "echo hi > /dev/udp/198.51.100.2/4000"]);
		t.is(send.exitCode, 0, send.stderr);
		const ping = await testbed(["exec", "insp-masq", "a", "--", "ping", "-c", "1", "-W", "2", "198.51.100.2"]);
		t.is(ping.exitCode, 0, ping.stdout);
		const table = JSON.parse((await testbed(["nat-table", "insp-masq", "r", "--json"])).stdout);
		t.false(table.declared);
		t.is(table.publicAddress, "198.51.100.1");
		t.true(
			table.flows.some((flow: { proto: string; inside: string; public: string; remote: string; direction: string }) => flow.proto === "udp" && flow.inside.startsWith("10.1.1.2:") && flow.public.startsWith("198.51.100.1:") && flow.remote === "198.51.100.2:4000" && flow.direction === "outbound"),
			JSON.stringify(table.flows),
		);
		t.true(table.flows.some((flow: { proto: string; inside: string }) => flow.proto === "icmp" && flow.inside === "10.1.1.2"), "the ping's translation");
		const text = await testbed(["nat-table", "insp-masq", "r"]);
		t.regex(text.stdout, /^translations on r \(a router with no NAT in the lab's file: translations by its own rules\) in lab "insp-masq", public 198\.51\.100\.1/);
		t.regex(text.stdout, /udp +10\.1\.1\.2:\d+ +→ +198\.51\.100\.1:\d+ +↔ +198\.51\.100\.2:4000 +inside/);
		const host = await testbed(["nat-table", "insp-masq", "s"]);
		t.is(host.exitCode, 0);
		t.regex(host.stdout, /^no translations on s in lab "insp-masq"/);
		// `testbed watch` reads the router's conntrack too: it shows as a NAT while it translates.
		const { sampleLab } = await import("../../src/inspect/watch-sample.ts");
		const sampled = (await sampleLab(lab)).nats.find((nat) => nat.name === "r");
		t.truthy(sampled, "the router is on the watch page");
		t.is(sampled?.behaviour, "router translating by its own rules");
		t.is(sampled?.publicAddress, "198.51.100.1");
		t.true(sampled!.flows.some((flow) => flow.remote === "198.51.100.2:4000"), JSON.stringify(sampled?.flows));

		// An unknown node is a usage mistake (exit 2) in every command that takes one, with the nodes there
		// are (the commands at once: each is refused before it does anything).
		const commands = [
			["exec", "insp-masq", "nobody", "--", "ls"],
			["shell", "insp-masq", "nobody"],
			["nat-table", "insp-masq", "nobody"],
			["punch", "insp-masq", "a", "nobody"],
			["capture", "insp-masq", "nobody:eth0"],
			["logs", "insp-masq", "nobody"],
			["stop", "insp-masq", "nobody"],
		];
		const [addr, iface, ...refused] = await Promise.all([testbed(["addr", "insp-masq", "nobod"]), testbed(["capture", "insp-masq", "a:eth9"]), ...commands.map((argv) => testbed(argv))]);
		commands.forEach((argv, index) => {
			t.is(refused[index].exitCode, 2, `${argv.join(" ")}: ${refused[index].stderr}`);
			t.regex(refused[index].stderr, /^testbed: lab "insp-masq" has no node "nobody"; nodes: r, a, s$/, argv.join(" "));
		});
		t.is(addr.exitCode, 2);
		t.regex(addr.stderr, /names no node "nobod"/);
		t.is(iface.exitCode, 2);
		t.regex(iface.stderr, /node "a" has no interface "eth9"; write NODE:IFACE with one of: eth0/);
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
			t.regex(missing.stderr, /no lab named "nolab" is up on this host; labs: (.*, )?cgnat\b/);
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
