// Reports of `testbed test`: the table, the punch matrix and JUnit XML.
import test from "ava";
import type { TestReport } from "../../src/expect/run.ts";
import { percentile } from "../../src/expect/run.ts";
import { renderJunit, renderProgramMatrix, renderPunchMatrix, renderTestText } from "../../src/report/test-report.ts";
import { golden } from "../helpers/golden.ts";

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

const userReport: TestReport = {
	lab: "echo",
	file: "echo.yml",
	fromTheory: false,
	passed: 2,
	failed: 1,
	durationMs: 2700,
	checks: [
		{ name: "run a: hostname", kind: "run", expected: "exit 0 and output /^a$/", measured: "exit 0, output matched in 0.02 s", ok: true, line: 8, programs: [{ role: "run", node: "a", command: "hostname", exitCode: 0, signal: null, durationMs: 20, timedOut: false, tail: ["stdout: a"] }] },
		{ name: "matrix a → b", kind: "matrix", expected: "pass", measured: "pass (dialer exit 0, 0.07 s)", ok: true, line: 12, pair: { dialer: "a", listener: "b" }, theory: "direct", result: { rtt_ms: 1.5 }, programs: [] },
		{
			name: "matrix b → a",
			kind: "matrix",
			expected: "pass",
			measured: "fail (dialer exit 1, 0.69 s)",
			ok: false,
			line: 12,
			pair: { dialer: "b", listener: "a" },
			theory: "direct",
			why: "expected pass, the dialer ended with exit 1; theory for the two NATs says direct",
			programs: [
				{ role: "listen", node: "a", command: "python3 peer.py", exitCode: null, signal: "SIGTERM", durationMs: 770, timedOut: false, tail: [] },
				{ role: "dial", node: "b", command: "python3 peer.py", exitCode: 1, signal: null, durationMs: 690, timedOut: false, tail: ["stderr: no echo from a at 192.168.1.2:9999"] },
			],
		},
	],
};

test("the user's programs: no statistics columns, both sides of a failure, the dialer × listener matrix beside theory (golden)", (t) => {
	const text = `${renderTestText(userReport)}\n${renderProgramMatrix(userReport, (node) => (node === "a" ? "port-restricted" : "public"))}`;
	golden(t, "user-checks.report.txt", text);
	const xml = renderJunit(userReport);
	t.regex(xml, /<failure message="expected pass, measured fail \(dialer exit 1, 0\.69 s\)">expected pass, the dialer ended with exit 1; theory for the two NATs says direct\n/);
	t.regex(xml, /dial on b: python3 peer\.py {2}→ exit 1 after 0\.69 s\n {4}stderr: no echo from a at 192\.168\.1\.2:9999/);
});
