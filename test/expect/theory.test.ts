// Expected hole-punching outcomes, from the declared NATs alone.
import test from "ava";
import { readFileSync } from "node:fs";
import { expectedOutcomes, expectedPunch, labPeers, labPeers6, simulatePunch, type NatModel, type PeerModel } from "../../src/expect/theory.ts";
import { loadLab, loadLabText } from "../../src/load.ts";

const EI = "endpoint-independent";
const AD = "address-dependent";
const APD = "address-and-port-dependent";
const classic = { "full-cone": [EI, EI], "restricted-cone": [EI, AD], "port-restricted": [EI, APD], symmetric: [APD, APD] } as const;

const peer = (name: string, type: keyof typeof classic, options: Partial<NatModel> = {}): PeerModel => ({
	name,
	lan: `lan-${name}`,
	nat: { name: `nat-${name}`, mapping: classic[type][0], filtering: classic[type][1], hairpin: true, publicIp: `ip-${name}`, ...options },
});

// The classic table: symmetric fails against symmetric and port-restricted; everything else connects.
const table: [keyof typeof classic, keyof typeof classic, "direct" | "relayed"][] = [
	["full-cone", "full-cone", "direct"],
	["full-cone", "restricted-cone", "direct"],
	["full-cone", "port-restricted", "direct"],
	["full-cone", "symmetric", "direct"],
	["restricted-cone", "restricted-cone", "direct"],
	["restricted-cone", "port-restricted", "direct"],
	["restricted-cone", "symmetric", "direct"],
	["port-restricted", "port-restricted", "direct"],
	["port-restricted", "symmetric", "relayed"],
	["symmetric", "symmetric", "relayed"],
];
for (const [x, y, outcome] of table) {
	test(`${x} ↔ ${y}: ${outcome}`, (t) => {
		t.is(simulatePunch(peer("a", x), peer("b", y)), outcome);
		t.is(simulatePunch(peer("b", y), peer("a", x)), outcome, "symmetric in its arguments");
	});
}

test("a public peer (no NAT) connects to any NAT type", (t) => {
	for (const type of Object.keys(classic) as (keyof typeof classic)[]) t.is(simulatePunch({ name: "pub", lan: "x" }, peer("b", type)), "direct", type);
});

test("two peers behind one NAT: hairpin if it hairpins, else relayed", (t) => {
	const shared = { name: "home", publicIp: "ip-home" };
	t.is(simulatePunch(peer("a", "port-restricted", shared), peer("b", "port-restricted", shared)), "hairpin");
	t.is(simulatePunch(peer("a", "port-restricted", { ...shared, hairpin: false }), peer("b", "port-restricted", { ...shared, hairpin: false })), "relayed");
});

test("nat-matrix: peers, LAN pairs and the symmetric cases", (t) => {
	const lab = loadLab(new URL("../../topologies/nat-matrix.yml", import.meta.url).pathname);
	t.deepEqual(labPeers(lab), ["p-full", "p-rest", "p-port", "p-sym", "p-cg", "lan1", "lan2"]);
	t.is(expectedPunch(lab, "lan1", "lan2"), "lan");
	t.is(expectedPunch(lab, "p-sym", "p-port"), "relayed");
	t.is(expectedPunch(lab, "p-sym", "p-rest"), "direct");
	t.is(expectedPunch(lab, "p-sym", "p-cg"), "relayed", "home router behind a carrier NAT acts as port-restricted");
	t.is(expectedPunch(lab, "p-full", "p-cg"), "direct");
});

test("TCP: through NATs that drop unsolicited SYNs, the same table as UDP (a listener on the dialing port is the peer-reflexive candidate)", (t) => {
	const lab = loadLab(new URL("../../topologies/nat-matrix.yml", import.meta.url).pathname);
	const peers = labPeers(lab);
	for (const a of peers) for (const b of peers) if (a < b) t.deepEqual(expectedOutcomes(lab, a, b, "tcp"), expectedOutcomes(lab, a, b, "udp"), `${a} ↔ ${b}`);
});

test("TCP: a NAT that answers unsolicited SYNs with a reset makes a direct path a race the relay may win; UDP does not care", (t) => {
	const text = (answer: string) =>
		`name: t\nnodes:\n  r: { kind: router }\n  n1: { kind: nat, nat: { type: port-restricted, unsolicited-tcp: ${answer} } }\n  n2: { kind: nat, nat: { type: symmetric } }\n  n3: { kind: nat }\n  a: {}\n  b: {}\n  c: {}\nlinks:\n  - { endpoints: [a:eth0, n1:lan], subnet: 10.0.1.0/24 }\n  - { endpoints: [b:eth0, n2:lan], subnet: 10.0.2.0/24 }\n  - { endpoints: [c:eth0, n3:lan], subnet: 10.0.3.0/24 }\n  - { endpoints: [n1:wan, r:e1], subnet: 198.51.100.0/30 }\n  - { endpoints: [n2:wan, r:e2], subnet: 198.51.100.4/30 }\n  - { endpoints: [n3:wan, r:e3], subnet: 198.51.100.8/30 }\n`;
	const rst = loadLabText(text("rst"));
	t.deepEqual(expectedOutcomes(rst, "a", "c", "tcp"), ["direct", "relayed"]);
	t.deepEqual(expectedOutcomes(rst, "a", "c", "udp"), ["direct"]);
	t.deepEqual(expectedOutcomes(rst, "a", "b", "tcp"), ["relayed"], "port-restricted ↔ symmetric stays relayed");
	t.deepEqual(expectedOutcomes(loadLabText(text("drop")), "a", "c", "tcp"), ["direct"]);
});

test("IPv6 (dual-stack.yml): nothing is translated, so every pair with IPv6 connects directly whatever the firewalls' filtering; the IPv4-only phone is no IPv6 peer", (t) => {
	const lab = loadLab(new URL("../../topologies/dual-stack.yml", import.meta.url).pathname);
	t.deepEqual(labPeers6(lab), ["alice", "bob"]);
	t.deepEqual(expectedOutcomes(lab, "alice", "bob", "udp", 6), ["direct"]);
	t.deepEqual(expectedOutcomes(lab, "alice", "bob", "tcp", 6), ["direct"]);
	const rst = loadLabText(readFileSync(new URL("../../topologies/dual-stack.yml", import.meta.url), "utf8").replace("nat: { type: port-restricted }", "nat: { type: port-restricted, unsolicited-tcp: rst }"));
	t.deepEqual(expectedOutcomes(rst, "alice", "bob", "tcp", 6), ["direct", "relayed"], "a firewall that resets unsolicited SYNs makes TCP a race");
});
