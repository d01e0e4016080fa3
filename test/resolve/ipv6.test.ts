// Dual-stack labs resolved: IPv6 addresses from subnet6 (gateways first) or written, a NAT's IPv6
// firewall, default routes and the routers' routes to the prefixes behind each gateway; the file's
// mistakes as problems with positions. A lab without IPv6 gets nothing of it.
import test from "ava";
import { readFileSync } from "node:fs";
import { loadLab, loadLabText } from "../../src/load.ts";
import { TopologyError } from "../../src/errors.ts";
import type { Lab } from "../../src/resolve/lab.ts";

const dualStack = () => loadLab(new URL("../../topologies/dual-stack.yml", import.meta.url).pathname);
const node = (lab: Lab, name: string) => lab.nodes.find((candidate) => candidate.name === name)!;
const v6 = (lab: Lab, name: string) => Object.fromEntries(node(lab, name).interfaces.map((iface) => [iface.name, (iface.addresses6 ?? []).map((address) => address.cidr)]));
const routes6 = (lab: Lab, name: string) => node(lab, name).routes.filter((route) => route.family === 6).map((route) => `${route.to} via ${route.via} dev ${route.dev}`);

test("dual-stack.yml: addresses from subnet6 (the gateway ::1), written ones on the public host, none on the IPv4-only carrier", (t) => {
	const lab = dualStack();
	t.deepEqual(v6(lab, "alice"), { eth0: ["2001:db8:1:1::2/64"] });
	t.deepEqual(v6(lab, "home1"), { lan: ["2001:db8:1:1::1/64"], wan: ["2001:db8:ff:1::2/64"] });
	t.deepEqual(v6(lab, "stun"), { alt0: ["2001:db8:ff:3::11/64"], eth0: ["2001:db8:ff:3::10/64"] });
	t.deepEqual(v6(lab, "phone"), { eth0: [] });
	t.falsy(node(lab, "phone").ipv6);
	t.true(node(lab, "alice").ipv6);
});

test("dual-stack.yml: default routes as for IPv4, the router's routes to each home's prefix and to the public host's second address", (t) => {
	const lab = dualStack();
	t.deepEqual(routes6(lab, "alice"), ["default via 2001:db8:1:1::1 dev eth0"]);
	t.deepEqual(routes6(lab, "home1"), ["default via 2001:db8:ff:1::1 dev wan"]);
	t.deepEqual(routes6(lab, "stun"), ["default via 2001:db8:ff:3::1 dev eth0"]);
	t.deepEqual(routes6(lab, "internet").sort(), ["2001:db8:1:1::/64 via 2001:db8:ff:1::2 dev e1", "2001:db8:2:1::/64 via 2001:db8:ff:2::2 dev e2", "2001:db8:ff:3::11/128 via 2001:db8:ff:3::10 dev e4"]);
	t.deepEqual(routes6(lab, "phone"), []);
	t.is(node(lab, "alice").routes.find((route) => route.to === "default" && route.family !== 6)?.via, "192.168.1.1", "IPv4's default route is unchanged");
});

test("a NAT's IPv6 firewall: as declared, RFC 6092's default (address-and-port-dependent) when not, none without IPv6", (t) => {
	const lab = dualStack();
	t.deepEqual(node(lab, "home1").nat!.firewall6, { filtering: "address-and-port-dependent" });
	t.deepEqual(node(lab, "home2").nat!.firewall6, { filtering: "endpoint-independent" });
	t.is(node(lab, "carrier").nat!.firewall6, undefined);
	const implicit = loadLabText(`name: t\nnodes:\n  r: { kind: router }\n  n: { kind: nat }\n  a: {}\nlinks:\n  - { endpoints: [a:eth0, n:lan], subnet: 10.0.0.0/24, subnet6: 2001:db8:1::/64 }\n  - { endpoints: [n:wan, r:e1], subnet: 10.0.1.0/24, subnet6: 2001:db8:2::/64 }\n`);
	t.deepEqual(node(implicit, "n").nat!.firewall6, { filtering: "address-and-port-dependent" });
});

test("an endpoint may hold one address of each family; `~` and a lone IPv6 address work too", (t) => {
	const lab = loadLabText(`name: t\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n    addresses: [[10.0.0.1/24, 2001:db8::1/64], 2001:db8::2/64]\n`);
	t.deepEqual(v6(lab, "a"), { eth0: ["2001:db8::1/64"] });
	t.deepEqual(node(lab, "a").interfaces[0].addresses.map((address) => address.cidr), ["10.0.0.1/24"]);
	t.deepEqual(v6(lab, "b"), { eth0: ["2001:db8::2/64"] });
	t.deepEqual(node(lab, "b").interfaces[0].addresses, []);
});

const problems = (links: string, nodes = "  r: { kind: router }\n  n: { kind: nat }\n  a: {}\n") => {
	try {
		loadLabText(`name: t\nnodes:\n${nodes}links:\n${links}`);
		return [];
	} catch (error) {
		if (!(error instanceof TopologyError)) throw error;
		return error.problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col} ${problem.message}`);
	}
};
const twoLinks = (lan: string, wan = "subnet: 10.0.1.0/24, subnet6: 2001:db8:2::/64") => `  - { endpoints: [a:eth0, n:lan], ${lan} }\n  - { endpoints: [n:wan, r:e1], ${wan} }\n`;

test("mistakes in the file: the family in the wrong key, a prefix too long, an address outside subnet6, two of one family, IPv6 filtering without IPv6", (t) => {
	t.deepEqual(problems(twoLinks("subnet: 2001:db8:1::/64")), ['BAD_CIDR 7:43 subnet "2001:db8:1::/64" is an IPv6 prefix']);
	t.deepEqual(problems(twoLinks("subnet: 10.0.0.0/24, subnet6: 10.0.9.0/24")), ['BAD_CIDR 7:65 subnet6 "10.0.9.0/24" is an IPv4 subnet']);
	t.deepEqual(problems(twoLinks("subnet: 10.0.0.0/24, subnet6: 2001:db8:1::/128")), ["BAD_CIDR 7:65 subnet6 2001:db8:1::/128 has no room for two interfaces"]);
	t.deepEqual(problems(twoLinks("subnet: 10.0.0.0/24, subnet6: 2001:db8:1::/64, addresses: [[10.0.0.5/24, 2001:db8:9::5/64], ~]")), ["ADDRESS_OUTSIDE_SUBNET 7:108 2001:db8:9::5/64 is not in this segment's subnet6 2001:db8:1::/64"]);
	t.deepEqual(problems(twoLinks("addresses: [[2001:db8:1::5/64, 2001:db8:1::6/64], 10.0.0.1/24]")), ["BAD_CIDR 7:66 this endpoint has two IPv6 addresses"]);
	t.deepEqual(problems(twoLinks("addresses: [fe80::1/64, ~]")), ['BAD_CIDR 7:47 "fe80::1/64" is not an IPv4 or IPv6 address with a prefix length']);
	t.deepEqual(problems(twoLinks("subnet: 10.0.0.0/24", "subnet: 10.0.1.0/24"), "  r: { kind: router }\n  n: { kind: nat, ipv6: { filtering: endpoint-independent } }\n  a: {}\n"), ['BAD_NAT 4:19 nat "n" declares IPv6 filtering but has no IPv6 outside']);
	t.deepEqual(problems(twoLinks("subnet: 10.0.0.0/24, subnet6: 2001:db8:1::/64"), "  r: { kind: router, ipv6: {} }\n  n: { kind: nat }\n  a: {}\n"), ['BAD_NAT 3:22 "r" is a router: only a nat (a home gateway) has an IPv6 firewall']);
	t.deepEqual(problems(twoLinks("subnet: 10.0.0.0/24, subnet6: 2001:db8:1::/127", "subnet: 10.0.1.0/24, subnet6: 2001:db8:2::/64") + "  - { endpoints: [b:eth0, n:lan2], subnet: 10.0.2.0/24, subnet6: 2001:db8:1::/64 }\n", "  r: { kind: router }\n  n: { kind: nat }\n  a: {}\n  b: {}\n"), ['OVERLAPPING_SUBNETS 10:27 node "n" has 2001:db8:1::/64 on "lan2" and 2001:db8:1::/127 on "lan"; they overlap']);
});

test("a lab without IPv6 plans no IPv6: no nodad, no ip6 table, no IPv6 sysctl", async (t) => {
	const { planLab } = await import("../../src/plan/plan.ts");
	const { renderPlanText } = await import("../../src/render/plan-text.ts");
	const lab = loadLab(new URL("../../topologies/nat-zoo.yml", import.meta.url).pathname);
	const text = renderPlanText(planLab(lab, { dummy: true, netem: true, tbf: true }), "nat-zoo.yml", "/run/testbed/nat-zoo");
	t.notRegex(text, /nodad|ip6|ipv6|accept_dad/);
	t.regex(text, /table ip testbed/, "the plan itself is there");
});

test("a host where new namespaces have no IPv6: a dual-stack lab cannot be planned (up stops with exit 4 before anything is made); an IPv4 lab can", async (t) => {
	const { planLab } = await import("../../src/plan/plan.ts");
	const features = { dummy: true, netem: true, tbf: true, ipv6: false };
	t.deepEqual(planLab(dualStack(), features).unmet.map((unmet) => `${unmet.feature} ${unmet.pos.line}: ${unmet.why}`), ["ipv6 12: IPv6 addresses (node internet and others with subnet6: or IPv6 addresses)"]);
	t.deepEqual(planLab(loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname), features).unmet, []);
});

test("NPTv6: the one inside prefix is rewritten to an outside one (default: the top bit of its fourth group set), and upstream routes go to that", (t) => {
	const text = (ipv6: string) => readFileSync(new URL("../../topologies/dual-stack.yml", import.meta.url), "utf8").replace("ipv6: { filtering: endpoint-independent }", `ipv6: ${ipv6}`);
	const npt = loadLabText(text("{ filtering: endpoint-independent, nat: npt }"));
	t.deepEqual(node(npt, "home2").nat!.firewall6, { filtering: "endpoint-independent", npt: { inside: "2001:db8:2:1::/64", outside: "2001:db8:2:8001::/64" } });
	t.true(routes6(npt, "internet").includes("2001:db8:2:8001::/64 via 2001:db8:ff:2::2 dev e2"));
	t.false(routes6(npt, "internet").some((route) => route.startsWith("2001:db8:2:1::/64")), "the inside prefix is not routed from outside");
	const chosen = loadLabText(text("{ nat: npt, prefix: 2001:db8:22:1::/64 }"));
	t.deepEqual(node(chosen, "home2").nat!.firewall6?.npt, { inside: "2001:db8:2:1::/64", outside: "2001:db8:22:1::/64" });
	const bad = (ipv6: string) => {
		try {
			loadLabText(text(ipv6));
			return [];
		} catch (error) {
			return (error as TopologyError).problems.map((problem) => `${problem.code} ${problem.message}`);
		}
	};
	t.deepEqual(bad("{ nat: npt, prefix: 2001:db8:22::/48 }"), ["BAD_NAT NPTv6 maps 2001:db8:2:1::/64 onto a prefix of the same length, not 2001:db8:22::/48"]);
	t.deepEqual(bad("{ nat: npt, prefix: 2001:db8:ff:1::/64 }"), ['BAD_NAT nat "home2": its NPTv6 outside prefix 2001:db8:ff:1::/64 overlaps 2001:db8:ff:1::/64, a prefix of the lab\'s links']);
	t.deepEqual(bad("{ prefix: 2001:db8:22:1::/64 }"), ['BAD_NAT nat "home2": `prefix:` is the outside prefix of NPTv6']);
	t.deepEqual(bad("{ nat: npt, prefix: 10.0.0.0/24 }"), ['BAD_CIDR "10.0.0.0/24" is not an IPv6 prefix']);
	t.deepEqual(bad("{ nat: nat66 }"), ['BAD_VALUE nat "nat66" is not one of: npt, masquerade']);
});

// ---- IPv6 routes written in `routes:` -------------------------------------------------------------

/** A host with two links (no default route of its own), a NAT and a router: room for declared routes. */
const twoHomed = (routes: string) =>
	`name: t\nnodes:\n  r: { kind: router }\n  n: { kind: nat }\n  a:\n    routes:\n${routes}\n  b: {}\nlinks:\n` +
	"  - { endpoints: [a:eth0, n:lan], subnet: 10.0.0.0/24, subnet6: 2001:db8:1::/64 }\n" +
	"  - { endpoints: [a:eth1, b:eth0], subnet: 10.0.5.0/24, subnet6: 2001:db8:5::/64 }\n" +
	"  - { endpoints: [n:wan, r:e1], subnet: 10.0.1.0/24, subnet6: 2001:db8:2::/64 }\n";

test("IPv6 routes in `routes:`: a prefix, an address, `::/0` and `default` through an IPv6 gateway; canonical text, family 6, IPv4 untouched", async (t) => {
	const lab = loadLabText(
		twoHomed(
			[
				"      - { to: default, via: 10.0.0.1 }",
				"      - { to: '2001:DB8:0:0:0:0:0:0/32', via: '2001:db8:5:0::2' }",
				"      - { to: '2001:db8:77::9', dev: eth1 }",
				"      - { to: default, via: 2001:db8:1::1 }",
			].join("\n"),
		),
	);
	t.deepEqual(routes6(lab, "a"), ["2001:db8::/32 via 2001:db8:5::2 dev eth1", "2001:db8:77::9/128 via undefined dev eth1", "default via 2001:db8:1::1 dev eth0"]);
	t.deepEqual(node(lab, "a").routes.filter((route) => route.family !== 6).map((route) => `${route.to} via ${route.via}`), ["default via 10.0.0.1"]);
	const devOnly = loadLabText(twoHomed("      - { to: '::/0', dev: eth0 }"));
	t.deepEqual(routes6(devOnly, "a"), ["default via undefined dev eth0"], "`::/0` is IPv6's default");
	// Rendered: `ip` tells the family by the addresses; a gateway-less IPv6 default is written ::/0.
	const { planLab } = await import("../../src/plan/plan.ts");
	const { ipLine } = await import("../../src/render/batch.ts");
	const lines = (l: Lab) => planLab(l, { dummy: true, netem: true, tbf: true }).namespaces.find((ns) => ns.node === "a")!.operations.filter((op) => op.op === "route-add").map(ipLine);
	t.deepEqual(lines(devOnly), ["route add ::/0 dev eth0"]);
	t.deepEqual(lines(lab), ["route add default via 10.0.0.1 dev eth0", "route add 2001:db8::/32 via 2001:db8:5::2 dev eth1", "route add 2001:db8:77::9/128 dev eth1", "route add default via 2001:db8:1::1 dev eth0"]);
});

test("a declared IPv6 default replaces the one testbed adds, and routers upstream still route a NAT's prefix through it", (t) => {
	// The NAT declares its IPv6 default (and its IPv4 one): no second default of either family.
	const lab = loadLabText(
		"name: t\nnodes:\n  r: { kind: router }\n  n:\n    kind: nat\n    routes:\n      - { to: default, via: 10.0.1.1 }\n      - { to: default, via: '2001:db8:2::1' }\n  a: {}\nlinks:\n" +
			"  - { endpoints: [a:eth0, n:lan], subnet: 10.0.0.0/24, subnet6: 2001:db8:1::/64 }\n  - { endpoints: [n:wan, r:e1], subnet: 10.0.1.0/24, subnet6: 2001:db8:2::/64 }\n",
	);
	t.deepEqual(routes6(lab, "n"), ["default via 2001:db8:2::1 dev wan"]);
	t.deepEqual(node(lab, "n").routes.filter((route) => route.to === "default").length, 2, "one default per family");
	t.deepEqual(routes6(lab, "r"), ["2001:db8:1::/64 via 2001:db8:2::2 dev e1"], "the router reaches the NAT's inside prefix");
	// A declared route to a held address's /128 on a gateway is not added twice.
	const held = loadLabText(
		"name: t\nnodes:\n  r:\n    kind: router\n    routes: [{ to: '2001:db8:9::11', via: '2001:db8:9::10' }]\n  s:\n    interfaces: [{ name: alt0, type: dummy, addresses: [2001:db8:9::11/64] }]\nlinks:\n  - endpoints: [s:eth0, r:e1]\n    addresses: [2001:db8:9::10/64, 2001:db8:9::1/64]\n",
	);
	t.deepEqual(routes6(held, "r"), ["2001:db8:9::11/128 via 2001:db8:9::10 dev e1"]);
});

test("mistakes in IPv6 routes: families mixed, a link-local gateway, a gateway on no IPv6 link, host bits, a second route to one destination", (t) => {
	const problemsOf = (routes: string) => {
		try {
			loadLabText(twoHomed(routes));
			return [];
		} catch (error) {
			if (!(error instanceof TopologyError)) throw error;
			return error.problems.map((problem) => `${problem.code} ${problem.pos.line}:${problem.pos.col} ${problem.message} — ${problem.fix}`);
		}
	};
	t.deepEqual(problemsOf("      - { to: '2001:db8::/32', via: 10.0.5.2 }"), ["BAD_ROUTE 7:37 gateway 10.0.5.2 is IPv4 but the destination 2001:db8::/32 is IPv6 — give an IPv6 gateway, or write the route's IPv4 destination"]);
	t.deepEqual(problemsOf("      - { to: 10.9.0.0/16, via: '2001:db8:5::2' }"), ["BAD_ROUTE 7:33 gateway 2001:db8:5::2 is IPv6 but the destination 10.9.0.0/16 is IPv4 — give an IPv4 gateway, or write the route's IPv6 destination"]);
	t.deepEqual(problemsOf("      - { to: default, via: 'fe80::1' }"), [
		"BAD_ROUTE 7:29 gateway \"fe80::1\" is not an IPv4 or IPv6 address (a link-local gateway is not supported: give the neighbour's address on the link's `subnet6:`) — write the gateway's address, e.g. `via: 10.0.1.1` or `via: 2001:db8:1:1::1`",
	]);
	t.deepEqual(problemsOf("      - { to: default, via: '2001:db8:2::1' }"), ['GATEWAY_NOT_CONNECTED 7:29 gateway 2001:db8:2::1 of node "a" is on none of its connected IPv6 prefixes — use an address on one of: 2001:db8:1::/64, 2001:db8:5::/64']);
	t.deepEqual(problemsOf("      - { to: '2001:db8::1/32', dev: eth1 }"), ["BAD_CIDR 7:15 route destination 2001:db8::1/32 has host bits set: the kernel takes only a prefix's first address — write `to: 2001:db8::/32`"]);
	t.deepEqual(problemsOf("      - { to: 10.9.0.1/16, dev: eth1 }"), ["BAD_CIDR 7:15 route destination 10.9.0.1/16 has host bits set: the kernel takes only a prefix's first address — write `to: 10.9.0.0/16`"]);
	t.deepEqual(problemsOf("      - { to: '::/0', dev: eth1 }\n      - { to: default, via: '2001:db8:1::1' }"), ['BAD_ROUTE 8:15 node "a" has a second IPv6 route to default — keep one of them: the kernel holds one route per destination']);
	t.deepEqual(problemsOf("      - { to: '2001:db8:77::9', dev: eth1 }\n      - { to: '2001:db8:77:0::9/128', dev: eth0 }"), ['BAD_ROUTE 8:15 node "a" has a second IPv6 route to 2001:db8:77::9/128 — keep one of them: the kernel holds one route per destination']);
	t.deepEqual(problemsOf("      - { to: default, dev: eth1 }\n      - { to: '::/0', dev: eth1 }"), [], "an IPv4 and an IPv6 default are two destinations");
	t.deepEqual(problemsOf("      - { to: 'gw6', via: '2001:db8:5::2' }").map((line) => line.split(" — ")[0]), ['BAD_CIDR 7:15 route destination "gw6" is not default, an address or a CIDR']);
});

test("NAT66 masquerade: the inside prefix leaves from the gateway's outside address; nothing routes to the inside; only replies get in", async (t) => {
	const text = (ipv6: string) => readFileSync(new URL("../../topologies/dual-stack.yml", import.meta.url), "utf8").replace("ipv6: { filtering: address-and-port-dependent }", `ipv6: ${ipv6}`);
	const lab = loadLabText(text("{ nat: masquerade }"));
	t.deepEqual(node(lab, "home1").nat!.firewall6, { filtering: "address-and-port-dependent", masquerade: { inside: ["2001:db8:1:1::/64"], outside: "2001:db8:ff:1::2" } });
	t.false(routes6(lab, "internet").some((route) => route.startsWith("2001:db8:1:1::/64")), "the inside prefix is not routed from outside");
	t.true(routes6(lab, "internet").includes("2001:db8:2:1::/64 via 2001:db8:ff:2::2 dev e2"), "the other home is routed as before");
	const { planLab } = await import("../../src/plan/plan.ts");
	const { renderPlanText } = await import("../../src/render/plan-text.ts");
	const plan = renderPlanText(planLab(lab, { dummy: true, netem: true, tbf: true }), "dual-stack.yml", "/run/testbed/dual-stack");
	t.regex(plan, /# ipv6 firewall home1: NAT66 masquerade to 2001:db8:ff:1::2; filtering address-and-port-dependent/);
	t.regex(plan, /type nat hook postrouting priority srcnat; policy accept;\n\t\toifname "wan" ip6 saddr 2001:db8:1:1::\/64 masquerade comment "NAT66: the inside leaves from 2001:db8:ff:1::2, a mapping per flow"/);
	const bad = (ipv6: string) => {
		try {
			loadLabText(text(ipv6));
			return [];
		} catch (error) {
			return (error as TopologyError).problems.map((problem) => `${problem.code} ${problem.message} — ${problem.fix}`);
		}
	};
	t.deepEqual(bad("{ nat: masquerade, filtering: endpoint-independent }"), ['BAD_NAT nat "home1": NAT66 masquerade lets only replies in (address-and-port-dependent), not endpoint-independent — remove `filtering:`, or route IPv6 (no `nat:`) or translate it with `nat: npt` to filter otherwise']);
	t.deepEqual(bad("{ nat: masquerade, filtering: address-and-port-dependent }"), [], "the one filtering it has may be written");
	t.deepEqual(bad("{ nat: masquerade, prefix: 2001:db8:22:1::/64 }"), ['BAD_NAT nat "home1": `prefix:` is the outside prefix of NPTv6 — add `nat: npt`, or remove `prefix:`']);
});
