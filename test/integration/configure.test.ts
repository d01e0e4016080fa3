// Two ways to configure a lab's namespaces (src/apply/configure.ts): the helper (one python3 process
// per CPU entering every namespace: rtnetlink, libnftables, /proc/sys) and the tools (ip -batch,
// nft -f, sysctl and tc in one process tree per namespace). They must build the same kernel state,
// fail the same way, and the tools must take over where the helper cannot run.
import { execa } from "execa";
import type { ExecutionContext } from "ava";
import { ApplyError, loadLab, loadLabText, upLab } from "../../src/index.ts";
import type { ConfigureMethod } from "../../src/apply/configure.ts";
import { detectFeatures } from "../../src/apply/features.ts";
import { inLab, leftovers, rootTest } from "../helpers/host.ts";

/** Everything the configuration sets: a switch, a dummy address, an MTU, routes with and without a gateway, NATs, impairments. */
const everything = (name: string, features: { tbf: boolean; nftEgress: boolean }) => `
name: ${name}
nodes:
  internet: { kind: router }
  stun:
    interfaces:
      - { name: alt0, type: dummy, address: 203.0.113.11/24 }
  home: { kind: nat, nat: { type: port-restricted, udp-timeout: 45s } }
  office: { kind: nat, nat: { type: symmetric } }
  lan: { kind: switch }
  alice: {}
  bob:
    routes:
      - { to: 10.77.0.0/16, via: 192.168.0.1 }
      - { to: 10.78.0.0/16, dev: eth0 }
  carol: {}
links:
  - { endpoints: [lan:up, home:lan], subnet: 192.168.0.0/24 }
  - { endpoints: [alice:eth0, lan:p1] }
  - { endpoints: [bob:eth0, lan:p2], mtu: 1400 }
  - endpoints: [home:wan, internet:e1]
    subnet: 198.51.100.0/30
${features.tbf ? "    impair: { rate: 5mbit }" : ""}
  - endpoints: [carol:eth0, office:lan]
    subnet: 10.0.2.0/24
${features.nftEgress ? "    impair: { loss: 2% }" : ""}
  - { endpoints: [office:wan, internet:e2], subnet: 198.51.100.4/30 }
  - { endpoints: [stun:eth0, internet:e3], addresses: [203.0.113.10/24, 203.0.113.1/24] }
`;

const text = async (netns: string, argv: string[]) => (await execa("ip", ["netns", "exec", netns, ...argv], { reject: false })).stdout;

/**
 * A node's kernel state as configuration leaves it, minus what differs between two builds of the
 * same lab: MAC addresses, interface indexes, qdisc handles, rule counters, IPv6 link-local addresses
 * and the operational state (the kernel's link watcher may report it up to a second later).
 */
async function kernelView(netns: string, sysctlKeys: string[]): Promise<Record<string, unknown>> {
	type Link = { ifname: string; flags: string[]; mtu: number; master?: string; linkinfo?: { info_kind?: string } };
	type Address = { ifname: string; addr_info: { family: string; local: string; prefixlen: number; scope: string; noprefixroute?: boolean }[] };
	const links = JSON.parse(await text(netns, ["ip", "-j", "-d", "link", "show"])) as Link[];
	const addresses = JSON.parse(await text(netns, ["ip", "-j", "address", "show"])) as Address[];
	const routes = JSON.parse(await text(netns, ["ip", "-4", "-j", "route", "show", "table", "all"])) as Record<string, unknown>[];
	return {
		links: links.map((link) => `${link.ifname} ${link.flags.filter((flag) => flag !== "NO-CARRIER" && flag !== "LOWER_UP").join(",")} mtu ${link.mtu} ${link.linkinfo?.info_kind ?? ""} ${link.master ?? ""}`).sort(),
		addresses: addresses.flatMap((entry) => entry.addr_info.filter((info) => !info.local.startsWith("fe80:")).map((info) => `${entry.ifname} ${info.local}/${info.prefixlen} ${info.scope}${info.noprefixroute ? " noprefixroute" : ""}`)).sort(),
		routes: routes.map((route) => ["type", "dst", "gateway", "dev", "protocol", "scope", "prefsrc", "table"].map((key) => `${key}=${route[key] ?? ""}`).join(" ")).sort(),
		sysctls: await text(netns, ["sysctl", ...sysctlKeys]),
		// Counters count what passed since: IPv6 neighbour discovery crosses a lossy link at random.
		nft: (await text(netns, ["nft", "list", "ruleset"])).replace(/counter packets \d+ bytes \d+/g, "counter"),
		// Without a handle of its own, a qdisc gets the kernel's next free one: which one differs.
		qdiscs: (await text(netns, ["tc", "qdisc", "show"]))
			.split("\n")
			.filter((line) => !/qdisc noqueue/.test(line))
			.map((line) => line.replace(/^(qdisc \S+) [0-9a-f]+:/, "$1 H:"))
			.sort(),
	};
}

async function buildAndLook(t: ExecutionContext, name: string, method: ConfigureMethod, features: { tbf: boolean; nftEgress: boolean }) {
	const lab = loadLabText(everything(name, features), `${name}.yml`);
	return inLab(
		t,
		lab,
		async (_, result) => {
			const views: Record<string, unknown> = {};
			for (const batch of result.plan.namespaces) {
				const keys = batch.operations.flatMap((op) => (op.op === "sysctl" ? op.settings.map(([key]) => key) : []));
				views[batch.node] = await kernelView(batch.netns, keys);
			}
			return { views, method: result.method, netns: lab.nodes.map((node) => node.netns) };
		},
		{ up: { method } },
	);
}

rootTest("the helper and the tools build the same kernel state: links, bridges, MTU, addresses, routes, sysctls, nftables, qdiscs", async (t) => {
	const { features } = await detectFeatures();
	const wanted = { tbf: features.tbf, nftEgress: features.nftEgress !== false };
	const helper = await buildAndLook(t, "tb-conf-h", "helper", wanted);
	const tools = await buildAndLook(t, "tb-conf-t", "tools", wanted);
	t.is(helper.method, "helper", "python3 and libnftables are installed here (make setup), so the helper ran");
	t.is(tools.method, "tools");
	const relabel = (value: unknown) => JSON.stringify(value).replaceAll("tb-conf-h", "LAB").replaceAll("tb-conf-t", "LAB");
	for (const node of Object.keys(tools.views)) t.is(relabel(helper.views[node]), relabel(tools.views[node]), `node ${node}`);
	// The views are not empty: they would compare equal then too.
	const home = tools.views.home as { nft: string; sysctls: string; addresses: string[] };
	t.regex(home.nft, /map remap-pool/);
	t.regex(home.sysctls, /nf_conntrack_udp_timeout = 45/);
	t.true(home.addresses.includes("wan 198.51.100.2/30 global"));
	t.true((tools.views.bob as { links: string[] }).links.some((link) => /^eth0 .* mtu 1400 veth/.test(link)));
	t.true((tools.views.alice as { links: string[] }).links.some((link) => /^eth0 /.test(link)));
	t.true((tools.views.lan as { links: string[] }).links.some((link) => /^p1 .*veth lan$/.test(link)), "switch ports are bridge members");
	if (wanted.tbf) t.true((tools.views.home as { qdiscs: string[] }).qdiscs.some((line) => /qdisc tbf .* dev wan root/.test(line)));
	if (!wanted.tbf) t.log("no tbf here: the rate impairment was left out of the comparison");
	t.deepEqual(leftovers("tb-conf-h", helper.netns), []);
	t.deepEqual(leftovers("tb-conf-t", tools.netns), []);
});

const midway = async (t: ExecutionContext, method: ConfigureMethod) => {
	const lab = loadLab(new URL("../fixtures/rejected-midway.yml", import.meta.url).pathname);
	const error = await t.throwsAsync(upLab(lab, { method }), { instanceOf: ApplyError });
	t.regex(error!.message, /rejected-midway\.yml:9:\d+: building node "a" failed in namespace tb-reject-a/);
	t.regex(error!.message, /command: ip -n tb-reject-a route add 10\.0\.1\.0\/24 via 10\.0\.1\.1 dev eth0/);
	t.regex(error!.message, /kernel: {2}.*File exists/);
	t.deepEqual(leftovers(lab.name, lab.nodes.map((node) => node.netns)), []);
};

rootTest("a kernel error midway names the same YAML line, command and kernel words with the tools", (t) => midway(t, "tools"));
rootTest("a kernel error midway names the same YAML line, command and kernel words with the helper", (t) => midway(t, "helper"));

rootTest("where python3 is missing, up configures with the tools and the lab works the same", async (t) => {
	const saved = process.env.TESTBED_HIDE_TOOLS;
	process.env.TESTBED_HIDE_TOOLS = "python3";
	const lab = loadLab("topologies/two-nats.yml");
	try {
		await inLab(t, lab, async (_, result) => {
			t.is(result.method, "tools");
			const ping = await execa("ip", ["netns", "exec", "two-nats-alice", "ping", "-c1", "-W2", "203.0.113.10"], { reject: false });
			t.is(ping.exitCode, 0, ping.stdout);
		});
	} finally {
		if (saved === undefined) delete process.env.TESTBED_HIDE_TOOLS;
		else process.env.TESTBED_HIDE_TOOLS = saved;
	}
	t.deepEqual(leftovers(lab.name, lab.nodes.map((node) => node.netns)), []);
});
