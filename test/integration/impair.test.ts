// Impairments this host can do, measured: random loss (netem, or nftables where the kernel lacks
// netem) and a rate limit (tbf).
import { downLab, loadLabText, upLab } from "../../src/index.ts";
import { UdpTool } from "../../src/agents/udp-tool.ts";
import { detectFeatures } from "../../src/apply/features.ts";
import { leftovers, rootTest } from "../helpers/host.ts";

rootTest("20% loss drops 15–25% of 1000 datagrams (netem, or nftables without it)", async (t) => {
	const features = (await detectFeatures()).features;
	t.log(features.netem ? "netem does the loss" : "this kernel has no netem: nftables (numgen) does the loss");
	const lab = loadLabText("name: tb-loss\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n    subnet: 10.9.0.0/24\n    impair: { loss: 20% }\n");
	await upLab(lab);
	const tools: UdpTool[] = [];
	try {
		const [a, b] = await Promise.all(lab.nodes.map((node) => UdpTool.start(node)));
		tools.push(a, b);
		await b.bind("in", 6000);
		await a.bind("out", 6001);
		const address = lab.nodes[1].interfaces[0].addresses[0].ip;
		for (let i = 0; i < 1000; i++) await a.send("out", `${address}:6000`, `d${i}`);
		// Count until the receiver's reports stop coming (a loaded machine delivers them late).
		const count = () => (b as unknown as { agent: { received(): { event: string; sock: string }[] } }).agent.received().filter((event) => event.event === "recv" && event.sock === "in").length;
		let received = count();
		for (let quiet = 0, waited = 0; quiet < 3 && waited < 50; waited++) {
			await new Promise((resolve) => setTimeout(resolve, 100));
			const now = count();
			quiet = now === received ? quiet + 1 : 0;
			received = now;
		}
		const loss = (1000 - received) / 10;
		t.log(`measured loss: ${loss}% (declared 20%)`);
		t.true(loss >= 15 && loss <= 25, `${loss}%`);
	} finally {
		await Promise.all(tools.map((tool) => tool.stop()));
		await downLab("tb-loss");
	}
	t.deepEqual(leftovers("tb-loss", ["tb-loss-a", "tb-loss-b"]), []);
});
