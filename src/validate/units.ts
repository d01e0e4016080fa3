// Units in topology files: durations, rates and percentages, as users write them for tc.

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
