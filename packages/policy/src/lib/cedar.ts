// The one place cedar-wasm is imported: the Node build, loaded synchronously.
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

export { cedar };
export type {
  AuthorizationAnswer,
  DetailedError,
  EntityJson,
  Expr,
  PolicyJson,
  SchemaJson,
  TypeAndId,
} from '@cedar-policy/cedar-wasm/nodejs';

/** UTF-8 byte offset in `text` → 1-based line and column (Cedar reports byte offsets). */
export function lineAt(text: string, byteOffset: number): { line: number; column: number } {
  return lineIndex(text)(byteOffset);
}

/**
 * Indexes `text` once; the returned function maps UTF-8 byte offsets to
 * 1-based line and column. A line ends at a line feed, a carriage return
 * and line feed, or a carriage return alone (as Cedar, which ends a comment
 * there, and editors count lines).
 */
export function lineIndex(text: string): (byteOffset: number) => { line: number; column: number } {
  const bytes = Buffer.from(text, 'utf8');
  const starts = [0];
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a || (bytes[i] === 0x0d && bytes[i + 1] !== 0x0a)) starts.push(i + 1);
  return (byteOffset) => {
    const at = Math.max(0, Math.min(byteOffset, bytes.length));
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    const column = bytes.subarray(starts[lo]!, at).toString('utf8').length + 1;
    return { line: lo + 1, column };
  };
}

/** Cedar's error and its related errors as one line of text. */
export function describeCedarError(error: { message: string; help: string | null; related?: { message: string }[] }): string {
  const related = (error.related ?? []).map((r) => r.message).filter((m) => m !== error.message);
  const parts = [error.message, ...related];
  if (error.help) parts.push(`help: ${error.help}`);
  return parts.join('; ');
}
