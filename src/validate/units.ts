// Units in topology files: durations, rates and percentages, as users write them for tc — read,
// and written back the same way.
import type { ImpairDecl } from "../parse/topology.ts";

/** "20ms", "1.5s", "250us", "2m" → milliseconds; a bare number is in `bareUnit`. */
export function parseDuration(value: unknown, bareUnit: "ms" | "s"): number | undefined {
	if (typeof value === "number") return value >= 0 && Number.isFinite(value) ? value * (bareUnit === "s" ? 1000 : 1) : undefined;
	if (typeof value !== "string") return undefined;
	const match = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*$/.exec(value);
	if (!match) return undefined;
	const scale: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
	return Number(match[1]) * scale[match[2] ?? bareUnit];
}

/** "10mbit", "512kbit", "1gbit", "100kbps" (bytes) → bits per second. */
export function parseRate(value: unknown): number | undefined {
	if (typeof value === "number") return value > 0 && Number.isFinite(value) ? value : undefined;
	if (typeof value !== "string") return undefined;
	const match = /^\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?\s*$/i.exec(value);
	if (!match) return undefined;
	const scale: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9 };
	const bits = Number(match[1]) * scale[(match[2] ?? "bit").toLowerCase()];
	return bits > 0 ? bits : undefined;
}

/** tc's rate syntax, in the largest whole unit: 10mbit, 512kbit. */
export function formatRate(rate: number): string {
	for (const [unit, size] of [["gbit", 1e9], ["mbit", 1e6], ["kbit", 1e3]] as const) if (rate >= size && rate % size === 0) return `${rate / size}${unit}`;
	return `${Math.round(rate)}bit`;
}

/** "delay 20ms jitter 2ms loss 1% burst 4 rate 10mbit limit 500" (netem's words), or "". */
export function describeImpairment(impair: ImpairDecl): string {
	const num = (value: number) => String(Number(value.toFixed(4)));
	const parts: string[] = [];
	if (impair.delay) parts.push(`delay ${num(impair.delay.value)}ms`);
	if (impair.jitter) parts.push(`jitter ${num(impair.jitter.value)}ms`);
	if (impair.loss) parts.push(`loss ${num(impair.loss.value)}%${impair.lossBurst ? ` burst ${num(impair.lossBurst.value)}` : ""}`);
	if (impair.duplicate) parts.push(`duplicate ${num(impair.duplicate.value)}%`);
	if (impair.reorder) parts.push(`reorder ${num(impair.reorder.value)}%`);
	if (impair.corrupt) parts.push(`corrupt ${num(impair.corrupt.value)}%`);
	if (impair.rate) parts.push(`rate ${formatRate(impair.rate.value)}`);
	if (impair.limit) parts.push(`limit ${num(impair.limit.value)}`);
	return parts.join(" ");
}

/** "128M", "1G", "512k", "64MiB" or a number of bytes → bytes (binary units, as cgroups and Docker read them). */
export function parseSize(value: unknown): number | undefined {
	if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : undefined;
	if (typeof value !== "string") return undefined;
	const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(value);
	if (!match) return undefined;
	const scale = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(match[2] ?? "").toLowerCase() as "k"] ?? 1;
	return Math.round(Number(match[1]) * scale);
}

/** Bytes the way a file would say them: 128M, 1.5G, 4096. */
export function formatSize(bytes: number): string {
	for (const [unit, size] of [["G", 1024 ** 3], ["M", 1024 ** 2], ["K", 1024]] as const) if (bytes >= size) return `${Number((bytes / size).toFixed(1))}${unit}`;
	return String(bytes);
}

/** "1%", "0.5%" or a number → percent in 0..100. */
export function parsePercent(value: unknown): number | undefined {
	const number = typeof value === "number" ? value : typeof value === "string" ? (/^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value)?.[1] ?? NaN) : NaN;
	const percent = Number(number);
	return Number.isFinite(percent) && percent >= 0 && percent <= 100 ? percent : undefined;
}

/** The closest candidate within a small edit distance, for "did you mean". */
export function closest(word: string, candidates: readonly string[]): string | undefined {
	if (word.length > 64) return undefined; // nobody mistypes 64 characters; and it keeps this cheap
	let best: string | undefined;
	let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
	for (const candidate of candidates) {
		if (Math.abs(candidate.length - word.length) >= bestDistance) continue;
		const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
		if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
	}
	return best;
}

function editDistance(a: string, b: string): number {
	let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
	for (let i = 1; i <= a.length; i++) {
		const current = [i];
		for (let j = 1; j <= b.length; j++) {
			current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
		}
		previous = current;
	}
	return previous[b.length];
}
