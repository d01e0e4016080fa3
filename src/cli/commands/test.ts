// `testbed test FILE`: up, run the file's checks (or theory for every pair of peers), report, down.
import { writeFileSync } from "node:fs";
import { downLab } from "../../apply/down.ts";
import { upLab } from "../../apply/up.ts";
import { runChecks, theoryChecks, type TestReport } from "../../expect/run.ts";
import { ExitCode, UsageError } from "../../errors.ts";
import { loadLab } from "../../load.ts";
import { checkName, renderJunit, renderPunchMatrix, renderTestText } from "../../report/test-report.ts";
import { detectFeatures } from "../../apply/features.ts";
import { runSteps, withinHostFeatures } from "../../expect/steps.ts";
import { renderDot } from "../../report/graph.ts";
import { renderSvg } from "../../report/render-svg.ts";
import { renderTestHtml } from "../../report/test-html.ts";
import type { Io } from "../io.ts";

export async function testCommand(file: string, options: { json?: boolean; runs?: string; junit?: string; html?: string; keep?: boolean; force?: boolean }, io: Io, signal: AbortSignal): Promise<number> {
	const runs = options.runs === undefined ? 1 : Number(options.runs);
	if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new UsageError(`--runs must be a whole number from 1 to 1000, not "${options.runs}"`);
	const declared = loadLab(file);
	const started = performance.now();
	const progress = !options.json && process.stderr.isTTY;
	const features = (await detectFeatures()).features;
	// What this host cannot do (delay without netem…) is left out and said, not a reason to stop.
	const { lab, notes } = withinHostFeatures(declared, features);
	for (const note of notes) if (progress) io.err(`note: ${note}`);
	await upLab(lab, { signal, force: options.force });
	let report: TestReport;
	try {
		const fromTheory = !lab.expect?.length && !lab.steps?.length;
		const checks = fromTheory ? theoryChecks(lab) : (lab.expect ?? []);
		if (progress) io.err(`lab "${lab.name}" is up; running ${checks.length} checks${runs > 1 ? ` × ${runs} runs` : ""}${lab.steps?.length ? ` and ${lab.steps.length} steps` : ""}…`);
		const results = checks.length ? await runChecks(lab, checks, { runs }) : [];
		if (lab.steps?.length) results.push(...(await runSteps(lab, lab.steps, { features, signal, onStep: progress ? (step) => io.err(`${step.ok ? "✓" : "✗"} ${checkName(step)}: ${step.measured}`) : undefined })));
		const passed = results.filter((check) => check.ok).length;
		report = { lab: lab.name, file, checks: results, passed, failed: results.length - passed, durationMs: Math.round(performance.now() - started), fromTheory, ...(notes.length ? { notes } : {}) };
	} finally {
		if (!options.keep) await downLab(lab.name);
	}
	if (options.junit) writeFileSync(options.junit, renderJunit(report));
	if (options.html) writeFileSync(options.html, renderTestHtml(report, await renderSvg(renderDot(lab))));
	if (options.json) io.json(report);
	else {
		const matrix = renderPunchMatrix(report);
		io.out(renderTestText(report, io.color) + (matrix ? `\nhole-punching matrix (measured; ✓ = as expected, a≠b ✗ = measured a, expected b):\n\n${matrix}` : ""));
		if (options.keep) io.out(`the lab stays up (--keep): testbed down ${lab.name}`);
	}
	return report.failed === 0 ? ExitCode.ok : ExitCode.failure;
}
