// topologies/lecture-nat.yml on the kernel: the lecture's NAT demonstration (namespace testnet behind
// the host's iptables MASQUERADE, `nc -l -p 8000` inside) does what the lecture shows — the server is
// reached from the host side, testnet pings the world through the MASQUERADE (whose counter goes up,
// as `iptables -t nat -L -v` shows), the world cannot reach the inside, and conntrack's translations
// are in nat-table. With `default-route: false`, ping fails until the lecture's `ip route add`.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { execa } from "execa";
import { loadLabText } from "../../src/index.ts";
import { which } from "../../src/apply/which.ts";
import { writeFileSync } from "node:fs";
import { inLab, leftovers, rootTest } from "../helpers/host.ts";
import { twoHomesText } from "../helpers/topologies.ts";

const file = new URL("../../topologies/lecture-nat.yml", import.meta.url).pathname;
const original = readFileSync(file, "utf8");
const testbed = (args: string[], options: { cwd?: string } = {}) => execa(process.execPath, [join(import.meta.dirname, "../../bin/testbed.js"), ...args], { reject: false, cwd: options.cwd });

/** The lecture's file under a name of this test's own (so that it never meets a student's lab). */
function lectureLab(name: string, edit: (text: string) => string = (text) => text) {
	const text = edit(original);
	if (!text.includes("name: lecture-nat\n")) throw new Error("topologies/lecture-nat.yml no longer has the line this test renames");
	return loadLabText(text.replace("name: lecture-nat\n", `name: ${name}\n`), file);
}

function lacks(t: ExecutionContext, program: string): boolean {
	if (which(program)) return false;
	t.log(`skipped: ${program} is not installed (\`make setup\` installs it)`);
	t.pass();
	return true;
}

/** The packet counter of the MASQUERADE rule for `source` in `iptables -t nat -L -v -n -x` output. */
function masqueradePackets(listing: string, source: string): number | undefined {
	const line = listing.split("\n").find((text) => /\bMASQUERADE\b/.test(text) && text.includes(` ${source} `));
	return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
}

test("lecture-nat validates, and init copies it", async (t) => {
	const validate = await testbed(["validate", file]);
	t.is(validate.exitCode, 0, validate.stderr);
	t.regex(validate.stdout, /lab "lecture-nat": 3 nodes, 2 links/);
	const dir = mkdtempSync(join(tmpdir(), "masq-init-"));
	try {
		const init = await testbed(["init", "lecture-nat"], { cwd: dir });
		t.is(init.exitCode, 0, init.stderr);
		const copy = readFileSync(join(dir, "lecture-nat.yml"), "utf8");
		t.true(copy.includes("nat: { type: masquerade, outside: enp6s0 }"));
		t.is((await testbed(["validate", join(dir, "lecture-nat.yml")])).exitCode, 0);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
});

test("plan prints the lecture's commands", async (t) => {
	const plan = await testbed(["plan", file]);
	t.is(plan.exitCode, 0, plan.stderr);
	t.regex(plan.stdout, /^ip netns exec lecture-nat-host iptables -t nat -A POSTROUTING -s 10\.1\.1\.0\/24 -o enp6s0 -j MASQUERADE$/m);
	t.regex(plan.stdout, /^ip netns exec lecture-nat-host iptables -A FORWARD -j ACCEPT$/m);
	t.regex(plan.stdout, /^ip netns exec lecture-nat-host sysctl -q -w net\.ipv4\.ip_forward=1 /m);
	t.regex(plan.stdout, /^ip -n lecture-nat-testnet route add default via 10\.1\.1\.1 dev veth1$/m);
	t.regex(plan.stdout, /^ip -n lecture-nat-testnet address add 10\.1\.1\.2\/24 dev veth1$/m);
});

rootTest("lecture-nat: the server is reached from the host side, testnet reaches the world through the MASQUERADE (its counter counts), the world cannot reach testnet", async (t) => {
	if (lacks(t, "nc") || lacks(t, "iptables")) return;
	const lab = lectureLab("masq-lecture");
	await inLab(t, lab, async () => {
		const exec = (node: string, argv: string[]) => testbed(["exec", "masq-lecture", node, "--", ...argv]);
		const listing = async () => (await exec("host", ["iptables", "-t", "nat", "-L", "-v", "-n", "-x"])).stdout;
		t.is(masqueradePackets(await listing(), "10.1.1.0/24"), 0, "the lecture's rule is there, nothing through it yet");

		// The inside cannot be reached from outside: no route to it, and nothing forwarded on the public address.
		t.not((await exec("internet", ["nc", "-z", "-w", "2", "10.1.1.2", "8000"])).exitCode, 0, "internet → 10.1.1.2:8000");
		t.not((await exec("internet", ["nc", "-z", "-w", "2", "198.51.100.2", "8000"])).exitCode, 0, "internet → the public address:8000");

		// "Server can be contacted": from the host side (the NAT node), straight over veth0.
		const hello = await exec("host", ["sh", "-c", "echo hello from the host side | nc -N -w 2 10.1.1.2 8000"]);
		t.is(hello.exitCode, 0, hello.stderr);
		t.regex((await testbed(["logs", "masq-lecture", "testnet:server"])).stdout, /^hello from the host side$/m);

		// "How to connect to outside?": ping through the MASQUERADE.
		const ping = await exec("testnet", ["ping", "-c", "2", "-W", "2", "203.0.113.53"]);
		t.is(ping.exitCode, 0, ping.stdout + ping.stderr);
		t.regex(ping.stdout, /2 received/);
		const udp = await exec("testnet", ["sh", "-c", "echo x | nc -u -w 1 -p 4444 203.0.113.53 9"]);
		t.is(udp.exitCode, 0, udp.stderr);
		const after = await listing();
		t.true((masqueradePackets(after, "10.1.1.0/24") ?? 0) > 0, after);
		const forward = (await exec("host", ["iptables", "-L", "FORWARD", "-v", "-n", "-x"])).stdout;
		t.regex(forward, /^\s*[1-9]\d*\s+\d+\s+ACCEPT\b/m, "iptables -A FORWARD -j ACCEPT counts the forwarded packets");

		// nat-table shows conntrack's translations: the inside address masqueraded to the public one, the port kept.
		const table = await testbed(["nat-table", "masq-lecture", "host", "--json"]);
		t.is(table.exitCode, 0, table.stderr);
		const flows = (JSON.parse(table.stdout) as { flows: { proto: string; inside: string; public: string; remote: string }[] }).flows;
		t.true(flows.some((flow) => flow.proto === "icmp" && flow.inside === "10.1.1.2" && flow.public === "198.51.100.2" && flow.remote === "203.0.113.53"), JSON.stringify(flows));
		t.true(flows.some((flow) => flow.proto === "udp" && flow.inside === "10.1.1.2:4444" && flow.public === "198.51.100.2:4444" && flow.remote === "203.0.113.53:9"), JSON.stringify(flows));

		// A NAT reboot forgets the translations and keeps the rules.
		const reboot = await testbed(["event", "masq-lecture", "nat-reboot", "host"]);
		t.is(reboot.exitCode, 0, reboot.stderr);
		t.is((await execa("ip", ["netns", "exec", lab.nodes.find((node) => node.name === "host")!.netns, "conntrack", "-L"], { reject: false })).stdout.trim(), "", "conntrack is empty");
		t.truthy(masqueradePackets(await listing(), "10.1.1.0/24") !== undefined, "the MASQUERADE rule is still there");
		t.is((await exec("testnet", ["ping", "-c", "1", "-W", "2", "203.0.113.53"])).exitCode, 0, "and translates again");
	});
});

rootTest("lecture-nat with default-route: false: ping fails until the lecture's `ip route add default via 10.1.1.1`", async (t) => {
	if (lacks(t, "iptables")) return;
	const routes = "    routes:\n      - { to: default, via: 10.1.1.1, dev: veth1 }\n";
	const lab = lectureLab("masq-route", (text) => {
		if (!text.includes(routes)) throw new Error("topologies/lecture-nat.yml no longer has testnet's route as this test expects");
		return text.replace(routes, "    default-route: false\n");
	});
	await inLab(t, lab, async () => {
		const exec = (argv: string[]) => testbed(["exec", "masq-route", "testnet", "--", ...argv]);
		t.is((await exec(["ip", "route", "show", "default"])).stdout.trim(), "", "no default route");
		const before = await exec(["ping", "-c", "1", "-W", "1", "203.0.113.53"]);
		t.not(before.exitCode, 0);
		t.regex(before.stderr + before.stdout, /Network is unreachable/);
		const add = await exec(["ip", "route", "add", "default", "via", "10.1.1.1", "dev", "veth1"]);
		t.is(add.exitCode, 0, add.stderr);
		const after = await exec(["ping", "-c", "1", "-W", "2", "203.0.113.53"]);
		t.is(after.exitCode, 0, after.stdout + after.stderr);
	});
});

rootTest("two peers each behind plain MASQUERADE fall back to the relay, as theory says: the first packet to arrive is kept by the other's conntrack and shadows its mapping", async (t) => {
	if (lacks(t, "iptables")) return;
	const lab = loadLabText(twoHomesText("masq-punch", "{ type: masquerade }", "{ type: masquerade }"));
	await inLab(t, lab, async () => {
		const punch = await testbed(["punch", "masq-punch", "alice", "bob", "--runs", "2", "--json"]);
		const summary = JSON.parse(punch.stdout || "{}") as { expected?: string; outcomes?: Record<string, number> };
		t.is(summary.expected, "relayed", punch.stderr);
		// Relayed, unless the two first packets cross (each out of its NAT before the other's comes in):
		// a race of microseconds that a loaded machine wins about once in 60 runs — theory lists it second.
		t.true((summary.outcomes?.relayed ?? 0) >= 1, punch.stdout);
		t.deepEqual(Object.keys(summary.outcomes ?? {}).filter((outcome) => outcome !== "relayed" && outcome !== "direct"), [], punch.stdout);
	});
});

rootTest("up of a masquerade lab on a host without iptables-restore exits 4 naming the fix, and builds nothing", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "masq-noipt-"));
	const copy = join(dir, "lecture-nat.yml");
	writeFileSync(copy, original.replace("name: lecture-nat\n", "name: masq-noipt\n"));
	try {
		const up = await execa(process.execPath, [join(import.meta.dirname, "../../bin/testbed.js"), "up", copy], { reject: false, env: { TESTBED_HIDE_TOOLS: "iptables-restore" } });
		if (up.exitCode === 0) await testbed(["down", "masq-noipt"]);
		t.is(up.exitCode, 4, up.stderr);
		t.regex(up.stderr, /iptables-restore/);
		t.regex(up.stderr, /apt-get install -y .*iptables/);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
	t.deepEqual(leftovers("masq-noipt", ["masq-noipt-host", "masq-noipt-testnet", "masq-noipt-internet"]), []);
});
