// The witness: the latest checkpoint this machine has seen, kept outside the
// database so that restoring an older database (a rollback) is noticed.
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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

/**
 * Replaces the witness at `path` with `checkpoint` when it is newer (larger),
 * durably: the new witness is written to a temporary file beside it and
 * synced to disk, renamed over the old one, and the directory synced, so a
 * crash leaves the old witness or the new one, whole, and no temporary file
 * is left behind when any step fails. The writes and syncs run off the
 * calling thread (a log's writer calls this while it appends). Calls for one
 * path must not overlap: a later, smaller checkpoint could land last.
 * @throws the file system's errno error (callers treat it as non-fatal: the
 *   witness stays what it was, or is the new one not yet known to be on disk).
 */
export async function advanceWitness(path: string, checkpoint: SignedCheckpoint): Promise<void> {
  const current = readWitnessQuietly(path);
  if (current && current.size >= checkpoint.size) return;
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    // Created, never opened as found: a symbolic link planted at this foreseeable name would be written through.
    await rm(tmp, { force: true });
    const handle = await open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(checkpointJson(checkpoint))}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    // The error that stopped the write is the one to report.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dirname(path));
}

/** Makes a rename in `dir` durable. A file system that cannot sync a directory (EINVAL) has nothing more to do. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
  } finally {
    await handle.close();
  }
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
 * SQLite log, and one per PostgreSQL database and schema (named by a digest of
 * where it is, postgresWhere with the schema).
 */
export function witnessPath(stateDir: string, postgresWhere?: string): string {
  if (!postgresWhere) return join(stateDir, WITNESS_FILE);
  return join(stateDir, `audit-witness-${createHash('sha256').update(postgresWhere).digest('hex').slice(0, 16)}.json`);
}
