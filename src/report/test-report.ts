// `testbed test` results: an aligned table with ✓/✗, a JSON document, and JUnit XML for CI.
import type { CheckResult, TestReport } from "../expect/run.ts";
import { table } from "./table.ts";
import { describeExit } from "../vocabulary/exits.ts";

const ms = (value: number | null | undefined) => (value === null || value === undefined ? "-" : `${Math.round(value)} ms`);

export function renderTestText(report: TestReport, color = false): string {
	const paint = (ok: boolean, text: string) => (color ? `\x1b[${ok ? 32 : 31}m${text}\x1b[0m` : text);
	// Statistics columns only where some check has statistics (the user's programs have none).
	const withStats = report.checks.some((check) => check.stats);
	const rows = report.checks.map((check) => [
		check.skipped ? "-" : paint(check.ok, check.ok ? "✓" : "✗"),
		checkName(check),
		check.expected,
		check.measured,
		...(withStats
			? [
					check.stats ? `${Math.round(check.stats.successRate * 100)}%` : "",
					check.stats ? ms(check.stats.p50Ms) : "",
					check.stats ? ms(check.stats.p95Ms) : "",
					check.stats?.rttMs != null ? `${check.stats.rttMs.toFixed(2)} ms` : check.stats ? "-" : "",
				]
			: []),
	]);
	const lines = [
		`testbed test of lab "${report.lab}" (${report.file})${report.fromTheory ? ": no expect: list, so every pair of peers is punched and compared with theory for their NATs" : ""}`,
		"",
		table([["", "check", "expected", "measured", ...(withStats ? ["success", "p50", "p95", "rtt"] : [])], ...rows]),
		"",
	];
	for (const check of report.checks.filter((entry) => entry.skipped)) lines.push(`- ${check.name}${check.line ? ` (line ${check.line})` : ""}: ${check.skipped}`);
	for (const check of report.checks.filter((entry) => !entry.ok)) {
		lines.push(`✗ ${check.name}${check.line ? ` (line ${check.line})` : ""}: ${check.why ?? "mismatch"}`);
		if (check.explanation) lines.push(`  why: ${check.explanation.verdict}`);
		for (const line of programDetails(check)) lines.push(`  ${line}`);
	}
	if (report.failed > 0 || report.checks.some((check) => check.skipped)) lines.push("");
	if (report.notes?.length) lines.push(...report.notes.map((note) => `note: ${note}`), "");
	lines.push(`${report.passed} passed, ${report.failed} failed (${(report.durationMs / 1000).toFixed(1)} s)`);
	return `${lines.join("\n")}\n`;
}

/** For a check of the user's programs: each side's command, how it ended, how long it took, its last lines. */
export function programDetails(check: CheckResult): string[] {
	const lines: string[] = [];
	for (const program of check.programs ?? []) {
		lines.push(`${program.role} on ${program.node}: ${program.command}  → ${describeExit(program)} after ${(program.durationMs / 1000).toFixed(2)} s`);
		for (const line of program.tail.length ? program.tail : ["(no output)"]) lines.push(`    ${line}`);
	}
	if (check.result) lines.push(`dialer's result: ${JSON.stringify(check.result)}`);
	return lines;
}

/**
 * The user's matrix checks as a table: rows dial, columns listen (each labelled with its NAT), a cell
 * "pass ✓" or "fail≠pass ✗", and beside it what theory says a hole punch gives.
 */
export function renderProgramMatrix(report: TestReport, natOf: (node: string) => string = () => ""): string {
	const cells = report.checks.filter((check) => check.kind === "matrix" && check.pair);
	if (cells.length === 0) return "";
	const peers = [...new Set(cells.flatMap((check) => [check.pair!.dialer, check.pair!.listener]))];
	const label = (node: string) => (natOf(node) ? `${node} (${natOf(node)})` : node);
	const cell = (dialer: string, listener: string) => {
		if (dialer === listener) return "·";
		const check = cells.find((entry) => entry.pair!.dialer === dialer && entry.pair!.listener === listener);
		if (!check) return "";
		const measured = check.measured.split(" ")[0];
		return `${check.ok ? `${measured} ✓` : `${measured}≠${check.expected} ✗`} [${check.theory ?? "?"}]`;
	};
	return `${table([["dials ↓ listens →", ...peers.map(label)], ...peers.map((dialer) => [label(dialer), ...peers.map((listener) => cell(dialer, listener))])])}\n`;
}

/** A step's name carries its time: "+2.05 s nat-reboot home". */
export function checkName(check: CheckResult): string {
	return check.atMs === undefined ? check.name : `+${(check.atMs / 1000).toFixed(2)} s  ${check.name}`;
}

/** A NAT × NAT style matrix for punch checks: rows and columns are peers, cells expected/measured. */
export function renderPunchMatrix(report: TestReport): string {
	const all = report.checks.filter((check) => check.kind === "punch");
	const variant = (check: CheckResult) => `${(check.proto ?? "udp").toUpperCase()}${check.family === 6 ? " over IPv6" : ""}${check.portMapping ? `, peers asking for a port mapping (${check.portMapping.join(", ")})` : ""}`;
	const variants = [...new Set(all.map(variant))];
	// One matrix per protocol and family, headed by it when there are several.
	if (variants.length > 1) return variants.map((name) => `${name}\n${matrixOf(all.filter((check) => variant(check) === name), 1)}`).join("\n");
	return matrixOf(all, 3);
}

/** The matrix of some punch checks; none for fewer than `least` (a single pair reads better as its row above). */
function matrixOf(punches: CheckResult[], least: number): string {
	if (punches.length < least) return "";
	const pairOf = (check: CheckResult) => check.name.replace(/^punch /, "").replace(/ \([\w, :-]+\)$/, "").split(" ↔ ");
	const peers = [...new Set(punches.flatMap(pairOf))];
	const short: Record<string, string> = { direct: "direct", lan: "lan", hairpin: "hairpin", relayed: "relay", failed: "FAIL" };
	const cell = (a: string, b: string) => {
		if (a === b) return "·";
		const check = punches.find((entry) => {
			const [x, y] = pairOf(entry);
			return (x === a && y === b) || (x === b && y === a);
		});
		if (!check) return "";
		const measured = check.measured.split("/").map((outcome) => short[outcome] ?? outcome).join("/");
		const expected = check.expected.split(" or ").map((outcome) => short[outcome] ?? outcome).join("/");
		return check.ok ? `${measured} ✓` : `${measured}≠${expected} ✗`;
	};
	return `${table([["", ...peers], ...peers.map((a) => [a, ...peers.map((b) => cell(a, b))])])}\n`;
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function renderJunit(report: TestReport): string {
	const cases = report.checks.map((check) => {
		const time = check.runs ? check.runs.reduce((sum, run) => sum + (run.timeToConnectMs ?? 0), 0) / 1000 : check.programs ? Math.max(...check.programs.map((program) => program.durationMs)) / 1000 : 0;
		const details = [check.why ?? "", ...programDetails(check)].filter(Boolean).join("\n");
		const body = check.skipped ? `<skipped message="${escape(check.skipped)}"/>` : check.ok ? "" : `\n      <failure message="${escape(`expected ${check.expected}, measured ${check.measured}`)}">${escape(details)}</failure>\n    `;
		return `    <testcase classname="testbed.${escape(report.lab)}.${check.kind}" name="${escape(check.name)}" time="${time.toFixed(3)}">${body}</testcase>`;
	});
	return [
		`<?xml version="1.0" encoding="UTF-8"?>`,
		`<testsuites name="testbed" tests="${report.checks.length}" failures="${report.failed}" time="${(report.durationMs / 1000).toFixed(3)}">`,
		`  <testsuite name="${escape(report.lab)}" tests="${report.checks.length}" failures="${report.failed}" errors="0" skipped="${report.checks.filter((check) => check.skipped).length}" time="${(report.durationMs / 1000).toFixed(3)}">`,
		...cases,
		`  </testsuite>`,
		`</testsuites>`,
		``,
	].join("\n");
}
