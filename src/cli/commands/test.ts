// `testbed test FILE|LAB`: the file's checks (or theory for every pair of peers), reported.
import { existsSync, writeFileSync } from "node:fs";
import { listLedgers, readLedger } from "../../apply/ledger.ts";
import { defaultPath } from "../../resolve/routing.ts";
import type { Lab } from "../../resolve/lab.ts";
import { downLab } from "../../apply/down.ts";
import { upLab } from "../../apply/up.ts";
import { runChecks, theoryChecks, type TestReport } from "../../expect/run.ts";
import { ExitCode, LabStateError, TestbedError, UsageError } from "../../errors.ts";
import { punchProtoOf } from "../../vocabulary/punch.ts";

const usage = (message: string): never => {
	throw new UsageError(message);
};
import { loadLab } from "../../load.ts";
import { checkName, renderJunit, renderProgramMatrix, renderPunchMatrix, renderTestText } from "../../report/test-report.ts";
import { detectFeatures } from "../../apply/features.ts";
import { runSteps, withinHostFeatures } from "../../expect/steps.ts";
import { renderDot } from "../../report/graph-dot.ts";
import { renderSvg } from "../../report/render-svg.ts";
import { renderTestHtml } from "../../report/test-html.ts";
import type { Io } from "../io.ts";

/** The NATs between a node and the public side, by type ("home-router", "cgnat+port-restricted"). */
function natsOf(lab: Lab, name: string): string {
	const node = lab.nodes.find((candidate) => candidate.name === name);
	return node ? defaultPath(lab, node).nats.map((nat) => lab.nodes.find((candidate) => candidate.name === nat)?.nat?.behaviour.label ?? nat).join("+") || "public" : "";
}

/**
 * `testbed test FILE`: up, the checks, down. `testbed test LAB` (a lab that is up): the checks of
 * its file, as it was when the lab came up, against the running lab; it stays up.
 */
export async function testCommand(target: string, options: { json?: boolean; runs?: string; proto?: string; junit?: string; html?: string; keep?: boolean; force?: boolean }, io: Io, signal: AbortSignal): Promise<number> {
	const runs = options.runs === undefined ? 1 : Number(options.runs);
	if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new UsageError(`--runs must be a whole number from 1 to 1000, not "${options.runs}"`);
	const running = !existsSync(target) && /^[a-z][a-z0-9-]*$/.test(target) ? readLedger(target) : undefined;
	if (!running && !existsSync(target) && !/\.ya?ml$/.test(target) && /^[a-z][a-z0-9-]*$/.test(target)) throw new LabStateError(`no lab named "${target}" is up, and there is no file "${target}"; labs: ${listLedgers().join(", ") || "none"}`, "LAB_NOT_FOUND");
	const declared = running ? running.resolved : loadLab(target);
	const started = performance.now();
	const progress = !options.json && process.stderr.isTTY;
	const features = (await detectFeatures()).features;
	// What this host cannot do (delay without netem…) is left out and said, not a reason to stop.
	const { lab, notes } = running ? { lab: declared, notes: [] as string[] } : withinHostFeatures(declared, features);
	// Without `expect:` or `steps:`, every pair of peers is punched and compared with theory.
	const fromTheory = !lab.expect?.length && !lab.steps?.length;
	const protos = (options.proto ?? "udp").split(",").map((text) => punchProtoOf(text.trim()) ?? usage(`--proto takes udp, tcp or udp,tcp, not "${options.proto}"`));
	if (options.proto !== undefined && !fromTheory) throw new UsageError(`--proto chooses the protocols of theory's checks; ${target} has \`expect:\` or \`steps:\` — write \`proto: tcp\` on its punch checks instead`);
	const checks = fromTheory ? theoryChecks(lab, [...new Set(protos)]) : (lab.expect ?? []);
	// Nothing to check is a mistake, not a pass: no `expect:`, no `steps:` and no two peers to punch.
	if (fromTheory && checks.length === 0)
		throw new TestbedError(`lab "${lab.name}" has nothing to test: no \`expect:\` checks, no \`steps:\`, and not two peers (hosts behind a NAT) to punch between; add checks, e.g. \`expect: [{ run: ${lab.nodes[0]?.name ?? "alice"}, command: [hostname] }]\``, "NOTHING_TO_TEST");
	for (const note of notes) if (progress) io.err(`note: ${note}`);
	if (!running) await upLab(lab, { signal, force: options.force });
	let report: TestReport;
	try {
		if (progress) io.err(`lab "${lab.name}" is ${running ? "up already" : "up"}; running ${checks.length} checks${runs > 1 ? ` × ${runs} runs` : ""}${lab.steps?.length ? ` and ${lab.steps.length} steps` : ""}…`);
		const results = checks.length ? await runChecks(lab, checks, { runs, onCheck: progress ? (check) => io.err(`${check.ok ? "✓" : "✗"} ${checkName(check)}: ${check.measured}`) : undefined }) : [];
		if (lab.steps?.length) results.push(...(await runSteps(lab, lab.steps, { features, signal, onStep: progress ? (step) => io.err(`${step.ok ? "✓" : "✗"} ${checkName(step)}: ${step.measured}`) : undefined })));
		const passed = results.filter((check) => check.ok).length;
		report = { lab: lab.name, file: running ? lab.file : target, checks: results, passed, failed: results.length - passed, durationMs: Math.round(performance.now() - started), fromTheory, ...(notes.length ? { notes } : {}) };
	} finally {
		if (!options.keep && !running) await downLab(lab.name);
	}
	if (options.junit) writeFileSync(options.junit, renderJunit(report));
	if (options.html) writeFileSync(options.html, renderTestHtml(report, await renderSvg(renderDot(lab))));
	if (options.json) io.json(report);
	else {
		const matrix = renderPunchMatrix(report);
		const programs = renderProgramMatrix(report, (node) => natsOf(lab, node));
		io.out(
			renderTestText(report, io.color) +
				(matrix ? `\nhole-punching matrix (measured; ✓ = as expected, a≠b ✗ = measured a, expected b):\n\n${matrix}` : "") +
				(programs ? `\nyour program, dialer × listener (✓ = as expected; [theory for a hole punch between their NATs]):\n\n${programs}` : ""),
		);
		if (options.keep && !running) io.out(`the lab stays up (--keep): testbed down ${lab.name}`);
	}
	return report.failed === 0 ? ExitCode.ok : ExitCode.failure;
}
