// Every example topology, built on the real kernel: the kernel's own view matches the file, UDP goes
// out through NATs but not in, and `down` leaves the host exactly as it was.
import { readdirSync } from "node:fs";
import { loadLab, reachMatrix, type Lab } from "../../src/index.ts";
import { detectFeatures } from "../../src/apply/features.ts";
import { withinHostFeatures } from "../../src/expect/steps.ts";
import type { ExecutionContext } from "ava";
import type { HostFeatures } from "../../src/plan/operations.ts";
import { inLab, inNamespace, ipJson, rootTest } from "../helpers/host.ts";

const examples = readdirSync(new URL("../../topologies/", import.meta.url)).filter((name) => name.endsWith(".yml"));

type IpAddr = { ifname: string; flags: string[]; operstate: string; linkinfo?: { info_kind?: string }; addr_info: { family: string; local: string; prefixlen: number }[] };
type IpRoute = { dst: string; gateway?: string; dev: string };

/** Which nodes sit behind a NAT (their subnet is on a NAT's inside). */
function behindNat(lab: Lab): Set<string> {
	const inside = new Set<string>();
	for (const nat of lab.nodes.filter((node) => node.nat)) {
		for (const name of nat.nat!.inside) {
			const segment = nat.interfaces.find((iface) => iface.name === name)!.segment;
			for (const node of lab.nodes) if (node !== nat && node.interfaces.some((iface) => iface.segment === segment && iface.type === "veth")) inside.add(node.name);
		}
	}
	return inside;
}

// Two examples at a time, each in its own lab (their names and namespaces differ): most of a check is
// waiting for agents and timeouts, so a pair takes little longer than one. The root namespace is
// compared before and after each pair (rootTest), each lab's leftovers after it (inLab).
for (let i = 0; i < examples.length; i += 2) {
	const pair = examples.slice(i, i + 2);
	rootTest(`up/down ${pair.map((example) => `topologies/${example}`).join(" and ")}: kernel view, UDP through NATs, nothing left`, async (t) => {
		const features = (await detectFeatures()).features;
		await Promise.all(pair.map((example) => checkExample(t, example, features)));
	});
}

async function checkExample(t: ExecutionContext, example: string, features: HostFeatures): Promise<void> {
	{
		// What this kernel cannot do (delay without netem) is left out, as `testbed test` does: the fallback is what runs here.
		const { lab, notes } = withinHostFeatures(loadLab(new URL(`../../topologies/${example}`, import.meta.url).pathname), features);
		for (const note of notes) t.log(`${example} built without: ${note}`);
		// Nothing left and the root namespace untouched: inLab checks the lab's leftovers, rootTest the host.
		await inLab(t, lab, async () => {
			// Every node's kernel view is read at once (nodes are independent; assertions do not depend on their order).
			await Promise.all(lab.nodes.map(async (node) => {
				const links = await ipJson<IpAddr[]>(node.netns, ["address", "show"]);
				for (const iface of node.interfaces) {
					const seen = links.find((link) => link.ifname === iface.name);
					t.truthy(seen, `${lab.name}/${node.name}:${iface.name} exists`);
					if (iface.down) t.false(seen!.flags.includes("UP"), `${lab.name}/${node.name}:${iface.name} starts unplugged (state: down)`);
					else t.true(seen!.flags.includes("UP"), `${lab.name}/${node.name}:${iface.name} is up`);
					if (iface.type === "veth" && !iface.down) t.true(seen!.flags.includes("LOWER_UP"), `${lab.name}/${node.name}:${iface.name} has carrier`);
					t.deepEqual(
						seen!.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`).sort(),
						iface.addresses.map((a) => a.cidr).sort(),
						`${lab.name}/${node.name}:${iface.name} addresses`,
					);
					t.deepEqual(
						seen!.addr_info.filter((a) => a.family === "inet6" && !a.local.startsWith("fe80:")).map((a) => `${a.local}/${a.prefixlen}`).sort(),
						(iface.addresses6 ?? []).map((a) => a.cidr).sort(),
						`${lab.name}/${node.name}:${iface.name} IPv6 addresses (global: the link-local one is the kernel's)`,
					);
					if (iface.type === "dummy") {
						const detail = await ipJson<IpAddr[]>(node.netns, ["-d", "link", "show", "dev", iface.name]);
						t.is(detail[0].linkinfo?.info_kind, features.dummy ? "dummy" : "bridge", "dummy, or its fallback on kernels without dummy");
					}
				}
				t.true(links.find((link) => link.ifname === "lo")!.flags.includes("UP"), `${lab.name}/${node.name}: lo is up`);
				const [routes, routes6] = await Promise.all([ipJson<IpRoute[]>(node.netns, ["route", "show"]), node.ipv6 ? ipJson<IpRoute[]>(node.netns, ["-6", "route", "show"]) : []]);
				for (const route of node.routes) {
					const dst = route.to.replace(/\/(32|128)$/, "");
					t.truthy((route.family === 6 ? routes6 : routes).find((seen) => seen.dst === dst && seen.dev === route.dev && seen.gateway === route.via), `${lab.name}/${node.name}: route ${route.to}`);
				}
				const forward = await inNamespace(node.netns, ["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter"]);
				t.is(forward.stdout, `${node.forwarding ? 1 : 0}\n0`, `${lab.name}/${node.name}: ip_forward and rp_filter`);
				const rules = await inNamespace(node.netns, ["nft", "list", "ruleset"]);
				if (node.nat?.behaviour.masquerade) {
					// The lecture's lines, through iptables(-nft): as iptables itself lists them.
					const listed = await inNamespace(node.netns, ["iptables", "-t", "nat", "-S", "POSTROUTING"]);
					t.regex(listed.stdout, new RegExp(`^-A POSTROUTING -s [0-9./]+ -o ${node.nat.outside} -j MASQUERADE$`, "m"), `${lab.name}/${node.name}: the lecture's MASQUERADE line`);
				} else if (node.nat) t.regex(rules.stdout, new RegExp(`oifname "${node.nat.outside}" masquerade`), `${lab.name}/${node.name}: masquerade`);
				else t.notRegex(rules.stdout, /table ip /, `${lab.name}/${node.name}: no rules but impairments'`);
				for (const iface of node.interfaces)
					if (iface.impair?.loss && !features.netem) t.regex(rules.stdout, new RegExp(`table netdev testbed_impair_${iface.name.replaceAll(".", "\\.")} `), `${lab.name}/${node.name}:${iface.name}: loss in nftables`);
				if (!node.nat && !node.interfaces.some((iface) => iface.impair?.loss)) t.is(rules.stdout.trim(), "", `${lab.name}/${node.name}: no rules`);
			}));
			// Real UDP: from behind a NAT out to public nodes works; in, without a prior packet, does not.
			const inside = behindNat(lab);
			// Public: hosts and routers on no NAT's inside (lecture-nat's world is a router).
			const publicHosts = lab.nodes.filter((node) => (node.kind === "host" || node.kind === "router") && !inside.has(node.name)).map((node) => node.name);
			const goesOut = (cell: { from: string; to: string }) => inside.has(cell.from) && publicHosts.includes(cell.to) && lab.name !== "seed";
			// A lossy link (flaky-uplink.yml: 10% in bursts) can eat every probe of one round: a flow
			// that must go out is tried again, up to three rounds; one answer is enough. A flow that must
			// not get in counts as open if any round got an answer.
			const lossy = lab.nodes.some((node) => node.interfaces.some((iface) => iface.impair?.loss));
			const matrix = await reachMatrix(lab);
			for (let round = 1; lossy && round < 3 && matrix.cells.some((cell) => goesOut(cell) && !cell.ok); round++) {
				const again = await reachMatrix(lab, { timeoutMs: 3000 });
				for (const cell of matrix.cells) cell.ok ||= again.cells.find((other) => other.from === cell.from && other.to === cell.to)?.ok ?? false;
				t.log(`${example}: lossy links: reach round ${round + 1}`);
			}
			let checked = 0;
			for (const cell of matrix.cells) {
				if (goesOut(cell)) {
					t.true(cell.ok, `${lab.name}: ${cell.from} → ${cell.to} goes out through the NAT`);
					checked++;
				}
				if (publicHosts.includes(cell.from) && inside.has(cell.to)) {
					t.false(cell.ok, `${lab.name}: ${cell.from} → ${cell.to} must not get in unasked`);
					checked++;
				}
			}
			if (lab.nodes.some((node) => node.nat)) t.true(checked > 0, `${example}: the example has NATed and public hosts to check`);
		});
	}
}
