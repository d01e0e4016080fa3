// `testbed watch`'s page as a pure function: the whole page for a fixed lab state (golden), each kind
// of event as a list item, and what comes from outside (names, errors) always escaped.
import test from "ava";
import type { LabSample, WatchEvent, WatchView } from "../../src/inspect/watch-sample.ts";
import { clockTime, renderEventItem, renderLinks, renderSections, renderWatchPage } from "../../src/report/watch-page.ts";
import { golden } from "../helpers/golden.ts";

const at = Date.UTC(2026, 4, 11, 9, 30, 0);

const sample = (offsetMs: number, alicePackets: number, dropped: number): LabSample => ({
	at: at + offsetMs,
	nats: [
		{
			name: "home1",
			behaviour: "port-restricted cone",
			filtering: "address-and-port-dependent",
			publicAddress: "198.51.100.2",
			flows: [
				{ proto: "udp", inside: "192.168.1.2:40000", public: "198.51.100.2:40000", remote: "203.0.113.10:7777", direction: "outbound", state: "ASSURED", secondsLeft: 118 },
				{ proto: "udp", inside: "192.168.1.2:40000", public: "198.51.100.2:40000", remote: "198.51.100.6:41000", direction: "outbound", state: "UNREPLIED", secondsLeft: 4 },
				{ proto: "udp", inside: "192.168.1.2:40001", public: "198.51.100.2:40001", remote: "198.51.100.6:41001", direction: "inbound", state: "ASSURED", secondsLeft: 29 },
			],
			dropped,
		},
		{ name: "home2", behaviour: "symmetric", filtering: "address-and-port-dependent", publicAddress: "198.51.100.6", flows: [], dropped: 0 },
	],
	links: [
		{ ends: [{ node: "alice", iface: "eth0" }, { node: "home1", iface: "lan" }], packets: [alicePackets, 12], up: true },
		{ ends: [{ node: "home1", iface: "wan" }, { node: "internet", iface: "e1" }], packets: [1234567, 3], up: false },
		{ ends: [{ node: "bob", iface: "eth0" }, { node: "home2", iface: "lan" }] },
	],
});

const flow = sample(0, 0, 0).nats[0].flows[0];
const events: WatchEvent[] = [
	{ kind: "punch-started", at, a: "alice", b: "bob", run: 1 },
	{ kind: "mapping-created", at: at + 100, nat: "home1", flow },
	{ kind: "mapping-created", at: at + 100, nat: "home1", flow: { ...flow, direction: "inbound", remote: "198.51.100.6:41001" } },
	{ kind: "dropped", at: at + 200, nat: "home2", packets: 1, filtering: "address-and-port-dependent" },
	{ kind: "dropped", at: at + 200, nat: "home2", packets: 12, filtering: "address-dependent" },
	{ kind: "punch-ended", at: at + 300, a: "alice", b: "bob", run: 1, outcome: "direct", timeToConnectMs: 4.25, rttMs: 0.3 },
	{ kind: "punch-started", at: at + 400, a: "alice", b: "bob", run: 2 },
	{ kind: "punch-ended", at: at + 500, a: "alice", b: "bob", run: 2, outcome: "relayed", timeToConnectMs: 3012, rttMs: null },
	{ kind: "punch-ended", at: at + 600, a: "alice", b: "carol", run: 1, outcome: "failed", timeToConnectMs: null, rttMs: null, error: "alice.3: <no reply>" },
	{ kind: "event", at: at + 700, event: "nat-reboot", label: "nat-reboot home1" },
	{ kind: "held", at: at + 800, a: "alice", b: "bob", what: "lost", side: "alice", detail: "silent for 1500 ms" },
	{ kind: "held", at: at + 1900, a: "alice", b: "bob", what: "reconnected", side: "alice", path: "direct" },
	{ kind: "mapping-expired", at: at + 61_000, nat: "home1", flow },
];

const view: WatchView = {
	lab: "watch-demo",
	svg: '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg width="100pt" height="50pt" viewBox="0 0 100 50"><text x="5" y="20">alice</text></svg>\n',
	previous: sample(0, 10, 0),
	sample: sample(500, 40, 3),
	events,
	utcOffsetMinutes: 60,
};

test("the whole page for a lab with two NATs, three links and every kind of event (golden)", (t) => {
	golden(t, "watch.page.html", renderWatchPage(view));
});

test("each kind of event as a list item (golden)", (t) => {
	golden(t, "watch.events.html", `${events.map((event) => renderEventItem(event, 0)).join("\n")}\n`);
});

test("the page before the first sample says it is reading, and lists no events but a hint", (t) => {
	const page = renderWatchPage({ ...view, sample: undefined, previous: undefined, events: [] });
	t.regex(page, /<div id="nats"><p class="none">reading the NATs…<\/p><\/div>/);
	t.regex(page, /<ol id="events"><\/ol>\n<p class="hint">nothing yet: punch in another terminal, e.g. <span class="addr">testbed punch watch-demo A B<\/span>/);
	t.false(page.includes("<?xml"), "the SVG's prologue is left out inside the page");
	t.notRegex(page, /<(script|link|img)[^>]+(src|href)=/, "nothing loaded from elsewhere");
});

test("packets per second from the two samples; a link with a down end is marked; counters not read are '?'", (t) => {
	const links = renderLinks(view);
	t.regex(links, /alice<span class="iface">:eth0<\/span><\/td><td class="count">40 → <span class="rate">\+60\/s<\/span>/);
	t.regex(links, /<tr class="down">.*1,234,567 →.*<td class="state">down<\/td>/);
	t.regex(links, /<td class="count">\? →<\/td><td class="count">← \?<\/td>/);
	t.notRegex(renderLinks({ ...view, previous: undefined }), /rate/);
});

test("a failed sample shows its reason in place of the time", (t) => {
	t.is(renderSections({ ...view, problem: 'lab "watch-demo" is not up any more' }).updated, '<span class="problem">lab &quot;watch-demo&quot; is not up any more</span>');
	t.is(renderSections(view).updated, "updated 10:30:00");
	t.is(clockTime(at, -300), "04:30:00");
});

test("what comes from outside is escaped: error text, labels, addresses", (t) => {
	const item = renderEventItem({ kind: "punch-ended", at, a: "a", b: "b", run: 1, outcome: "failed", timeToConnectMs: null, rttMs: null, error: '<img src=x onerror="alert(1)">' }, 0);
	t.false(item.includes("<img"));
	t.true(item.includes("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
	t.false(renderEventItem({ kind: "event", at, event: "impair", label: "impair <b>" }, 0).includes("<b>"));
});
