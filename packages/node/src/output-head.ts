// What the node keeps of a command's output while it runs: the head it
// passes on, never the rest. A sandbox may write as much as its policy's
// maxOutputBytes (16 MiB by default, up to a TiB), and up to MAX_RUNS run at
// once: holding all of it only to cut it afterwards is the node's memory.
import { Writable } from 'node:stream';

/** A stream that keeps the first `cap` bytes written to it and counts the rest. */
export class OutputHead extends Writable {
  readonly #cap: number;
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #written = 0;

  constructor(cap: number) {
    super();
    this.#cap = cap;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.#written += chunk.length;
    const room = this.#cap - this.#kept;
    if (room > 0) {
      // A copy of the part kept, so the rest of a large chunk is not held through it.
      const part = chunk.length <= room ? chunk : Buffer.from(chunk.subarray(0, room));
      this.#chunks.push(part);
      this.#kept += part.length;
    }
    done();
  }

  /** The head as UTF-8 (a character cut at the cap reads as U+FFFD). */
  get text(): string {
    return Buffer.concat(this.#chunks).toString();
  }

  /** Whether more was written than kept. */
  get truncated(): boolean {
    return this.#written > this.#kept;
  }
}
