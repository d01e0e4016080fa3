// How a punch reports port mapping, without a lab: which side's mapping the path went through (from
// the connected events' candidate kinds and what the peer saw), and the lines `testbed punch
// --port-mapping` prints.
import test from "ava";
import { mappedVia, portMappingMethods, type PunchResult } from "../../src/drivers/punch.ts";
import type { PortMappingReport } from "../../src/drivers/peer-agent.ts";
import { portMappingLines } from "../../src/cli/commands/punch.ts";

const granted: PortMappingReport = { granted: { method: "pcp", external: "11.0.0.2:40001", internal: "192.168.1.2:40001", lifetimeS: 600 }, failures: [] };
const none: PortMappingReport = {
	granted: null,
	failures: [
		{ method: "pcp", reason: "no answer within 2000 ms" },
		{ method: "nat-pmp", reason: "no answer within 2000 ms" },
		{ method: "upnp", reason: "no SSDP answer from 10.0.0.1 within 1200 ms" },
	],
};
const nodes = { a: "alice", b: "bob" };

test("the path goes through alice's mapping when bob's side went to her mapped candidate, or when bob saw alice at it", (t) => {
	const connected = (fields: Record<string, unknown>) => ({ event: "connected", ...fields });
	t.deepEqual(mappedVia(nodes, { a: connected({ remote: "198.51.100.6:31000", candidate: "prflx", seenAs: "11.0.0.2:40001" }), b: connected({ remote: "11.0.0.2:40001", candidate: "mapped" }) }, { a: granted, b: none }), [
		{ node: "alice", method: "pcp", external: "11.0.0.2:40001" },
	]);
	t.deepEqual(mappedVia(nodes, { a: connected({ remote: "198.51.100.6:31000", candidate: "srflx", seenAs: "11.0.0.2:40001" }), b: connected({ remote: "11.0.0.2:20000", candidate: "prflx" }) }, { a: granted, b: none }), [
		{ node: "alice", method: "pcp", external: "11.0.0.2:40001" },
	], "seen at her mapped endpoint");
	t.deepEqual(mappedVia(nodes, { a: connected({ remote: "198.51.100.6:6000", candidate: "srflx", seenAs: "11.0.0.2:20000" }), b: connected({ remote: "11.0.0.2:20000", candidate: "srflx" }) }, { a: granted, b: none }), [], "granted but not used");
	t.deepEqual(mappedVia(nodes, { a: connected({ remote: "11.0.0.2:40001", candidate: "mapped" }), b: connected({ remote: "x", candidate: "prflx" }) }, { a: granted, b: none }), [], "a 'mapped' remote that is no grant of the other side's is not claimed");
});

test("--port-mapping's lines: the mapping the path went through; a peer that asked and got none, with every method's reason", (t) => {
	const base: PunchResult = { a: "alice", b: "bob", outcome: "direct", timeToConnectMs: 3, packetsSent: 10, rttMs: 0.2, run: 1 };
	t.deepEqual(portMappingLines([{ ...base, portMapping: { a: granted, b: none }, mappedVia: [{ node: "alice", method: "pcp", external: "11.0.0.2:40001" }] }], "alice", "bob"), [
		"direct via alice's port mapping (pcp) 11.0.0.2:40001",
		"bob asked for a port mapping but got none: pcp: no answer within 2000 ms; nat-pmp: no answer within 2000 ms; upnp: no SSDP answer from 10.0.0.1 within 1200 ms",
	]);
	t.deepEqual(portMappingLines([{ ...base, portMapping: { a: granted, b: null }, mappedVia: [] }], "alice", "bob"), [
		"alice's gateway granted 11.0.0.2:40001 (pcp); the path did not go through it",
		"bob did not get to ask for a port mapping",
	]);
	const two = [1, 2].map((run) => ({ ...base, run, portMapping: { a: granted, b: none }, mappedVia: [{ node: "alice", method: "pcp" as const, external: "11.0.0.2:40001" }] }));
	t.deepEqual(portMappingLines(two, "alice", "bob"), [
		"run 1: direct via alice's port mapping (pcp) 11.0.0.2:40001",
		"run 2: direct via alice's port mapping (pcp) 11.0.0.2:40001",
		"bob asked for a port mapping but got none: pcp: no answer within 2000 ms; nat-pmp: no answer within 2000 ms; upnp: no SSDP answer from 10.0.0.1 within 1200 ms",
	], "a peer's refusal is said once");
	t.deepEqual(portMappingLines([{ ...base, outcome: "failed", portMapping: { a: granted, b: granted } }], "alice", "bob"), ["port mapping: no path went through a mapping"]);
});

test("the punch option: true asks pcp, nat-pmp, upnp in that order; a list in its own order; absent or false: none", (t) => {
	t.deepEqual(portMappingMethods(true), ["pcp", "nat-pmp", "upnp"]);
	t.deepEqual(portMappingMethods(["upnp", "pcp"]), ["upnp", "pcp"]);
	t.deepEqual(portMappingMethods(undefined), []);
	t.deepEqual(portMappingMethods(false), []);
});

test("probe judges the port-mapping protocols a NAT answers against the declared ones", async (t) => {
	const { judgePortMapping } = await import("../../src/drivers/probe.ts");
	const { loadLab } = await import("../../src/load.ts");
	const lab = loadLab(new URL("../../topologies/port-mapping.yml", import.meta.url).pathname);
	const nat = (name: string) => lab.nodes.find((node) => node.name === name)!;
	const methods = (answered: string[], ok: string[]) => ({ methods: ["pcp", "nat-pmp", "upnp"].map((method) => ({ method, answered: answered.includes(method), ok: ok.includes(method) })) });
	const judged = (name: string, discovery: Parameters<typeof judgePortMapping>[1]) => {
		const mismatches: string[] = [];
		return { ...judgePortMapping(nat(name), discovery, mismatches), mismatches };
	};
	t.deepEqual(judged("pcp-only", methods(["pcp"], ["pcp"])), { declared: ["pcp"], answered: ["pcp"], refusing: [], mismatches: [] });
	t.deepEqual(judged("sym", methods([], [])).mismatches, []);
	t.deepEqual(judged("pcp-only", methods(["pcp", "nat-pmp"], ["pcp", "nat-pmp"])).mismatches, ["port mapping: declared pcp, answered nat-pmp, pcp"]);
	t.deepEqual(judged("sym-pm", methods(["pcp"], ["pcp"])).mismatches, ["port mapping: declared nat-pmp, pcp, upnp, answered pcp"]);
	t.deepEqual(judged("home", methods(["pcp", "nat-pmp", "upnp"], ["pcp"])).refusing, ["nat-pmp", "upnp"], "behind a carrier NAT: answers, cannot map");
	t.deepEqual(judged("sym-pm", { error: "no IPv4 default gateway" }).mismatches, ["port mapping: not asked (no IPv4 default gateway)"]);
});
