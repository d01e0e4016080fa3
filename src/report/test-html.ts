// `testbed test --html report.html`: one self-contained file — the lab's picture, the checks, the
// hole-punching matrix and the explanations of failures. No scripts, no external resources.
import type { TestReport } from "../expect/run.ts";
import { checkName, programDetails, renderProgramMatrix, renderPunchMatrix } from "./test-report.ts";

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const ms = (value: number | null | undefined) => (value === null || value === undefined ? "" : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`);

export function renderTestHtml(report: TestReport, svg: string): string {
	const rows = report.checks
		.map(
			(check) =>
				`<tr class="${check.ok ? "ok" : "fail"}"><td>${check.ok ? "✓" : "✗"}</td><td>${escape(checkName(check))}${check.skipped ? ` <em>(${escape(check.skipped)})</em>` : ""}</td><td>${escape(check.expected)}</td><td>${escape(check.measured)}</td><td>${check.stats ? `${Math.round(check.stats.successRate * 100)}%` : ""}</td><td>${ms(check.stats?.p50Ms)}</td><td>${ms(check.stats?.p95Ms)}</td><td>${check.stats?.rttMs != null ? `${check.stats.rttMs.toFixed(2)} ms` : ""}</td></tr>`,
		)
		.join("\n");
	const failures = report.checks
		.filter((check) => !check.ok)
		.map((check) => {
			const timeline = check.explanation ? `<pre>${escape(check.explanation.timeline.map((event) => `+${event.atMs} ms  ${event.where}  ${event.what}`).join("\n"))}</pre><p class="verdict">${escape(check.explanation.verdict)}</p>` : "";
			const programs = check.programs?.length ? `<pre>${escape(programDetails(check).join("\n"))}</pre>` : "";
			return `<section class="failure"><h3>✗ ${escape(check.name)}${check.line ? ` (line ${check.line})` : ""}</h3><p>${escape(check.why ?? "")}</p>${timeline}${programs}</section>`;
		})
		.join("\n");
	const matrix = renderPunchMatrix(report) + renderProgramMatrix(report);
	return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>testbed test: ${escape(report.lab)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; }
tr.ok td:first-child { color: #1a7f37; } tr.fail td { background: #fff0f0; } tr.fail td:first-child { color: #c00; font-weight: bold; }
.summary { font-weight: bold; } .summary.fail { color: #c00; } .summary.ok { color: #1a7f37; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; } .verdict { font-weight: bold; }
.graph svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>testbed test of lab “${escape(report.lab)}”</h1>
<p class="summary ${report.failed ? "fail" : "ok"}" id="summary">${report.passed} passed, ${report.failed} failed (${(report.durationMs / 1000).toFixed(1)} s)${report.fromTheory ? " — no expect: list, so every pair of peers was punched and compared with theory for their NATs" : ""}</p>
<h2>The lab</h2>
<div class="graph">${svg.replace(/^<\?xml[^>]*>\s*/, "").replace(/<!DOCTYPE[^>]*>\s*/, "")}</div>
<h2>Checks</h2>
<table id="checks">
<thead><tr><th></th><th>check</th><th>expected</th><th>measured</th><th>success</th><th>p50</th><th>p95</th><th>rtt</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${matrix ? `<h2>Hole-punching matrix</h2>\n<pre id="matrix">${escape(matrix)}</pre>` : ""}
${failures ? `<h2>Why checks failed</h2>\n${failures}` : ""}
</body>
</html>
`;
}
