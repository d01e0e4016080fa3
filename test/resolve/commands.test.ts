// The user's commands, resolved without root: placeholders, working directories, shell strings, the
// environment every program gets, the name files of the nodes, and which pairs a matrix runs.
import test from "ava";
import { readFileSync } from "node:fs";
import { loadLab, loadLabText } from "../../src/load.ts";
import { commandText, firstAddress, nodeEnvironment, type UserCheck } from "../../src/resolve/commands.ts";
import { hostsFile, resolvConf } from "../../src/render/names.ts";
import { matrixPairs } from "../../src/expect/user-checks.ts";
import { expectedPunch, labPeers } from "../../src/expect/theory.ts";

const topology = new URL("../../topologies/nat-matrix.yml", import.meta.url).pathname;

const lab = loadLabText(
	`
name: cmds
nodes:
  internet: { kind: router }
  home: { kind: nat, nat: { type: symmetric } }
  stun:
    interfaces:
      - { name: alt0, type: dummy, address: 203.0.113.11/24 }
    programs:
      turn:
        run: [turnserver, --listening-ip, "\${stun}", --alt, "\${stun.alt0}"]
        env: { PEER: "\${alice}:9000", HOME_IP: "\${home.public}" }
        cwd: conf
        ready: { udp: 3478, within: 2s }
      shell:
        run: "echo $\${HOME} \${alice} | cat"
        after: [turn]
  alice: {}
links:
  - { endpoints: [alice:eth0, home:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [home:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [stun:eth0, internet:e2], addresses: [203.0.113.10/24, 203.0.113.1/24] }
expect:
  - run: alice
    command: [ping, -c1, "\${stun.eth0}"]
    output: "1 received"
    within: 3s
  - pair: [alice, stun]
    listen: [python3, peer.py]
    dial: [python3, peer.py, "\${home.lan}"]
    result: fail
`,
	"/labs/x/cmds.yml",
);

const stunPrograms = () => lab.nodes.find((node) => node.name === "stun")!.programs!;

test("placeholders become addresses: a node's first link address, an interface's, a NAT's public one; $${…} stays literal", (t) => {
	const [turn, shell] = stunPrograms();
	t.deepEqual(turn.argv, ["turnserver", "--listening-ip", "203.0.113.10", "--alt", "203.0.113.11"], "${stun} is its link's address, not the dummy's declared before it");
	t.deepEqual(turn.env, { PEER: "192.168.1.2:9000", HOME_IP: "198.51.100.2" });
	t.deepEqual(turn.ready, { kind: "udp", port: 3478, withinMs: 2000 });
	t.deepEqual(shell.argv, ["sh", "-c", "echo ${HOME} 192.168.1.2 | cat"]);
	t.deepEqual(shell.after, ["turn"]);
	const pair = lab.expect![1] as Extract<UserCheck, { kind: "pair" }>;
	t.deepEqual(pair.dial.argv, ["python3", "peer.py", "192.168.1.1"]);
	t.like(pair, { dialer: "alice", listener: "stun", result: "fail" });
});

test("relative paths start at the topology file's folder; inline text at the current folder", (t) => {
	const [turn, shell] = stunPrograms();
	t.is(turn.cwd, "/labs/x/conf");
	t.is(shell.cwd, "/labs/x");
	t.is((lab.expect![0] as Extract<UserCheck, { kind: "run" }>).command.cwd, "/labs/x");
	const inline = loadLabText("name: i\nnodes:\n  a:\n    programs:\n      p: { run: [true] }\n");
	t.is(inline.nodes[0].programs![0].cwd, process.cwd());
});

test("a command is shown as a shell would need it, on one line", (t) => {
	t.is(commandText(["python3", "peer.py", "--name=alice", "192.168.1.2:9000"]), "python3 peer.py --name=alice 192.168.1.2:9000");
	t.is(commandText(["sh", "-c", "echo $HOME | cat"]), "echo $HOME | cat", "a shell string as written");
	t.is(commandText(["echo", "two words", "it's", ""]), "echo 'two words' 'it'\\''s' ''");
	t.is(commandText(["printf", "a\nb"]), "printf 'a\\nb'");
	t.is(stunPrograms()[0].text, "turnserver --listening-ip 203.0.113.10 --alt 203.0.113.11");
});

test("every program gets its lab, its node and every node's address", (t) => {
	t.deepEqual(nodeEnvironment(lab, "alice"), {
		TESTBED_LAB: "cmds",
		TESTBED_NODE: "alice",
		TESTBED_ADDR_INTERNET: "198.51.100.1",
		TESTBED_ADDR_HOME: "192.168.1.1",
		TESTBED_ADDR_STUN: "203.0.113.10",
		TESTBED_ADDR_ALICE: "192.168.1.2",
	});
	const dashed = loadLabText("name: d\nnodes:\n  p-full: {}\n  q: {}\nlinks:\n  - { endpoints: [p-full:eth0, q:eth0], subnet: 10.0.0.0/30 }\n");
	t.is(nodeEnvironment(dashed, "q").TESTBED_ADDR_P_FULL, "10.0.0.1");
});

test("the nodes' /etc/hosts names every node with an address; resolv.conf asks no server (golden)", (t) => {
	t.is(
		hostsFile(lab),
		[
			'# /etc/hosts inside lab "cmds" (written by testbed; the host\'s own file is untouched)',
			"127.0.0.1\tlocalhost",
			"::1\tlocalhost ip6-localhost ip6-loopback",
			"198.51.100.1\tinternet",
			"192.168.1.1\thome",
			"203.0.113.10\tstun",
			"192.168.1.2\talice",
			"",
		].join("\n"),
	);
	t.false(resolvConf(lab).includes("nameserver"));
	for (const node of lab.nodes) t.is(firstAddress(node), nodeEnvironment(lab, node.name)[`TESTBED_ADDR_${node.name.toUpperCase()}`]);
});

/** A matrix check over nat-matrix.yml's peers, as the file format writes it. */
function matrixOver(pairs: string, except = ""): Extract<UserCheck, { kind: "matrix" }> {
	const text = readFileSync(topology, "utf8").replace(/\nexpect:[\s\S]*$/, "\n") + `expect:\n  - matrix:\n      listen: [l]\n      dial: [d]\n      pairs: ${pairs}\n      result: pass\n${except}`;
	return loadLabText(text, topology).expect!.find((check) => check.kind === "matrix") as Extract<UserCheck, { kind: "matrix" }>;
}

test("a matrix runs every ordered pair of peers, both ways; except: applies to both directions", (t) => {
	const matrixLab = loadLab(topology);
	const peers = labPeers(matrixLab);
	t.is(peers.length, 7);
	const all = matrixPairs(matrixLab, matrixOver("all", "      except:\n        - { pair: [p-port, p-sym], result: fail }\n"));
	t.is(all.length, 42, "7 peers: 21 pairs, both ways");
	t.is(new Set(all.map((pair) => `${pair.dialer}>${pair.listener}`)).size, 42);
	t.deepEqual(
		all.filter((pair) => pair.expected === "fail").map((pair) => [pair.dialer, pair.listener]).sort(),
		[
			["p-port", "p-sym"],
			["p-sym", "p-port"],
		],
	);
	const listed = matrixPairs(matrixLab, matrixOver("[[p-full, p-port], [p-port, p-full], [lan1, lan2]]"));
	t.deepEqual(
		listed.map((pair) => [pair.dialer, pair.listener]),
		[
			["p-full", "p-port"],
			["p-port", "p-full"],
			["lan1", "lan2"],
			["lan2", "lan1"],
		],
		"a listed pair runs both ways, once",
	);
	// Theory has an answer for every pair a matrix can run.
	for (const pair of all) t.regex(expectedPunch(matrixLab, pair.dialer, pair.listener), /\w/);
});
