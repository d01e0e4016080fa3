// `testbed validate FILE…`: each file checked on its own, so one broken file does not hide another's problems.
import { checkFile } from "../../load.ts";
import { ExitCode } from "../../errors.ts";
import { formatProblem } from "../../vocabulary/problems.ts";
import type { Io } from "../io.ts";

export async function validateCommand(files: string[], options: { json?: boolean }, io: Io): Promise<number> {
	const results = files.map((file) => {
		const checked = checkFile(file);
		const problems = checked.problems.map((problem) => ({ file, line: problem.pos.line, col: problem.pos.col, code: problem.code, message: problem.message, fix: problem.fix }));
		return { file, checked, problems };
	});
	const total = results.reduce((sum, result) => sum + result.problems.length, 0);
	if (options.json) {
		const entries = results.map(({ file, checked, problems }) => ({ file, ok: problems.length === 0, lab: checked.lab?.name, problems, warnings: checked.warnings ?? [] }));
		io.json(files.length === 1 ? entries[0] : { ok: total === 0, files: entries });
		return total === 0 ? ExitCode.ok : ExitCode.invalidTopology;
	}
	for (const { file, checked, problems } of results) {
		for (const warning of checked.warnings ?? []) io.err(formatProblem(file, checked.source.text, warning, "warning"));
		if (problems.length > 0) {
			for (const problem of checked.problems) io.err(formatProblem(file, checked.source.text, problem));
			if (files.length > 1) io.err(`${file}: ${problems.length} problem${problems.length === 1 ? "" : "s"}`);
		} else io.out(`${file}: ok (lab "${checked.lab!.name}": ${checked.lab!.nodes.length} nodes, ${checked.lab!.links.length} links)`);
	}
	if (total > 0) io.err(`${total} problem${total === 1 ? "" : "s"}${files.length > 1 ? ` in ${results.filter((result) => result.problems.length).length} of ${files.length} files` : ""}; nothing was created`);
	return total === 0 ? ExitCode.ok : ExitCode.invalidTopology;
}
