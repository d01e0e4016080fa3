// The plan as a teacher reads it: the real `ip` / `nft` / `sysctl` commands, grouped per namespace.
import type { Plan } from "../plan/operations.ts";
import { renderPlan, type Batch } from "./batch.ts";

const yesNo = (value: boolean) => (value ? "yes" : "no");

/** `displayFile` is the path as the user typed it (keeps output stable across machines). */
export function renderPlanText(plan: Plan, displayFile: string, stateDir: string): string {
	const rendered = renderPlan(plan, stateDir);
	const out: string[] = [];
	const f = plan.features;
	out.push(`# testbed plan for lab "${plan.lab}" (${displayFile})`);
	out.push(`# host features: dummy=${yesNo(f.dummy)} netem=${yesNo(f.netem)} tbf=${yesNo(f.tbf)}`);
	for (const note of plan.notes) out.push(`# note: ${note}`);
	for (const unmet of plan.unmet) out.push(`# MISSING: ${unmet.feature} for ${unmet.why} (line ${unmet.pos.line}); \`up\` will stop with exit code 4`);
	const links = plan.root.filter((op) => op.op === "veth-add").length;
	out.push("");
	out.push(`# ── root namespace: ${plan.root.length - links} namespaces, ${links} veth pair${links === 1 ? "" : "s"} (each end created inside its namespace) ── one \`ip -batch\``);
	for (const line of rendered.root.lines) out.push(`ip ${line.text}`);
	for (const batch of rendered.namespaces) out.push("", ...namespaceText(batch));
	return `${out.join("\n")}\n`;
}

function namespaceText(batch: Batch): string[] {
	const ns = batch.netns!;
	const out = [`# ── ${batch.node} (${batch.kind}) in namespace ${ns} ── one \`ip -n ${ns} -batch\``];
	for (const line of batch.lines) {
		if (line.op.op === "nat") {
			const file = batch.files.find((candidate) => line.text.endsWith(candidate.path))!;
			out.push(`ip netns exec ${ns} nft -f - <<'EOF'`, ...file.content.trimEnd().split("\n"), "EOF");
		} else if (line.text.startsWith("netns exec ")) out.push(`ip ${line.text}`);
		else out.push(`ip -n ${ns} ${line.text}`);
	}
	return out;
}

/** The exact batch files `up` feeds to `ip -batch`, for the curious and for debugging. */
export function renderBatchText(plan: Plan, stateDir: string): string {
	const rendered = renderPlan(plan, stateDir);
	const out = [`# ip -batch (root namespace)`, ...rendered.root.lines.map((line) => line.text)];
	for (const batch of rendered.namespaces) {
		out.push("", `# ip -n ${batch.netns} -batch`, ...batch.lines.map((line) => line.text));
		for (const file of batch.files) out.push("", `# ${file.path}`, file.content.trimEnd());
	}
	return `${out.join("\n")}\n`;
}
