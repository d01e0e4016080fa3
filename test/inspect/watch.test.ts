// `testbed watch`'s plumbing without root: the server with a stand-in lab (samples, journal, picture),
// read as a browser would (the page, then Server-Sent Events); what changes between two samples; the
// kernel's JSON read back.
import { once } from "node:events";
import { createServer, get, request, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import type { JournalEntry } from "../../src/apply/journal.ts";
import type { NatFlow } from "../../src/inspect/nat-table.ts";
import { startWatch, type WatchSource } from "../../src/inspect/watch.ts";
import { parseDropCounter, parseLinkStats, readingPlan, sampleChanges, type LabSample } from "../../src/inspect/watch-sample.ts";
import { loadLab } from "../../src/index.ts";
import { watchPage } from "../../src/report/watch-page.ts";

const flow = (port: number): NatFlow => ({ proto: "udp", inside: `192.168.1.2:${port}`, public: `198.51.100.2:${port}`, remote: "203.0.113.10:7777", direction: "outbound", state: "ASSURED", secondsLeft: 30 });

/** A lab that changes when told to: its flows, its dropped count, its journal, its picture. */
class FakeLab implements WatchSource {
	lab = "watch-fake";
	flows: NatFlow[] = [];
	dropped = 0;
	entries: JournalEntry[] = [];
	svg = "<svg><text>v1</text></svg>";
	samples = 0;
	/** A sample that waits for the abort (a command still running at Ctrl-C). */
	hang = false;
	async sample(signal: AbortSignal): Promise<LabSample> {
		this.samples++;
		if (this.hang) await once(signal, "abort");
		return {
			at: Date.now(),
			nats: [{ name: "home1", behaviour: "port-restricted cone", filtering: "address-and-port-dependent", publicAddress: "198.51.100.2", flows: [...this.flows], dropped: this.dropped }],
			links: [{ ends: [{ node: "alice", iface: "eth0" }, { node: "home1", iface: "lan" }], packets: [this.samples, 0], up: true }],
		};
	}
	journal(): JournalEntry[] {
		return this.entries.splice(0);
	}
	async picture(): Promise<string> {
		return this.svg;
	}
}

interface Update {
	reset?: boolean;
	sections: Record<string, string>;
	events: string[];
}

/** An EventSource of the poor: every `update` the server sends, as it arrives. */
function stream(url: string) {
	const updates: Update[] = [];
	let pending = "";
	let response: IncomingMessage | undefined;
	const ended = new Promise<void>((resolve, reject) => {
		const req = get(`${url}events`, (res) => {
			response = res;
			res.setEncoding("utf8");
			res.on("data", (chunk: string) => {
				const blocks = (pending + chunk).split("\n\n");
				pending = blocks.pop() ?? "";
				for (const block of blocks) {
					const data = /^event: update\ndata: (.*)$/m.exec(block);
					if (data) updates.push(JSON.parse(data[1]));
				}
			});
			res.on("end", resolve);
			res.on("close", resolve);
		});
		req.on("error", reject);
	});
	return {
		updates,
		ended,
		close: () => response?.destroy(),
		async until(what: string, predicate: (update: Update) => boolean): Promise<Update> {
			for (let waited = 0; waited < 5000; waited += 10) {
				const found = updates.find(predicate);
				if (found) return found;
				await sleep(10);
			}
			throw new Error(`no update with ${what} in 5 s; got ${JSON.stringify(updates).slice(0, 2000)}`);
		},
	};
}

async function until(what: string, condition: () => boolean): Promise<void> {
	for (let waited = 0; waited < 5000; waited += 10) {
		if (condition()) return;
		await sleep(10);
	}
	throw new Error(`${what}: not within 5 s`);
}

const fetchText = async (url: string, host?: string, method = "GET") =>
	new Promise<{ status: number; text: string }>((resolve, reject) => {
		const req = request(url, { method, agent: false, headers: host ? { host } : {} }, (res) => {
			let text = "";
			res.setEncoding("utf8");
			res.on("data", (chunk) => (text += chunk));
			res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
		});
		req.on("error", reject);
		req.end();
	});

test("nothing samples until a browser connects; the stream starts with the whole state, then samples and the journal; the last browser leaving stops the sampling", async (t) => {
	const lab = new FakeLab();
	lab.entries.push({ kind: "punch-ended", at: Date.now(), a: "alice", b: "bob", run: 1, outcome: "direct", timeToConnectMs: 5, rttMs: 0.2 });
	const abort = new AbortController();
	const server = await startWatch(lab, watchPage, { intervalMs: 50, journalMs: 10, signal: abort.signal });
	try {
		t.regex(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
		await sleep(200);
		t.is(lab.samples, 0, "no browser, no sample");
		t.false(server.stats().sampling);
		const page = await fetchText(server.url);
		t.is(page.status, 200);
		t.regex(page.text, /<title>testbed watch: watch-fake<\/title>/);
		t.regex(page.text, /alice ↔ bob connected: <strong>direct<\/strong>/, "the journal written before watch started is on the page");
		t.is(lab.samples, 0, "the page alone samples nothing");

		const browser = stream(server.url);
		const reset = await browser.until("the reset", (update) => Boolean(update.reset));
		t.is(browser.updates[0], reset, "the first update is the whole state");
		t.regex(reset.sections.picture, /<svg><text>v1<\/text><\/svg>/);
		t.is(reset.events.length, 1);
		await browser.until("a sample", (update) => /no mappings/.test(update.sections.nats ?? ""));
		t.true(server.stats().sampling);

		lab.flows = [flow(40000)];
		const created = await browser.until("the new mapping", (update) => update.events.some((item) => item.includes("new mapping")));
		t.regex(created.sections.nats, /192\.168\.1\.2:40000/);
		lab.dropped = 2;
		await browser.until("the drops", (update) => update.events.some((item) => item.includes("dropped 2 unsolicited packets")));
		lab.entries.push({ kind: "punch-started", at: Date.now(), a: "alice", b: "bob", run: 2 });
		await browser.until("the punch", (update) => update.events.some((item) => item.includes("alice ↔ bob started (run 2)")));
		lab.svg = "<svg><text>v2</text></svg>";
		lab.entries.push({ kind: "event", at: Date.now(), event: "link-down", label: "link-down home1:wan" });
		const redrawn = await browser.until("the picture drawn again", (update) => Boolean(update.sections.picture?.includes("v2")));
		t.regex(redrawn.events[0], /link-down home1:wan/);
		lab.flows = [];
		await browser.until("the mapping gone", (update) => update.events.some((item) => item.includes("mapping gone")));

		browser.close();
		await until("sampling stops when the last browser leaves", () => !server.stats().sampling);
		const samples = lab.samples;
		await sleep(200);
		t.is(lab.samples, samples, "nothing samples after the browser left");

		const again = stream(server.url);
		const second = await again.until("the reset", (update) => Boolean(update.reset));
		t.true(second.events.some((item) => item.includes("mapping gone")), "a browser that comes later sees what happened before");
		await until("sampling again", () => lab.samples > samples);
		abort.abort();
		await server.closed;
		await again.ended;
		t.false(server.stats().sampling);
		await t.throwsAsync(fetchText(server.url), { code: "ECONNREFUSED" });
	} finally {
		abort.abort();
		await server.closed;
	}
});

test("Ctrl-C while a sample runs: the sample is told to stop, and the server closes after it", async (t) => {
	const lab = new FakeLab();
	lab.hang = true;
	const abort = new AbortController();
	const server = await startWatch(lab, watchPage, { intervalMs: 1000, signal: abort.signal });
	const browser = stream(server.url);
	await until("a sample started", () => lab.samples === 1);
	abort.abort();
	await server.closed;
	await browser.ended;
	t.is(server.stats().clients, 0);
	t.false(server.stats().sampling);
});

test("only 127.0.0.1 and localhost as the page's host; other paths and methods refused", async (t) => {
	const abort = new AbortController();
	const server = await startWatch(new FakeLab(), watchPage, { intervalMs: 1000, signal: abort.signal });
	try {
		t.is((await fetchText(server.url, "evil.example:80")).status, 403, "a site that rebinds its name to 127.0.0.1");
		t.is((await fetchText(server.url, "localhost:9999")).status, 200, "an ssh tunnel from another port");
		t.is((await fetchText(`${server.url}nope`)).status, 404);
		t.is((await fetchText(server.url, undefined, "POST")).status, 405);
	} finally {
		abort.abort();
		await server.closed;
	}
});

test("a port in use is said in words, and nothing is left listening", async (t) => {
	const other = createServer();
	other.listen(0, "127.0.0.1");
	await once(other, "listening");
	const { port } = other.address() as AddressInfo;
	const abort = new AbortController();
	try {
		await t.throwsAsync(startWatch(new FakeLab(), watchPage, { port, intervalMs: 1000, signal: abort.signal }), { message: new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is in use .*give another --port, or leave it out for a free one$`) });
	} finally {
		abort.abort();
		other.close();
	}
});

test("between two samples: mappings created and gone, drops counted (a reset counter counts from zero)", (t) => {
	const sample = (at: number, flows: NatFlow[], dropped: number): LabSample => ({ at, nats: [{ name: "home1", behaviour: "", filtering: "address-dependent", publicAddress: "198.51.100.2", flows, dropped }], links: [] });
	t.deepEqual(sampleChanges(sample(1, [flow(1)], 5), sample(2, [flow(1)], 5)), []);
	t.deepEqual(sampleChanges(sample(1, [flow(1)], 5), sample(2, [{ ...flow(1), secondsLeft: 3 }, flow(2)], 7)), [
		{ kind: "mapping-created", at: 2, nat: "home1", flow: flow(2) },
		{ kind: "dropped", at: 2, nat: "home1", packets: 2, filtering: "address-dependent" },
	]);
	t.deepEqual(sampleChanges(sample(1, [flow(1)], 9), sample(2, [], 1)), [
		{ kind: "mapping-expired", at: 2, nat: "home1", flow: flow(1) },
		{ kind: "dropped", at: 2, nat: "home1", packets: 1, filtering: "address-dependent" },
	]);
	t.deepEqual(sampleChanges({ at: 1, nats: [], links: [] }, sample(2, [flow(1)], 3)), [], "a NAT not in the earlier sample has no changes yet");
	const router: LabSample = { at: 2, nats: [{ name: "r", behaviour: "router translating by its own rules", filtering: "", publicAddress: "198.51.100.2", flows: [flow(1)], dropped: 0 }], links: [] };
	t.deepEqual(sampleChanges({ at: 1, nats: [], links: [] }, router), [{ kind: "mapping-created", at: 2, nat: "r", flow: flow(1) }], "a router that starts translating: its flows are new");
});

test("the kernel's JSON: ip -s -j link and the drop rule's counter", (t) => {
	const ip = JSON.stringify([
		{ ifname: "lo", operstate: "UNKNOWN", flags: ["LOOPBACK", "UP", "LOWER_UP"], stats64: { tx: { packets: 1, bytes: 2 } } },
		{ ifname: "eth0", operstate: "UP", stats64: { rx: { packets: 9 }, tx: { packets: 12, bytes: 900 } } },
		{ ifname: "wan", operstate: "LOWERLAYERDOWN", stats64: { tx: { packets: 3, bytes: 180 } } },
	]);
	const stats = parseLinkStats(ip);
	t.deepEqual(stats.get("eth0"), { sent: 12, received: 9, up: true });
	t.deepEqual(stats.get("wan"), { sent: 3, received: 0, up: false });
	t.true(stats.get("lo")!.up);
	t.is(parseLinkStats("").size, 0);
	const chain = JSON.stringify({ nftables: [{ metainfo: {} }, { rule: { expr: [{ match: {} }, { accept: null }] } }, { rule: { expr: [{ match: {} }, { counter: { packets: 7, bytes: 420 } }, { drop: null }] } }] });
	t.is(parseDropCounter(chain), 7);
	t.is(parseDropCounter("Error: No such file or directory"), 0);
});

test("a sample reads as few namespaces as cover every link: the NATs, then the router they hang on", (t) => {
	const plan = readingPlan(loadLab(new URL("../../topologies/two-nats.yml", import.meta.url).pathname));
	t.deepEqual(
		plan.nodes.map((node) => node.name),
		["internet", "home1", "home2"],
	);
	t.deepEqual(plan.readAt, [1, 1, 0, 0, 1], "alice–home1 and bob–home2 at the NAT, the uplinks at the NAT, stun–internet at the router");
	const cgnat = readingPlan(loadLab(new URL("../../topologies/cgnat.yml", import.meta.url).pathname));
	const lab = loadLab(new URL("../../topologies/cgnat.yml", import.meta.url).pathname);
	const read = new Set(cgnat.nodes.map((node) => node.name));
	t.true(lab.links.every((link, index) => read.has(link.endpoints[cgnat.readAt[index]].node)), "every link is read at an end whose namespace is read");
	t.true(cgnat.nodes.length < lab.nodes.length);
});
