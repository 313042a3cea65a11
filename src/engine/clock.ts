// Time as the engine supervisor sees it: injected, so its state machine
// (backoff, watchdog, probe cadence) runs under a fake clock in unit tests.

export type TimerHandle = unknown;

export interface Clock {
  /** Monotonic milliseconds (only differences matter). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `performance.now()` and Node's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
};
