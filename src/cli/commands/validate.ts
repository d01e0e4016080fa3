// `testbed validate FILE`
import { checkFile } from "../../load.ts";
import { ExitCode } from "../../errors.ts";
import { formatProblem } from "../../vocabulary/problems.ts";
import type { Io } from "../io.ts";

export async function validateCommand(file: string, options: { json?: boolean }, io: Io): Promise<number> {
	const checked = checkFile(file);
	const problems = checked.problems.map((problem) => ({ file, line: problem.pos.line, col: problem.pos.col, code: problem.code, message: problem.message, fix: problem.fix }));
	if (options.json) io.json({ ok: problems.length === 0, lab: checked.lab?.name, problems });
	else if (problems.length > 0) {
		for (const problem of checked.problems) io.err(formatProblem(file, checked.source.text, problem));
		io.err(`${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was created`);
	} else io.out(`${file}: ok (lab "${checked.lab!.name}": ${checked.lab!.nodes.length} nodes, ${checked.lab!.links.length} links)`);
	return problems.length === 0 ? ExitCode.ok : ExitCode.invalidTopology;
}
