/**
 * Characters that draw nothing, look like a plain space, or move the cursor,
 * redraw the screen or reorder the line: C0 and C1 controls (escape
 * sequences among them), DEL, bidi and other format characters, separators
 * other than the space, unassigned and private-use code points.
 */
const HIDDEN = /(?! )[\p{C}\p{Z}]/gu;

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

/** Prints a value as one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
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
