// Theory for plain MASQUERADE (`nat: { type: masquerade }`), as measured on the kernel: conntrack keeps
// an unsolicited packet, so whichever peer's first packet reaches the other's NAT before that NAT's
// own host has sent shadows the mapping the punch needs. Two MASQUERADE NATs: relayed, in either
// order (measured: 60 of 60 relayed on a quiet machine, 59 of 60 beside two busy loops — the one
// direct run's first packets crossed); MASQUERADE and an nftables port-restricted NAT: a race.
import test from "ava";
import { loadLabText } from "../../src/load.ts";
import { expectedOutcomes, expectedPunch, simulatePunch, type NatModel } from "../../src/expect/theory.ts";
import { twoHomesText } from "../helpers/topologies.ts";

const pair = (left: string, right: string) => loadLabText(twoHomesText("t", left, right));

test("two plain MASQUERADE NATs: relayed, whoever sends first; direct only when the first packets cross", (t) => {
	const lab = pair("{ type: masquerade }", "{ type: masquerade }");
	t.deepEqual(expectedOutcomes(lab, "alice", "bob"), ["relayed", "direct"]);
	t.is(expectedPunch(lab, "alice", "bob"), "relayed", "what to expect first: a race of microseconds is rarely won (1 run in 60 on a loaded machine)");
});

test("the same RFC 4787 pair built with nftables (port-restricted) connects directly", (t) => {
	t.deepEqual(expectedOutcomes(pair("{ type: port-restricted }", "{ type: port-restricted }"), "alice", "bob"), ["direct"]);
});

test("MASQUERADE and a port-restricted NAT: direct when the MASQUERADE side's packet arrives first, relayed otherwise", (t) => {
	const lab = pair("{ type: masquerade }", "{ type: port-restricted }");
	t.deepEqual(expectedOutcomes(lab, "alice", "bob"), ["direct", "relayed"]);
	t.deepEqual(expectedOutcomes(lab, "bob", "alice"), ["relayed", "direct"]);
	t.is(expectedPunch(lab, "alice", "bob"), "direct");
});

test("MASQUERADE and a full cone: direct either way (the full cone lets the re-mapped port in)", (t) => {
	t.deepEqual(expectedOutcomes(pair("{ type: masquerade }", "{ type: full-cone }"), "alice", "bob"), ["direct"]);
	t.deepEqual(expectedOutcomes(pair("{ type: masquerade }", "{ type: full-cone }"), "bob", "alice"), ["direct"]);
});

test("simulatePunch: a NAT that keeps unsolicited packets gives the clashing flow another public port", (t) => {
	const nat = (name: string, keepsUnsolicited: boolean): NatModel => ({ name, mapping: "endpoint-independent", filtering: "address-and-port-dependent", hairpin: false, publicIp: `pub-${name}`, keepsUnsolicited });
	const peers = (keeps: boolean) => [{ name: "a", nat: nat("na", keeps), lan: "1" }, { name: "b", nat: nat("nb", keeps), lan: "2" }] as const;
	t.is(simulatePunch(...peers(false)), "direct");
	t.is(simulatePunch(...peers(true)), "relayed");
	t.is(simulatePunch(...peers(true), 6, true), "direct", "crossing: both NATs had sent before anything arrived, so nothing was kept");
});
