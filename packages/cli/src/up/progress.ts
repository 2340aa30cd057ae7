// What `corral up` shows on stderr while it starts: a tick (or a cross) line
// per step as it ends, and below them one spinner line naming the steps still
// running (several start side by side). When stderr is not a terminal (a log,
// a pipe, a test), plain lines instead: `corral: ok: <step> in 120 ms`,
// nothing rewritten in place.

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR_LINE = '\r\x1b[2K';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export class Progress {
  readonly #out: ProgressStream;
  readonly #tty: boolean;
  /** Steps running now, in the order they started. */
  readonly #running = new Set<string>();
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(out: ProgressStream) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  /** Runs one step under `label`; shows its outcome; rethrows its error. `detail` turns the result into a note shown after the tick. */
  async step<T>(label: string, work: () => Promise<T> | T, detail?: (result: T) => string | undefined): Promise<T> {
    const started = performance.now();
    this.#start(label);
    try {
      const result = await work();
      const note = detail?.(result);
      this.#end(label, `${this.#tty ? '\x1b[32m✔\x1b[0m' : 'ok:'} ${label}${note ? ` (${note})` : ''}${this.#tty ? '' : ` in ${Math.round(performance.now() - started)} ms`}`);
      return result;
    } catch (error) {
      this.#end(label, `${this.#tty ? '\x1b[31m✖\x1b[0m' : 'failed:'} ${label}`);
      throw error;
    }
  }

  /** A line that is not a step (`stopping…`). */
  note(text: string): void {
    this.#line(text);
  }

  #start(label: string): void {
    this.#running.add(label);
    if (!this.#tty) return;
    this.#draw();
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#draw(), 80);
      this.#timer.unref();
    }
  }

  #end(label: string, line: string): void {
    this.#running.delete(label);
    if (this.#tty && this.#running.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    this.#line(line);
  }

  #draw(): void {
    if (this.#running.size > 0) this.#out.write(`${CLEAR_LINE}${FRAMES[this.#frame++ % FRAMES.length]} ${[...this.#running].join(' · ')}`);
  }

  /** A finished line above the spinner, which is drawn again below it. */
  #line(text: string): void {
    if (!this.#tty) {
      this.#out.write(`corral: ${text}\n`);
      return;
    }
    this.#out.write(`${CLEAR_LINE}${text}\n`);
    this.#draw();
  }
}
