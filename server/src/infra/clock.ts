/** Time enters Keel only through a clock, so tests can move it. */
export interface Clock {
  now(): Date;
  /** `now().getTime()` without making a Date, for the per-request hot paths. */
  nowMs(): number;
}

export const systemClock: Clock = { now: () => new Date(), nowMs: () => Date.now() };

/** A clock that stands still until a test moves it. */
export function manualClock(start: Date | string = '2026-01-01T00:00:00Z'): Clock & {
  advance(ms: number): void;
  set(to: Date | string): void;
} {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    nowMs: () => current,
    advance: (ms) => {
      current += ms;
    },
    set: (to) => {
      current = new Date(to).getTime();
    },
  };
}
