// Where the CLI writes: stdout for results (JSON alone with --json), stderr for messages; colour only on a TTY.
export interface Io {
	out(text: string): void;
	err(text: string): void;
	json(value: unknown): void;
	color: boolean;
}

export function terminalIo(): Io {
	const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb";
	return {
		out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
		err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
		json: (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
		color,
	};
}

export function table(rows: string[][]): string {
	const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
	return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join("  ").trimEnd()).join("\n");
}
