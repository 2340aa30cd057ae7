// A checkpoint kept from earlier (an auditor's `--checkpoint FILE`): a file
// holding one checkpoint, bare or as the `{"checkpoint":{…}}` line of an export.
import { NotRegularFile, readBoundedText, TooLarge } from './bounded-read.ts';
import { parseCheckpoint, type SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';

/**
 * Reads the checkpoint in `path`. Guards: the file reads; it is JSON; it is an
 * object; then parseCheckpoint's rules, on its `checkpoint` member when it has one.
 * @throws AuditError AUDIT_BAD_ARGUMENT when the file cannot be read or is not a
 *   regular file (a FIFO, a socket, a device, a directory: refused before it is read);
 *   AUDIT_CHECKPOINT_MALFORMED naming the file and what is wrong.
 */
export function readCheckpointFile(path: string): SignedCheckpoint {
  let text: string;
  try {
    text = readBoundedText(path);
  } catch (error) {
    if (error instanceof NotRegularFile) throw new AuditError('AUDIT_BAD_ARGUMENT', `cannot read the checkpoint ${path}: ${error.message}; save the checkpoint to a file first (tail -n 1 audit.jsonl > kept.json) and give its path`, { cause: error });
    if (error instanceof TooLarge) throw new AuditError('AUDIT_CHECKPOINT_MALFORMED', `${path} is not a checkpoint: it is ${error.message}; keep one checkpoint, such as the last line of an export (tail -n 1 audit.jsonl > kept.json)`, { cause: error });
    throw new AuditError('AUDIT_BAD_ARGUMENT', `cannot read the checkpoint ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  const bad = (why: string, cause?: unknown) => new AuditError('AUDIT_CHECKPOINT_MALFORMED', `${path} is not a checkpoint: ${why}`, cause === undefined ? {} : { cause });
  if (text.trim() === '') throw bad('the file is empty');
  if (text.startsWith('\ufeff')) throw bad('it starts with a byte-order mark; save it as UTF-8 without one');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    // A whole export given for the checkpoint kept from it is the likely mistake.
    const lines = text.split('\n').filter((l) => l.trim() !== '').length;
    const held = lines > 1 ? `it holds ${lines} lines, not one JSON document` : 'it is not JSON';
    throw bad(`${held}; keep one checkpoint, such as the last line of an export (tail -n 1 audit.jsonl > kept.json)`, error);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('it is not a JSON object');
  const inner = Object.hasOwn(raw, 'checkpoint') ? (raw as { checkpoint: unknown }).checkpoint : raw;
  try {
    return parseCheckpoint(inner);
  } catch (error) {
    if (error instanceof AuditError) throw bad(error.message, error);
    throw error;
  }
}
