// How far a long command has come, on stderr: `corral audit export` and
// `corral policy replay` may read a log of millions of records. A command that
// ends within `afterMs` shows nothing. After that, on a terminal, one line
// redrawn in place (`corral: replay: 120000 recorded decisions read`) and
// cleared at the end; when stderr is not a terminal (a log, a pipe, a test),
// a plain line every `everyMs`, nothing rewritten. Standard output stays
// the command's alone, so `--json` and an export stay whole.

import type { ProgressStream } from './up/progress.ts';

const CLEAR_LINE = '\r\x1b[2K';
/** A timer may fire a little before its time, as performance.now() measures it. */
const TIMER_EARLY_MS = 20;

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
  readonly #everyMs: number;
  #count = 0;
  #drawn = false;
  /** When the count is shown next (performance.now()). */
  #nextAt: number;
  #timer: NodeJS.Timeout | undefined;

  /** `label` names what is counted, after the command: `replay: %d recorded decisions read`, `%d` standing for the count. */
  constructor(out: ProgressStream, label: string, options: CountProgressOptions = {}) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#label = label;
    this.#everyMs = options.everyMs ?? (this.#tty ? 250 : 10_000);
    const afterMs = options.afterMs ?? 2000;
    this.#nextAt = performance.now() + afterMs;
    // The count is shown from add() when it is time: a loop that never lets a timer run (records read synchronously,
    // written to a pipe that blocks) still shows it. And from a timer: a command stalled on its input says how far it came.
    // Unref'd: it never keeps the process alive.
    this.#timer = setTimeout(() => {
      this.#due(TIMER_EARLY_MS);
      this.#timer = setInterval(() => this.#due(TIMER_EARLY_MS), this.#everyMs).unref();
    }, afterMs).unref();
  }

  /** `n` more done. */
  add(n = 1): void {
    this.#count += n;
    this.#due();
  }

  /** A line of its own on the same stream (a warning), not drawn over by the count. */
  note(text: string): void {
    if (this.#drawn) this.#out.write(CLEAR_LINE);
    this.#drawn = false;
    this.#out.write(text);
  }

  /** The work ended (done or failed): no more lines, and the terminal's line cleared for what comes next. */
  done(): void {
    clearTimeout(this.#timer);
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#drawn) this.#out.write(CLEAR_LINE);
    this.#drawn = false;
  }

  /** Shows the count when it is time, or `earlyMs` before. */
  #due(earlyMs = 0): void {
    if (this.#timer === undefined) return;
    const now = performance.now();
    if (now < this.#nextAt - earlyMs) return;
    this.#nextAt = now + this.#everyMs;
    this.#show();
  }

  #show(): void {
    const text = `corral: ${this.#label.replace('%d', String(this.#count))}`;
    if (this.#tty) {
      this.#out.write(`${CLEAR_LINE}${text}`);
      this.#drawn = true;
    } else this.#out.write(`${text}\n`);
  }
}
