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

/** Limits that keep hostile input (alias bombs, huge files) from hanging the loader. */
const maxBytes = 4 * 1024 * 1024;

/** Parse YAML text; syntax errors become problems with positions, never exceptions. */
export function parseSource(file: string, text: string): TopologySource {
	const lineCounter = new LineCounter();
	const position = (offset: number): Pos => lineCounter.linePos(offset);
	if (text.length > maxBytes) {
		const document = parseDocument("{}", { lineCounter: new LineCounter() });
		return {
			file,
			text: "",
			document,
			position: () => ({ line: 1, col: 1 }),
			problems: [{ code: "YAML_SYNTAX", message: `file is larger than ${maxBytes} bytes`, pos: { line: 1, col: 1 } }],
		};
	}
	const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
	const problems: Problem[] = document.errors.map((error) => ({
		code: "YAML_SYNTAX",
		message: `${error.code}: ${error.message.split("\n")[0]}`,
		pos: position(error.pos[0]),
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
