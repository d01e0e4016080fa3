// `testbed watch LAB [--port N] [--interval MS]`: a live page for the projector on 127.0.0.1 — the
// lab's picture, each NAT's mappings, packets per link, and events as they happen — until Ctrl-C.
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { UsageError } from "../../errors.ts";
import { startWatch } from "../../inspect/watch.ts";
import { labSource } from "../../inspect/watch-lab.ts";
import { renderGraph } from "../../report/render-svg.ts";
import { watchPage } from "../../report/watch-page.ts";
import type { Io } from "../io.ts";

export async function watchCommand(labName: string, options: { port?: string; interval?: string }, io: Io, signal: AbortSignal): Promise<number> {
	const port = options.port === undefined ? 0 : wholeNumber("--port", options.port, 1, 65535, "a TCP port, 1-65535 (leave it out for a free one)");
	const intervalMs = options.interval === undefined ? 1000 : wholeNumber("--interval", options.interval, 100, 60_000, "milliseconds between samples, 100-60000");
	requireRoot("watch");
	const lab = requireLedger(labName).resolved;
	const server = await startWatch(labSource(labName, lab, (now) => renderGraph(now, "svg")), watchPage, { port, intervalMs, signal });
	io.out(`watching lab "${labName}" at ${server.url}`);
	io.err("open it in a browser (it samples the lab while a page is open); Ctrl-C stops");
	await server.closed;
	return 0;
}

function wholeNumber(option: string, text: string, min: number, max: number, what: string): number {
	const value = Number(text);
	if (!/^\d+$/.test(text) || value < min || value > max) throw new UsageError(`${option} ${text}: give ${what}\nusage: testbed watch LAB [--port N] [--interval MS]`);
	return value;
}
