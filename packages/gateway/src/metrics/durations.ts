// The buckets every duration histogram of the gateway's metrics shares: a
// governed run's steps take from half a millisecond (a policy decision) to
// seconds (a slow node), and Prometheus wants seconds.

/** Upper bounds in seconds, 0.5 ms to 10 s; anything longer lands in +Inf. */
export const DURATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Seconds since `started`, a performance.now() reading. */
export function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}
