// What every agent program shares: its command-line arguments, and one JSON line per event on stdout.

/** The value after `--name` on the command line. */
export function argument(name: string): string | undefined {
	const index = process.argv.indexOf(name);
	return index >= 0 ? process.argv[index + 1] : undefined;
}

/** One event, one line: what the controller in testbed reads. */
export function emit(event: Record<string, unknown>): void {
	process.stdout.write(`${JSON.stringify(event)}\n`);
}
