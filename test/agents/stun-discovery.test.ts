// RFC 5780 classification, table-driven: every mapping × filtering pair through a model NAT, and
// the cases where answers are missing.
import test from "ava";
import {
	type Behaviour,
	type Endpoint,
	type FilteringObservation,
	classicNatType,
	classifyFiltering,
	classifyMapping,
	estimateLifetime,
	lifetimeCandidates,
	natDetected,
	portPreserved,
} from "../../agents/stun/discovery.ts";

const behaviours = ["endpoint-independent", "address-dependent", "address-and-port-dependent"] as const;
type Known = (typeof behaviours)[number];

const primary = { address: "203.0.113.10", port: 3478 };
const alternate = { address: "203.0.113.11", port: 3479 };
const publicIp = "198.51.100.2";

/** A model NAT with one inside socket: which public port each destination gets, and what gets back in. */
function modelNat(mapping: Known, filtering: Known) {
	const contacted: Endpoint[] = [];
	const key = (to: Endpoint) => (mapping === "endpoint-independent" ? "" : mapping === "address-dependent" ? to.address : `${to.address}:${to.port}`);
	const ports = new Map<string, number>();
	return {
		send(to: Endpoint): Endpoint {
			contacted.push(to);
			if (!ports.has(key(to))) ports.set(key(to), 40000 + ports.size);
			return { address: publicIp, port: ports.get(key(to))! };
		},
		admits(from: Endpoint): boolean {
			if (filtering === "endpoint-independent") return true;
			if (filtering === "address-dependent") return contacted.some((to) => to.address === from.address);
			return contacted.some((to) => to.address === from.address && to.port === from.port);
		},
	};
}

/** The probe's order: test I, filtering II/III (while only the primary was contacted), mapping II/III. */
function discover(mapping: Known, filtering: Known): { mapping: Behaviour; filtering: Behaviour } {
	const nat = modelNat(mapping, filtering);
	const testI = nat.send(primary);
	const filteringII: FilteringObservation = nat.send(primary) && nat.admits(alternate) ? "answered" : "silent";
	const filteringIII: FilteringObservation = filteringII === "silent" ? (nat.send(primary) && nat.admits({ address: primary.address, port: alternate.port }) ? "answered" : "silent") : "not-run";
	const testII = nat.send({ address: alternate.address, port: primary.port });
	const testIII = nat.send(alternate);
	return { mapping: classifyMapping({ testI, testII, testIII }), filtering: classifyFiltering({ testI: true, testII: filteringII, testIII: filteringIII }) };
}

for (const mapping of behaviours) {
	for (const filtering of behaviours) {
		test(`a ${mapping} mapping / ${filtering} filtering NAT is classified as exactly that`, (t) => {
			t.deepEqual(discover(mapping, filtering), { mapping, filtering });
		});
	}
}

const a = { address: publicIp, port: 40000 };
const b = { address: publicIp, port: 40001 };
const c = { address: publicIp, port: 40002 };
const elsewhere = { address: "198.51.100.9", port: 40000 };

const mappingCases: [string, Parameters<typeof classifyMapping>[0], Behaviour][] = [
	["no answer to test I", {}, "unknown"],
	["no answer to test II (no OTHER-ADDRESS, or the alternate is down)", { testI: a }, "unknown"],
	["II equals I, III not run", { testI: a, testII: a }, "endpoint-independent"],
	["II differs, no answer to III", { testI: a, testII: b }, "unknown"],
	["II differs, III equals II", { testI: a, testII: b, testIII: b }, "address-dependent"],
	["II differs, III differs again", { testI: a, testII: b, testIII: c }, "address-and-port-dependent"],
	["III back to I's mapping is still not II", { testI: a, testII: b, testIII: a }, "address-and-port-dependent"],
	["same port on another public address (a NAT pool)", { testI: a, testII: elsewhere, testIII: elsewhere }, "address-dependent"],
];
for (const [name, observed, expected] of mappingCases) test(`mapping: ${name} → ${expected}`, (t) => t.is(classifyMapping(observed), expected));

const filteringCases: [string, Parameters<typeof classifyFiltering>[0], Behaviour][] = [
	["no answer to test I", { testI: false, testII: "not-run", testIII: "not-run" }, "unknown"],
	["II answered", { testI: true, testII: "answered", testIII: "not-run" }, "endpoint-independent"],
	["II silent, III answered", { testI: true, testII: "silent", testIII: "answered" }, "address-dependent"],
	["II and III silent", { testI: true, testII: "silent", testIII: "silent" }, "address-and-port-dependent"],
	["II answered from the wrong address (CHANGE-REQUEST ignored)", { testI: true, testII: "wrong-source", testIII: "not-run" }, "unknown"],
	["III answered from the wrong address", { testI: true, testII: "silent", testIII: "wrong-source" }, "unknown"],
	["II silent, III not run", { testI: true, testII: "silent", testIII: "not-run" }, "unknown"],
	["server without RFC 5780", { testI: true, testII: "not-run", testIII: "not-run" }, "unknown"],
];
for (const [name, observed, expected] of filteringCases) test(`filtering: ${name} → ${expected}`, (t) => t.is(classifyFiltering(observed), expected));

test("NAT detection: mapped address equal to a local address and port means no NAT", (t) => {
	t.false(natDetected({ address: "198.51.100.10", port: 5000 }, ["127.0.0.1", "198.51.100.10"], 5000));
	t.true(natDetected({ address: "198.51.100.10", port: 5001 }, ["198.51.100.10"], 5000), "same address, another port: a NAT (or a firewall that rewrites ports)");
	t.true(natDetected({ address: publicIp, port: 5000 }, ["192.168.1.2"], 5000));
	t.is(natDetected(undefined, ["192.168.1.2"], 5000), null);
});

test("port preservation", (t) => {
	t.true(portPreserved({ address: publicIp, port: 5000 }, 5000));
	t.false(portPreserved({ address: publicIp, port: 5001 }, 5000));
	t.is(portPreserved(undefined, 5000), null);
});

const classic: [boolean | null, Behaviour, Behaviour, string][] = [
	[true, "endpoint-independent", "endpoint-independent", "full-cone"],
	[true, "endpoint-independent", "address-dependent", "restricted-cone"],
	[true, "endpoint-independent", "address-and-port-dependent", "port-restricted"],
	[true, "address-dependent", "address-and-port-dependent", "symmetric"],
	[true, "address-and-port-dependent", "address-and-port-dependent", "symmetric"],
	[true, "address-and-port-dependent", "endpoint-independent", "symmetric"],
	[true, "unknown", "endpoint-independent", "unknown"],
	[true, "endpoint-independent", "unknown", "unknown"],
	[false, "endpoint-independent", "endpoint-independent", "open"],
	[false, "endpoint-independent", "address-and-port-dependent", "firewall"],
	[null, "unknown", "unknown", "unknown"],
];
for (const [nat, mapping, filtering, name] of classic) test(`classic name: nat=${nat} ${mapping} / ${filtering} → ${name}`, (t) => t.is(classicNatType(nat, mapping, filtering), name));

test("mapping lifetime: between the longest idle survived and the shortest not survived", (t) => {
	t.deepEqual(estimateLifetime([{ idleS: 1, alive: true }, { idleS: 2, alive: true }, { idleS: 3, alive: false }, { idleS: 4, alive: false }]), { aliveS: 2, expiredS: 3, consistent: true });
	t.deepEqual(estimateLifetime([{ idleS: 1, alive: true }, { idleS: 2, alive: true }]), { aliveS: 2, expiredS: null, consistent: true });
	t.deepEqual(estimateLifetime([{ idleS: 1, alive: false }]), { aliveS: 0, expiredS: 1, consistent: true });
	t.deepEqual(estimateLifetime([{ idleS: 1, alive: false }, { idleS: 2, alive: true }]), { aliveS: 2, expiredS: 1, consistent: false });
	t.deepEqual(estimateLifetime([]), { aliveS: 0, expiredS: null, consistent: true });
});

test("mapping lifetime candidates: steps up to the bound, at most 40 of them", (t) => {
	t.deepEqual(lifetimeCandidates(3, 1), [1, 2, 3]);
	t.deepEqual(lifetimeCandidates(2, 0.5), [0.5, 1, 1.5, 2]);
	t.deepEqual(lifetimeCandidates(0.3, 1), []);
	t.is(lifetimeCandidates(120, 0.1).length, 40);
	t.deepEqual(lifetimeCandidates(0, 1), []);
	t.deepEqual(lifetimeCandidates(5, 0), []);
});
