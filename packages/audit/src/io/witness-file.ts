// The witness: the latest checkpoint this machine has seen, kept outside the
// database so that restoring an older database (a rollback) is noticed.
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointJson, parseCheckpoint, type SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { readBoundedText } from './bounded-read.ts';

export const WITNESS_FILE = 'audit-witness.json';

/** The witnessed checkpoint at `path`, or null when there is none yet. */
export function readWitness(path: string): SignedCheckpoint | null {
  let text: string;
  try {
    text = readBoundedText(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new AuditError('AUDIT_STORE_UNAVAILABLE', `cannot read the witness ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return parseCheckpoint(text);
  } catch (error) {
    throw new AuditError('AUDIT_CHECKPOINT_MALFORMED', `the witness ${path} is not a checkpoint: ${(error as Error).message}`, { cause: error });
  }
}

/** Replaces the witness at `path` with `checkpoint` when it is newer (larger). */
export function advanceWitness(path: string, checkpoint: SignedCheckpoint): void {
  const current = readWitnessQuietly(path);
  if (current && current.size >= checkpoint.size) return;
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(checkpointJson(checkpoint))}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

function readWitnessQuietly(path: string): SignedCheckpoint | null {
  try {
    return readWitness(path);
  } catch {
    return null;
  }
}

/**
 * The witness file of a log: `audit-witness.json` for the state directory's
 * SQLite log, and one per PostgreSQL database (named by a digest of where it is).
 */
export function witnessPath(stateDir: string, postgresWhere?: string): string {
  if (!postgresWhere) return join(stateDir, WITNESS_FILE);
  return join(stateDir, `audit-witness-${createHash('sha256').update(postgresWhere).digest('hex').slice(0, 16)}.json`);
}
