// Reading a topology file: YAML parsed into a document that keeps every node's source position.
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument, type Document } from "yaml";
import type { Pos, Problem } from "../validate/problem.ts";

/** The file's text and its YAML document, with a way to turn offsets into line:col. */
export interface TopologySource {
	file: string;
	text: string;
	document: Document.Parsed;
	position(offset: number): Pos;
	problems: Problem[];
}

/** Limits that keep hostile input (alias bombs, huge files, deep nesting) from hanging or crashing the loader. */
const maxBytes = 4 * 1024 * 1024;
const maxDepth = 256;

/**
 * How deep the text nests, by a cheap scan: brackets outside quotes, indentation, and runs of
 * `- ` at the start of a line. The YAML parser recurses per level and, thousands of levels deep,
 * can exhaust V8 beyond what an exception can report; such a file is refused before parsing.
 */
export function nestingDepth(text: string): number {
	let deepest = 0;
	let brackets = 0;
	let quote: string | undefined;
	for (const line of text.split("\n")) {
		const indent = /^[ -]*/.exec(line)![0];
		deepest = Math.max(deepest, indent.length / 2 + (indent.match(/- /g)?.length ?? 0));
		for (let i = 0; i < line.length; i++) {
			const char = line[i];
			if (quote) {
				if (char === quote) quote = undefined;
				continue;
			}
			if (char === "#" && (i === 0 || line[i - 1] === " ")) break;
			if (char === '"' || char === "'") quote = char;
			else if (char === "[" || char === "{") deepest = Math.max(deepest, ++brackets);
			else if ((char === "]" || char === "}") && brackets > 0) brackets--;
		}
		quote = undefined; // YAML flow scalars can span lines, but a quote left open ends the count
	}
	return deepest;
}

/** Parse YAML text; syntax errors become problems with positions, never exceptions. */
export function parseSource(file: string, text: string): TopologySource {
	const lineCounter = new LineCounter();
	const position = (offset: number): Pos => lineCounter.linePos(offset);
	const tooBig = Buffer.byteLength(text, "utf8") > maxBytes;
	const depth = tooBig ? 0 : nestingDepth(text);
	if (tooBig || depth > maxDepth) {
		const document = parseDocument("{}", { lineCounter: new LineCounter() });
		return {
			file,
			text: "",
			document,
			position: () => ({ line: 1, col: 1 }),
			problems: [
				tooBig
					? { code: "YAML_SYNTAX", message: `file is larger than ${maxBytes} bytes`, pos: { line: 1, col: 1 } }
					: { code: "YAML_SYNTAX", message: `the document nests more than ${maxDepth} levels deep`, pos: { line: 1, col: 1 }, fix: "a topology needs a few levels; flatten the file" },
			],
		};
	}
	const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
	const lines = text.split("\n");
	// yaml's line counter can miss a line break inside a flow collection and report a column past the
	// end of the line; such a position belongs to the start of the next line.
	const onALine = (pos: Pos): Pos => {
		const length = lines[pos.line - 1]?.replace(/\r$/, "").length ?? 0;
		if (pos.col <= length + 1) return pos;
		return pos.line < lines.length ? { line: pos.line + 1, col: Math.min(pos.col - length - 1, (lines[pos.line]?.length ?? 0) + 1) || 1 } : { line: pos.line, col: length + 1 };
	};
	const problems: Problem[] = document.errors.map((error) => ({
		code: "YAML_SYNTAX",
		message: `${error.code}: ${error.message.split("\n")[0]}`,
		pos: onALine(position(error.pos[0])),
	}));
	return { file, text, document, position, problems };
}

/** Read and parse a file; an unreadable file is a problem at 1:1. */
export function readSource(file: string): TopologySource {
	let text: string;
	try {
		text = readFileSync(file, "utf8");
	} catch (error) {
		const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message;
		const source = parseSource(file, "");
		source.problems.push({ code: "YAML_SYNTAX", message: `cannot read the file: ${reason}`, pos: { line: 1, col: 1 } });
		return source;
	}
	return parseSource(file, text);
}
