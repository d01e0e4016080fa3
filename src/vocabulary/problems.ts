// A problem found in a topology file: a closed set of codes, each with a position and a fix.

/** 1-based line and column in the topology file. */
export interface Pos {
	line: number;
	col: number;
}

/** Every problem code, in the order the reader meets them. */
export const problemCodes = [
	"YAML_SYNTAX",
	"NOT_A_MAP",
	"WRONG_TYPE",
	"MISSING_KEY",
	"UNKNOWN_KEY",
	"BAD_VALUE",
	"BAD_LAB_NAME",
	"NAMESPACE_TOO_LONG",
	"BAD_NODE_NAME",
	"DUPLICATE_NODE",
	"UNKNOWN_NODE",
	"BAD_ENDPOINT",
	"BAD_INTERFACE_NAME",
	"DUPLICATE_INTERFACE",
	"BAD_CIDR",
	"ADDRESS_OUTSIDE_SUBNET",
	"ADDRESS_COUNT",
	"DUPLICATE_ADDRESS",
	"SUBNET_CONFLICT",
	"OVERLAPPING_SUBNETS",
	"SUBNET_FULL",
	"ADDRESS_ON_SWITCH",
	"BAD_ROUTE",
	"GATEWAY_NOT_CONNECTED",
	"NAT_WITHOUT_OUTSIDE",
	"NAT_ON_NON_NAT",
	"BAD_NAT",
	"BAD_IMPAIRMENT",
	"DUPLICATE_NAMESPACE",
	"DUPLICATE_KEY",
	"BAD_EXPECT",
	"BAD_STEP",
	"BAD_PROGRAM",
	"BAD_PLACEHOLDER",
	"BAD_PRIVATE",
	"BAD_FILE",
	"BAD_LIMIT",
	// Warnings: the file is valid, but probably not what its author meant.
	"NODE_WITHOUT_LINKS",
] as const;

export type ProblemCode = (typeof problemCodes)[number];

/** The codes that warn: the file is valid and builds, but probably not as its author meant. */
export const warningCodes: readonly ProblemCode[] = ["NODE_WITHOUT_LINKS"];

export interface Problem {
	code: ProblemCode;
	message: string;
	pos: Pos;
	/** How to fix it, in one sentence, when there is a clear fix. */
	fix?: string;
}

/** `FILE:LINE:COL: CODE: message`, the source line, a caret under the column, and the fix. A warning says so. */
export function formatProblem(file: string, source: string, problem: Problem, severity: "problem" | "warning" = "problem"): string {
	const { line, col } = problem.pos;
	const head = `${file}:${line}:${col}: ${severity === "warning" ? "warning: " : ""}${problem.code}: ${problem.message}`;
	const text = source.split(/\r?\n/)[line - 1];
	const lines = [head];
	if (text !== undefined) {
		lines.push(`  ${line} | ${text}`);
		lines.push(`  ${" ".repeat(String(line).length)} | ${" ".repeat(Math.max(0, col - 1))}^`);
	}
	if (problem.fix) lines.push(`  fix: ${problem.fix}`);
	return lines.join("\n");
}

/** Problems in file order. */
export function sortProblems(problems: Problem[]): Problem[] {
	return [...problems].sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
}
