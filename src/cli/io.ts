// Where the CLI writes: stdout for results (JSON alone with --json), stderr for messages; colour only on a TTY.
export interface Io {
	out(text: string): void;
	err(text: string): void;
	json(value: unknown): void;
	color: boolean;
}

/**
 * The process's stdout and stderr. When the reader of stdout goes away (`testbed plan | head`),
 * writing stops quietly and `onClosed` is called (the CLI stops what it was doing, as after Ctrl-C).
 */
export function terminalIo(onClosed?: () => void): Io {
	const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb";
	let closed = false;
	process.stdout.on("error", (error: NodeJS.ErrnoException) => {
		if (error.code !== "EPIPE") throw error;
		closed = true;
		onClosed?.();
	});
	const write = (text: string) => {
		if (!closed) process.stdout.write(text);
	};
	return {
		out: (text) => write(text.endsWith("\n") ? text : `${text}\n`),
		err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
		json: (value) => write(`${JSON.stringify(value, null, 2)}\n`),
		color,
	};
}
