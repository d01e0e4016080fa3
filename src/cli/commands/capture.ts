// `testbed capture LAB NODE:IFACE [-w FILE] [--during 'CMD'] [--seconds N]`
import { projectPath } from "../../project.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { requireLedger } from "../../apply/ledger.ts";
import { requireRoot } from "../../apply/preflight.ts";
import { runAttached } from "../../apply/terminal.ts";
import { captureTarget, splitCommand, startCapture } from "../../inspect/capture.ts";
import { UsageError } from "../../errors.ts";
import type { Io } from "../io.ts";

const bin = projectPath("bin", "testbed.js");

export async function captureCommand(labName: string, target: string, options: { w?: string; during?: string; seconds?: string }, io: Io, signal: AbortSignal): Promise<number> {
	requireRoot("capture");
	const lab = requireLedger(labName).resolved;
	const { node, iface } = captureTarget(lab, target);
	const capture = await startCapture(node, iface, { file: options.w, onLine: options.w ? undefined : (line) => io.out(line) });
	let exitCode = 0;
	try {
		if (options.during) {
			const argv = splitCommand(options.during);
			if (argv.length === 0) throw new UsageError("--during needs a command");
			// `testbed …` runs this testbed; anything else runs as given, in the root namespace.
			exitCode = await runAttached(argv[0] === "testbed" ? [process.execPath, bin, ...argv.slice(1)] : argv);
			await sleep(200); // the last packets
		} else if (options.seconds) await sleep(Number(options.seconds) * 1000, undefined, { signal }).catch(() => undefined);
		else await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
	} finally {
		const { packets } = await capture.stop();
		io.err(`${packets} packets captured on ${node.name}:${iface}${options.w ? ` into ${options.w}` : ""}`);
	}
	return exitCode;
}
