// Link impairments as `tc -batch` lines: netem where the kernel has it, else tbf for a rate and pfifo
// for a queue limit (tbf's child when both are given).
import type { ImpairDecl } from "../parse/topology.ts";
import type { QdiscKind } from "../plan/operations.ts";
import { formatRate } from "../validate/units.ts";

/** The lines that give an interface with the default qdisc this impairment (what `up` runs). */
export function renderQdisc(iface: string, impair: ImpairDecl, kind: QdiscKind): string[] {
	const root = `qdisc add dev ${iface} root`;
	if (kind === "pfifo") return [`${root} pfifo limit ${impair.limit?.value ?? 1000}`];
	if (kind === "tbf") {
		const rate = impair.rate?.value ?? 1e9;
		const burst = Math.max(3200, Math.ceil(rate / 8 / 100));
		const tbf = `tbf rate ${formatRate(rate)} burst ${burst} latency 50ms`;
		// tbf's own queue counts bytes; a queue limit in packets is a pfifo in its place (class 1:1).
		if (!impair.limit) return [`${root} ${tbf}`];
		return [`${root} handle 1: ${tbf}`, `qdisc add dev ${iface} parent 1:1 pfifo limit ${impair.limit.value}`];
	}
	const args = [root, "netem"];
	if (impair.limit) args.push("limit", String(impair.limit.value));
	if (impair.delay || impair.jitter || impair.reorder) {
		args.push("delay", ms(impair.delay?.value ?? 0));
		if (impair.jitter) args.push(ms(impair.jitter.value));
	}
	if (impair.loss) args.push("loss", ...netemLoss(impair.loss.value, impair.lossBurst?.value));
	if (impair.duplicate) args.push("duplicate", percent(impair.duplicate.value));
	if (impair.reorder) args.push("reorder", percent(impair.reorder.value));
	if (impair.corrupt) args.push("corrupt", percent(impair.corrupt.value));
	if (impair.rate) args.push("rate", formatRate(impair.rate.value));
	return [args.join(" ")];
}

/**
 * The lines that replace whatever root qdisc an interface has (none, or one `up` or an earlier change
 * made) with this impairment, or with the default when it is undefined. `qdisc del root` fails where
 * there is nothing to delete, and `replace` keeps a qdisc of the same kind with its old options, so
 * first a pfifo under a handle `up` never uses takes the root (replacing anything), then it is deleted.
 */
export function renderQdiscChange(iface: string, next: { impair: ImpairDecl; kind: QdiscKind } | undefined): string[] {
	return [`qdisc replace dev ${iface} root handle 2: pfifo`, `qdisc del dev ${iface} root`, ...(next ? renderQdisc(iface, next.impair, next.kind) : [])];
}

/**
 * netem's loss arguments. A burst length B makes it the Gilbert model (`gemodel p r`): the good state
 * loses nothing, the bad state everything, r = 1/B leaves a burst, p = L·r/(1−L) starts one, so the
 * long-run loss is p/(p+r) = L. Only p and r are given: older tc versions read a third one inverted.
 */
function netemLoss(loss: number, burst: number | undefined): string[] {
	if (!burst) return [percent(loss)];
	const { p, r } = gilbert(loss, burst);
	return ["gemodel", percent(p * 100), percent(r * 100)];
}

/** Gilbert model transition probabilities for a loss rate (percent) and a mean burst length (packets). */
export function gilbert(lossPercent: number, burst: number): { p: number; r: number } {
	const loss = Math.min(1, Math.max(0, lossPercent / 100));
	const r = 1 / Math.max(1, burst);
	if (loss >= 1) return { p: 1, r: 0 };
	// A loss above B/(B+1) cannot be reached with bursts that short: bursts start as often as they can.
	return { p: Math.min(1, (loss * r) / (1 - loss)), r };
}

function ms(value: number): string {
	return `${Number(value.toFixed(3))}ms`;
}

function percent(value: number): string {
	return `${Number(value.toFixed(4))}%`;
}

