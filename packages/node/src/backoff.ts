// How long a node waits before it reconnects to its gateway. The ceiling
// doubles after each failed attempt up to the most (`maxBackoffMs`); the wait
// itself is drawn at random below it (full jitter), so that nodes restarted
// together, or dropped together by a gateway that went away, spread their
// reconnects over the whole window instead of arriving in lockstep at every
// step. The first wait is also the floor: a gateway that refuses or drops a
// node at once is never retried in a tight loop.

/** The first ceiling, and the shortest wait there is (both at most the most). */
export const FIRST_BACKOFF_MS = 250;

/**
 * The wait before the next attempt: `floor` plus a random share of what lies
 * between it and `ceiling`. `random` is a source like Math.random (a number
 * in [0, 1)); anything it gives outside [0, 1] (or not a number) is taken as
 * its nearest bound, so the wait is always within [floor, ceiling].
 * Preconditions: 0 <= floor <= ceiling.
 */
export function jitteredWait(ceiling: number, floor: number, random: () => number): number {
  const drawn = random();
  const share = Number.isNaN(drawn) ? 0 : Math.min(1, Math.max(0, drawn));
  return Math.round(floor + share * (ceiling - floor));
}

/** The ceiling after one more failed attempt: doubled, at most `most`. */
export function nextCeiling(ceiling: number, most: number): number {
  return Math.min(ceiling * 2, most);
}
