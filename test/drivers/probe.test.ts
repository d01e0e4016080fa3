// Pure parts of `probe`: paths through NATs, composing layered NATs, and judging measured vs declared.
import test from "ava";
import { composeBehaviour, judge, type MeasuredBehaviour } from "../../src/drivers/probe.ts";
import { loadLab } from "../../src/load.ts";
import { defaultPath, probeNodeFor, publicNodes } from "../../src/resolve/routing.ts";

const topology = (name: string) => loadLab(new URL(`../../topologies/${name}.yml`, import.meta.url).pathname);
const node = (lab: ReturnType<typeof topology>, name: string) => lab.nodes.find((candidate) => candidate.name === name)!;

test("default paths cross the NATs innermost first, even where private addresses repeat", (t) => {
	const lab = topology("cgnat");
	t.deepEqual(defaultPath(lab, node(lab, "bob")), { hops: ["bob", "home2", "carrier", "internet"], nats: ["home2", "carrier"], end: "internet" });
	t.deepEqual(defaultPath(lab, node(lab, "home1")).nats, ["carrier"]);
	t.deepEqual(
		publicNodes(lab).map((n) => n.name),
		["internet", "stun"],
	);
});

test("each NAT is probed from a host right behind it, else from a NAT box right behind it", (t) => {
	const lab = topology("cgnat");
	t.is(probeNodeFor(lab, node(lab, "home2"))?.name, "bob");
	t.is(probeNodeFor(lab, node(lab, "carrier"))?.name, "home1");
});

test("layered NATs compose: the most dependent behaviour wins, hairpin is not predicted", (t) => {
	const lab = topology("nat-zoo");
	t.deepEqual(composeBehaviour(lab, ["nat-full-cone"]), { mapping: "endpoint-independent", filtering: "endpoint-independent", hairpin: true, portPreservation: true, udpTimeoutS: 120, unsolicitedTcp: "drop" });
	t.like(composeBehaviour(lab, ["nat-full-cone", "nat-symmetric"]), { mapping: "address-and-port-dependent", filtering: "address-and-port-dependent", hairpin: null, portPreservation: false, unsolicitedTcp: null });
	t.like(composeBehaviour(lab, ["mad-fei", "mei-fad"]), { mapping: "address-dependent", filtering: "address-dependent" });
});

const measured = (overrides: Partial<MeasuredBehaviour>): MeasuredBehaviour => ({
	mapping: "endpoint-independent",
	filtering: "address-and-port-dependent",
	hairpin: true,
	portPreservation: true,
	natDetected: true,
	durationMs: 1,
	...overrides,
});
const expected = { mapping: "endpoint-independent", filtering: "address-and-port-dependent", hairpin: true, portPreservation: true, udpTimeoutS: 30, unsolicitedTcp: "drop" } as const;

test("judge: equal is ok; each difference is named", (t) => {
	t.deepEqual(judge(expected, measured({}), 3), []);
	t.deepEqual(judge(expected, measured({ filtering: "endpoint-independent", portPreservation: false }), 3), [
		"filtering: declared address-and-port-dependent, measured endpoint-independent",
		"port preservation: declared on, measured off",
	]);
	t.deepEqual(judge({ ...expected, hairpin: null }, measured({ hairpin: false }), 3), [], "hairpin not compared through layers");
	t.deepEqual(judge(expected, measured({ error: "no answer" }), 3), ["probe failed: no answer"]);
});

test("judge: over TCP, what a filtered SYN got is compared when measured and predictable", (t) => {
	t.deepEqual(judge(expected, measured({ unsolicitedTcp: "rst" }), 3), ["unsolicited SYN: declared drop, measured rst"]);
	t.deepEqual(judge(expected, measured({ unsolicitedTcp: "drop" }), 3), []);
	t.deepEqual(judge(expected, measured({ unsolicitedTcp: null }), 3), [], "no test was refused (an endpoint-independent filter)");
	t.deepEqual(judge({ ...expected, unsolicitedTcp: null }, measured({ unsolicitedTcp: "rst" }), 3), [], "through several NATs the outer one answers first");
});

test("judge: the declared udp-timeout must lie in the measured bracket, give or take a step", (t) => {
	t.deepEqual(judge(expected, measured({ lifetime: { aliveS: 27, expiredS: 33 } }), 3), []);
	t.deepEqual(judge(expected, measured({ lifetime: { aliveS: 60, expiredS: 66 } }), 3), ["udp-timeout: declared 30s, measured alive after 60s, gone after 66s"]);
	t.deepEqual(judge(expected, measured({ lifetime: { aliveS: 9, expiredS: 12 } }), 3), ["udp-timeout: declared 30s, measured alive after 9s, gone after 12s"]);
});
