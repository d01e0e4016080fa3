// Events on real labs: what each one does to the kernel's state, seen from the hosts' side — the
// public endpoint a STUN-less echo reports, traffic stopping and coming back, routes restored.
import { execa } from "execa";
import { loadLabText, type Lab } from "../../src/index.ts";
import { UdpTool } from "../../src/drivers/udp-tool.ts";
import { applyEvent } from "../../src/apply/apply-event.ts";
import { detectFeatures } from "../../src/apply/features.ts";
import { eventFromArguments } from "../../src/cli/commands/event.ts";
import { loadLab } from "../../src/load.ts";
import { inLab, inNamespace, leftovers, rootTest } from "../helpers/host.ts";

const labText = (name: string) => `name: ${name}
nodes:
  internet: { kind: router }
  echo: {}
  home:
    kind: nat
    nat: { type: port-restricted }
  alice: {}
links:
  - { endpoints: [alice:eth0, home:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [home:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [echo:eth0, internet:e2], addresses: [203.0.113.10/24, 203.0.113.1/24] }
`;

async function withTools<T>(lab: Lab, names: string[], body: (tools: Record<string, UdpTool>) => Promise<T>): Promise<T> {
	const tools: Record<string, UdpTool> = {};
	try {
		for (const name of names) tools[name] = await UdpTool.start(lab.nodes.find((node) => node.name === name)!);
		return await body(tools);
	} finally {
		await Promise.all(Object.values(tools).map((tool) => tool.stop()));
	}
}

const event = async (lab: Lab, ...words: string[]) => applyEvent(lab, eventFromArguments(lab, words), (await detectFeatures()).features);

rootTest("expire keeps a preserved port, rebind moves the mapping to a new port, a NAT reboot forgets everything", async (t) => {
	const lab = loadLabText(labText("tb-ev-nat"));
	await inLab(t, lab, async () => {
		await withTools(lab, ["alice", "echo"], async ({ alice, echo }) => {
			await echo.bind("echo", 7000, { echo: true });
			await alice.bind("s", 40000);
			const mapped = () => alice.mappedEndpoint("s", "203.0.113.10:7000");
			const first = await mapped();
			t.is(first, "198.51.100.2:40000", "port preservation keeps the inside port");
			await event(lab, "expire", "home", "--host=alice");
			t.is(await mapped(), first, "after expiry the next packet gets a fresh mapping, on the same (free) port");
			await event(lab, "rebind", "home", "--host=alice");
			const rebound = await mapped();
			t.truthy(rebound);
			t.not(rebound, first, "after rebinding the public port changes");
			t.true(rebound!.startsWith("198.51.100.2:"), rebound);
			const table = await run(lab, "home", ["nft", "list", "set", "ip", "testbed", "used"]);
			t.regex(table.stdout, /40000/, "the old port stays taken, so it is not handed out again");
			await event(lab, "nat-reboot", "home", "--outage=200ms");
			const after = await conntrackList(lab);
			t.notRegex(after.stdout, /sport=40000/, "no conntrack entry survives the reboot");
			t.is(await mapped(), first, "after the reboot, port preservation hands out the inside port again");
		});
	});
	t.deepEqual(leftovers("tb-ev-nat", lab.nodes.map((node) => node.netns)), []);
});

rootTest("link-down stops traffic and removes the routes through the link; link-up brings both back; flap does it repeatedly", async (t) => {
	const lab = loadLabText(labText("tb-ev-link"));
	await inLab(t, lab, async () => {
		await withTools(lab, ["alice", "echo"], async ({ alice, echo }) => {
			await echo.bind("echo", 7000, { echo: true });
			await alice.bind("s", 40001);
			t.truthy(await alice.mappedEndpoint("s", "203.0.113.10:7000"));
			await event(lab, "link-down", "home:wan");
			t.is(await alice.mappedEndpoint("s", "203.0.113.10:7000", 600), undefined, "nothing gets through a link that is down");
			const routes = async () => (await ipIn(lab, "home", ["route", "show", "default"])).stdout;
			t.is(await routes(), "", "the kernel removed the default route with the link");
			await event(lab, "link-up", "internet:e1");
			t.regex(await routes(), /default via 198\.51\.100\.1 dev wan/, "link-up restores the route");
			t.truthy(await alice.mappedEndpoint("s", "203.0.113.10:7000"), "traffic flows again");
			// Flap while sending every 20 ms: some datagrams are lost, some arrive, all arrive after.
			const before = echoCount(echo);
			let sent = 0;
			const flap = event(lab, "flap", "home:wan", "--period=400ms", "--down-for=200ms", "--count=3");
			let flapping = true;
			void flap.finally(() => (flapping = false));
			while (flapping) {
				await alice.send("s", "203.0.113.10:7000", `f${sent++}`);
				await new Promise((resolve) => setTimeout(resolve, 20));
			}
			await flap;
			await new Promise((resolve) => setTimeout(resolve, 300));
			const received = echoCount(echo) - before;
			t.log(`flap: ${received} of ${sent} datagrams arrived`);
			t.true(received > sent * 0.2 && received < sent * 0.85, `${received} of ${sent}`);
			t.truthy(await alice.mappedEndpoint("s", "203.0.113.10:7000"), "traffic flows after the flap");
		});
	});
	t.deepEqual(leftovers("tb-ev-link", lab.nodes.map((node) => node.netns)), []);
});

rootTest("move: the phone's public address is the home NAT's, then the carrier's, then the home's again", async (t) => {
	const lab = loadLab(new URL("../../topologies/roaming.yml", import.meta.url).pathname);
	await inLab(t, lab, async () => {
		await withTools(lab, ["phone", "stun"], async ({ phone, stun }) => {
			await stun.bind("echo", 7000, { echo: true });
			await phone.bind("s", 40002);
			const publicAddress = async () => (await phone.mappedEndpoint("s", "203.0.113.10:7000", 1500))?.split(":")[0];
			const home = lab.nodes.find((node) => node.name === "home")!.nat!.publicAddress;
			const carrier = lab.nodes.find((node) => node.name === "carrier")!.nat!.publicAddress;
			t.is(await publicAddress(), home);
			await event(lab, "move", "phone:cell");
			t.is(await publicAddress(), carrier);
			const links = (await ipIn(lab, "phone", ["-br", "link", "show", "wifi"])).stdout;
			t.regex(links, /DOWN/, "wifi is unplugged");
			await event(lab, "move", "phone:wifi");
			t.is(await publicAddress(), home);
		});
	});
	t.deepEqual(leftovers("roaming", lab.nodes.map((node) => node.netns)), []);
});

rootTest("testbed event: restart runs a node's processes again; bad targets exit 2 naming the fix; --dry-run changes nothing", async (t) => {
	const lab = loadLabText(labText("tb-ev-cli"));
	const cli = (...args: string[]) => execa("node", [new URL("../../bin/testbed.js", import.meta.url).pathname, ...args], { reject: false });
	await inLab(t, lab, async () => {
		const alice = lab.nodes.find((node) => node.name === "alice")!.netns;
		const sleeper = execa("ip", ["netns", "exec", alice, "sleep", "300"], { reject: false, detached: true, stdio: "ignore" });
		sleeper.unref();
		await new Promise((resolve) => setTimeout(resolve, 200));
		const pids = async () => (await execa("ip", ["netns", "pids", alice])).stdout.split(/\s+/).filter(Boolean);
		const [before] = await pids();
		t.truthy(before);
		const restarted = await cli("event", "tb-ev-cli", "restart", "alice", "--json");
		t.is(restarted.exitCode, 0, restarted.stderr);
		t.deepEqual(JSON.parse(restarted.stdout).restarted.map((proc: { command: string }) => proc.command), ["sleep 300"]);
		await new Promise((resolve) => setTimeout(resolve, 200));
		const after = await pids();
		t.is(after.length, 1);
		t.not(after[0], before, "a new process");
		const bad = await cli("event", "tb-ev-cli", "nat-reboot", "alice");
		t.is(bad.exitCode, 2);
		t.regex(bad.stderr, /"alice" is a host, not a nat \(name a node with kind: nat\)/);
		t.notRegex(bad.stderr, /at .*\.ts:\d+/, "no stack trace");
		const features = (await detectFeatures()).features;
		const delay = await cli("event", "tb-ev-cli", "impair", "home:wan", "delay=20ms");
		if (features.netem) t.is(delay.exitCode, 0, delay.stderr);
		else {
			t.is(delay.exitCode, 4, "a live delay needs netem: exit 4");
			t.regex(delay.stderr, /no netem, needed for delay on home:wan/);
		}
		const dry = await cli("event", "tb-ev-cli", "link-down", "home:wan", "--dry-run");
		t.is(dry.exitCode, 0, dry.stderr);
		t.regex(dry.stdout, /ip netns exec tb-ev-cli-home ip link set dev wan down/);
		t.regex((await ipIn(lab, "home", ["-br", "link", "show", "wan"])).stdout, /UP/, "dry run: the link is still up");
		t.notRegex((await cli("graph", "tb-ev-cli", "--format", "dot")).stdout, /unplugged/);
		t.is((await cli("event", "tb-ev-cli", "link-down", "home:wan")).exitCode, 0);
		t.regex((await cli("graph", "tb-ev-cli", "--format", "dot")).stdout, /wan 198\.51\.100\.2\/30\\lunplugged/, "the running lab's picture shows the link as it is now");
	});
	t.deepEqual(leftovers("tb-ev-cli", lab.nodes.map((node) => node.netns)), []);
});

function netnsOf(lab: Lab, node: string): string {
	return lab.nodes.find((candidate) => candidate.name === node)!.netns;
}

const run = (lab: Lab, node: string, argv: string[]) => inNamespace(netnsOf(lab, node), argv);
const ipIn = (lab: Lab, node: string, args: string[]) => run(lab, node, ["ip", ...args]);
const conntrackList = (lab: Lab) => run(lab, "home", ["conntrack", "-L"]);

function echoCount(tool: UdpTool): number {
	return (tool as unknown as { agent: { received(): { event: string; sock: string }[] } }).agent.received().filter((event) => event.event === "recv" && event.sock === "echo").length;
}
