// Link impairments as tc qdisc arguments: netem where the kernel has it, tbf for a plain rate limit.
import type { ImpairDecl } from "../parse/topology.ts";

export function renderQdisc(iface: string, impair: ImpairDecl, netem: boolean): string[] {
	const args = ["qdisc", "add", "dev", iface, "root"];
	if (!netem) {
		const rate = impair.rate?.value ?? 1e9;
		const burst = Math.max(3200, Math.ceil(rate / 8 / 100));
		return [...args, "tbf", "rate", bits(rate), "burst", String(burst), "latency", "50ms"];
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
	if (impair.rate) args.push("rate", bits(impair.rate.value));
	return args;
}

function ms(value: number): string {
	return `${Number(value.toFixed(3))}ms`;
}

function percent(value: number): string {
	return `${Number(value.toFixed(4))}%`;
}

/** tc's rate syntax, in the largest whole unit: 10mbit, 512kbit. */
function bits(rate: number): string {
	for (const [unit, size] of [["gbit", 1e9], ["mbit", 1e6], ["kbit", 1e3]] as const) if (rate >= size && rate % size === 0) return `${rate / size}${unit}`;
	return `${Math.round(rate)}bit`;
}
