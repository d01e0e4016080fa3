// `testbed watch`'s server: a page on 127.0.0.1 and a stream of Server-Sent Events (node:http, no
// framework). It samples the lab only while a browser is connected: the first connection starts the
// loop (a journal read every `journalMs`, a kernel sample every `intervalMs`), the last one leaving
// stops it, so an idle `watch` runs no process. The abort signal (Ctrl-C) ends every stream, closes
// the server and waits for the sample under way, whose commands it also stops.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { TestbedError } from "../errors.ts";
import type { JournalEntry } from "../apply/journal.ts";
import { sampleChanges, type LabSample, type WatchEvent, type WatchView } from "./watch-sample.ts";

/** Where the page's facts come from: the running lab (watch-lab.ts), or a stand-in in tests. */
export interface WatchSource {
	lab: string;
	/** Read the lab now. Throws (with a message for the page) when it cannot, e.g. the lab was taken down. */
	sample(signal: AbortSignal): Promise<LabSample>;
	/** Journal entries appended since the last call (the first call: what is there already). */
	journal(): JournalEntry[];
	/** The lab's picture as SVG, drawn anew when the lab changed (an event took a link down). */
	picture(): Promise<string>;
}

/** How the page is drawn (report/watch-page.ts's `watchPage`; the report stage sits below this one). */
export interface WatchRenderer {
	/** The whole page as it is now. */
	page(view: WatchView): string;
	/** The parts that change, by element id. */
	sections(view: WatchView): Record<string, string>;
	/** One event as an item of the page's list. */
	event(event: WatchEvent, utcOffsetMinutes: number): string;
	/** The picture as it sits in the page. */
	picture(svg: string): string;
}

export interface WatchOptions {
	/** 0 or absent: a free port. */
	port?: number;
	intervalMs: number;
	/** How often the journal is read while sampling (default 200 ms): punches show up this fast. */
	journalMs?: number;
	signal: AbortSignal;
}

export interface WatchServer {
	url: string;
	/** Settles when the server is closed (after the signal aborted) and nothing of it runs any more. */
	closed: Promise<void>;
	/** For tests: browsers connected, whether the loop runs, samples taken. */
	stats(): { clients: number; sampling: boolean; samples: number };
}

/** Events kept for a browser that connects later (and for the page's first render). */
const historySize = 200;

interface Update {
	reset?: boolean;
	sections: Record<string, string>;
	events: string[];
}

export async function startWatch(source: WatchSource, render: WatchRenderer, options: WatchOptions): Promise<WatchServer> {
	const { signal, intervalMs } = options;
	const journalMs = options.journalMs ?? 200;
	const clients = new Set<ServerResponse>();
	const view: WatchView = { lab: source.lab, svg: await source.picture(), events: source.journal().slice(-historySize), utcOffsetMinutes: -new Date().getTimezoneOffset() };
	let loop: { stop: AbortController; done: Promise<void> } | undefined;
	let samples = 0;

	const send = (client: ServerResponse, update: Update) => client.write(`event: update\ndata: ${JSON.stringify(update)}\n\n`);
	const broadcast = (update: Update) => {
		for (const client of clients) send(client, update);
	};
	const addEvents = (events: WatchEvent[]): string[] => {
		view.events.push(...events);
		if (view.events.length > historySize) view.events.splice(0, view.events.length - historySize);
		return events.map((event) => render.event(event, view.utcOffsetMinutes));
	};

	const readJournal = async () => {
		const entries = source.journal();
		if (entries.length === 0) return;
		const update: Update = { sections: {}, events: addEvents(entries) };
		if (entries.some((entry) => entry.kind === "event")) {
			const svg = await source.picture();
			if (svg !== view.svg) update.sections.picture = render.picture((view.svg = svg));
		}
		broadcast(update);
	};

	const takeSample = async (stop: AbortSignal) => {
		let events: WatchEvent[] = [];
		try {
			const sample = await source.sample(stop);
			if (stop.aborted) return;
			samples++;
			if (view.sample) events = sampleChanges(view.sample, sample);
			[view.previous, view.sample, view.problem] = [view.sample, sample, undefined];
		} catch (error) {
			if (stop.aborted) return;
			view.problem = (error as Error).message;
		}
		broadcast({ sections: { ...render.sections(view) }, events: addEvents(events) });
	};

	const run = async (stop: AbortSignal) => {
		// Each start begins from a fresh baseline: what changed while nobody watched is not "new".
		[view.sample, view.previous] = [undefined, undefined];
		let nextSample = 0;
		while (!stop.aborted) {
			await readJournal();
			if (performance.now() >= nextSample) {
				nextSample = performance.now() + intervalMs;
				await takeSample(stop);
			}
			await sleep(Math.max(0, Math.min(journalMs, nextSample - performance.now())), undefined, { signal: stop }).catch(() => undefined);
		}
	};

	// A loop that is stopping may still finish its sample while a new one starts (a browser reloading).
	const running = new Set<Promise<void>>();
	const startLoop = () => {
		if ((loop && !loop.stop.signal.aborted) || signal.aborted) return;
		const stop = new AbortController();
		const current = { stop, done: run(stop.signal) };
		loop = current;
		running.add(current.done);
		void current.done.finally(() => {
			running.delete(current.done);
			if (loop === current) loop = undefined;
		});
	};
	const stopLoop = () => loop?.stop.abort();

	const server = createServer((request, response) => handle(request, response));
	function handle(request: IncomingMessage, response: ServerResponse): void {
		// Only pages opened as 127.0.0.1 or localhost: a web site that rebinds its name to 127.0.0.1 gets nothing.
		const host = (request.headers.host ?? "").replace(/:\d+$/, "");
		if (!["127.0.0.1", "localhost", "[::1]"].includes(host)) return void response.writeHead(403, { "content-type": "text/plain" }).end("open the page as http://127.0.0.1:PORT/\n");
		if (request.method !== "GET" && request.method !== "HEAD") return void response.writeHead(405, { allow: "GET, HEAD" }).end();
		const path = (request.url ?? "/").split("?")[0];
		if (path === "/" || path === "/index.html") {
			response.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
			return void response.end(request.method === "HEAD" ? undefined : render.page(view));
		}
		if (path === "/events") {
			response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive" });
			response.write("retry: 1000\n\n");
			clients.add(response);
			send(response, { reset: true, sections: { ...render.sections(view), picture: render.picture(view.svg) }, events: view.events.map((event) => render.event(event, view.utcOffsetMinutes)) });
			request.on("close", () => {
				clients.delete(response);
				if (clients.size === 0) stopLoop();
			});
			return startLoop();
		}
		if (path === "/favicon.ico") return void response.writeHead(204).end();
		response.writeHead(404, { "content-type": "text/plain" }).end("not found: the page is at /\n");
	}

	await new Promise<void>((resolve, reject) => {
		server.once("error", (error: NodeJS.ErrnoException) => {
			if (error.code === "EADDRINUSE") reject(new TestbedError(`port ${options.port} on 127.0.0.1 is in use (another watch, or another program); give another --port, or leave it out for a free one`, "PORT_IN_USE"));
			else if (error.code === "EACCES") reject(new TestbedError(`cannot listen on port ${options.port} of 127.0.0.1: ${error.message}`, "PORT_IN_USE"));
			else reject(error);
		});
		server.listen({ host: "127.0.0.1", port: options.port ?? 0 }, resolve);
	});
	const { port } = server.address() as AddressInfo;

	const closed = new Promise<void>((resolve) => {
		const close = async () => {
			stopLoop();
			for (const client of clients) client.end();
			clients.clear();
			const shut = new Promise<void>((done) => server.close(() => done()));
			server.closeAllConnections();
			await Promise.all([shut, ...running]);
			resolve();
		};
		if (signal.aborted) void close();
		else signal.addEventListener("abort", () => void close(), { once: true });
	});

	return { url: `http://127.0.0.1:${port}/`, closed, stats: () => ({ clients: clients.size, sampling: running.size > 0, samples }) };
}
