// How far a verification has come, told to whoever shows it (`corral audit
// verify` on stderr), at most every so often: the live log's and an export's.

/** The least time between two progress reports, by default. */
const PROGRESS_EVERY_MS = 250;

export interface VerifyProgressOptions {
  /**
   * Told how far verification has come: the records verified so far and how
   * many there are to verify. Called with 0 when the records begin, then at
   * most every `progressEveryMs`. The count may start again from 0: damage
   * found in a quick pass is verified again, to be named.
   */
  onProgress?: (verified: number, total: number | null) => void;
  /** The least time between two onProgress calls after the first (default 250 ms). */
  progressEveryMs?: number;
}

/** `onProgress` for a pass over `total` records, called at most every `progressEveryMs`; undefined without one. */
export function progressReporter(options: VerifyProgressOptions, total: number): ((verified: number) => void) | undefined {
  const { onProgress } = options;
  if (!onProgress) return undefined;
  const everyMs = options.progressEveryMs ?? PROGRESS_EVERY_MS;
  let nextAt = performance.now() + everyMs;
  onProgress(0, total);
  return (verified) => {
    const now = performance.now();
    if (now < nextAt) return;
    nextAt = now + everyMs;
    onProgress(verified, total);
  };
}
