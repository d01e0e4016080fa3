// Which NATs stand between two peers (what punch --explain samples and --capture records), from the lab's routes.
import test from "ava";
import { loadLab, loadLabText } from "../../src/load.ts";
import { captureSides, natPath, peerBehind } from "../../src/inspect/nat-path.ts";
import { NodeNotFoundError } from "../../src/errors.ts";

const topology = (name: string) => loadLab(new URL(`../../topologies/${name}`, import.meta.url).pathname);
const names = (nodes: { name: string }[]) => nodes.map((node) => node.name);
const sides = (list: { node: { name: string }; iface: string }[]) => list.map((side) => `${side.node.name}:${side.iface}`);

test("two homes: each peer's NAT, nothing shared", (t) => {
	const path = natPath(topology("two-nats.yml"), "alice", "bob");
	t.deepEqual(names(path.nats), ["home1", "home2"]);
	t.deepEqual(names(path.shared), []);
	t.is(path.hairpin, undefined);
	t.deepEqual(sides(captureSides(topology("two-nats.yml"), "alice", "bob")), ["home1:wan", "home2:wan"]);
});

test("behind one carrier NAT: the home NATs and the carrier, which must hairpin; one pcap per NAT side, the carrier's outside included", (t) => {
	const lab = topology("cgnat.yml");
	const path = natPath(lab, "alice", "bob");
	t.deepEqual(names(path.nats), ["home1", "carrier", "home2"]);
	t.deepEqual(names(path.chains.alice), ["home1", "carrier"]);
	t.deepEqual(names(path.chains.bob), ["home2", "carrier"]);
	t.deepEqual(names(path.shared), ["carrier"]);
	t.is(path.hairpin?.name, "carrier");
	// The carrier's insides are the homes' outsides: the same link, one capture.
	t.deepEqual(sides(captureSides(lab, "alice", "bob")), ["home1:wan", "carrier:wan", "home2:wan"]);
	const carrier = lab.nodes.find((node) => node.name === "carrier")!;
	t.is(peerBehind(path, lab, carrier, "100.64.0.2"), "alice", "by home1's public address");
	t.is(peerBehind(path, lab, carrier, "100.64.0.6"), "bob");
	t.is(peerBehind(path, lab, carrier, "10.0.0.1"), undefined);
	t.is(peerBehind(path, lab, lab.nodes.find((node) => node.name === "home1")!, "192.168.1.2"), "alice", "by alice's own address");
});

test("peers right behind a shared NAT: its outside and each inside link are captured", (t) => {
	const lab = loadLabText(
		[
			"name: shared",
			"nodes:",
			"  internet: { kind: router }",
			"  stun: {}",
			"  cgn: { kind: nat, nat: { type: carrier } }",
			"  alice: {}",
			"  bob: {}",
			"links:",
			"  - { endpoints: [alice:eth0, cgn:lan1], subnet: 100.64.0.0/30 }",
			"  - { endpoints: [bob:eth0, cgn:lan2], subnet: 100.64.0.4/30 }",
			"  - { endpoints: [cgn:wan, internet:e1], subnet: 198.51.100.0/30 }",
			"  - { endpoints: [stun:eth0, internet:e2], subnet: 203.0.113.0/24 }",
			"",
		].join("\n"),
	);
	t.deepEqual(names(natPath(lab, "alice", "bob").nats), ["cgn"]);
	t.deepEqual(sides(captureSides(lab, "alice", "bob")), ["cgn:wan", "cgn:lan1", "cgn:lan2"]);
});

test("a peer with no NAT is captured on its own link; a NAT in front of the rendezvous too is not on the path", (t) => {
	const lab = topology("cgnat.yml");
	t.deepEqual(names(natPath(lab, "alice", "stun").nats), ["home1", "carrier"]);
	t.deepEqual(sides(captureSides(lab, "alice", "stun")), ["home1:wan", "carrier:wan", "stun:eth0"]);
	t.deepEqual(names(natPath(lab, "alice", "alice").nats), ["home1", "carrier"]);
});

test("an unknown peer is a usage mistake naming the nodes", (t) => {
	const error = t.throws(() => natPath(topology("two-nats.yml"), "alice", "nobody"), { instanceOf: NodeNotFoundError });
	t.is(error?.exitCode, 2);
	t.regex(error?.message ?? "", /lab "two-nats" has no node "nobody"; nodes: internet, stun, home1, home2, alice, bob/);
});
