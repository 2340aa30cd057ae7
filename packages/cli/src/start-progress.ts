// What a slow start is doing, on stderr (`corral gateway`): loading its code,
// opening a large audit log, reading identities and the policy set may each
// take seconds, and a start that shows nothing cannot be told from one that
// hangs. As a slow command shows its count (count-progress.ts): nothing for a
// start that ends within 2 s, then the step running now, a line redrawn on a
// terminal or repeated every 10 s otherwise. Standard output is left alone.

import { CountProgress } from './count-progress.ts';
import type { ProgressStream } from './up/progress.ts';

/** How long a start stays quiet, as a slow command does before it shows its count. */
const QUIET_MS = 2000;

export class StartProgress {
  readonly #out: ProgressStream | undefined;
  readonly #command: string;
  readonly #started = performance.now();
  /** CORRAL_START_PROGRESS_MS: shown that soon and that often instead (tests need no start of seconds to see it). */
  readonly #ms: number | undefined;

  /** `out` undefined shows nothing (`--json`: stderr is the log's JSON lines alone). `command` begins each line: `gateway start`. */
  constructor(out: ProgressStream | undefined, command: string) {
    this.#out = out;
    this.#command = command;
    const text = process.env.CORRAL_START_PROGRESS_MS;
    this.#ms = text !== undefined && /^\d{1,9}$/.test(text) ? Number(text) : undefined;
  }

  /** Runs `work`, named `what` (`opening the audit log`) while it runs once the start has taken long; its result or error is `work`'s. */
  async step<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#out === undefined) return work();
    // The quiet time counts from the start, not from this step: steps of a second each still show once 2 s have passed.
    const afterMs = Math.max(0, (this.#ms ?? QUIET_MS) - (performance.now() - this.#started));
    // CountProgress reads %d as its count: a step is named by fixed words only (no path that could hold one).
    const shown = new CountProgress(this.#out, `${this.#command}: ${what}`, { afterMs, ...(this.#ms === undefined ? {} : { everyMs: this.#ms }) });
    try {
      return await work();
    } finally {
      shown.done();
    }
  }
}
