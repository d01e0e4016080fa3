// Hole punching with port mapping (issue 17), against the real miniupnpd in the lab's NATs
// (topologies/port-mapping.yml, as lab pmc-pm): symmetric ↔ symmetric connects directly only through
// the mapping one side's NAT grants; the method order is the caller's; TCP too; a PCP-only NAT
// refuses NAT-PMP and UPnP and grants with PCP; the portmap agent's discovery sees the same; the
// mappings are deleted when the endpoints close.
import { readFileSync } from "node:fs";
import { loadLab } from "../../src/index.ts";
import { PunchSession } from "../../src/drivers/punch.ts";
import { agentPlace, runAgentOnce } from "../../src/drivers/agent-process.ts";
import { portMappingFiles } from "../../src/apply/port-mapping.ts";
import { parseLeases } from "../../src/render/miniupnpd.ts";
import { inLab, leftovers, rootTest } from "../helpers/host.ts";

rootTest("punch --port-mapping: symmetric ↔ symmetric goes direct through the mapped candidate, in the caller's method order, over UDP and TCP; refusals are reported; mappings are deleted on close", async (t) => {
	const lab = loadLab(new URL("../../topologies/port-mapping.yml", import.meta.url).pathname, { name: "pmc-pm" });
	await inLab(t, lab, async () => {
		const session = await PunchSession.start(lab);
		try {
			const plain = await session.punch("p-sym", "p-sym-pm", { deadlineMs: 2000 });
			t.is(plain.outcome, "relayed", "without asking, two symmetric NATs need the relay");
			t.is(plain.portMapping, undefined);

			const mapped = await session.punch("p-sym", "p-sym-pm", { deadlineMs: 2000, portMapping: true });
			t.is(mapped.outcome, "direct", JSON.stringify(mapped));
			t.is(mapped.candidates?.a, "mapped", "p-sym punched p-sym-pm's mapped candidate");
			t.like(mapped.mappedVia, [{ node: "p-sym-pm", method: "pcp" }]);
			t.regex(mapped.mappedVia?.[0].external ?? "", /^11\.0\.0\.6:\d+$/);
			t.is(mapped.remote?.a, mapped.mappedVia?.[0].external);
			t.like(mapped.portMapping?.b, { granted: { method: "pcp", external: mapped.mappedVia?.[0].external }, failures: [] });
			t.is(mapped.portMapping?.a?.granted, null, "sym offers no port mapping");
			t.deepEqual(
				mapped.portMapping?.a?.failures.map((failure) => failure.method),
				["pcp", "nat-pmp", "upnp"],
			);

			const upnpFirst = await session.punch("p-sym", "p-sym-pm", { deadlineMs: 2000, portMapping: ["upnp", "pcp"] });
			t.is(upnpFirst.outcome, "direct");
			t.like(upnpFirst.mappedVia, [{ node: "p-sym-pm", method: "upnp" }]);

			const tcp = await session.punch("p-sym-pm", "p-sym", { deadlineMs: 2000, proto: "tcp", portMapping: ["nat-pmp"] });
			t.is(tcp.outcome, "direct", JSON.stringify(tcp));
			t.like(tcp.mappedVia, [{ node: "p-sym-pm", method: "nat-pmp" }]);

			const pcpOnly = await session.punch("p-pcp", "p-sym", { deadlineMs: 2000, portMapping: ["nat-pmp", "upnp", "pcp"] });
			t.is(pcpOnly.outcome, "direct", JSON.stringify(pcpOnly));
			t.like(pcpOnly.portMapping?.a, { granted: { method: "pcp" } });
			t.deepEqual(
				pcpOnly.portMapping?.a?.failures.map((failure) => failure.method),
				["nat-pmp", "upnp"],
				"the PCP-only NAT answers neither NAT-PMP nor UPnP",
			);
		} finally {
			await session.close();
		}
		// Every endpoint deleted its mapping when it closed.
		for (const nat of ["sym-pm", "pcp-only"]) t.deepEqual(parseLeases(readFileSync(portMappingFiles(lab.name, nat).leases, "utf8")), [], `${nat}'s leases`);

		const node = lab.nodes.find((candidate) => candidate.name === "p-pcp")!;
		const discovery = await runAgentOnce(agentPlace(lab.name, node), node.name, "portmap", ["--timeout-ms", "1000", "--ssdp-wait-ms", "1000"], 20_000);
		t.like(discovery, { event: "discovery", gateway: "192.168.1.1", answered: ["pcp"] });
	});
	t.deepEqual(leftovers(lab.name, lab.nodes.map((entry) => entry.netns)), []);
});
