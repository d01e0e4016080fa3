// TCP through the declared NATs (issue 16): theory's TCP matrix over nat-matrix with testbed's agents
// (simultaneous open), the same answer from a pair written with nothing but Python's socket module,
// TCP mappings in nat-table; tcp-timeout ends an idle connection's mapping; `unsolicited-tcp: rst`
// answers a filtered SYN with a reset where the default drops it, as probe --proto tcp measures.
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { loadLab, loadLabText, probeLab } from "../../src/index.ts";
import { runChecks, theoryChecks } from "../../src/expect/run.ts";
import { expectedOutcomes } from "../../src/expect/theory.ts";
import { readNatState } from "../../src/inspect/nat-table.ts";
import { defaultPath } from "../../src/resolve/routing.ts";
import type { Lab } from "../../src/resolve/lab.ts";
import { inLab, leftovers, rootTest } from "../helpers/host.ts";

const simultaneousOpen = fileURLToPath(new URL("../fixtures/tcp/simultaneous-open.py", import.meta.url));
const node = (lab: Lab, name: string) => lab.nodes.find((candidate) => candidate.name === name)!;
/** The public address a peer's outermost NAT gives it. */
const publicOf = (lab: Lab, peer: string) => node(lab, defaultPath(lab, node(lab, peer)).nats.at(-1)!).nat!.publicAddress!;

rootTest("nat-matrix over TCP: every pair as theory says (simultaneous open), a plain-socket pair agrees, nat-table lists TCP mappings", async (t) => {
	const lab = loadLab(new URL("../../topologies/nat-matrix.yml", import.meta.url).pathname);
	await inLab(t, lab, async () => {
		// 42 agents at once on a small machine: a SYN the kernel resends after 1 s must still count as direct.
		const results = await runChecks(lab, theoryChecks(lab, ["tcp"]), { explain: false, punch: { deadlineMs: 5000 } });
		t.is(results.length, 21);
		for (const result of results) t.true(result.ok, `${result.name}: measured ${result.measured}, expected ${result.expected}`);
		const times = results.filter((result) => result.measured === "direct").map((result) => result.stats!.p50Ms!);
		t.log(`TCP matrix: ${results.filter((result) => result.ok).length}/21 as theory; direct pairs connected in ${Math.min(...times)}–${Math.max(...times)} ms (all 21 pairs at once)`);

		// Python's sockets, no listener: cone ↔ cone connects, port-restricted ↔ symmetric does not.
		const pairs: [string, string, boolean][] = [
			["p-port", "p-rest", true],
			["p-full", "p-port", true],
			["p-port", "p-sym", false],
		];
		const outcomes = await Promise.all(
			pairs.map(async ([a, b], index) => {
				const [portA, portB] = [41000 + 2 * index, 41001 + 2 * index];
				const side = (self: string, port: number, peer: string, peerPort: number) =>
					execa("ip", ["netns", "exec", node(lab, self).netns, "python3", simultaneousOpen, String(port), publicOf(lab, peer), String(peerPort), "2", self], { reject: false });
				const [left, right] = await Promise.all([side(a, portA, b, portB), side(b, portB, a, portA)]);
				return [JSON.parse(left.stdout || "{}"), JSON.parse(right.stdout || "{}")];
			}),
		);
		pairs.forEach(([a, b, connects], index) => {
			const [left, right] = outcomes[index];
			t.is(left.connected && right.connected, connects, `${a} ↔ ${b}: ${JSON.stringify(outcomes[index])}`);
			t.deepEqual(expectedOutcomes(lab, a, b, "tcp"), [connects ? "direct" : "relayed"], "the plain pair and theory agree");
			if (connects) t.is(left.heard, `hello from ${b}`);
		});

		const { table } = await readNatState(lab, node(lab, "port-restr"));
		t.true(table.mappings.some((mapping) => mapping.proto === "tcp"), JSON.stringify(table.mappings));
	});
	t.deepEqual(leftovers(lab.name, lab.nodes.map((entry) => entry.netns)), []);
});

rootTest("tcp-timeout ends an idle connection's mapping; unsolicited-tcp: rst answers a filtered SYN with a reset, the default drops it", async (t) => {
	const lab = loadLabText(`
name: tb-tcp
nodes:
  internet: { kind: router }
  server: { interfaces: [{ name: alt0, type: dummy, address: 203.0.113.11/24 }] }
  short: { kind: nat, nat: { type: port-restricted, tcp-timeout: 1s, unsolicited-tcp: rst } }
  long: { kind: nat, nat: { type: port-restricted } }
  alice: {}
  bob: {}
links:
  - { endpoints: [alice:eth0, short:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [bob:eth0, long:lan], subnet: 192.168.2.0/24 }
  - { endpoints: [short:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [long:wan, internet:e2], subnet: 198.51.100.4/30 }
  - { endpoints: [server:eth0, internet:e3], addresses: [203.0.113.10/24, 203.0.113.1/24] }
`);
	await inLab(t, lab, async () => {
		const report = await probeLab(lab, { proto: "tcp" });
		for (const verdict of report.nats) t.deepEqual(verdict.mismatches, [], verdict.nat);
		t.is(report.nats.find((verdict) => verdict.nat === "short")?.measured?.unsolicitedTcp, "rst");
		t.is(report.nats.find((verdict) => verdict.nat === "long")?.measured?.unsolicitedTcp, "drop");

		// A server that answers at once, then again after 2.5 s of silence: through the NAT with a 1 s
		// tcp-timeout the late answer finds no mapping; through the default one (2 h 4 min) it arrives.
		const serve = `
import socket, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("203.0.113.10", 8080)); s.listen()
def talk(c):
    c.recv(10); c.sendall(b"now\\n"); time.sleep(2.5)
    try: c.sendall(b"late\\n")
    except OSError: pass
    time.sleep(1); c.close()
threads = []
for _ in range(2):
    c, _ = s.accept(); threads.append(threading.Thread(target=talk, args=(c,))); threads[-1].start()
for thread in threads: thread.join()
`;
		const dial = `
import socket
c = socket.create_connection(("203.0.113.10", 8080), timeout=3); c.sendall(b"hi")
got = b""
c.settimeout(3.5)
try:
    while b"late" not in got:
        chunk = c.recv(100)
        if not chunk: break
        got += chunk
except OSError: pass
print(got.decode().split())
`;
		const server = execa("ip", ["netns", "exec", node(lab, "server").netns, "python3", "-c", serve], { reject: false });
		await new Promise((resolve) => setTimeout(resolve, 300));
		const [alice, bob] = await Promise.all(["alice", "bob"].map((name) => execa("ip", ["netns", "exec", node(lab, name).netns, "python3", "-c", dial], { reject: false })));
		await server;
		t.is(alice.stdout, "['now']", "the 1 s tcp-timeout forgot the idle connection");
		t.is(bob.stdout, "['now', 'late']", "the default tcp-timeout kept it");
	});
	t.deepEqual(leftovers(lab.name, lab.nodes.map((entry) => entry.netns)), []);
});
