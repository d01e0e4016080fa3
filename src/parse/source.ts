// Reading a topology file: YAML parsed into a document that keeps every node's source position.
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument, Parser, type Document } from "yaml";
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
 * How deep the document nests, from yaml's concrete syntax tree: its lexer and parser work with an
 * explicit stack, while composing the document recurses per level and, thousands of levels deep, can
 * exhaust V8 beyond what an exception reports. So a file nesting too deep is refused before composing.
 */
export function nestingDepth(text: string): number {
	type Token = { type?: string; value?: unknown; items?: { key?: unknown; value?: unknown }[] };
	let deepest = 0;
	for (const document of new Parser().parse(text)) {
		const stack: [Token, number][] = [[document as Token, 0]];
		while (stack.length > 0) {
			const [token, depth] = stack.pop()!;
			deepest = Math.max(deepest, depth);
			if (deepest > 10_000) return deepest;
			const children = [...(token.items ?? []).flatMap((item) => [item.key, item.value]), token.type === "document" ? token.value : undefined];
			for (const child of children) if (child && typeof child === "object") stack.push([child as Token, depth + 1]);
		}
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
