// `testbed plan FILE`: the exact commands, without root.
import { cachedFeatures } from "../../apply/features.ts";
import { withHostLayout } from "../../apply/cgroups.ts";
import { stateDir } from "../../apply/state-files.ts";
import { loadLab } from "../../load.ts";
import { allFeatures } from "../../plan/operations.ts";
import { planLab } from "../../plan/plan.ts";
import { renderBatchText, renderPlanText } from "../../render/plan-text.ts";
import type { Io } from "../io.ts";

export async function planCommand(file: string, options: { json?: boolean; batch?: boolean; full?: boolean; name?: string }, io: Io): Promise<number> {
	const lab = loadLab(file, { name: options.name, warn: (warning) => io.err(warning) });
	// plan changes nothing on the host: it uses the features `up` or `doctor` probed, never probes itself.
	const known = cachedFeatures();
	const plan = planLab(lab, withHostLayout(known ?? allFeatures));
	if (!known) plan.notes.unshift("host features not probed yet: assuming a kernel with dummy and netem; `sudo testbed doctor` probes them");
	if (options.json) io.json(plan);
	else {
		const text = { full: options.full };
		io.out(options.batch ? renderBatchText(plan, stateDir(lab.name), text) : renderPlanText(plan, file, stateDir(lab.name), text));
	}
	return 0;
}
