// How long this thread's event loop went without running: what a gateway or
// decision point on this thread made everyone else wait. Measured as the
// longest time between two ticks of a short interval timer, so a loop that
// never stalls reads about the interval itself.

/** Starts measuring; stop() ends it and gives the longest gap, ms. The timer does not keep the process alive. */
export function stallMeter(intervalMs = 5): { stop(): number } {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, intervalMs);
  // A test that fails before stop() leaves the process free to end.
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return Math.max(worst, performance.now() - last);
    },
  };
}

/** Runs `work` and gives what it returned with the longest gap of the event loop meanwhile, ms. */
export async function longestGap<T>(work: () => Promise<T>, intervalMs = 5): Promise<{ gap: number; value: T }> {
  const meter = stallMeter(intervalMs);
  try {
    const value = await work();
    return { gap: meter.stop(), value };
  } finally {
    meter.stop();
  }
}
