// The plan as a teacher reads it: the real `ip` / `nft` / `iptables` / `sysctl` / `tc` commands,
// grouped per namespace; long element lists (a NAT's port pool) shortened to one line unless `full`.
import { daemonCommand, daemonFiles, renderDaemonConf } from "./miniupnpd.ts";
import type { Plan } from "../plan/operations.ts";
import { inNamespace, renderPlan, stepContent, type Batch, type BatchLine } from "./batch.ts";
import { iptablesCommand } from "./iptables.ts";
import { cgroupCommands, nodeEnvCommands } from "./container.ts";

const yesNo = (value: boolean) => (value ? "yes" : "no");

export interface PlanTextOptions {
	/** Every element of long lists (`testbed plan --full`); by default a list longer than a few lines is one line. */
	full?: boolean;
}

/** Element lists up to this many lines are printed as they are. */
const shortList = 4;

/**
 * nft text with each long `elements = { … }` list as one line: how many, the range of the values
 * where they are consecutive ports (`… 1,024 ports 20000–21023`), the first and the last element.
 */
export function collapseElements(lines: string[]): string[] {
	const out: string[] = [];
	for (let i = 0; i < lines.length; i++) {
		out.push(lines[i]);
		if (!/^\s*elements = \{$/.test(lines[i])) continue;
		const end = lines.findIndex((line, index) => index > i && /^\s*\}/.test(line));
		if (end < 0 || end - i - 1 <= shortList) continue;
		const elements = lines
			.slice(i + 1, end)
			.flatMap((line) => line.split(","))
			.map((element) => element.trim())
			.filter(Boolean);
		const indent = /^\s*/.exec(lines[i + 1])![0];
		const values = elements.map((element) => Number(element.split(" : ").at(-1)));
		const consecutive = values.every((value, index) => Number.isInteger(value) && value === values[0] + index);
		const ports = consecutive && /(sport|dport|inet_service)\s*$/.test(lines.slice(0, i).reverse().find((line) => /^\s*(typeof|type) /.test(line)) ?? "");
		const what = ports ? `ports ${values[0]}–${values.at(-1)}` : "elements";
		out.push(`${indent}… ${elements.length.toLocaleString("en-US")} ${what}: ${elements[0]}, … ${elements.at(-1)} (\`testbed plan --full\` lists them)`);
		i = end - 1;
	}
	return out;
}

/** `displayFile` is the path as the user typed it (keeps output stable across machines). */
export function renderPlanText(plan: Plan, displayFile: string, stateDir: string, options: PlanTextOptions = {}): string {
	const rendered = renderPlan(plan, stateDir);
	const out: string[] = [];
	const f = plan.features;
	out.push(`# testbed plan for lab "${plan.lab}" (${displayFile})`);
	out.push(`# host features: dummy=${yesNo(f.dummy)} netem=${yesNo(f.netem)} tbf=${yesNo(f.tbf)}`);
	out.push("# `up` runs each group below as one batch per tool (`testbed plan --batch` shows the exact processes)");
	if (!options.full && hasLongLists(rendered)) out.push("# long element lists are shortened to one line; `testbed plan --full` prints every element");
	for (const note of plan.notes) out.push(`# note: ${note}`);
	for (const unmet of plan.unmet) out.push(`# MISSING: ${unmet.feature} for ${unmet.why} (line ${unmet.pos.line}); \`up\` will stop with exit code 4`);
	const links = plan.root.filter((op) => op.op === "veth-add").length;
	out.push("");
	const namespaces = plan.root.filter((op) => op.op === "netns-add").length;
	const early = plan.root.some((op) => op.op === "sysctl") ? "; IPv6 duplicate address detection off before any link exists" : "";
	out.push(`# ── root namespace: ${namespaces} namespaces, ${links} veth pair${links === 1 ? "" : "s"} (each end created inside its namespace)${early}`);
	for (const line of rendered.root.steps[0].lines) out.push(`ip ${line.text}`);
	for (const batch of rendered.namespaces) out.push("", ...namespaceText(batch, options));
	out.push(...containersText(plan, stateDir));
	out.push(...daemonsText(plan, stateDir));
	return `${out.join("\n")}\n`;
}

/** NATs that offer port mapping: the daemon's configuration and command, started once every rule is in place. */
function daemonsText(plan: Plan, stateDir: string): string[] {
	const out: string[] = [];
	for (const ns of plan.namespaces)
		for (const op of ns.operations) {
			if (op.op !== "nat" || !op.nat.portMapping) continue;
			const files = daemonFiles(stateDir, ns.node);
			out.push("", `# ── ${ns.node}: port mapping (${op.nat.portMapping.protocols.join(", ")}) by miniupnpd, started after every namespace is configured, stopped with the lab`);
			out.push(`cat > ${files.conf} <<'EOF'`, ...renderDaemonConf(plan.lab, ns.node, op.nat, files).trimEnd().split("\n"), "EOF");
			out.push(`ip netns exec ${ns.netns} ${daemonCommand("miniupnpd", files).join(" ")}`);
		}
	return out;
}

function hasLongLists(rendered: ReturnType<typeof renderPlan>): boolean {
	return rendered.namespaces.some((batch) => batch.steps.some((step) => step.tool === "nft" && collapseElements(step.lines.map((line) => line.text)).length < step.lines.length));
}

/** Each iptables rule once, as the lecture types it (the restore file's table headers and COMMITs belong to the rules). */
function iptablesCommands(lines: BatchLine[]): string[] {
	const ops = [...new Set(lines.map((line) => line.op))];
	return ops.flatMap((op) => (op.op === "iptables" ? [iptablesCommand(op)] : []));
}

function namespaceText(batch: Batch, options: PlanTextOptions): string[] {
	const ns = batch.netns!;
	const out = [`# ── ${batch.node} (${batch.kind}) in namespace ${ns}`];
	for (const step of batch.steps) {
		if (step.tool === "ip") out.push(...step.lines.map((line) => `ip -n ${ns} ${line.text}`));
		if (step.tool === "sysctl") out.push(`ip netns exec ${ns} sysctl -q -w ${step.lines.map((line) => line.text.replace(" = ", "=")).join(" ")}`);
		if (step.tool === "nft") out.push(`ip netns exec ${ns} nft -f - <<'EOF'`, ...shorten(step.lines.map((line) => line.text), options), "EOF");
		if (step.tool === "iptables") out.push(...iptablesCommands(step.lines).map((command) => `ip netns exec ${ns} ${command}`));
		if (step.tool === "tc") out.push(...step.lines.map((line) => `ip netns exec ${ns} tc ${line.text}`));
	}
	return out;
}

/** Nodes that are lightweight containers: their cgroups, then their namespaces with their private directories. */
function containersText(plan: Plan, stateDir: string): string[] {
	const out: string[] = [];
	const enabled = new Set<string>();
	const nodes = new Map(plan.namespaces.map((ns) => [ns.node, ns]));
	for (const container of plan.containers) {
		const limits = container.cgroups.length > 0 ? "its own cgroups" : "";
		const dirs = container.private ? `private ${container.private.dirs.map((dir) => dir.path).join(", ")} (OverlayFS: the host's directory is the lower layer, upper and work on a tmpfs)` : "";
		out.push("", `# ── ${container.node}: ${[limits, dirs].filter(Boolean).join("; ")}`);
		out.push(...cgroupCommands(container, enabled));
		out.push(...nodeEnvCommands(stateDir, plan.lab, { name: container.node, netns: nodes.get(container.node)?.netns ?? container.netns, private: container.private }));
	}
	return out;
}

const shorten = (lines: string[], options: PlanTextOptions) => (options.full ? lines : collapseElements(lines));

/** The exact tool runs of `up`, with what they read (a namespace's runs share one `nsenter --net` process tree). */
export function renderBatchText(plan: Plan, stateDir: string, options: PlanTextOptions = {}): string {
	const rendered = renderPlan(plan, stateDir);
	const out: string[] = [
		"# Every run is wrapped in `setpriv --pdeathsig KILL` (it dies if testbed is killed); a namespace's",
		"# runs share one `nsenter --net=… sh` process that runs them in this order and stops at the first failure.",
		...(!options.full && hasLongLists(rendered) ? ["# Long element lists are shortened to one line here; `testbed plan --batch --full` prints the files as they are."] : []),
		"",
	];
	for (const batch of [rendered.root, ...rendered.namespaces]) {
		for (const step of batch.steps) {
			const argv = batch.netns ? inNamespace(batch.netns, step.argv) : step.argv;
			if (step.tool === "sysctl") out.push(argv.join(" "), "");
			else out.push(`${argv.join(" ")} ${step.file ? "# reads" : "<<'EOF'"}`, ...shorten(stepContent(step).trimEnd().split("\n"), options), ...(step.file ? [] : ["EOF"]), "");
		}
	}
	if (plan.containers.length > 0) {
		out.push("# Nodes that are containers: testbed writes their cgroup files itself (no process), then one", "# `python3 src/apply/node-envs.py` makes every one's namespaces, tmpfs, layers and overlays (syscalls,", "# no process per mount) — the same work as these commands, which it runs instead where python3 is missing:");
		out.push(...containersText(plan, stateDir), "");
	}
	return `${out.join("\n")}`;
}
