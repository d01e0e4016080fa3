// A live impairment change as the commands it runs in the interface's namespace: the same nft and tc
// text `up` builds, and — when it brings loss — the neighbour probing `up` gives a lossy interface.
import test from "ava";
import { renderImpairmentCommands } from "../../src/render/impairment.ts";
import type { ImpairDecl } from "../../src/parse/topology.ts";

const at = { line: 1, col: 1 };
const impair = (fields: Record<string, number>) => Object.fromEntries([["pos", at], ...Object.entries(fields).map(([key, value]) => [key, { value, pos: at }])]) as ImpairDecl;
const end = { node: "home1", iface: "wan.2", netns: "lab-home1" };
const withoutNetem = { dummy: false, netem: false, tbf: true, pfifo: true, nftEgress: true };

test("loss added live: nft's loss rules, and the interface probes its neighbours every 100 ms, ten times (both families; -e skips IPv6 where absent)", (t) => {
	const commands = renderImpairmentCommands(end, impair({ loss: 20, lossBurst: 4 }), withoutNetem);
	t.deepEqual(commands.map((command) => command.argv[0]), ["nft", "tc", "sysctl"]);
	t.deepEqual(commands[2], {
		netns: "lab-home1",
		argv: ["sysctl", "-q", "-e", "-w", ...["ipv4", "ipv6"].flatMap((family) => [`net.${family}.neigh.wan/2.retrans_time_ms=100`, `net.${family}.neigh.wan/2.mcast_solicit=10`, `net.${family}.neigh.wan/2.ucast_solicit=10`])],
	});
});

test("a change without loss (a rate) or clearing the impairment leaves neighbour probing as it was", (t) => {
	t.false(renderImpairmentCommands(end, impair({ rate: 1e6 }), withoutNetem).some((command) => command.argv[0] === "sysctl"));
	t.false(renderImpairmentCommands(end, undefined, withoutNetem).some((command) => command.argv[0] === "sysctl"));
});
