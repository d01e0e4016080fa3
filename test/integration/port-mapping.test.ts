// Port mapping (issue 17): NATs that run the real miniupnpd answer the real clients — miniupnpc's
// `upnpc` (SSDP discovery, SOAP add/list/delete), `natpmpc`, a PCP client written from RFC 6887 with
// Python's sockets, and libp2p's port mapper (@achingbrain/nat-port-mapper, UPnP and NAT-PMP). A
// granted mapping lets a public host in through a symmetric NAT with nothing sent first, and the inside
// endpoint's outbound traffic leaves from its public port; deleting it or letting its lease end closes
// it; nat-table lists the grants and a NAT reboot forgets them. The peer agents punch through the
// mapped candidate (one lab for all of it: topologies/port-mapping.yml). Hostile requests from a
// second inside host are refused and never touch the first host's mappings.
import { execa } from "execa";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadLab, loadLabText, probeLab } from "../../src/index.ts";
import { applyEvent } from "../../src/apply/apply-event.ts";
import { detectFeatures } from "../../src/apply/features.ts";
import { readEvent } from "../../src/resolve/event-targets.ts";
import { readNatState } from "../../src/inspect/nat-table.ts";
import { PunchSession } from "../../src/drivers/punch.ts";
import type { Lab } from "../../src/resolve/lab.ts";
import { inLab, rootTest } from "../helpers/host.ts";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/port-mapping/${name}`, import.meta.url));
const node = (lab: Lab, name: string) => lab.nodes.find((candidate) => candidate.name === name)!;
/** A plain PATH: a version manager's shims (pyenv) make every python3 start a shell script first. */
const env = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
const inNode = (lab: Lab, name: string, argv: string[], timeout = 20_000) => execa("ip", ["netns", "exec", node(lab, name).netns, ...argv], { reject: false, timeout, env });
const json = (text: string) => JSON.parse(text.trim().split("\n").at(-1) || "{}");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until `check` holds (the daemon and the sync act on their own time), at most `ms`. */
async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<boolean> {
	for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (await check()) return true;
	return check();
}

/**
 * A listener on `port` in `inside`, a datagram to `target` from `outside` (from `fromPort`): where the
 * listener heard it from (null: it never arrived) and where the answer came from, as the sender saw it.
 */
async function deliver(lab: Lab, inside: string, port: number, outside: string, target: string, fromPort: number) {
	const listener = inNode(lab, inside, ["python3", fixture("udp.py"), "listen", String(port), "2"]);
	await new Promise<void>((resolve) => listener.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes('"ready"') && resolve()));
	const [host, to] = target.split(":");
	const sent = await inNode(lab, outside, ["python3", fixture("udp.py"), "send", host, to, String(fromPort)]);
	const heard = await listener;
	const first = heard.stdout.split("\n").map((line) => JSON.parse(line || "{}")).find((line) => line.from);
	return { heardFrom: (first?.from as string | undefined) ?? null, replyFrom: json(sent.stdout).reply as string | null };
}

const upnpc = (lab: Lab, host: string, args: string[]) => inNode(lab, host, ["upnpc", "-u", "http://192.168.1.1:2869/rootDesc.xml", ...args]);
const leases = async (lab: Lab, nat: string) => (await readNatState(lab, node(lab, nat))).table.portMapping!.granted;

rootTest("real clients get real answers: upnpc, natpmpc, PCP and libp2p's mapper map through a symmetric NAT; delete, expiry and a NAT reboot close the mappings; the peers punch through the mapped candidate; probe sees who answers", async (t) => {
	const lab = loadLab(new URL("../../topologies/port-mapping.yml", import.meta.url).pathname);
	const console = statSync("/dev/console", { throwIfNoEntry: false })?.mtimeMs;
	await inLab(t, lab, async () => {
		const peer = "p-sym-pm";
		const pub = node(lab, "sym-pm").nat!.publicAddress!;

		// UPnP: discovery over SSDP multicast finds the NAT's IGD and its public address (while the others map).
		const [listed, added, moved, pmp, pcp, libp2pUpnp, libp2pPmp] = await Promise.all([
			inNode(lab, peer, ["upnpc", "-l"]),
			upnpc(lab, peer, ["-e", "upnp-test", "-a", "192.168.1.2", "5000", "5000", "UDP", "3600"]),
			upnpc(lab, peer, ["-e", "moved", "-a", "192.168.1.2", "6001", "7001", "UDP", "3600"]),
			inNode(lab, peer, ["natpmpc", "-a", "5002", "5002", "udp", "600"]),
			inNode(lab, peer, ["python3", fixture("pcp.py"), "192.168.1.1", "192.168.1.2", "map", "udp", "5004", "5004", "600"]),
			inNode(lab, peer, [process.execPath, fixture("nat-port-mapper.mjs"), "upnp", "192.168.1.1", "192.168.1.2", "5010"]),
			inNode(lab, peer, [process.execPath, fixture("nat-port-mapper.mjs"), "pmp", "192.168.1.1", "192.168.1.2", "5011"]),
		]);
		t.regex(listed.stdout, new RegExp(`ExternalIPAddress = ${pub.replaceAll(".", "\\.")}`), listed.stdout + listed.stderr);
		t.regex(listed.stdout, /desc: http:\/\/192\.168\.1\.1:2869\/rootDesc\.xml/);
		t.regex(added.stdout, /external 11\.0\.0\.6:5000 UDP is redirected to internal 192\.168\.1\.2:5000/, added.stdout);
		t.regex(moved.stdout, /external 11\.0\.0\.6:7001 UDP is redirected to internal 192\.168\.1\.2:6001/, moved.stdout);
		t.regex(pmp.stdout, /Mapped public port 5002 protocol UDP to local port 5002/, pmp.stdout);
		t.like(json(pcp.stdout), { answered: true, result: 0, nonceOk: true, external: `${pub}:5004` }, pcp.stdout);
		t.like(json(libp2pUpnp.stdout), { ok: true, externalIp: pub, mapping: { externalPort: 5010, internalPort: 5010 } }, libp2pUpnp.stdout);
		t.like(json(libp2pPmp.stdout), { ok: true, externalIp: pub, mapping: { externalPort: 5011, internalPort: 5011 } }, libp2pPmp.stdout);

		// nat-table: each grant with the protocol that asked for it.
		t.true(await until(async () => (await leases(lab, "sym-pm")).length === 6));
		t.deepEqual(
			(await leases(lab, "sym-pm")).map((grant) => `${grant.via} ${grant.proto} ${grant.public} → ${grant.inside}`),
			["upnp udp 11.0.0.6:5000 → 192.168.1.2:5000", "nat-pmp udp 11.0.0.6:5002 → 192.168.1.2:5002", "pcp udp 11.0.0.6:5004 → 192.168.1.2:5004", "upnp udp 11.0.0.6:5010 → 192.168.1.2:5010", "nat-pmp udp 11.0.0.6:5011 → 192.168.1.2:5011", "upnp udp 11.0.0.6:7001 → 192.168.1.2:6001"],
		);

		// Through the symmetric NAT, with nothing sent first: every granted port reaches its inside endpoint,
		// and the answer leaves from the granted port (7001 for inside 6001), as outbound traffic does.
		const [unmapped, ...through] = await Promise.all(
			[
				[5003, 5003],
				[5000, 5000],
				[6001, 7001],
				[5002, 5002],
				[5004, 5004],
				[5010, 5010],
			].map(([inside, outside], index) => deliver(lab, peer, inside, "stun", `${pub}:${outside}`, 9099 + index)),
		);
		t.is(unmapped.heardFrom, null, "a port nobody mapped: the symmetric NAT drops what nobody asked for");
		for (const [index, result] of through.entries()) {
			t.is(result.heardFrom, `11.0.9.10:${9100 + index}`, `mapping ${index}: ${JSON.stringify(result)}`);
			t.is(result.replyFrom, `${pub}:${[5000, 7001, 5002, 5004, 5010][index]}`);
		}
		const outbound = await deliver(lab, "stun", 8888, peer, "11.0.9.10:8888", 6001);
		t.is(outbound.heardFrom, `${pub}:7001`, "a new flow from inside 6001 leaves from its granted port 7001, not a symmetric NAT's fresh one");

		// Delete (UPnP, and NAT-PMP with lifetime 0), and a lease of 2 s that ends by itself: a new remote
		// endpoint is dropped again, and the NAT's mirror of the grants follows.
		const [, , short] = await Promise.all([upnpc(lab, peer, ["-d", "5000", "UDP"]), inNode(lab, peer, ["natpmpc", "-a", "5002", "5002", "udp", "0"]), upnpc(lab, peer, ["-e", "short", "-a", "192.168.1.2", "5020", "5020", "UDP", "2"])]);
		t.regex(short.stdout, /is redirected to internal 192\.168\.1\.2:5020 \(duration=2\)/, short.stdout);
		t.true(await until(async () => (await leases(lab, "sym-pm")).map((grant) => grant.public).join() === "11.0.0.6:5004,11.0.0.6:5010,11.0.0.6:5011,11.0.0.6:7001", 15_000), "deleted twice, and the 2 s lease ended");
		t.true(await until(async () => !/\. (5000|5002|5020) /.test((await inNode(lab, "sym-pm", ["nft", "list", "map", "ip", "testbed", "granted"])).stdout)));
		// nat-table leaves out a lease whose time is up at once; the daemon removes its rule a moment
		// later (its own timer, later still on a loaded machine): what lets packets in is that rule.
		t.true(await until(async () => !/dport (5000|5002|5020) /.test((await inNode(lab, "sym-pm", ["nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd"])).stdout), 15_000), "the daemon removed the rules");
		const closed = await Promise.all([5000, 5002, 5020].map((port, index) => deliver(lab, peer, port, "stun", `${pub}:${port}`, 9200 + index)));
		t.deepEqual(closed.map((result) => result.heardFrom), [null, null, null], "deleted by upnpc -d, by natpmpc with lifetime 0, expired");

		// PCP only: NAT-PMP is not answered (a NAT-PMP request for the public address gets nothing).
		const [pcpOnly, pmpToPcpOnly, upnpToPcpOnly] = await Promise.all([
			inNode(lab, "p-pcp", ["python3", fixture("pcp.py"), "192.168.1.1", "192.168.1.2", "map", "udp", "5004", "5004", "600"]),
			inNode(lab, "p-pcp", ["python3", fixture("udp.py"), "raw", "192.168.1.1", "5351", "0000"]),
			inNode(lab, "p-pcp", ["upnpc", "-u", "http://192.168.1.1:2869/rootDesc.xml", "-s"]),
		]);
		t.like(json(pcpOnly.stdout), { result: 0, external: `${node(lab, "pcp-only").nat!.publicAddress}:5004` });
		t.deepEqual(json(pmpToPcpOnly.stdout), { answer: null });
		t.notRegex(upnpToPcpOnly.stdout, /ExternalIPAddress = 11/, "no UPnP on a PCP-only NAT");

		// Behind a carrier NAT the home router answers but cannot map (its outside address is not public).
		const [behindCarrier] = await Promise.all([inNode(lab, "p-cg", ["python3", fixture("pcp.py"), "192.168.1.1", "192.168.1.2", "map", "udp", "5004", "5004", "600"])]);
		t.like(json(behindCarrier.stdout), { answered: true }, behindCarrier.stdout);
		t.not(json(behindCarrier.stdout).result, 0, "no mapping through a second NAT");

		// Hole punching with it (the peer agents ask their gateway first): symmetric ↔ symmetric is relayed
		// without asking and direct through the mapped candidate with it, in the caller's method order,
		// over UDP and TCP; refusals are reported; each endpoint deletes its mapping when it closes.
		const grants = async () => JSON.stringify([...(await leases(lab, "sym-pm")), ...(await leases(lab, "pcp-only"))].map((grant) => `${grant.public} ${grant.inside} ${grant.description}`));
		const grantsBefore = await grants();
		const session = await PunchSession.start(lab);
		try {
			// All at once (each punch has endpoints of its own).
			const [plain, mapped, upnpFirst, tcp, pcpOnly] = await Promise.all([
				session.punch("p-sym", "p-sym-pm", { deadlineMs: 2000 }),
				session.punch("p-sym", "p-sym-pm", { deadlineMs: 2000, portMapping: true }),
				session.punch("p-sym", "p-sym-pm", { deadlineMs: 2000, portMapping: ["upnp", "pcp"] }),
				session.punch("p-sym-pm", "p-sym", { deadlineMs: 2000, proto: "tcp", portMapping: ["nat-pmp"] }),
				session.punch("p-pcp", "p-sym", { deadlineMs: 2000, portMapping: ["nat-pmp", "upnp", "pcp"] }),
			]);
			t.is(plain.outcome, "relayed", "without asking, two symmetric NATs need the relay");
			t.is(plain.portMapping, undefined);
			t.is(mapped.outcome, "direct", JSON.stringify(mapped));
			t.is(mapped.candidates?.a, "mapped", "p-sym punched p-sym-pm's mapped candidate");
			t.like(mapped.mappedVia, [{ node: "p-sym-pm", method: "pcp" }]);
			t.regex(mapped.mappedVia?.[0].external ?? "", /^11\.0\.0\.6:\d+$/);
			t.is(mapped.remote?.a, mapped.mappedVia?.[0].external);
			t.like(mapped.portMapping?.b, { granted: { method: "pcp", external: mapped.mappedVia?.[0].external }, failures: [] });
			t.is(mapped.portMapping?.a?.granted, null, "sym offers no port mapping");
			t.deepEqual(mapped.portMapping?.a?.failures.map((failure) => failure.method), ["pcp", "nat-pmp", "upnp"]);
			t.is(upnpFirst.outcome, "direct");
			t.like(upnpFirst.mappedVia, [{ node: "p-sym-pm", method: "upnp" }]);
			t.is(tcp.outcome, "direct", JSON.stringify(tcp));
			t.like(tcp.mappedVia, [{ node: "p-sym-pm", method: "nat-pmp" }]);
			t.is(pcpOnly.outcome, "direct", JSON.stringify(pcpOnly));
			t.like(pcpOnly.portMapping?.a, { granted: { method: "pcp" } });
			t.deepEqual(pcpOnly.portMapping?.a?.failures.map((failure) => failure.method), ["nat-pmp", "upnp"], "the PCP-only NAT answers neither NAT-PMP nor UPnP");
		} finally {
			await session.close();
		}
		t.is(await grants(), grantsBefore, "every endpoint deleted its mapping when it closed");

		// probe: which protocols each NAT answers, against the file (the home router behind the carrier
		// answers all three, and NAT-PMP and UPnP say they cannot map).
		const probed = await probeLab(lab);
		t.true(probed.ok, probed.nats.flatMap((verdict) => verdict.mismatches).join("; "));
		t.deepEqual(
			Object.fromEntries(probed.nats.filter((verdict) => verdict.portMapping).map((verdict) => [verdict.nat, `${[...verdict.portMapping!.answered].sort().join(",") || "none"}${verdict.portMapping!.refusing.length ? ` refusing ${[...verdict.portMapping!.refusing].sort().join(",")}` : ""}`])),
			{ sym: "none", "sym-pm": "nat-pmp,pcp,upnp", port: "none", "pcp-only": "pcp", home: "nat-pmp,pcp,upnp refusing nat-pmp,upnp" },
		);

		// A NAT reboot: the daemon forgets every grant (its rules and testbed's mirror), and starts again.
		const before = json((await inNode(lab, peer, ["python3", fixture("pcp.py"), "192.168.1.1", "192.168.1.2", "announce"])).stdout).epoch as number;
		await applyEvent(lab, readEvent(lab, "nat-reboot", { "nat-reboot": "sym-pm" }), (await detectFeatures()).features);
		t.deepEqual(await leases(lab, "sym-pm"), []);
		t.is((await inNode(lab, "sym-pm", ["nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd"])).stdout.includes("dnat"), false);
		t.is((await deliver(lab, peer, 5004, "stun", `${pub}:5004`, 9203)).heardFrom, null, "the PCP mapping is gone");
		const after = json((await inNode(lab, peer, ["python3", fixture("pcp.py"), "192.168.1.1", "192.168.1.2", "announce"])).stdout).epoch as number;
		t.true(after < before, `the epoch restarted (${before} → ${after}): clients know to map again`);
	});
	t.is((await execa("pgrep", ["-f", "portmap-sym-pm.conf"], { reject: false })).stdout, "", "no daemon left");
	t.is(statSync("/dev/console", { throwIfNoEntry: false })?.mtimeMs, console, "the daemons never wrote to the host's console");
});

rootTest("hostile requests from another inside host are refused and never change the first host's mappings; the daemon keeps answering", async (t) => {
	const lab = loadLabText(`
name: tb-pm-hostile
nodes:
  internet: { kind: router }
  home: { kind: nat, nat: { type: port-restricted, port-mapping: { protocols: [upnp, nat-pmp, pcp], ports: 1024-65535 } } }
  lan: { kind: switch }
  alice: {}
  mallory: {}
  server: {}
links:
  - { endpoints: [lan:up, home:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [alice:eth0, lan:p1], addresses: [192.168.1.2/24, ~] }
  - { endpoints: [mallory:eth0, lan:p2], addresses: [192.168.1.3/24, ~] }
  - { endpoints: [home:wan, internet:e1], subnet: 11.0.0.0/30 }
  - { endpoints: [server:eth0, internet:e2], subnet: 11.0.1.0/24 }
`);
	await inLab(t, lab, async () => {
		const pub = node(lab, "home").nat!.publicAddress!;
		const granted = await upnpc(lab, "alice", ["-e", "alice", "-a", "192.168.1.2", "5000", "5000", "UDP", "3600"]);
		t.regex(granted.stdout, /is redirected to internal 192\.168\.1\.2:5000/, granted.stdout);
		t.true(await until(async () => (await leases(lab, "home")).length === 1));
		const random = (bytes: number) => Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 151 + 7) % 256)).toString("hex");
		const attacks = await Promise.all([
			// Another host's address, over UPnP and PCP; alice's port by NAT-PMP and PCP; deleting alice's mapping.
			upnpc(lab, "mallory", ["-a", "192.168.1.2", "5001", "5001", "UDP", "3600"]),
			inNode(lab, "mallory", ["python3", fixture("pcp.py"), "192.168.1.1", "192.168.1.2", "map", "udp", "5000", "5000", "600"]),
			inNode(lab, "mallory", ["natpmpc", "-a", "5000", "5000", "udp", "600"]),
			inNode(lab, "mallory", ["python3", fixture("pcp.py"), "192.168.1.1", "192.168.1.3", "map", "udp", "5000", "5000", "600"]),
			upnpc(lab, "mallory", ["-d", "5000", "UDP"]),
			// A public port below the allowed range, random bytes to every port of the daemon, and a PCP header with junk.
			upnpc(lab, "mallory", ["-a", "192.168.1.3", "80", "80", "TCP", "3600"]),
			inNode(lab, "mallory", ["python3", fixture("udp.py"), "raw", "192.168.1.1", "5351", random(1100)]),
			inNode(lab, "mallory", ["python3", fixture("udp.py"), "raw", "192.168.1.1", "5351", `0201000000000258${random(52)}`]),
			inNode(lab, "mallory", ["python3", fixture("udp.py"), "raw", "239.255.255.250", "1900", random(3000)]),
			inNode(lab, "mallory", ["sh", "-c", 'head -c 5000 /dev/urandom | timeout 2 nc -q 0 192.168.1.1 2869; exit 0']),
		]);
		t.regex(attacks[0].stdout, /returned 718|ConflictInMappingEntry|failed/i, `UPnP for alice's address: ${attacks[0].stdout}`);
		t.is(json(attacks[1].stdout).result, 12, "PCP for alice's address: ADDRESS_MISMATCH");
		t.notRegex(attacks[2].stdout, /Mapped public port 5000 /, "NAT-PMP does not get alice's public port");
		t.not(json(attacks[3].stdout).external, `${pub}:5000`, "PCP does not get alice's public port");
		t.regex(attacks[4].stdout, /failed with code : 606/, `deleting alice's mapping: ${attacks[4].stdout}`);
		t.regex(attacks[5].stdout, /606|failed/i, `a port outside the allowed range: ${attacks[5].stdout}`);
		t.deepEqual(json(attacks[6].stdout), { answer: null }, "random bytes get no answer");
		// Alice's mapping is as it was, and still lets a public host in.
		const grants = await leases(lab, "home");
		t.deepEqual(grants.filter((grant) => grant.public === `${pub}:5000`).map((grant) => `${grant.inside} ${grant.description}`), ["192.168.1.2:5000 alice"], JSON.stringify(grants));
		t.false(grants.some((grant) => grant.inside.startsWith("192.168.1.2:") && grant.description !== "alice"), "nothing was mapped to alice by another host");
		t.is((await deliver(lab, "alice", 5000, "server", `${pub}:5000`, 9300)).heardFrom, "11.0.1.2:9300");
		// From the outside, the daemon's ports are closed.
		const [wanPmp, wanSsdp] = await Promise.all([
			inNode(lab, "server", ["python3", fixture("udp.py"), "raw", pub, "5351", "0000"]),
			inNode(lab, "server", ["python3", fixture("udp.py"), "raw", pub, "1900", Buffer.from("M-SEARCH * HTTP/1.1\r\n\r\n").toString("hex")]),
		]);
		t.deepEqual([json(wanPmp.stdout), json(wanSsdp.stdout)], [{ answer: null }, { answer: null }]);
		// It survived all of it: it still answers.
		const announce = await inNode(lab, "alice", ["python3", fixture("pcp.py"), "192.168.1.1", "192.168.1.2", "announce"]);
		t.like(json(announce.stdout), { answered: true, result: 0 });
	});
});

rootTest("without miniupnpd on the host, up of a lab with port mapping exits 4 naming the package and builds nothing; doctor says how to install it", async (t) => {
	const cli = fileURLToPath(new URL("../../bin/testbed.js", import.meta.url));
	const file = fileURLToPath(new URL("../../topologies/port-mapping.yml", import.meta.url));
	const hidden = { ...process.env, TESTBED_HIDE_TOOLS: "miniupnpd" };
	const up = await execa(process.execPath, [cli, "up", file], { reject: false, env: hidden });
	t.is(up.exitCode, 4, up.stderr);
	t.regex(up.stderr, /port-mapping\.yml:22:48: miniupnpd is not installed, needed for port mapping on nat sym-pm, pcp-only, home; install with: apt-get install -y --no-install-recommends miniupnpd-nftables/);
	t.false(existsSync("/run/netns/port-mapping-sym-pm"), "nothing was built");
	const doctor = await execa(process.execPath, [cli, "doctor", "--json"], { reject: false, env: hidden });
	const check = (JSON.parse(doctor.stdout) as { checks: { name: string; ok: boolean; fix?: string }[] }).checks.find((entry) => entry.name === "miniupnpd");
	t.like(check, { ok: false, fix: "apt-get install -y --no-install-recommends miniupnpd-nftables (or `make setup`); not the `miniupnpd` package, which starts a service on the host" });
});
