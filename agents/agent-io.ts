// What every agent program shares: its command-line arguments, and one JSON line per event on stdout.
import { createInterface } from "node:readline";

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
