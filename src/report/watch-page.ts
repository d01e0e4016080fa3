// `testbed watch`'s page, for a projector: the lab's picture, each NAT's live mappings, the packets
// on every link, and the events as they happen. Pure: the server (inspect/watch.ts) renders the
// whole page once, then pushes the same fragments (sections by id, one list item per event) over
// Server-Sent Events; the page's own script only puts them in place. Self-contained: no CDN, no
// framework, nothing fetched but /events.
import type { LinkSample, NatSample, WatchEvent, WatchView } from "../inspect/watch-sample.ts";
import type { WatchRenderer } from "../inspect/watch.ts";
import type { NatFlow } from "../inspect/nat-table.ts";

const esc = (text: string | number) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** HH:MM:SS at the server's offset from UTC. */
export function clockTime(at: number, utcOffsetMinutes: number): string {
	return new Date(at + utcOffsetMinutes * 60_000).toISOString().slice(11, 19);
}

const plural = (count: number, word: string) => `${count.toLocaleString("en-US")} ${word}${count === 1 ? "" : "s"}`;

function renderNat(nat: NatSample): string {
	const rows = nat.flows.map(
		(flow) =>
			`<tr class="${flow.direction}${flow.secondsLeft <= 5 ? " ending" : ""}"><td class="addr">${esc(flow.inside)}</td><td class="arrow">→</td><td class="addr">${esc(flow.public)}</td><td class="arrow">↔</td><td class="addr">${esc(flow.remote)}</td><td>${esc(flow.proto)}</td><td class="left">${esc(flow.secondsLeft)} s</td></tr>`,
	);
	const table = rows.length
		? `<table class="flows"><thead><tr><th>inside</th><th></th><th>public</th><th></th><th>remote</th><th></th><th>left</th></tr></thead><tbody>${rows.join("")}</tbody></table>`
		: `<p class="none">no mappings</p>`;
	return `<section class="nat" data-nat="${esc(nat.name)}"><h3>${esc(nat.name)} <span class="what">${esc(nat.behaviour)} · public ${esc(nat.publicAddress)}</span> <span class="drops${nat.dropped ? " some" : ""}">${esc(plural(nat.dropped, "drop"))}</span></h3>${table}</section>`;
}

export function renderNats(view: WatchView): string {
	if (!view.sample) return `<p class="none">reading the NATs…</p>`;
	if (view.sample.nats.length === 0) return `<p class="none">this lab has no NAT</p>`;
	return view.sample.nats.map(renderNat).join("");
}

const sameLink = (x: LinkSample, y: LinkSample) => x.ends.every((end, index) => end.node === y.ends[index].node && end.iface === y.ends[index].iface);

/** Packets per second one way, from the two latest samples ("" when none moved). */
function rate(link: LinkSample, side: 0 | 1, view: WatchView): string {
	const before = view.previous?.links.find((old) => sameLink(old, link))?.packets?.[side];
	const now = link.packets?.[side];
	if (now === undefined || before === undefined || !view.previous || !view.sample || view.sample.at <= view.previous.at) return "";
	const perSecond = Math.round(Math.max(0, now - before) / ((view.sample.at - view.previous.at) / 1000));
	return perSecond > 0 ? ` <span class="rate">+${esc(perSecond)}/s</span>` : "";
}

export function renderLinks(view: WatchView): string {
	if (!view.sample) return `<p class="none">reading the links…</p>`;
	const rows = view.sample.links.map((link) => {
		const [a, b] = link.ends;
		const down = link.up === false;
		const count = (side: 0 | 1) => (link.packets ? esc(link.packets[side].toLocaleString("en-US")) : "?");
		return `<tr class="${down ? "down" : "up"}"><td class="end">${esc(a.node)}<span class="iface">:${esc(a.iface)}</span></td><td class="count">${count(0)} →${rate(link, 0, view)}</td><td class="count">← ${count(1)}${rate(link, 1, view)}</td><td class="end">${esc(b.node)}<span class="iface">:${esc(b.iface)}</span></td><td class="state">${down ? "down" : ""}</td></tr>`;
	});
	return `<table class="links"><thead><tr><th>end</th><th>packets</th><th>packets</th><th>end</th><th></th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

const flowText = (flow: NatFlow) => `${flow.inside} → ${flow.public} ↔ ${flow.remote}`;
const ms = (value: number | null) => (value === null ? "" : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`);

/** One event as the page lists it: its time, where it happened, and what, in a class for its colour. */
export function renderEventItem(event: WatchEvent, utcOffsetMinutes: number): string {
	const item = (kind: string, where: string, what: string) => `<li class="${kind}"><time>${clockTime(event.at, utcOffsetMinutes)}</time> <span class="where">${esc(where)}</span> ${what}</li>`;
	switch (event.kind) {
		case "mapping-created":
			return item("created", event.nat, event.flow.direction === "outbound" ? `new mapping <span class="addr">${esc(flowText(event.flow))}</span>` : `let in <span class="addr">${esc(`${event.flow.remote} → ${event.flow.public} → ${event.flow.inside}`)}</span>`);
		case "mapping-expired":
			return item("expired", event.nat, `mapping gone <span class="addr">${esc(flowText(event.flow))}</span>`);
		case "dropped":
			return item("dropped", event.nat, `dropped ${esc(plural(event.packets, "unsolicited packet"))} (${esc(event.filtering)} filtering)`);
		case "punch-started":
			return item("punch", "punch", `${esc(event.a)} ↔ ${esc(event.b)} started${event.run > 1 ? ` (run ${esc(event.run)})` : ""}`);
		case "punch-ended": {
			if (event.outcome === "failed") return item("failed", "punch", `${esc(event.a)} ↔ ${esc(event.b)} failed${event.error ? `: ${esc(event.error)}` : ""}`);
			const details = [event.timeToConnectMs === null ? "" : `in ${ms(event.timeToConnectMs)}`, event.rttMs === null ? "" : `rtt ${ms(event.rttMs)}`].filter(Boolean).join(", ");
			return item(event.outcome === "relayed" ? "relayed" : "won", "punch", `${esc(event.a)} ↔ ${esc(event.b)} connected: <strong>${esc(event.outcome)}</strong>${details ? ` (${esc(details)})` : ""}`);
		}
		case "event":
			return item("event", "event", esc(event.label));
		case "held": {
			const who = event.side ? ` at ${esc(event.side)}` : "";
			const kind = event.what === "lost" || event.what === "failed" ? "failed" : event.what === "connected" || event.what === "reconnected" ? "won" : "event";
			const path = event.path ? `: <strong>${esc(event.path)}</strong>` : "";
			return item(kind, "session", `${esc(event.a)} ↔ ${esc(event.b)} ${esc(event.what)}${who}${path}${event.detail ? ` (${esc(event.detail)})` : ""}`);
		}
	}
}

/** The parts of the page that change, by element id. */
export function renderSections(view: WatchView): Record<"nats" | "links" | "updated", string> {
	const updated = view.problem ? `<span class="problem">${esc(view.problem)}</span>` : view.sample ? `updated ${clockTime(view.sample.at, view.utcOffsetMinutes)}` : "";
	return { nats: renderNats(view), links: renderLinks(view), updated };
}

/** The picture without the XML prologue, to sit inside the page. */
export function inlineSvg(svg: string): string {
	return svg.replace(/^<\?xml[^>]*>\s*/, "").replace(/<!DOCTYPE[^>]*>\s*/, "");
}

/** The whole page: everything as it is now; the script then keeps it live. */
export function renderWatchPage(view: WatchView): string {
	const sections = renderSections(view);
	const events = view.events
		.map((event) => renderEventItem(event, view.utcOffsetMinutes))
		.reverse()
		.join("\n");
	return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>testbed watch: ${esc(view.lab)}</title>
<style>
:root { --ink: #111; --muted: #555; --line: #ccc; --good: #1a7f37; --bad: #b3261e; --warn: #9a5b00; --info: #1f4e79; }
* { box-sizing: border-box; }
body { margin: 0; padding: 0.6rem 1rem; font: 22px/1.35 system-ui, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
header { display: flex; align-items: baseline; gap: 1.2rem; border-bottom: 3px solid var(--ink); padding-bottom: 0.3rem; }
h1 { font-size: 1.6rem; margin: 0; } h2 { font-size: 1.15rem; margin: 0.6rem 0 0.3rem; color: var(--muted); text-transform: uppercase; letter-spacing: 0.05em; }
h3 { font-size: 1.1rem; margin: 0.4rem 0 0.2rem; } h3 .what { font-weight: normal; color: var(--muted); font-size: 0.85em; }
#live { font-weight: bold; } body[data-state="live"] #live { color: var(--good); } body[data-state="live"] #live::before { content: "● live"; }
body[data-state="connecting"] #live::before { content: "○ connecting…"; } body[data-state="reconnecting"] #live { color: var(--bad); } body[data-state="reconnecting"] #live::before { content: "○ reconnecting…"; }
#updated { color: var(--muted); margin-left: auto; } .problem { color: var(--bad); font-weight: bold; }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 0 1.5rem; }
.left { min-width: 0; } .right { min-width: 0; }
#picture svg { width: 100%; height: auto; max-height: 42vh; }
table { border-collapse: collapse; width: 100%; } table.flows { font-size: 0.85em; } th { text-align: left; color: var(--muted); font-weight: normal; font-size: 0.8em; }
td, th { padding: 0.1rem 0.4rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
.addr, td.addr { font-family: "DejaVu Sans Mono", monospace; font-size: 0.92em; }
td.arrow { color: var(--muted); padding: 0 0.1rem; } td.left { text-align: right; } tr.ending td.left { color: var(--bad); font-weight: bold; }
tr.inbound td.addr:first-child { color: var(--info); }
.drops { font-size: 0.8em; color: var(--muted); } .drops.some { color: var(--bad); font-weight: bold; }
td.count { font-family: "DejaVu Sans Mono", monospace; text-align: center; } .iface { color: var(--muted); } .rate { color: var(--good); font-weight: bold; }
tr.down td { color: var(--bad); text-decoration: line-through; } tr.down td.state { text-decoration: none; font-weight: bold; }
.none { color: var(--muted); font-style: italic; margin: 0.2rem 0; }
#events { list-style: none; margin: 0; padding: 0; max-height: calc(100vh - 7rem); overflow-y: auto; }
#events li { padding: 0.25rem 0.4rem; border-left: 0.4rem solid var(--line); margin-bottom: 0.25rem; }
#events li time { color: var(--muted); font-family: "DejaVu Sans Mono", monospace; font-size: 0.85em; } #events .where { font-weight: bold; }
#events li.created { border-color: var(--info); } #events li.expired { border-color: var(--line); color: var(--muted); } #events li.dropped { border-color: var(--bad); }
#events li.punch { border-color: var(--warn); } #events li.won { border-color: var(--good); background: #eaf6ec; } #events li.relayed { border-color: var(--warn); background: #fdf3e1; }
#events li.failed { border-color: var(--bad); background: #fbeaea; } #events li.event { border-color: #6b4fbb; background: #f1edfb; }
#events li.fresh { animation: flash 2s ease-out; } @keyframes flash { from { background: #fff59d; } }
.hint { color: var(--muted); font-style: italic; } #events:not(:empty) + .hint { display: none; }
</style>
</head>
<body data-state="connecting">
<header><h1>lab “${esc(view.lab)}”</h1><span id="live"></span><span id="updated">${sections.updated}</span></header>
<main>
<div class="left">
<div id="picture">${inlineSvg(view.svg)}</div>
<h2>NAT mappings</h2>
<div id="nats">${sections.nats}</div>
<h2>Packets on each link</h2>
<div id="links">${sections.links}</div>
</div>
<div class="right">
<h2>Events</h2>
<ol id="events">${events}</ol>
<p class="hint">nothing yet: punch in another terminal, e.g. <span class="addr">testbed punch ${esc(view.lab)} A B</span></p>
</div>
</main>
<script>
"use strict";
(() => {
	const source = new EventSource("events");
	const list = document.getElementById("events");
	source.addEventListener("update", (message) => {
		const update = JSON.parse(message.data);
		for (const [id, html] of Object.entries(update.sections || {})) document.getElementById(id).innerHTML = html;
		if (update.reset) list.innerHTML = "";
		for (const html of update.events || []) {
			list.insertAdjacentHTML("afterbegin", html);
			if (!update.reset) list.firstElementChild.classList.add("fresh");
		}
		while (list.children.length > 200) list.lastElementChild.remove();
		document.body.dataset.state = "live";
	});
	source.addEventListener("error", () => { document.body.dataset.state = "reconnecting"; });
})();
</script>
</body>
</html>
`;
}

/** What the server (inspect/watch.ts) draws with. */
export const watchPage: WatchRenderer = { page: renderWatchPage, sections: renderSections, event: renderEventItem, picture: inlineSvg };
