import type { Clock } from '../ports/clock.js';

/** The wall clock, for production; tests pass a fixed Clock instead. */
export const systemClock: Clock = { now: () => new Date() };
