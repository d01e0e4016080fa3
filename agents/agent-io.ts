// What every agent program shares: its command-line arguments, and one JSON line per event on stdout.
import { networkInterfaces } from "node:os";
import { createInterface } from "node:readline";

/** This node's addresses of a family, as others reach it: not loopback, not IPv6 link-local. */
export function nodeAddresses(family: 4 | 6): string[] {
	return Object.values(networkInterfaces())
		.flatMap((list) => list ?? [])
		.filter((entry) => entry.family === `IPv${family}` && !entry.internal && !entry.address.startsWith("fe80:"))
		.map((entry) => entry.address);
}

/** The value after `--name` on the command line. */
export function argument(name: string): string | undefined {
	const index = process.argv.indexOf(name);
	return index >= 0 ? process.argv[index + 1] : undefined;
}

/** One event, one line: what the controller in testbed reads. */
export function emit(event: Record<string, unknown>): void {
	process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Commands from the controller: one JSON object per stdin line; anything else is answered with an error. */
export async function* commands(): AsyncGenerator<Record<string, unknown>> {
	for await (const line of createInterface({ input: process.stdin })) {
		let command: unknown;
		try {
			command = JSON.parse(line);
		} catch {
			emit({ event: "error", error: "not JSON" });
			continue;
		}
		if (typeof command !== "object" || command === null || Array.isArray(command)) {
			emit({ event: "error", error: "not a JSON object" });
			continue;
		}
		yield command as Record<string, unknown>;
	}
}
