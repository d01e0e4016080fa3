// The plan as a teacher reads it: the real `ip` / `nft` / `sysctl` / `tc` commands, grouped per namespace.
import type { Plan } from "../plan/operations.ts";
import { inNamespace, renderPlan, stepContent, type Batch } from "./batch.ts";

const yesNo = (value: boolean) => (value ? "yes" : "no");

/** `displayFile` is the path as the user typed it (keeps output stable across machines). */
export function renderPlanText(plan: Plan, displayFile: string, stateDir: string): string {
	const rendered = renderPlan(plan, stateDir);
	const out: string[] = [];
	const f = plan.features;
	out.push(`# testbed plan for lab "${plan.lab}" (${displayFile})`);
	out.push(`# host features: dummy=${yesNo(f.dummy)} netem=${yesNo(f.netem)} tbf=${yesNo(f.tbf)}`);
	out.push("# `up` runs each group below as one batch per tool (`testbed plan --batch` shows the exact processes)");
	for (const note of plan.notes) out.push(`# note: ${note}`);
	for (const unmet of plan.unmet) out.push(`# MISSING: ${unmet.feature} for ${unmet.why} (line ${unmet.pos.line}); \`up\` will stop with exit code 4`);
	const links = plan.root.filter((op) => op.op === "veth-add").length;
	out.push("");
	out.push(`# ── root namespace: ${plan.root.length - links} namespaces, ${links} veth pair${links === 1 ? "" : "s"} (each end created inside its namespace)`);
	for (const line of rendered.root.steps[0].lines) out.push(`ip ${line.text}`);
	for (const batch of rendered.namespaces) out.push("", ...namespaceText(batch));
	return `${out.join("\n")}\n`;
}

function namespaceText(batch: Batch): string[] {
	const ns = batch.netns!;
	const out = [`# ── ${batch.node} (${batch.kind}) in namespace ${ns}`];
	for (const step of batch.steps) {
		if (step.tool === "ip") out.push(...step.lines.map((line) => `ip -n ${ns} ${line.text}`));
		if (step.tool === "sysctl") out.push(`ip netns exec ${ns} sysctl -q -w ${step.lines.map((line) => line.text.replace(" = ", "=")).join(" ")}`);
		if (step.tool === "nft") out.push(`ip netns exec ${ns} nft -f - <<'EOF'`, ...step.lines.map((line) => line.text), "EOF");
		if (step.tool === "tc") out.push(...step.lines.map((line) => `ip netns exec ${ns} tc ${line.text}`));
	}
	return out;
}

/** The exact tool runs of `up`, with what they read (a namespace's runs share one `nsenter --net` process tree). */
export function renderBatchText(plan: Plan, stateDir: string): string {
	const rendered = renderPlan(plan, stateDir);
	const out: string[] = [
		"# Every run is wrapped in `setpriv --pdeathsig KILL` (it dies if testbed is killed); a namespace's",
		"# runs share one `nsenter --net=… sh` process that runs them in this order and stops at the first failure.",
		"",
	];
	for (const batch of [rendered.root, ...rendered.namespaces]) {
		for (const step of batch.steps) {
			const argv = batch.netns ? inNamespace(batch.netns, step.argv) : step.argv;
			if (step.tool === "sysctl") out.push(argv.join(" "), "");
			else out.push(`${argv.join(" ")} ${step.file ? "# reads" : "<<'EOF'"}`, stepContent(step).trimEnd(), ...(step.file ? [] : ["EOF"]), "");
		}
	}
	return `${out.join("\n")}`;
}
