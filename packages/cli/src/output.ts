import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from './exit-codes.ts';

/**
 * Characters that draw nothing, look like a plain space, or move the cursor,
 * redraw the screen or reorder the line: C0 and C1 controls (escape
 * sequences among them), DEL, bidi and other format characters, separators
 * other than the space, unassigned and private-use code points; and, as the
 * console spells them out, Unicode's Default_Ignorable_Code_Point (letters
 * and marks that draw nothing: the Hangul filler U+3164, which JavaScript
 * takes for an identifier, variation selectors) and the Braille blank U+2800.
 */
const HIDDEN = /(?! )[\p{C}\p{Z}\p{Default_Ignorable_Code_Point}\u2800]/gu;

/**
 * One line of human output with every HIDDEN character written as its
 * `\uXXXX` (`\u{XXXXX}`) escape: what Corral prints holds text an agent or
 * node chose (a command line, a node name), which must not write to the
 * reader's terminal or make one command look like another.
 */
export function printable(text: string): string {
  return text.replace(HIDDEN, (c) => {
    const code = c.codePointAt(0)!.toString(16);
    return code.length <= 4 ? `\\u${code.padStart(4, '0')}` : `\\u{${code}}`;
  });
}

/**
 * Rows under a header line, columns aligned, every cell made printable; the
 * last column is not padded (it may be long: a command list, an id).
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [header, ...rows].map((row) => row.map(printable));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  return cells.map((row) => `${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}\n`).join('');
}

/** Whether standard output failed for a reason other than its reader going away; and whether a failure ends the process at once. */
const output = { watched: false, broken: false, stop: false, secret: undefined as string | undefined };

/**
 * Standard output that cannot be written, never with a stack trace: a reader
 * that stopped reading (`| head`) goes unnoticed, and the command finishes
 * what it does with its own exit status; any other failure (a full disk
 * under `> file`) is named on stderr and the command exits 3, so that a cut
 * output is never taken for a whole one. With `stop`, either ends the process
 * at once (exit 0 or 3): for a command that would go on writing, or wait for
 * a reader that is gone (`audit export`, `audit tail -f`). Standard error
 * that cannot be written is ignored.
 */
export function watchOutput(options: { stop?: boolean } = {}): void {
  if (options.stop) output.stop = true;
  if (output.watched) return;
  output.watched = true;
  // Standard error that cannot be written (`2>&1 | head`, its reader gone) has nowhere to say so: the command goes on and exits with its own status.
  process.stderr.on('error', () => {});
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (output.secret !== undefined) {
      // Shown once and kept nowhere else: a reader that went away took it with it.
      process.stderr.write(`corral: ${output.secret} did not reach standard output (${error.code ?? error.message}) and is lost: run the command again\n`);
      output.secret = undefined;
      process.exitCode = EXIT.environment;
    }
    if (error.code === 'EPIPE') {
      if (output.stop) process.exit(process.exitCode === EXIT.environment ? EXIT.environment : EXIT.ok);
      return;
    }
    output.broken = true;
    process.stderr.write(`corral: cannot write the output: ${error.code ?? error.message}; what was written is incomplete\n`);
    process.exitCode = EXIT.environment;
    if (output.stop) process.exit(EXIT.environment);
  });
}

/**
 * Writes `text` holding a secret shown only this once (`what` names it, e.g.
 * "the new password"): should standard output fail, even because its reader
 * went away, the command says so on stderr and exits 3, since nothing else
 * keeps it.
 */
export function printSecret(what: string, text: string): void {
  output.secret = what;
  // Once written, it reached its reader: a later failure of standard output does not lose it.
  process.stdout.write(text, (error) => {
    if (!error && output.secret === what) output.secret = undefined;
  });
}

/** Whether standard output failed for a reason other than its reader going away (see watchOutput): the exit code is then 3. */
export function outputBroken(): boolean {
  return output.broken;
}

/** Prints a value as one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${json(value)}\n`);
}

function json(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

/**
 * Prints `items` as one JSON array on stdout, as printJson prints an array,
 * once the last of them was read: should reading fail part way (a store
 * damaged at its tenth page), the failure is thrown and nothing of the array
 * reaches stdout, so a reader gets the whole array or none of it (and under
 * --json the error document). What was read waits in a file of this user's
 * that no name leads to (unlinked as soon as it is open, so it goes with
 * the process however it ends), not in memory: a listing read a page at a
 * time holds a page at a time.
 */
export async function printJsonArray(items: Iterable<unknown> | AsyncIterable<unknown>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'corral-json-'));
  let spool: FileHandle;
  try {
    spool = await open(join(dir, 'array.json'), 'wx+', 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  try {
    let size = 0;
    const append = async (text: string) => {
      const bytes = Buffer.from(text);
      await spool.write(bytes, 0, bytes.length, size);
      size += bytes.length;
    };
    let count = 0;
    for await (const item of items) await append(`${count++ === 0 ? '[\n' : ',\n'}${json(item).replace(/^/gm, '  ')}`);
    await append(count === 0 ? '[]\n' : '\n]\n');
    for (let at = 0; at < size && !process.stdout.destroyed; ) {
      // A buffer of its own each time: stdout may still hold the one before.
      const { bytesRead, buffer } = await spool.read(Buffer.alloc(Math.min(64 * 1024, size - at)), 0, Math.min(64 * 1024, size - at), at);
      at += bytesRead;
      if (!process.stdout.write(buffer.subarray(0, bytesRead))) await drained();
    }
  } finally {
    await spool.close();
  }
}

/** Once stdout takes more, or cannot any more (its reader gone: watchOutput says what that means). */
function drained(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.stdout.off('drain', done).off('error', done).off('close', done);
      resolve();
    };
    process.stdout.on('drain', done).on('error', done).on('close', done);
  });
}

/** A user-facing failure: printed as `corral: message` without a stack trace, exits with `exitCode`. */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
  readonly exitCode: number;
  /** The coded error it stands for, when a package's error decided the exit code (printed, and under --json given as `code`). */
  readonly code: string | undefined;
  constructor(message: string, exitCode: number, code?: string) {
    super(message);
    this.exitCode = exitCode;
    this.code = code;
  }
}
