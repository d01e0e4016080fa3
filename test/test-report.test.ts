// Reports of `testbed test`: the table, the punch matrix and JUnit XML.
import test from "ava";
import type { TestReport } from "../src/expect/run.ts";
import { percentile } from "../src/expect/run.ts";
import { renderJunit, renderPunchMatrix, renderTestText } from "../src/report/test-report.ts";

const report: TestReport = {
	lab: "demo",
	file: "demo.yml",
	fromTheory: false,
	passed: 2,
	failed: 1,
	durationMs: 4200,
	checks: [
		{ name: "punch a ↔ b", kind: "punch", expected: "direct", measured: "direct", ok: true, line: 9, stats: { successRate: 1, p50Ms: 12, p95Ms: 20, rttMs: 0.3 }, runs: [] },
		{ name: "punch a ↔ c", kind: "punch", expected: "direct", measured: "relayed", ok: false, line: 11, why: "3 of 3 runs ended relayed", stats: { successRate: 0, p50Ms: 3000, p95Ms: 3000, rttMs: 0.5 }, runs: [] },
		{ name: "punch b ↔ c", kind: "punch", expected: "relayed", measured: "relayed", ok: true, stats: { successRate: 1, p50Ms: 3000, p95Ms: 3001, rttMs: 0.5 }, runs: [] },
	],
};

test("the text report aligns the table, marks ✓/✗, explains failures and ends with the counts", (t) => {
	const text = renderTestText(report);
	t.regex(text, /^✓\s+punch a ↔ b\s+direct\s+direct\s+100%\s+12 ms\s+20 ms\s+0\.30 ms$/m);
	t.regex(text, /^✗\s+punch a ↔ c\s+direct\s+relayed/m);
	t.regex(text, /✗ punch a ↔ c \(line 11\): 3 of 3 runs ended relayed/);
	t.regex(text, /2 passed, 1 failed \(4\.2 s\)\n$/);
	t.notRegex(text, /\x1b\[/, "no colour unless asked");
});

test("the punch matrix has a row and a column per peer", (t) => {
	const matrix = renderPunchMatrix(report).split("\n");
	t.regex(matrix[0], /^\s+a\s+b\s+c$/);
	t.regex(matrix[1], /^a\s+·\s+direct ✓\s+relay≠direct ✗$/);
});

test("JUnit XML: one testcase per check, failures with expected and measured, escaped", (t) => {
	const xml = renderJunit({ ...report, lab: "de<mo" });
	t.regex(xml, /<testsuites name="testbed" tests="3" failures="1"/);
	t.regex(xml, /<testcase classname="testbed\.de&lt;mo\.punch" name="punch a ↔ c" time="[\d.]+">\n {6}<failure message="expected direct, measured relayed">3 of 3 runs ended relayed<\/failure>/);
	t.is((xml.match(/<testcase /g) ?? []).length, 3);
});

test("percentiles", (t) => {
	t.is(percentile([], 50), null);
	t.is(percentile([5, 1, 3], 50), 3);
	t.is(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), 10);
});
