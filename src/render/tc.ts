// Link impairments as tc qdisc arguments: netem where the kernel has it, tbf for a plain rate limit.
import type { ImpairDecl } from "../parse/topology.ts";

export function renderQdisc(iface: string, impair: ImpairDecl, netem: boolean): string[] {
	const args = ["qdisc", "add", "dev", iface, "root"];
	if (!netem) {
		const rate = impair.rate?.value ?? 1e9;
		const burst = Math.max(3200, Math.ceil(rate / 8 / 100));
		return [...args, "tbf", "rate", `${rate}bit`, "burst", String(burst), "latency", "50ms"];
	}
	args.push("netem");
	if (impair.limit) args.push("limit", String(impair.limit.value));
	if (impair.delay || impair.jitter || impair.reorder) {
		args.push("delay", ms(impair.delay?.value ?? 0));
		if (impair.jitter) args.push(ms(impair.jitter.value));
	}
	if (impair.loss) args.push("loss", percent(impair.loss.value));
	if (impair.duplicate) args.push("duplicate", percent(impair.duplicate.value));
	if (impair.reorder) args.push("reorder", percent(impair.reorder.value));
	if (impair.corrupt) args.push("corrupt", percent(impair.corrupt.value));
	if (impair.rate) args.push("rate", `${impair.rate.value}bit`);
	return args;
}

function ms(value: number): string {
	return `${Number(value.toFixed(3))}ms`;
}

function percent(value: number): string {
	return `${Number(value.toFixed(4))}%`;
}
