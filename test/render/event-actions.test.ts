// Events against a resolved lab, and the commands they become: pure, compared with golden files.
import test from "ava";
import { stringify } from "yaml";
import { eventFromArguments } from "../../src/cli/commands/event.ts";
import { EventError, ExitCode, TestbedError, UsageError } from "../../src/errors.ts";
import { loadLab } from "../../src/load.ts";
import type { HostFeatures } from "../../src/plan/operations.ts";
import type { Lab, LabEvent } from "../../src/resolve/lab.ts";
import { describeActions, forgetMappings, renderEvent } from "../../src/render/event-actions.ts";
import { natStateSets, parseNatState } from "../../src/render/nat-state.ts";
import { labAfter } from "../../src/resolve/event-targets.ts";
import { defaultPath } from "../../src/resolve/routing.ts";
import { renderDot } from "../../src/report/graph-dot.ts";
import { golden } from "../helpers/golden.ts";

const thisKernel: HostFeatures = { dummy: false, netem: false, tbf: true };
const topology = (name: string): Lab => loadLab(new URL(`../../topologies/${name}.yml`, import.meta.url).pathname);


const event = (lab: Lab, ...words: string[]): LabEvent => eventFromArguments(lab, words);

test("every event kind, as the commands it runs (the lecture's commands, for teachers)", (t) => {
	const reboot = topology("nat-reboot");
	const roaming = topology("roaming");
	const flaky = topology("flaky-uplink");
	// What a NAT's maps hold, as `nft -j list table ip testbed` prints it.
	const live = JSON.stringify({
		nftables: [
			{ map: { name: "public", elem: [[{ elem: { val: 20001, expires: 20 } }, { concat: ["192.168.1.2", 40000] }], [{ elem: { val: 20002, expires: 20 } }, { concat: ["192.168.1.9", 40001] }]] } },
			{ map: { name: "eim", elem: [[{ elem: { val: { concat: ["192.168.1.2", 40000] }, expires: 20 } }, 20001], [{ concat: ["192.168.1.9", 40001] }, 20002]] } },
			{ set: { name: "used", elem: [{ elem: { val: 20001, expires: 20 } }, 20002] } },
		],
	});
	const text: string[] = [];
	const show = (lab: Lab, ev: LabEvent) => {
		const node = lab.nodes.find((candidate) => candidate.name === (ev as { nat?: string }).nat);
		const natState = node?.nat ? parseNatState(live, natStateSets(node.name, node.nat).map((set) => set.name)) : undefined;
		const impairment = (end: { netns: string; iface: string }) => [{ netns: end.netns, argv: ["tc", "qdisc", "replace", "dev", end.iface, "root", "…"] }];
		text.push(`## ${ev.label}`, describeActions(renderEvent(ev, { features: thisKernel, nat: node?.nat, natState, impairment })), "");
	};
	show(reboot, event(reboot, "nat-reboot", "home1", "--outage=1s"));
	show(reboot, event(reboot, "rebind", "home1", "--host=alice"));
	show(reboot, event(reboot, "expire", "home1", "--host=alice"));
	show(reboot, event(reboot, "expire", "home2"));
	show(reboot, event(reboot, "link-down", "home1:wan"));
	show(reboot, event(reboot, "link-up", "internet:e1"));
	show(reboot, event(reboot, "flap", "home1:wan", "--period=1s", "--down-for=200ms", "--count=2"));
	show(flaky, event(flaky, "impair", "home1:wan", "loss=5%", "--from=home1"));
	show(roaming, event(roaming, "move", "phone:cell"));
	show(roaming, event(roaming, "move", "phone:wifi"));
	const portMapping = topology("port-mapping");
	show(portMapping, event(portMapping, "nat-reboot", "sym-pm"));
	// A gateway with IPv6: its firewall forgets what the inside had opened, and its IPv6 flows.
	const dualStack = topology("dual-stack");
	show(dualStack, event(dualStack, "nat-reboot", "home2"));
	golden(t, "events.txt", text.join("\n"));
});

test("rebind keeps the host's old public ports taken; expire frees them; other hosts' mappings stay", (t) => {
	const lab = topology("nat-reboot");
	// As `nft -j` lists them: keys are protocol . port; alice has a UDP and a TCP mapping on port 20001.
	const state = parseNatState(
		JSON.stringify({
			nftables: [
				{
					map: {
						name: "public",
						elem: [
							[{ elem: { val: { concat: ["udp", 20001] } } }, { concat: ["192.168.1.2", 40000] }],
							[{ concat: ["tcp", 20001] }, { concat: ["192.168.1.2", 40000] }],
							[{ concat: ["udp", 20002] }, { concat: ["192.168.1.9", 40001] }],
						],
					},
				},
				{ set: { name: "used", elem: [{ concat: ["udp", 20001] }, { concat: ["tcp", 20001] }, { concat: ["udp", 20002] }, { concat: ["tcp", 20002] }] } },
			],
		}),
		["public", "eim", "used"],
	);
	const rebind = event(lab, "rebind", "home1", "--host=alice") as Extract<LabEvent, { kind: "rebind" }>;
	const expire = event(lab, "expire", "home1", "--host=alice") as Extract<LabEvent, { kind: "expire" }>;
	const forgotten = "delete element ip testbed public { udp . 20001 }\ndelete element ip testbed public { tcp . 20001 }\n";
	t.is(forgetMappings(rebind, state).nft, forgotten);
	t.is(forgetMappings(expire, state).nft, forgotten + "delete element ip testbed used { udp . 20001 }\ndelete element ip testbed used { tcp . 20001 }\n");
	t.deepEqual(forgetMappings(rebind, state).conntrack, [
		["conntrack", "-D", "--orig-src", "192.168.1.2"],
		["conntrack", "-D", "--reply-src", "192.168.1.2"],
	]);
});

test("the NAT's state sets are read from the rules up builds, per behaviour", (t) => {
	const zoo = loadLab(new URL("../../topologies/nat-zoo.yml", import.meta.url).pathname);
	const sets = Object.fromEntries(zoo.nodes.filter((node) => node.nat && !node.nat.behaviour.oneToOne).map((node) => [node.nat!.behaviour.label, natStateSets(node.name, node.nat!).map((set) => `${set.kind} ${set.name}`).join(", ")]));
	t.is(sets["full-cone"] ?? Object.values(sets)[0], "map public, map eim, set used");
	t.true(Object.values(sets).some((list) => list.includes("map adm") && list.includes("set seen")), JSON.stringify(sets));
	t.true(Object.values(sets).some((list) => list.includes("map adf")), JSON.stringify(sets));
});

test("bad event targets are refused with the reason and the fix, before anything runs", (t) => {
	const lab = topology("roaming");
	// A bad request (EventError from the library, UsageError for the command line's own words): exit 2.
	const refused = (...args: string[]) => {
		const error = t.throws(() => event(lab, ...args), { instanceOf: TestbedError })!;
		t.true(error instanceof EventError || error instanceof UsageError, error.name);
		t.is(error.exitCode, ExitCode.usage);
		return error.message;
	};
	t.regex(refused("nat-reboot", "phone"), /"phone" is a host, not a nat/);
	t.regex(refused("nat-reboot", "hom"), /no node "hom".*did you mean "home"/);
	t.regex(refused("link-down", "home:wlan"), /no link interface "wlan".*home:lan, home:wan/);
	t.regex(refused("link-down", "home"), /not node:interface/);
	t.regex(refused("rebind", "home", "--host=bob"), /"bob" is not behind NAT "home"/);
	t.regex(refused("move", "home:lan"), /only hosts move/);
	t.regex(refused("move", "phone:cell", "--via=192.168.1.1"), /gateway 192\.168\.1\.1 is not on the network of phone:cell/);
	t.regex(refused("impair", "home:wan", "loss=150%"), /loss: "150%" is not valid/);
	t.regex(refused("impair", "home:wan", "lose=5%"), /unknown key "lose".*did you mean "loss"/);
	t.regex(refused("impair", "home:wan"), /say what the link does now/);
	t.regex(refused("flap", "home:wan", "--count=0"), /count must be a whole number/);
	t.regex(refused("reboot", "home"), /unknown event "reboot"/);
	t.regex(refused("restart", "nobody"), /no node "nobody"/);
});

test("a step in a file and the same event on the command line are the same event", (t) => {
	const lab = topology("nat-reboot");
	const step = lab.steps!.find((entry) => entry.kind === "event" && entry.event.kind === "nat-reboot");
	t.truthy(step);
	t.deepEqual(step!.kind === "event" ? step!.event : undefined, event(lab, "nat-reboot", "home1", "--outage=1s"));
	t.is(stringify({ ok: true }), "ok: true\n");
});

test("the lab after an event, as the ledger keeps it: a moved host's route and region, links unplugged, impairments replaced", (t) => {
	const roaming = topology("roaming");
	const moved = labAfter(roaming, event(roaming, "move", "phone:cell"));
	const phone = moved.nodes.find((node) => node.name === "phone")!;
	t.deepEqual(phone.routes.filter((route) => route.to === "default").map((route) => `${route.via} ${route.dev}`), ["100.64.0.1 cell"]);
	t.true(phone.interfaces.find((iface) => iface.name === "wifi")!.down);
	t.falsy(phone.interfaces.find((iface) => iface.name === "cell")!.down);
	t.deepEqual(moved.links.filter((link) => link.down).map((link) => link.endpoints.map((end) => `${end.node}:${end.iface}`).join(" — ")), ["phone:wifi — home:lan"]);
	t.deepEqual(defaultPath(moved, phone).nats, ["carrier"], "theory now sees the carrier NAT in front of the phone");
	t.true(renderDot(moved).includes('subgraph "cluster_behind:carrier"'), "the picture of the running lab shows it behind the carrier");
	t.true(roaming.nodes.find((node) => node.name === "phone")!.interfaces.find((iface) => iface.name === "cell")!.down, "the lab before is untouched");

	const flaky = topology("flaky-uplink");
	const cleared = labAfter(flaky, event(flaky, "impair", "home1:wan", "clear", "--from=home1"));
	t.is(cleared.nodes.find((node) => node.name === "home1")!.interfaces.find((iface) => iface.name === "wan")!.impair, undefined);
	t.truthy(cleared.nodes.find((node) => node.name === "internet")!.interfaces.find((iface) => iface.name === "e1")!.impair, "the other direction keeps its impairment");
	const cut = labAfter(flaky, event(flaky, "link-down", "home1:wan"));
	t.true(cut.links.some((link) => link.down));
	t.false(labAfter(cut, event(cut, "link-up", "home1:wan")).links.some((link) => link.down));
	const reboot = topology("nat-reboot");
	t.is(labAfter(reboot, event(reboot, "nat-reboot", "home1")), reboot, "NAT state is not part of the lab");
});

test("a masquerade NAT keeps no maps: nat-reboot and expire are its conntrack (and a pause), its iptables rules stay", (t) => {
	const lab = topology("lecture-nat");
	const host = lab.nodes.find((node) => node.name === "host")!;
	t.deepEqual(natStateSets(host.name, host.nat!), []);
	const reboot = describeActions(renderEvent(event(lab, "nat-reboot", "host"), { features: thisKernel, nat: host.nat }));
	t.false(reboot.includes("flush "), reboot);
	t.regex(reboot, /conntrack -F/);
	t.regex(reboot, /delete table inet testbed-outage/);
	const expire = describeActions(renderEvent(event(lab, "expire", "host", "--host", "testnet"), { features: thisKernel, nat: host.nat, natState: new Map() }));
	t.false(expire.includes("delete element"), expire);
	t.regex(expire, /conntrack -D --orig-src 10\.1\.1\.2/);
	const refused = t.throws(() => event(lab, "rebind", "host"), { instanceOf: EventError })!;
	t.regex(refused.message, /"host" is a masquerade NAT: the kernel gives a forgotten flow its old port again; use expire/);
});
