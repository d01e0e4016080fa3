// `probe` on real NATs: every behaviour of the zoo as declared; a NAT that is not what the file says
// is caught (exit 1); a temporary STUN host is attached and removed; --timeouts measures udp-timeout.
import { execa } from "execa";
import { loadLab, loadLabText, probeLab } from "../../src/index.ts";
import { readLedger } from "../../src/apply/ledger.ts";
import { inLab, leftovers, namespaceExists, rootTest } from "../helpers/host.ts";

/** One NAT with alice behind it, and a two-address STUN host outside. */
const oneNat = (name: string, nat: string) =>
	loadLabText(`
name: ${name}
nodes:
  internet: { kind: router }
  stun: { interfaces: [{ name: alt0, type: dummy, address: 203.0.113.11/24 }] }
  home: { kind: nat, nat: ${nat} }
  alice: {}
links:
  - { endpoints: [alice:eth0, home:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [home:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [stun:eth0, internet:e2], addresses: [203.0.113.10/24, 203.0.113.1/24] }
`);

rootTest("nat-zoo: all 14 NATs behave as declared, plain MASQUERADE included", async (t) => {
	const lab = loadLab(new URL("../../topologies/nat-zoo.yml", import.meta.url).pathname);
	await inLab(t, lab, async () => {
		const report = await probeLab(lab);
		for (const verdict of report.nats) t.deepEqual(verdict.mismatches, [], verdict.nat);
		t.is(report.nats.length, 14);
		t.like(report.nats.find((verdict) => verdict.nat === "nat-masquerade")?.measured, { mapping: "endpoint-independent", filtering: "address-and-port-dependent", hairpin: false, portPreservation: true });
		t.true(report.ok);
		t.log(`probe of 14 NATs: ${(report.durationMs / 1000).toFixed(1)} s`);
	});
	t.deepEqual(leftovers(lab.name, lab.nodes.map((node) => node.netns)), []);
});

rootTest("a NAT that is not what the file declares is reported, and the CLI exits 1", async (t) => {
	const lab = oneNat("tb-liar", "{ type: full-cone }");
	await inLab(t, lab, async () => {
		// Replace the declared full cone with plain masquerade behind testbed's back.
		await execa("ip", ["netns", "exec", "tb-liar-home", "nft", "flush", "ruleset"]);
		await execa("ip", ["netns", "exec", "tb-liar-home", "nft", 'add table ip t; add chain ip t post { type nat hook postrouting priority srcnat; }; add rule ip t post oifname "wan" masquerade']);
		const cli = await execa(process.execPath, ["bin/testbed.js", "probe", "tb-liar"], { reject: false });
		t.is(cli.exitCode, 1, cli.stderr);
		t.regex(cli.stdout, /home\s+full-cone\s+alice\s+EI ✓\s+EI≠APD ✗/);
		t.regex(cli.stdout, /home: filtering: declared endpoint-independent, measured address-and-port-dependent/);
		t.regex(cli.stdout, /0 of 1 measured NATs behave as declared/);
	});
});

rootTest("without a two-address public host, probe attaches a temporary STUN host and removes it", async (t) => {
	const lab = loadLab(new URL("../../topologies/lan.yml", import.meta.url).pathname);
	await inLab(t, lab, async () => {
		const report = await probeLab(lab);
		t.true(report.server.temporary);
		t.true(report.ok, JSON.stringify(report.nats.map((verdict) => verdict.mismatches)));
		t.false(namespaceExists("lan-tb-stun"), "the temporary host is gone");
		t.is(readLedger("lan")!.namespaces.length, lab.nodes.length, "and so is its ledger entry");
	});
	t.deepEqual(leftovers(lab.name, [...lab.nodes.map((node) => node.netns), "lan-tb-stun"]), []);
});

rootTest("--timeouts measures the declared udp-timeout", async (t) => {
	const lab = oneNat("tb-lifetime", "{ type: home-router, udp-timeout: 4s }");
	await inLab(t, lab, async () => {
		const report = await probeLab(lab, { timeouts: true });
		const verdict = report.nats[0];
		t.deepEqual(verdict.mismatches, []);
		t.truthy(verdict.measured?.lifetime);
		t.log(`lifetime: alive after ${verdict.measured?.lifetime?.aliveS} s, gone after ${verdict.measured?.lifetime?.expiredS} s (declared 4 s)`);
	});
});
