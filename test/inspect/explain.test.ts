// punch --explain's verdict from what the NATs on the path showed, without a kernel: which NAT dropped whose packets, and why.
import test from "ava";
import { loadLab, loadLabText } from "../../src/load.ts";
import { explainVerdict, parseNoPorts, summarizeExplanations, verdictShape, type Explanation, type VerdictFacts } from "../../src/inspect/explain.ts";
import { natPath, peerBehind } from "../../src/inspect/nat-path.ts";
import type { NatFlow, UnansweredFlow } from "../../src/inspect/nat-table.ts";
import type { PunchResult } from "../../src/drivers/punch.ts";
import type { Lab, LabNode } from "../../src/resolve/lab.ts";

const topology = (name: string) => loadLab(new URL(`../../topologies/${name}`, import.meta.url).pathname);
const outbound = (inside: string, pub: string, remote: string): NatFlow => ({ proto: "udp", inside, public: pub, remote, direction: "outbound", state: "seen both ways", secondsLeft: 100 });
const ended = (outcome: PunchResult["outcome"]): PunchResult => ({ a: "alice", b: "bob", outcome, timeToConnectMs: outcome === "failed" ? null : 3000, packetsSent: 300, rttMs: null, run: 1 });

function facts(lab: Lab, outcome: PunchResult["outcome"], seen: { flows?: Record<string, NatFlow[]>; unanswered?: Record<string, UnansweredFlow[]>; drops?: VerdictFacts["drops"] }): VerdictFacts {
	const path = natPath(lab, "alice", "bob");
	return {
		path,
		a: "alice",
		b: "bob",
		result: ended(outcome),
		flows: new Map(Object.entries(seen.flows ?? {})),
		unanswered: new Map(Object.entries(seen.unanswered ?? {})),
		drops: seen.drops ?? [],
		who: (nat: LabNode, endpoint: string) => peerBehind(path, lab, nat, endpoint.replace(/:\d+$/, "")) ?? "inside",
	};
}

test("alice and bob behind one carrier NAT without hairpin: the verdict names the carrier, not their home NATs", (t) => {
	const lab = topology("cgnat.yml");
	const verdict = explainVerdict(
		facts(lab, "relayed", {
			flows: {
				home1: [outbound("192.168.1.2:5000", "100.64.0.2:5000", "203.0.113.10:7777"), outbound("192.168.1.2:5000", "100.64.0.2:5000", "198.51.100.2:6000")],
				carrier: [outbound("100.64.0.2:5000", "198.51.100.2:5000", "203.0.113.10:7777"), outbound("100.64.0.6:6000", "198.51.100.2:6000", "203.0.113.10:7777")],
				home2: [outbound("192.168.1.2:6000", "100.64.0.6:6000", "203.0.113.10:7777"), outbound("192.168.1.2:6000", "100.64.0.6:6000", "198.51.100.2:5000")],
			},
			unanswered: {
				carrier: [
					{ proto: "udp", from: "100.64.0.6:6000", to: "198.51.100.2:5000", secondsLeft: 30 },
					{ proto: "udp", from: "100.64.0.2:5000", to: "198.51.100.2:6000", secondsLeft: 30 },
				],
			},
			drops: [{ nat: "carrier", why: "hairpin", packets: 290 }],
		}),
	);
	t.is(
		verdict,
		"alice's packets to 198.51.100.2:6000 (the public endpoint the rendezvous saw for bob) and bob's packets to 198.51.100.2:5000 (the public endpoint the rendezvous saw for alice) reached nat carrier from its inside and were dropped there: alice and bob are both behind carrier, which does not hairpin (carrier: hairpin off). The pair fell back to the rendezvous relay.",
	);
	t.notRegex(verdict, /home1|home2/);
});

test("no drop seen behind a carrier without hairpin: still says the carrier does not hairpin", (t) => {
	const verdict = explainVerdict(facts(topology("cgnat.yml"), "failed", {}));
	t.regex(verdict, /no direct path was confirmed before the deadline\. Both are behind carrier, which does not hairpin\. No relay was allowed, so the punch failed\.$/);
	t.regex(verdict, /^alice's NATs home1 \(home-router: endpoint-independent mapping, address-and-port-dependent filtering\) and carrier \(carrier: /);
});

test("a home NAT's filter and the other side's symmetric NAT, as before carrier NATs were followed", (t) => {
	const lab = loadLabText(topologyText().replace("home2:\n    kind: nat\n    nat: { type: port-restricted }", "home2:\n    kind: nat\n    nat: { type: symmetric }"));
	const verdict = explainVerdict(
		facts(lab, "relayed", {
			flows: {
				home1: [outbound("192.168.1.2:5000", "198.51.100.2:5000", "203.0.113.10:7777"), outbound("192.168.1.2:5000", "198.51.100.2:5000", "198.51.100.6:20000")],
				home2: [outbound("192.168.1.2:6000", "198.51.100.6:20000", "203.0.113.10:7777"), outbound("192.168.1.2:6000", "198.51.100.6:20001", "198.51.100.2:5000")],
			},
			drops: [{ nat: "home1", why: "filtering", packets: 150 }],
		}),
	);
	t.is(
		verdict,
		"bob's packets to 198.51.100.2:5000 were dropped at nat home1 (address-and-port-dependent filtering): that mapping had sent only to the rendezvous (203.0.113.10:7777) and 198.51.100.6:20000, but bob's NAT home2 maps per remote address and port (a new public port per destination): bob's packets came from 198.51.100.6:20001, not from 198.51.100.6:20000. The pair fell back to the rendezvous relay.",
	);
});

test("hairpin and direct outcomes name the NATs", (t) => {
	t.is(explainVerdict(facts(topology("cgnat.yml"), "hairpin", {})), "alice and bob sit behind the same NAT carrier and reached each other through its public address 198.51.100.2 (hairpinning).");
	t.regex(explainVerdict(facts(topology("two-nats.yml"), "direct", {})), /^alice and bob connected directly through alice's NAT home1 \(port-restricted: .*\) and bob's NAT home2 /);
});

test("NoPorts from /proc/net/snmp", (t) => {
	const snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams\nUdp: 0 296 0 0\nUdpLite: InDatagrams NoPorts\nUdpLite: 0 5\n";
	t.is(parseNoPorts(snmp), 296);
	t.is(parseNoPorts(""), 0);
});

test("several runs: verdicts alike but for ports read as one, and the NATs that dropped with their runs", (t) => {
	const run = (verdict: string, drops: Explanation["drops"]): Explanation => ({ a: "alice", b: "bob", outcome: "relayed", nats: ["home1", "carrier", "home2"], timeline: [], drops, verdict });
	const hairpin = [{ nat: "carrier", why: "hairpin" as const, packets: 290 }];
	const summary = summarizeExplanations([
		run("alice's packets to 198.51.100.2:6000 reached nat carrier; 290 packets", hairpin),
		run("alice's packets to 198.51.100.2:7123 reached nat carrier; 291 packets", hairpin),
		run("alice and bob sit behind the same NAT carrier (hairpinning).", []),
	]);
	t.deepEqual(summary.verdicts, [
		{ verdict: "alice's packets to 198.51.100.2:PORT reached nat carrier; N packets", runs: [1, 2] },
		{ verdict: "alice and bob sit behind the same NAT carrier (hairpinning).", runs: [3] },
	]);
	t.deepEqual(summary.drops, [{ nat: "carrier", why: "hairpin", runs: [1, 2] }]);
	t.is(verdictShape("to 10.0.0.1:53 and 1 packet"), "to 10.0.0.1:PORT and N packet");
});

function topologyText(): string {
	return `name: tb-verdict
nodes:
  internet: { kind: router }
  stun: {}
  home1:
    kind: nat
    nat: { type: port-restricted }
  home2:
    kind: nat
    nat: { type: port-restricted }
  alice: {}
  bob: {}
links:
  - endpoints: [alice:eth0, home1:lan]
    subnet: 192.168.1.0/24
  - endpoints: [bob:eth0, home2:lan]
    subnet: 192.168.1.0/24
  - endpoints: [home1:wan, internet:e1]
    subnet: 198.51.100.0/30
  - endpoints: [home2:wan, internet:e2]
    subnet: 198.51.100.4/30
  - endpoints: [stun:eth0, internet:e3]
    addresses: [203.0.113.10/24, 203.0.113.1/24]
`;
}
