// `testbed doctor`
import { doctor } from "../../apply/doctor.ts";
import { ExitCode } from "../../errors.ts";
import { table } from "../../report/table.ts";
import type { Io } from "../io.ts";

export async function doctorCommand(options: { json?: boolean }, io: Io): Promise<number> {
	const report = await doctor();
	if (options.json) io.json(report);
	else {
		const mark = (ok: boolean, required: boolean) => (ok ? "ok" : required ? "MISSING" : "missing");
		io.out(`kernel ${report.kernel}\n`);
		io.out(table([["check", "status", "detail"], ...report.checks.map((check) => [check.name, mark(check.ok, check.required), check.detail])]));
		io.out(["", "link impairments (each declared alone; netem does them all together where the kernel has it)", table([["impairment", "how"], ...report.impairments.map((check) => [check.name, check.how])])].join("\n"));
		const fixes = report.checks.filter((check) => !check.ok && check.fix);
		if (fixes.length) io.out(["", "to fix:", ...fixes.map((check) => `  ${check.name}: ${check.fix}`)].join("\n"));
		io.out(report.ok ? "\nthis host can run testbed labs" : "\nthis host cannot run testbed labs yet (see MISSING above)");
	}
	return report.ok ? ExitCode.ok : ExitCode.missingFeature;
}
