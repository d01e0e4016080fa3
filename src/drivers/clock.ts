// Time, as the drivers see it: the process's monotonic clock (performance.now()), the wall time it
// starts from (to read agents' wall-clock timestamps), timers and sleeps. Injected where logic waits
// on time, so that a test can drive it with a clock of its own.

export interface Clock {
	/** Milliseconds on this process's monotonic clock. */
	now(): number;
	/** Wall-clock milliseconds (since the epoch) at which now() was 0. */
	readonly origin: number;
	/** Call `callback` after `ms`; returns the cancel. */
	after(ms: number, callback: () => void): () => void;
	sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
	now: () => performance.now(),
	origin: performance.timeOrigin,
	after: (ms, callback) => {
		const timer = setTimeout(callback, ms);
		return () => clearTimeout(timer);
	},
	sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
