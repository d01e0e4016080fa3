// Console transcripts in Markdown (```console blocks: `$ command` lines, then what it prints), read
// and compared with what the commands really print, so a tutorial cannot rot. Pure: no process here.

export interface TranscriptStep {
	/** The command as the reader types it (continuation lines joined). */
	command: string;
	/** What the document shows it printing. */
	expected: string[];
	/** 1-based line of the `$` in the document. */
	line: number;
}

/** Every `$ command` of every ```console block, in document order. */
export function readTranscript(markdown: string): TranscriptStep[] {
	const steps: TranscriptStep[] = [];
	const lines = markdown.split("\n");
	let inConsole = false;
	let current: TranscriptStep | undefined;
	for (let index = 0; index < lines.length; index++) {
		const line = lines[index]!;
		if (/^```/.test(line)) {
			if (!inConsole && /^```console\s*$/.test(line)) inConsole = true;
			else if (inConsole) [inConsole, current] = [false, undefined];
			continue;
		}
		if (!inConsole) continue;
		if (line.startsWith("$ ")) {
			let command = line.slice(2);
			const start = index + 1;
			while (command.endsWith("\\") && index + 1 < lines.length) command = `${command.slice(0, -1)}${lines[++index]!.trim()}`;
			current = { command: command.trim(), expected: [], line: start };
			steps.push(current);
		} else if (current) current.expected.push(line);
	}
	for (const step of steps) while (step.expected.length && step.expected.at(-1)!.trim() === "") step.expected.pop();
	return steps;
}

const ipv4 = /\b(?:\d{1,3}\.){3}\d{1,3}(?:\/\d{1,2})?\b/g;

/**
 * One line as compared: what changes from run to run is masked — every number that is not part
 * of an IPv4 address or a name (times, also `202ms`; ports, counters, pids, sizes) becomes `#`,
 * timestamps `#time#`, MAC addresses `##:##`, and
 * runs of spaces one space (table columns widen with the numbers).
 */
export function maskLine(line: string): string {
	const kept: string[] = [];
	return line
		.replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\b/g, "#time#")
		.replace(/\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b/gi, "##:##")
		.replace(/@if\d+\b/g, "@if#")
		.replace(ipv4, (address) => `\u0000${kept.push(address) - 1}\u0000`)
		.replace(/(?<![\w\u0000])\d+(?:[.,]\d+)*/g, "#")
		.replace(/\u0000(\d+)\u0000/g, (_, index: string) => kept[Number(index)]!)
		.replace(/[ \t]+/g, " ")
		.trimEnd();
}

/**
 * Compare what a command printed with what the document shows. A line `…` in the document stands
 * for any number of lines; `…` inside a line, for any text there. Returns undefined when they agree, else the first disagreement.
 */
export function compareOutput(expected: string[], actual: string[]): string | undefined {
	const want = expected.map(maskLine);
	const got = actual.map(maskLine);
	while (got.length && got.at(-1) === "") got.pop();
	while (want.length && want.at(-1) === "") want.pop();
	// Positions in `want` reachable after consuming `got[0..i)`: a small NFA over the `…` lines.
	let states = closure(new Set([0]), want);
	let furthest = { got: 0, want: 0 };
	for (let i = 0; i < got.length; i++) {
		const next = new Set<number>();
		for (const state of states) {
			if (want[state] === "…") next.add(state);
			else if (state < want.length && lineMatches(want[state]!, got[i]!)) next.add(state + 1);
		}
		if (next.size === 0) {
			const best = Math.max(...states);
			return `line ${i + 1} of the output differs:\n  shown:   ${expected[Math.min(best, expected.length - 1)] ?? "(nothing more)"}\n  printed: ${actual[i]}\n  (masked: shown "${want[best] ?? ""}", printed "${got[i]}")`;
		}
		states = closure(next, want);
		furthest = { got: i + 1, want: Math.max(...states) };
	}
	if (states.has(want.length)) return undefined;
	const missing = want.slice(furthest.want).find((line) => line !== "…");
	return `the output ended before the document's line "${missing}"`;
}

/** A line agrees when it is the same after masking; a `…` inside a line stands for any text there. */
function lineMatches(want: string, got: string): boolean {
	if (want === got) return true;
	if (!want.includes("…")) return false;
	const pattern = want.split("…").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*");
	return new RegExp(`^${pattern}$`).test(got);
}

function closure(states: Set<number>, want: string[]): Set<number> {
	const result = new Set(states);
	for (const state of [...result]) {
		let at = state;
		while (want[at] === "…") result.add(++at);
	}
	return result;
}
