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
  const before = Buffer.from(text, 'utf8').subarray(0, Math.max(0, byteOffset)).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: (lines.at(-1) ?? '').length + 1 };
}

/** Cedar's error and its related errors as one line of text. */
export function describeCedarError(error: { message: string; help: string | null; related?: { message: string }[] }): string {
  const related = (error.related ?? []).map((r) => r.message).filter((m) => m !== error.message);
  const parts = [error.message, ...related];
  if (error.help) parts.push(`help: ${error.help}`);
  return parts.join('; ');
}
