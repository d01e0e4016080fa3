// Run counts and the seed of every randomized test: FUZZ_RUNS=N raises each property to at least N
// cases (`npm run soak`); FUZZ_SEED=S replays a run. Without FUZZ_SEED a seed is drawn once per test
// file and printed by each test that uses it, so any failure can be replayed.
import type { ExecutionContext } from "ava";

const fuzzRuns = Number(process.env.FUZZ_RUNS ?? 0);

/** `count`, or FUZZ_RUNS when that is larger. */
export const runs = (count: number): number => (Number.isInteger(fuzzRuns) && fuzzRuns > count ? fuzzRuns : count);

/** This run's seed: FUZZ_SEED, or one drawn now. */
export const seed: number = process.env.FUZZ_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED);

/** Print the seed in a test's log (ava shows logs of failed tests, and with --verbose of all). */
export function logSeed(t: ExecutionContext): void {
	t.log(`seed ${seed} (FUZZ_SEED=${seed} replays this run)`);
}

/** fast-check options for a property of `count` cases with this run's seed. */
export const fcOptions = (count: number) => ({ numRuns: runs(count), seed, includeErrorInReport: true });

/** A small seeded generator (mulberry32) for tests that need random numbers outside fast-check. */
export function seededRandom(salt = 0): () => number {
	let state = (seed + salt) >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let value = state;
		value = Math.imul(value ^ (value >>> 15), value | 1);
		value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
		return ((value ^ (value >>> 14)) >>> 0) / 2 ** 32;
	};
}
