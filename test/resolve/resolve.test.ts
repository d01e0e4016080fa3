// Resolve: namespaces, auto-addresses, default routes and NAT sides decided from the file.
import test from "ava";
import { loadLab, loadLabText } from "../../src/load.ts";
import { TopologyError } from "../../src/errors.ts";
import type { Lab } from "../../src/resolve/lab.ts";

const topology = (name: string) => loadLab(new URL(`../../topologies/${name}.yml`, import.meta.url).pathname);
const addressesOf = (lab: Lab, node: string) => lab.nodes.find((n) => n.name === node)!.interfaces.flatMap((i) => i.addresses.map((a) => `${i.name} ${a.cidr}`));
const routesOf = (lab: Lab, node: string) => lab.nodes.find((n) => n.name === node)!.routes.map((r) => `${r.to}${r.via ? ` via ${r.via}` : ""} dev ${r.dev}`);

test("namespaces are <lab>-<node>, or netns: when given", (t) => {
	t.deepEqual(
		topology("two-nats").nodes.map((node) => node.netns),
		["two-nats-internet", "two-nats-stun", "two-nats-home1", "two-nats-home2", "two-nats-alice", "two-nats-bob"],
	);
	t.deepEqual(
		topology("seed-p2p").nodes.map((node) => node.netns),
		["unr", "seed-host"],
	);
});

test("subnet: gives the gateway side the first address, hosts the next ones", (t) => {
	const lab = topology("two-nats");
	t.deepEqual(addressesOf(lab, "home1"), ["lan 192.168.1.1/24", "wan 198.51.100.2/30"]);
	t.deepEqual(addressesOf(lab, "alice"), ["eth0 192.168.1.2/24"]);
	t.deepEqual(addressesOf(lab, "internet"), ["e1 198.51.100.1/30", "e2 198.51.100.5/30", "e3 203.0.113.1/24"]);
});

test("a subnet on one link of a switch addresses the whole segment", (t) => {
	const lab = topology("lan");
	t.deepEqual(addressesOf(lab, "home"), ["lan 192.168.0.1/24", "wan 198.51.100.2/30"]);
	t.deepEqual(
		["alice", "bob", "carol"].map((node) => addressesOf(lab, node)[0]),
		["eth0 192.168.0.2/24", "eth0 192.168.0.3/24", "eth0 192.168.0.4/24"],
	);
	t.deepEqual(addressesOf(lab, "lan"), []);
	t.deepEqual(
		lab.nodes.find((node) => node.name === "lan")!.interfaces.map((iface) => `${iface.name}:${iface.type}:${iface.master ?? ""}`),
		["lan:bridge:", "up:veth:lan", "p1:veth:lan", "p2:veth:lan", "p3:veth:lan"],
	);
});

test("single-homed hosts get a default route through their router or NAT; NATs through their outside", (t) => {
	const lab = topology("cgnat");
	t.deepEqual(routesOf(lab, "alice"), ["default via 192.168.1.1 dev eth0"]);
	t.deepEqual(routesOf(lab, "home1"), ["default via 100.64.0.1 dev wan"]);
	t.deepEqual(routesOf(lab, "carrier"), ["default via 198.51.100.1 dev wan"]);
	t.deepEqual(routesOf(lab, "internet"), []);
	t.deepEqual(routesOf(lab, "stun"), ["default via 203.0.113.1 dev eth0"]);
});

test("explicit routes win, device routes have no gateway", (t) => {
	const lab = topology("seed-p2p");
	t.deepEqual(routesOf(lab, "unr"), ["default via 172.20.0.1 dev nat_lan"]);
	t.deepEqual(routesOf(lab, "host"), ["172.20.0.1/32 dev nat_wan"]);
});

test("default-route: false opts a node out of the automatic default route; its own routes stay", (t) => {
	const text = (testnet: string) => `name: t\nnodes:\n  host: { kind: nat, nat: { type: masquerade, outside: enp6s0 } }\n  internet: { kind: router }\n  testnet: ${testnet}\nlinks:\n  - { endpoints: [host:veth0, testnet:veth1], addresses: [10.1.1.1/24, 10.1.1.2/24] }\n  - { endpoints: [host:enp6s0, internet:eth0], addresses: [198.51.100.2/24, 198.51.100.1/24] }\n`;
	t.deepEqual(routesOf(loadLabText(text("{}")), "testnet"), ["default via 10.1.1.1 dev veth1"], "`routes: []` or none: testbed adds one");
	t.deepEqual(routesOf(loadLabText(text("{ routes: [] }")), "testnet"), ["default via 10.1.1.1 dev veth1"]);
	t.deepEqual(routesOf(loadLabText(text("{ default-route: false }")), "testnet"), [], "the lecture's state before `ip route add default`");
	t.deepEqual(routesOf(loadLabText(text("{ default-route: false, routes: [{ to: 10.0.0.0/8, via: 10.1.1.1 }] }")), "testnet"), ["10.0.0.0/8 via 10.1.1.1 dev veth1"]);
	t.deepEqual(routesOf(loadLabText(text("{ default-route: true }")), "testnet"), ["default via 10.1.1.1 dev veth1"]);
	t.deepEqual(routesOf(loadLabText(text("{}").replace("outside: enp6s0 }", "outside: enp6s0 }, default-route: false")), "host"), [], "a NAT too");
});

test("NAT sides: the link towards a router is outside, the rest inside", (t) => {
	const carrier = topology("cgnat").nodes.find((node) => node.name === "carrier")!;
	t.is(carrier.nat!.outside, "wan");
	t.deepEqual(carrier.nat!.inside, ["lan1", "lan2"]);
	t.is(carrier.nat!.publicAddress, "198.51.100.2");
	t.is(carrier.nat!.behaviour.label, "carrier");
	t.false(carrier.nat!.behaviour.hairpin);
});

test("nat.outside picks the outside interface explicitly", (t) => {
	const lab = loadLabText(`
name: t
nodes:
  up1: { kind: host }
  n: { kind: nat, nat: { outside: x1 } }
  a: {}
links:
  - { endpoints: [a:eth0, n:x0], subnet: 10.0.0.0/24 }
  - { endpoints: [n:x1, up1:eth0], subnet: 10.0.1.0/24 }
`);
	const nat = lab.nodes.find((node) => node.name === "n")!.nat!;
	t.is(nat.outside, "x1");
	t.deepEqual(nat.inside, ["x0"]);
});

test("dummy addresses may overlap a link subnet (address holders), links may not", (t) => {
	const lab = topology("two-nats");
	t.deepEqual(addressesOf(lab, "stun"), ["alt0 203.0.113.11/24", "eth0 203.0.113.10/24"]);
});

test("inline text reports problems under the given name", (t) => {
	const error = t.throws(() => loadLabText("name: x\nnodes: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n", "generated.yml"), { instanceOf: TopologyError }) as TopologyError;
	t.deepEqual(
		error.problems.map((problem) => problem.code),
		["UNKNOWN_NODE", "UNKNOWN_NODE"],
	);
	t.regex(error.message, /^generated\.yml:4:17: UNKNOWN_NODE/);
});

test("contradictory NAT settings are validation errors with positions", (t) => {
	const problems = (nat: string, hosts = "  a: {}\n") => {
		try {
			loadLabText(`name: t\nnodes:\n  r: { kind: router }\n  n: { kind: nat, nat: ${nat} }\n${hosts}links:\n  - { endpoints: [a:eth0, n:lan], subnet: 10.0.0.0/24 }\n  - { endpoints: [n:wan, r:e1], subnet: 10.0.1.0/24 }\n`);
			return [];
		} catch (error) {
			return (error as TopologyError).problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col} ${problem.message}`);
		}
	};
	t.deepEqual(problems("{ type: symmetric, mapping: endpoint-independent }"), ['BAD_NAT 4:32 nat "n": type symmetric has mapping address-and-port-dependent, not endpoint-independent']);
	t.deepEqual(problems("{ type: one-to-one, hairpin: true }"), ['BAD_NAT 4:32 nat "n": a one-to-one NAT has no hairpin setting']);
	t.deepEqual(problems("{ type: full-cone, filtering: endpoint-independent }"), [], "agreeing is fine");
	t.deepEqual(problems("{ type: masquerade, hairpin: true }"), ['BAD_NAT 4:32 nat "n": plain MASQUERADE has no hairpin (that needs a DNAT rule); use type home-router']);
	t.deepEqual(problems("{ type: masquerade, port-preservation: false }"), ['BAD_NAT 4:32 nat "n": plain MASQUERADE keeps the inside port when it is free; use type symmetric for random ports']);
	t.deepEqual(problems("{ type: masquerade, mapping: address-and-port-dependent }"), ['BAD_NAT 4:32 nat "n": type masquerade has mapping endpoint-independent, not address-and-port-dependent']);
	t.deepEqual(problems("{ type: masquerade, filtering: address-and-port-dependent, hairpin: false, udp-timeout: 30s }"), [], "what it is, spelt out");
	t.deepEqual(problems("{ typ: full-cone }"), ['UNKNOWN_KEY 4:26 unknown key "typ" in nat; did you mean "type"?']);
	t.deepEqual(problems("{ udp-timeout: 0.5s }"), ["BAD_VALUE 4:39 udp-timeout must be a whole number of seconds from 1s to 24h"]);
	t.deepEqual(problems("{ tcp-timeout: 0s }"), ["BAD_VALUE 4:39 tcp-timeout must be a whole number of seconds from 1s to 120h"]);
	t.deepEqual(problems("{ tcp-timeout: 121h }"), ["BAD_VALUE 4:39 tcp-timeout must be a whole number of seconds from 1s to 120h"]);
	t.deepEqual(problems("{ unsolicited-tcp: reset }"), ['BAD_VALUE 4:43 unsolicited-tcp "reset" is not one of: drop, rst; did you mean "rst"?']);
	t.deepEqual(problems("{ type: masquerade, unsolicited-tcp: drop }"), ['BAD_NAT 4:32 nat "n": plain MASQUERADE leaves an unsolicited SYN to the NAT box, which answers it with a reset; use type port-restricted to drop it']);
	t.deepEqual(problems("{ type: home-router, tcp-timeout: 3s, unsolicited-tcp: rst }"), [], "any NAT may answer with resets");
});

test("a one-to-one NAT translates exactly one inside host", (t) => {
	const lab = loadLabText(`name: t\nnodes:\n  r: { kind: router }\n  n: { kind: nat, nat: { type: one-to-one } }\n  a: {}\nlinks:\n  - { endpoints: [a:eth0, n:lan], subnet: 10.0.0.0/24 }\n  - { endpoints: [n:wan, r:e1], subnet: 10.0.1.0/24 }\n`);
	t.is(lab.nodes.find((node) => node.name === "n")!.nat!.oneToOneHost, "10.0.0.2");
	const error = t.throws(() => loadLabText(`name: t\nnodes:\n  r: { kind: router }\n  n: { kind: nat, nat: { type: one-to-one } }\n  s: { kind: switch }\n  a: {}\n  b: {}\nlinks:\n  - { endpoints: [s:up, n:lan], subnet: 10.0.0.0/24 }\n  - { endpoints: [a:eth0, s:p1] }\n  - { endpoints: [b:eth0, s:p2] }\n  - { endpoints: [n:wan, r:e1], subnet: 10.0.1.0/24 }\n`)) as TopologyError;
	t.regex(error.problems[0].message, /one-to-one but has 2 hosts inside/);
});

test("port mapping: protocols, leases and ports resolved; where it cannot be, a problem with its position and fix", (t) => {
	const lab = (nat: string, wan = "10.0.1.0/24") => loadLabText(`name: t\nnodes:\n  r: { kind: router }\n  n: { kind: nat, nat: ${nat} }\n  a: {}\nlinks:\n  - { endpoints: [a:eth0, n:lan], subnet: 10.0.0.0/24 }\n  - { endpoints: [n:wan, r:e1], subnet: ${wan} }\n`);
	const problems = (nat: string, wan?: string) => {
		try {
			lab(nat, wan);
			return [];
		} catch (error) {
			return (error as TopologyError).problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col} ${problem.message}`);
		}
	};
	const spec = (nat: string) => lab(nat).nodes.find((node) => node.name === "n")!.nat!.portMapping;
	t.deepEqual(spec("{ type: home-router, port-mapping: true }"), { protocols: ["upnp", "nat-pmp", "pcp"], leaseMinS: 120, leaseMaxS: 86400, ports: [[1024, 19999], [21024, 65535]], secure: true, insideNetworks: ["10.0.0.0/24"], pos: { line: 4, col: 45 } });
	t.deepEqual(spec("{ type: carrier, port-mapping: true }")?.protocols, ["pcp"], "a carrier NAT's usual protocol is PCP");
	t.deepEqual(spec("{ port-mapping: { protocols: [pcp, nat-pmp], lease: { min: 30s, max: 1h }, ports: 5000-5999, secure: false } }"), { protocols: ["pcp", "nat-pmp"], leaseMinS: 30, leaseMaxS: 3600, ports: [[5000, 5999]], secure: false, insideNetworks: ["10.0.0.0/24"], pos: { line: 4, col: 26 } });
	t.is(spec("{ port-mapping: false }"), undefined);
	t.is(spec("{ port-mapping: [] }"), undefined);
	t.is(spec("{ type: symmetric }"), undefined, "no port mapping unless declared");
	t.deepEqual(problems("{ port-mapping: [upnp, igd] }"), ['BAD_VALUE 4:47 port-mapping protocol "igd" is not one of: upnp, nat-pmp, pcp']);
	t.deepEqual(problems("{ port-mapping: [pcp, pcp] }"), ['BAD_VALUE 4:46 port-mapping protocol "pcp" is listed twice']);
	t.deepEqual(problems("{ port-mapping: yes }"), ["WRONG_TYPE 4:40 `port-mapping:` must be true, a list of protocols or a map"]);
	t.deepEqual(problems("{ port-mapping: { lease: { min: 0s } } }"), ["BAD_VALUE 4:56 min must be a whole number of seconds from 1s to 168h"]);
	t.deepEqual(problems("{ port-mapping: { lease: { min: 1h, max: 2m } } }"), ["BAD_VALUE 4:65 the longest lease (120 s) is shorter than the shortest (3600 s)"]);
	t.deepEqual(problems("{ port-mapping: { ports: 70000 } }"), ['BAD_VALUE 4:49 ports "70000" is not a range of ports from 1 to 65535']);
	t.deepEqual(problems("{ port-mapping: { ports: 20000-21000 } }"), ["BAD_VALUE 4:49 ports 20000-21000 are all in 20000-21023, the NAT's own dynamic ports"]);
	t.deepEqual(problems("{ port-mapping: { secure: maybe } }"), ["WRONG_TYPE 4:50 `secure:` must be true or false"]);
	t.deepEqual(problems("{ port-mapping: { protocol: [pcp] } }"), ['UNKNOWN_KEY 4:42 unknown key "protocol" in port-mapping; did you mean "protocols"?']);
	t.deepEqual(problems("{ type: one-to-one, port-mapping: true }"), ['BAD_NAT 4:44 nat "n" is one-to-one: it forwards every port to its host already']);
	t.deepEqual(problems("{ type: masquerade, port-mapping: true }"), ['BAD_NAT 4:44 nat "n" is masquerade: it is the lecture\'s iptables MASQUERADE, which has no port-mapping daemon']);
	t.deepEqual(problems("{ type: cgnat, port-mapping: [pcp, upnp] }"), ['BAD_NAT 4:59 nat "n" is a cgnat NAT: carriers do not answer UPnP, a protocol of home networks']);
	const [documentation] = problems("{ port-mapping: true }", "198.51.100.0/30");
	t.is(documentation, 'BAD_NAT 4:26 nat "n" offers port mapping, but its public address 198.51.100.2 is in 198.51.100.0/24, a documentation block: the port-mapping daemon (miniupnpd) refuses to map on it');
	t.deepEqual(problems("{ port-mapping: true }", "100.64.0.0/30"), [], "behind a carrier NAT (shared address space) it is allowed: the daemon answers that it cannot map, as real ones do");
	t.deepEqual(problems("{ type: home-router }", "198.51.100.0/30"), [], "documentation addresses stay fine without port mapping");
});
