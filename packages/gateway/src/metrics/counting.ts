// Counters whose label values are known up front are shown at 0 from the
// start: Prometheus's rate() and increase() need a sample before the first count.

/** `child` (a counter's labels(…)), shown at 0 now. */
export function counting<T extends { inc(value?: number): void }>(child: T): T {
  child.inc(0);
  return child;
}
