// What `corral up` shows on stderr while it starts: one line per step, a
// spinner while the step runs and a tick (or a cross) when it ends. When
// stderr is not a terminal (a log, a pipe, a test), plain lines instead:
// `corral: <step> … ok (120 ms)`, nothing rewritten in place.

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export class Progress {
  readonly #out: ProgressStream;
  readonly #tty: boolean;

  constructor(out: ProgressStream) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  /** Runs one step under `label`; shows its outcome; rethrows its error. `detail` turns the result into a note shown after the tick. */
  async step<T>(label: string, work: () => Promise<T> | T, detail?: (result: T) => string | undefined): Promise<T> {
    const started = performance.now();
    const stop = this.#spin(label);
    try {
      const result = await work();
      stop();
      const note = detail?.(result);
      this.#line(`${this.#tty ? '\x1b[32m✔\x1b[0m' : 'ok:'} ${label}${note ? ` (${note})` : ''}${this.#tty ? '' : ` in ${Math.round(performance.now() - started)} ms`}`);
      return result;
    } catch (error) {
      stop();
      this.#line(`${this.#tty ? '\x1b[31m✖\x1b[0m' : 'failed:'} ${label}`);
      throw error;
    }
  }

  /** A line that is not a step (`stopping…`). */
  note(text: string): void {
    this.#line(text);
  }

  #spin(label: string): () => void {
    if (!this.#tty) return () => {};
    let frame = 0;
    const draw = (): void => void this.#out.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${label}`);
    draw();
    const timer = setInterval(draw, 80);
    timer.unref();
    return () => {
      clearInterval(timer);
      this.#out.write('\r\x1b[2K');
    };
  }

  #line(text: string): void {
    this.#out.write(this.#tty ? `${text}\n` : `corral: ${text}\n`);
  }
}
