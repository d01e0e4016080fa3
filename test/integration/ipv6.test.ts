// Dual stack on the kernel (topologies/dual-stack.yml): IPv6 routed to every host behind the homes'
// stateful firewalls, usable the moment `up` returns (no duplicate address detection); the firewalls
// filter as declared — checked with ping -6 and plain Python sockets, nothing of testbed's — and
// testbed's peers punch through them over UDP and TCP, while IPv4 behind the NATs works as before.
import { execa } from "execa";
import { readFileSync } from "node:fs";
import { loadLab, loadLabText, probeLab } from "../../src/index.ts";
import { runChecks, theoryChecks } from "../../src/expect/run.ts";
import { reachMatrix } from "../../src/drivers/reach.ts";
import { AgentProcess, agentPlace } from "../../src/drivers/agent-process.ts";
import { which } from "../../src/apply/which.ts";
import { readNatState } from "../../src/inspect/nat-table.ts";
import type { Lab } from "../../src/resolve/lab.ts";
import { inLab, leftovers, rootTest } from "../helpers/host.ts";

const netns = (lab: Lab, name: string) => lab.nodes.find((node) => node.name === name)!.netns;
const inNode = (lab: Lab, name: string, argv: string[]) => execa("ip", ["netns", "exec", netns(lab, name), ...argv], { reject: false });
/** Two echo requests 0.2 s apart, a second each: answered at all? */
const ping6 = async (lab: Lab, from: string, to: string) => (await inNode(lab, from, ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", to])).exitCode === 0;

/** An inside host's UDP port 6000 sends to the public host's [::10]:9; then the public host sends to it from ::10:9, ::10:10 and ::11:11. Which arrive? */
const inside = `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::", 6000)); s.settimeout(1.0)
s.sendto(b"open", ("2001:db8:ff:3::10", 9)); got = []
try:
    while True:
        data, source = s.recvfrom(100); got.append(f"[{source[0]}]:{source[1]}")
except socket.timeout: pass
print(" ".join(sorted(got)))
`;
const outside = `
import socket, sys, time
time.sleep(0.3)
for source in (("2001:db8:ff:3::10", 9), ("2001:db8:ff:3::10", 10), ("2001:db8:ff:3::11", 11)):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(source); s.sendto(b"hi", (sys.argv[1], 6000))
`;
/** A TCP connection attempt with a timeout: "connected", "refused" or "timeout". */
const dial = `
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close(); print("connected")
except ConnectionRefusedError: print("refused")
except OSError: print("timeout")
`;

rootTest("dual-stack.yml: IPv6 works as soon as up returns, the homes' firewalls filter as declared, peers punch as theory says over IPv4 and IPv6 (UDP and TCP)", async (t) => {
	const lab = loadLab(new URL("../../topologies/dual-stack.yml", import.meta.url).pathname);
	await inLab(t, lab, async () => {
		// Right after up no address is tentative (duplicate address detection would hold them for a second or two).
		const nodes = ["alice", "home1", "internet", "stun", "home2", "bob"];
		const tentative = await Promise.all(nodes.map((node) => inNode(lab, node, ["ip", "-6", "address", "show", "tentative"])));
		nodes.forEach((node, index) => t.is(tentative[index].stdout, "", `${node}: nothing tentative`));
		// The pings at once (each waits up to a second for an answer that must not come).
		const [aliceOut, bobOut, toHome1, toAlice, phoneOut] = await Promise.all([
			ping6(lab, "alice", "2001:db8:ff:3::10"),
			ping6(lab, "bob", "2001:db8:ff:3::11"),
			ping6(lab, "stun", "2001:db8:1:1::1"),
			ping6(lab, "stun", "2001:db8:1:1::2"),
			ping6(lab, "phone", "2001:db8:ff:3::10"),
		]);
		t.true(aliceOut, "alice → the public host over IPv6");
		t.true(bobOut, "bob → the public host's second address (a dummy: routed by the router)");
		t.true(toHome1, "the public host → home1's inside address (routed, not translated)");
		t.false(toAlice, "an unsolicited echo request to alice is filtered");
		t.false(phoneOut, "the phone behind the IPv4-only carrier has no IPv6");

		// Filtering, with plain sockets: what reaches an inside endpoint that sent one datagram out.
		const filtered = async (host: string, address: string) => {
			const listening = inNode(lab, host, ["python3", "-c", inside]);
			await inNode(lab, "stun", ["python3", "-c", outside, address]);
			return (await listening).stdout.trim();
		};
		t.is(await filtered("alice", "2001:db8:1:1::2"), "[2001:db8:ff:3::10]:9", "home1: address-and-port-dependent — only the reply");
		t.is(await filtered("bob", "2001:db8:2:1::2"), "[2001:db8:ff:3::10]:10 [2001:db8:ff:3::10]:9 [2001:db8:ff:3::11]:11", "home2: endpoint-independent — anyone");

		// TCP: out works; an unsolicited SYN to a listener behind the firewall is dropped (no reset).
		// OpenBSD netcat listens and dials (-z: connect only), Python tells a drop from a reset.
		const server = inNode(lab, "stun", ["timeout", "3", "nc", "-6", "-l", "2001:db8:ff:3::10", "8080"]);
		const listener = inNode(lab, "alice", ["timeout", "2", "nc", "-6", "-l", "::", "8081"]);
		await new Promise((resolve) => setTimeout(resolve, 300));
		t.is((await inNode(lab, "alice", ["nc", "-6", "-z", "-w", "1", "2001:db8:ff:3::10", "8080"])).exitCode, 0, "nc -6 from alice out to the public host connects");
		t.is((await inNode(lab, "stun", ["python3", "-c", dial, "2001:db8:1:1::2", "8081"])).stdout.trim(), "timeout");
		await Promise.all([server, listener]);

		// testbed's probe over IPv6 measures each firewall (no translation, its filtering), and coturn's
		// turnutils_natdiscovery, an RFC 5780 client nobody here wrote, agrees against testbed's STUN server.
		const report = await probeLab(lab, { family: 6 });
		t.deepEqual(report.nats.map((verdict) => [verdict.nat, verdict.measured?.filtering, verdict.measured?.natDetected, verdict.mismatches.join("; ")]), [
			["home1", "address-and-port-dependent", false, ""],
			["home2", "endpoint-independent", false, ""],
		]);
		if (!which("turnutils_natdiscovery")) t.log("turnutils_natdiscovery not installed (Debian package coturn; `make test` installs it): its check is left out");
		else {
			const stun = lab.nodes.find((node) => node.name === "stun")!;
			const server = new AgentProcess(agentPlace(lab.name, stun), "stun", "stun-server", ["--primary", "203.0.113.10", "--alternate", "203.0.113.11", "--primary6", "2001:db8:ff:3::10", "--alternate6", "2001:db8:ff:3::11"]);
			await server.started();
			try {
				const discover = async (host: string) => (await inNode(lab, host, ["turnutils_natdiscovery", "-m", "-f", "2001:db8:ff:3::10"])).stdout;
				const [alice, bob] = await Promise.all([discover("alice"), discover("bob")]);
				t.regex(alice, /Address and Port Dependent Filtering/, alice);
				t.regex(bob, /Endpoint Independent Filtering/, bob);
				t.regex(alice, /Endpoint Independent Mapping/, "no translation: every destination sees the same endpoint");
			} finally {
				await server.stop();
			}
		}

		// reach over IPv6: out through the firewalls, nothing unsolicited in.
		const reach = await reachMatrix(lab, { family: 6 });
		const cell = (from: string, to: string) => reach.cells.find((entry) => entry.from === from && entry.to === to)!.ok;
		t.deepEqual(reach.nodes, ["internet", "stun", "home1", "home2", "alice", "bob"], "the IPv4-only carrier and phone have no IPv6");
		t.true(cell("alice", "stun") && cell("bob", "stun") && cell("stun", "home1"));
		t.false(cell("stun", "alice") || cell("stun", "bob") || cell("alice", "bob"), "nothing unsolicited gets through a firewall");

		// testbed's agents: every pair punches as theory says over IPv4 (the NATs) and, between the peers
		// with IPv6, over IPv6 (the firewalls) with UDP and with TCP (simultaneous open).
		const at = { line: 0, col: 0 };
		const tcp6 = { kind: "punch" as const, pos: at, a: { value: "alice", pos: at }, b: { value: "bob", pos: at }, proto: "tcp" as const, family: 6 as const };
		const results = await runChecks(lab, [...theoryChecks(lab), tcp6], { explain: false });
		for (const result of results) t.true(result.ok, `${result.name}: ${result.measured}, expected ${result.expected}`);
		t.deepEqual(results.map((result) => result.name), ["punch alice ↔ bob", "punch alice ↔ phone", "punch bob ↔ phone", "punch alice ↔ bob (ipv6)", "punch alice ↔ bob (tcp, ipv6)"]);
		t.regex(String(results[3].runs?.[0].remote?.a), /^\[2001:db8:2:1::2\]:\d+$/, "alice talks to bob's own IPv6 address: nothing is translated");
		// nat-table shows what home1's IPv6 firewall lets through now: alice's flows, untranslated.
		const { table } = await readNatState(lab, lab.nodes.find((node) => node.name === "home1")!);
		t.is(table.firewall6?.filtering, "address-and-port-dependent");
		t.true(table.firewall6!.flows.some((flow) => flow.inside.startsWith("[2001:db8:1:1::2]:") && flow.remote.startsWith("[2001:db8:2:1::2]:") && flow.public === flow.inside), JSON.stringify(table.firewall6));
	});
	t.deepEqual(leftovers(lab.name, lab.nodes.map((node) => node.netns)), []);
});

rootTest("NPTv6 and NAT66 on two gateways: bob's inside prefix is rewritten to the outside one and back, alice's leaves from her gateway's address; the firewalls still filter, peers still punch directly, probe sees both translations", async (t) => {
	const text = readFileSync(new URL("../../topologies/dual-stack.yml", import.meta.url), "utf8")
		.replace("name: dual-stack", "name: tb-npt")
		.replace("ipv6: { filtering: endpoint-independent }", "ipv6: { filtering: endpoint-independent, nat: npt }")
		.replace("ipv6: { filtering: address-and-port-dependent }", "ipv6: { nat: masquerade }");
	const lab = loadLabText(text);
	await inLab(t, lab, async () => {
		// What bob sends leaves from 2001:db8:2:8001::2; what comes back to that address reaches bob.
		const listening = inNode(lab, "bob", ["python3", "-c", inside]);
		await inNode(lab, "stun", ["python3", "-c", outside, "2001:db8:2:8001::2"]);
		t.is((await listening).stdout.trim(), "[2001:db8:ff:3::10]:10 [2001:db8:ff:3::10]:9 [2001:db8:ff:3::11]:11", "in through NPTv6 and the endpoint-independent filter");
		t.false(await ping6(lab, "stun", "2001:db8:2:1::2"), "the inside prefix is not routed from outside");
		// What alice sends leaves from home1's own outside address; only the reply gets back in.
		const behindNat66 = inNode(lab, "alice", ["python3", "-c", inside]);
		await inNode(lab, "stun", ["python3", "-c", outside, "2001:db8:ff:1::2"]);
		t.is((await behindNat66).stdout.trim(), "[2001:db8:ff:3::10]:9", "through NAT66 masquerade: the reply only");
		t.false(await ping6(lab, "stun", "2001:db8:1:1::2"), "alice's prefix is not routed from outside");
		const report = await probeLab(lab, { family: 6, nats: ["home1", "home2"] });
		for (const verdict of report.nats) {
			t.deepEqual(verdict.mismatches, [], verdict.nat);
			t.true(verdict.measured?.natDetected, `${verdict.nat} translates`);
		}
		t.regex(String(report.nats.find((verdict) => verdict.nat === "home2")!.measured?.mappedAddress), /^\[?2001:db8:2:8001::2\]?:\d+$/);
		t.regex(String(report.nats.find((verdict) => verdict.nat === "home1")!.measured?.mappedAddress), /^\[?2001:db8:ff:1::2\]?:\d+$/);
		// Over TCP: NAT66 keeps the port and lets only replies in, and a SYN for no flow, addressed to the
		// gateway itself, is dropped there as declared (without its input filter the kernel would reset
		// it); through NPTv6 the endpoint-independent filter lets the connect-backs in.
		const overTcp = await probeLab(lab, { family: 6, proto: "tcp" });
		t.deepEqual(overTcp.nats.map((verdict) => [verdict.nat, verdict.measured?.natDetected, verdict.measured?.filtering, verdict.measured?.portPreservation, verdict.measured?.unsolicitedTcp, verdict.mismatches.join("; ")]), [
			["home1", true, "address-and-port-dependent", true, "drop", ""],
			["home2", true, "endpoint-independent", true, null, ""],
		]);
		const at = { line: 0, col: 0 };
		const [punched] = await runChecks(lab, [{ kind: "punch", pos: at, a: { value: "alice", pos: at }, b: { value: "bob", pos: at }, family: 6 }], { explain: false });
		t.true(punched.ok, `${punched.measured}, expected ${punched.expected}`);
		t.regex(String(punched.runs?.[0].remote?.a), /^\[2001:db8:2:8001::2\]:\d+$/, "alice talks to bob's translated address");
		t.regex(String(punched.runs?.[0].remote?.b), /^\[2001:db8:ff:1::2\]:\d+$/, "bob talks to alice's gateway's address");
		// Held over IPv6 while alice's gateway reboots: the outage stops IPv6 too (the keepalives are
		// lost, the pair re-punches), the gateway forgets its NAT66 flows, and the session comes back.
		const held = await execa(process.execPath, ["bin/testbed.js", "punch", "tb-npt", "alice", "bob", "--family", "6", "--hold", "2500ms", "--keepalive", "200ms", "--loss-after", "600ms", "--event", "@300ms nat-reboot home1 --outage 1s", "--json"], { reject: false });
		t.is(held.exitCode, 0, held.stderr);
		const hold = JSON.parse(held.stdout) as { state: string; finalPath: string; marks: { label: string; interrupted: boolean; reconnectMs: number | null }[] };
		t.like(hold, { state: "connected", finalPath: "direct" });
		t.like(hold.marks[0], { label: "nat-reboot home1 (down 1000 ms)", interrupted: true });
		t.true(hold.marks[0].reconnectMs !== null, JSON.stringify(hold.marks));
	});
	t.deepEqual(leftovers(lab.name, lab.nodes.map((node) => node.netns)), []);
});

rootTest("IPv6 routes written in `routes:`: two routers reach each other's prefix through them (and not once one is gone), as the kernel lists them", async (t) => {
	// a — r1 — r2 — b, IPv6 only: testbed routes no prefix between two routers; the file does.
	const lab = loadLabText(
		"name: tb-routes6\nnodes:\n  r1:\n    kind: router\n    routes: [{ to: '2001:db8:3::/64', via: '2001:db8:2::2' }]\n  r2:\n    kind: router\n    routes: [{ to: '2001:db8:1::/64', via: '2001:db8:2::1' }]\n  a: {}\n  b: {}\nlinks:\n" +
			"  - { endpoints: [a:eth0, r1:e1], subnet6: 2001:db8:1::/64 }\n  - { endpoints: [r1:e2, r2:e2], addresses: [2001:db8:2::1/64, 2001:db8:2::2/64] }\n  - { endpoints: [b:eth0, r2:e1], subnet6: 2001:db8:3::/64 }\n",
	);
	await inLab(t, lab, async () => {
		const listed = await inNode(lab, "r2", ["ip", "-6", "route", "show", "2001:db8:1::/64"]);
		t.regex(listed.stdout, /^2001:db8:1::\/64 via 2001:db8:2::1 dev e2/m, "r2's route as `ip -6 route` lists it");
		t.true(await ping6(lab, "a", "2001:db8:3::2"), "a reaches b through both routers");
		await inNode(lab, "r2", ["ip", "-6", "route", "del", "2001:db8:1::/64"]);
		t.false(await ping6(lab, "a", "2001:db8:3::2"), "without r2's declared route, b's answers have no way back");
	});
});
