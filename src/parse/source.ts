// Reading a topology file: YAML parsed into a document that keeps every node's source position.
import { readFileSync } from "node:fs";
import { Composer, LineCounter, parseDocument, Parser, YAMLParseError, type Document } from "yaml";
import type { CST } from "yaml";

type Token = CST.Token;
import type { Pos, Problem } from "../vocabulary/problems.ts";

/** The file's text and its YAML document, with a way to turn offsets into line:col. */
export interface TopologySource {
	file: string;
	text: string;
	document: Document.Parsed;
	position(offset: number): Pos;
	problems: Problem[];
	/** Line ranges a syntax error makes unreadable (their top-level sections); the rest of the file can still be checked. */
	damaged?: { from: number; to: number }[];
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
	return tokensDepth([...new Parser().parse(text)]);
}

function tokensDepth(tokens: Token[]): number {
	type Node = { type?: string; value?: unknown; items?: { key?: unknown; value?: unknown }[] };
	let deepest = 0;
	for (const document of tokens) {
		const stack: [Node, number][] = [[document as Node, 0]];
		while (stack.length > 0) {
			const [token, depth] = stack.pop()!;
			deepest = Math.max(deepest, depth);
			if (deepest > 10_000) return deepest;
			const children = [...(token.items ?? []).flatMap((item) => [item.key, item.value]), token.type === "document" ? token.value : undefined];
			for (const child of children) if (child && typeof child === "object") stack.push([child as Node, depth + 1]);
		}
	}
	return deepest;
}

/** Compose the document from tokens already parsed (as yaml's parseDocument does from text: one parse, not two). */
function compose(tokens: Token[], length: number): Document.Parsed {
	let document: Document.Parsed | undefined;
	for (const composed of new Composer({ prettyErrors: false, uniqueKeys: false }).compose(tokens, true, length)) {
		if (!document) document = composed as Document.Parsed;
		else {
			document.errors.push(new YAMLParseError([composed.range[0], composed.range[1]], "MULTIPLE_DOCS", "Source contains multiple documents; please use YAML.parseAllDocuments()"));
			break;
		}
	}
	return document!;
}

/** Parse YAML text; syntax errors become problems with positions, never exceptions. */
export function parseSource(file: string, text: string): TopologySource {
	const lineCounter = new LineCounter();
	const position = (offset: number): Pos => lineCounter.linePos(offset);
	const tooBig = Buffer.byteLength(text, "utf8") > maxBytes;
	const tokens = tooBig ? [] : [...new Parser(lineCounter.addNewLine).parse(text)];
	const depth = tooBig ? 0 : tokensDepth(tokens);
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
	const document = compose(tokens, text.length);
	const lines = text.split("\n");
	// yaml's line counter can miss a line break inside a flow collection and report a column past the
	// end of the line; such a position belongs to the start of the next line.
	const onALine = (pos: Pos): Pos => {
		const length = lines[pos.line - 1]?.replace(/\r$/, "").length ?? 0;
		if (pos.col <= length + 1) return pos;
		return pos.line < lines.length ? { line: pos.line + 1, col: Math.min(pos.col - length - 1, (lines[pos.line]?.length ?? 0) + 1) || 1 } : { line: pos.line, col: length + 1 };
	};
	const problems: Problem[] = [];
	for (const error of document.errors) {
		const problem = explainIndentation(lines, error.code, onALine(position(error.pos[0]))) ?? { code: "YAML_SYNTAX", message: `${error.code}: ${error.message.split("\n")[0]}`, pos: onALine(position(error.pos[0])) };
		if (!problems.some((known) => known.pos.line === problem.pos.line && known.pos.col === problem.pos.col && known.message === problem.message)) problems.push(problem);
	}
	return { file, text, document, position, problems, damaged: damagedSections(lines, problems) };
}

const indentOf = (line: string): number => line.length - line.trimStart().length;
const isContent = (line: string | undefined): line is string => line !== undefined && line.trim() !== "" && !line.trimStart().startsWith("#");
const keyOf = (line: string): string => line.trim().replace(/^- /, "").split(/:(\s|$)/)[0]!;

/**
 * yaml's indentation errors name a column it could not read, often on the line before the real
 * mistake and at column 1. Point at the line whose indentation is off, say which keys it could
 * line up with, and how.
 */
function explainIndentation(lines: string[], code: string, pos: Pos): Problem | undefined {
	if (code === "TAB_AS_INDENT") {
		const line = lines[pos.line - 1] ?? "";
		return { code: "YAML_SYNTAX", pos: { line: pos.line, col: 1 }, message: "a tab in the indentation: YAML indents with spaces only", fix: `replace the tab${line.startsWith("\t\t") ? "s" : ""} with spaces (most editors: "convert indentation to spaces")` };
	}
	let at = pos.line;
	if (code === "BLOCK_AS_IMPLICIT_KEY" || code === "MULTILINE_IMPLICIT_KEY") {
		// `kind: router` then `  routes: []` indented deeper: yaml reads the second line as part of the first's value.
		let next = at;
		while (next < lines.length && !isContent(lines[next])) next++;
		const line = lines[at - 1], following = lines[next];
		if (!isContent(line) || !isContent(following) || indentOf(following) <= indentOf(line) || !/:\s+\S/.test(line)) return undefined;
		const key = keyOf(following);
		return {
			code: "YAML_SYNTAX",
			pos: { line: next + 1, col: indentOf(following) + 1 },
			message: `\`${key}:\` is indented ${indentOf(following)} spaces, deeper than \`${line.trim()}\` on line ${at} (${indentOf(line)}), so YAML reads it as part of that value`,
			fix: `indent \`${key}:\` by ${indentOf(line)} spaces, like \`${keyOf(line)}:\``,
		};
	}
	if (code !== "BAD_INDENT") return undefined;
	const line = lines[at - 1];
	if (!isContent(line)) return undefined;
	const own = indentOf(line);
	// The keys above it, at other indentations, up to the top level: each is a column it could mean.
	const choices = new Map<number, number>();
	for (let above = at - 2; above >= 0; above--) {
		const candidate = lines[above];
		if (!isContent(candidate)) continue;
		const indent = indentOf(candidate);
		if (indent !== own && !choices.has(indent) && [...choices.keys()].every((seen) => indent < seen)) choices.set(indent, above + 1);
		if (indent === 0) break;
	}
	const options = [...choices].sort(([a], [b]) => Math.abs(a - own) - Math.abs(b - own)).slice(0, 2);
	const key = keyOf(line);
	return {
		code: "YAML_SYNTAX",
		pos: { line: at, col: own + 1 },
		message: `\`${key}:\` is indented ${own} space${own === 1 ? "" : "s"}, which lines up with no key above it`,
		fix: options.length
			? options.map(([indent, where]) => `indent it ${indent} space${indent === 1 ? "" : "s"} like \`${keyOf(lines[where - 1]!)}:\` (line ${where})`).join(", or ")
			: "indent it like the keys around it (YAML nests by spaces)",
	};
}

/**
 * The top-level sections (`nodes:`, `links:`, …) a syntax error is in: yaml still composes the rest of
 * the file, so problems elsewhere can be reported too, while problems inside these lines would only
 * be echoes of the syntax error.
 */
function damagedSections(lines: string[], problems: Problem[]): { from: number; to: number }[] {
	return problems.map(({ pos }) => {
		let from = pos.line;
		while (from > 1 && !(isContent(lines[from - 1]) && indentOf(lines[from - 1]!) === 0)) from--;
		let to = pos.line;
		while (to < lines.length && !(isContent(lines[to]) && indentOf(lines[to]!) === 0)) to++;
		return { from, to };
	});
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
