// How far a long command has come, on stderr: `corral audit export` and
// `corral policy replay` may read a log of millions of records. A command that
// ends within `afterMs` shows nothing. After that, on a terminal, one line
// redrawn in place (`corral: replay: 120000 recorded decisions read`) and
// cleared at the end; when stderr is not a terminal (a log, a pipe, a test),
// a plain line every `everyMs`, nothing rewritten. Standard output stays
// the command's alone, so `--json` and an export stay whole.

import type { ProgressStream } from './up/progress.ts';

const CLEAR_LINE = '\r\x1b[2K';

export interface CountProgressOptions {
  /** Quiet for this long after the start (default 2 s). */
  afterMs?: number;
  /** Then shown this often (default: 250 ms on a terminal, 10 s otherwise). */
  everyMs?: number;
}

export class CountProgress {
  readonly #out: ProgressStream;
  readonly #tty: boolean;
  readonly #label: string;
  #count = 0;
  #drawn = false;
  #timer: NodeJS.Timeout | undefined;

  /** `label` names what is counted, after the command: `replay: %d recorded decisions read`, `%d` standing for the count. */
  constructor(out: ProgressStream, label: string, options: CountProgressOptions = {}) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#label = label;
    const everyMs = options.everyMs ?? (this.#tty ? 250 : 10_000);
    // Timers, not the count, decide when to show: a command stalled on its input or output still says how far it came.
    // Unref'd: they never keep the process alive.
    this.#timer = setTimeout(() => {
      this.#show();
      this.#timer = setInterval(() => this.#show(), everyMs).unref();
    }, options.afterMs ?? 2000).unref();
  }

  /** `n` more done. */
  add(n = 1): void {
    this.#count += n;
  }

  /** The work ended (done or failed): no more lines, and the terminal's line cleared for what comes next. */
  done(): void {
    clearTimeout(this.#timer);
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#drawn) this.#out.write(CLEAR_LINE);
    this.#drawn = false;
  }

  #show(): void {
    const text = `corral: ${this.#label.replace('%d', String(this.#count))}`;
    if (this.#tty) {
      this.#out.write(`${CLEAR_LINE}${text}`);
      this.#drawn = true;
    } else this.#out.write(`${text}\n`);
  }
}
