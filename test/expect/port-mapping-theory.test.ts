// Theory with port mapping: a peer whose NAT grants it a mapping is reachable at it by anyone, so
// symmetric ↔ symmetric connects; a NAT behind another NAT answers but cannot grant; only the asked
// protocols count. `test` on a lab with port mapping punches every pair without and with it.
import test from "ava";
import { loadLab, loadLabText } from "../../src/load.ts";
import { expectedOutcomes, mappingGranted } from "../../src/expect/theory.ts";
import { theoryChecks } from "../../src/expect/run.ts";
import type { TopologyError } from "../../src/errors.ts";

const lab = loadLab(new URL("../../topologies/port-mapping.yml", import.meta.url).pathname);
const all = ["pcp", "nat-pmp", "upnp"] as const;

test("with and without port mapping, pair by pair (topologies/port-mapping.yml)", (t) => {
	const row = (asked: readonly ("pcp" | "nat-pmp" | "upnp")[]) =>
		[
			["p-sym", "p-sym-pm"],
			["p-sym", "p-pcp"],
			["p-sym", "p-port"],
			["p-sym", "p-cg"],
			["p-sym-pm", "p-cg"],
		].map(([a, b]) => `${a}↔${b} ${expectedOutcomes(lab, a, b, "udp", 4, asked).join("/")}`);
	t.deepEqual(row([]), ["p-sym↔p-sym-pm relayed", "p-sym↔p-pcp relayed", "p-sym↔p-port relayed", "p-sym↔p-cg relayed", "p-sym-pm↔p-cg relayed"]);
	t.deepEqual(row(all), ["p-sym↔p-sym-pm direct", "p-sym↔p-pcp direct", "p-sym↔p-port relayed", "p-sym↔p-cg relayed", "p-sym-pm↔p-cg direct"], "symmetric ↔ symmetric through a mapping; port-restricted does not offer one; behind the carrier none is granted");
	t.deepEqual(row(["upnp"]), ["p-sym↔p-sym-pm direct", "p-sym↔p-pcp relayed", "p-sym↔p-port relayed", "p-sym↔p-cg relayed", "p-sym-pm↔p-cg direct"], "the PCP-only NAT does not answer UPnP");
	t.deepEqual(expectedOutcomes(lab, "p-sym", "p-sym-pm", "tcp", 4, all), ["direct"], "TCP: the same through NATs that drop unsolicited SYNs");
	const node = (name: string) => lab.nodes.find((candidate) => candidate.name === name)!;
	t.is(mappingGranted(lab, node("p-sym-pm"), all), "pcp", "the first asked protocol the NAT offers");
	t.is(mappingGranted(lab, node("p-cg"), all), undefined, "a home router behind a carrier NAT cannot map");
	t.is(mappingGranted(lab, node("p-port"), all), undefined);
});

test("test without expect: on a lab with port mapping punches every pair twice: without, then with the peers asking", (t) => {
	const checks = theoryChecks(lab);
	t.is(checks.length, 20);
	t.is(checks.filter((check) => check.kind === "punch" && check.portMapping?.join() === "pcp,nat-pmp,upnp").length, 10);
	const plain = loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname);
	t.false(theoryChecks(plain).some((check) => check.kind === "punch" && check.portMapping), "no port mapping in a lab without it");
});

test("a punch check's port-mapping: true, a list, or a problem with its position", (t) => {
	const checks = (expect: string) => {
		try {
			return loadLabText(`name: t\nnodes:\n  r: { kind: router }\n  n: { kind: nat }\n  a: {}\n  b: {}\nlinks:\n  - { endpoints: [a:eth0, n:lan], subnet: 10.0.0.0/24 }\n  - { endpoints: [n:wan, r:e1], subnet: 10.0.1.0/24 }\n  - { endpoints: [b:eth0, r:e2], subnet: 10.0.2.0/24 }\nexpect:\n  - ${expect}\n`).expect!.map((check) => (check.kind === "punch" ? check.portMapping ?? "none" : "?"));
		} catch (error) {
			return (error as TopologyError).problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col} ${problem.message}`);
		}
	};
	t.deepEqual(checks("{ punch: [a, b], port-mapping: true }"), [["pcp", "nat-pmp", "upnp"]]);
	t.deepEqual(checks("{ punch: [a, b], port-mapping: [upnp, pcp] }"), [["upnp", "pcp"]]);
	t.deepEqual(checks("{ punch: [a, b], port-mapping: false }"), ["none"]);
	t.deepEqual(checks("{ punch: [a, b], port-mapping: [igd] }"), ['BAD_EXPECT 12:36 port-mapping protocol "igd" is not one of: upnp, nat-pmp, pcp']);
	t.deepEqual(checks("{ punch: [a, b], port-mapping: [pcp, pcp] }"), ["BAD_EXPECT 12:36 a port-mapping protocol is listed twice"]);
	t.deepEqual(checks("{ punch: [a, b], port-mapping: yes }"), ["BAD_EXPECT 12:36 `port-mapping:` of a punch check is true, false or a list of protocols"]);
	t.deepEqual(checks("{ punch: [a, b], family: ipv6, port-mapping: true }"), ["BAD_EXPECT 12:36 port mapping is IPv4 (NAT-PMP, PCP and UPnP map a NAT's IPv4 ports here)"]);
});
