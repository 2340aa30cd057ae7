// Opening a log's witness: the checkpoint this state directory saw last,
// which the log must still extend (else it was rolled back), kept one per
// SQLite log, and one per PostgreSQL database and schema.
import { rename } from 'node:fs/promises';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { readWitness, witnessPath } from '../io/witness-file.ts';
import { hashesEqual } from '../merkle/hasher.ts';
import type { PostgresStore } from '../store/postgres.ts';
import type { AuditStore } from '../store/store.ts';
import { storedRootAt } from './stored-root.ts';

/**
 * The witness file of `store`'s log, once the log is known to extend the
 * checkpoint it holds.
 *
 * A PostgreSQL log's witness used to be one per database, whatever the
 * schema: two logs in two schemas shared it, so one could not be opened
 * beside the other, and a rollback of one could be taken for the other's
 * history. Such a witness is taken over by the first log of its database
 * that extends it (the one it was kept for: only that log could be opened
 * with it), and renamed to that log's own witness; a log that does not extend
 * it is refused, as the log it was kept for would be, since nothing tells the
 * log it was kept for from one rolled back behind it.
 * @throws AuditError AUDIT_ROLLED_BACK, AUDIT_STORE_UNAVAILABLE, AUDIT_CHECKPOINT_MALFORMED.
 */
export async function openWitness(stateDir: string, store: AuditStore): Promise<string> {
  const file = witnessPath(stateDir, store.kind === 'postgres' ? store.where : undefined);
  const witness = readWitness(file);
  if (witness) {
    await checkNotRolledBack(store, witness);
    return file;
  }
  if (store.kind !== 'postgres') return file;
  const shared = witnessPath(stateDir, (store as PostgresStore).database);
  const before = readWitness(shared);
  if (!before) return file;
  try {
    await checkNotRolledBack(store, before);
  } catch (error) {
    if (!(error instanceof AuditError && error.code === 'AUDIT_ROLLED_BACK')) throw error;
    throw new AuditError(
      'AUDIT_ROLLED_BACK',
      `${error.message}. That checkpoint is the one this state directory kept for the database ${(store as PostgresStore).database} (${shared}) before it kept one per schema: if another schema of that database holds a log this state directory writes, open that log first (it takes the witness over), then this one`,
      { cause: error },
    );
  }
  try {
    // Atomic: should another process take it over first, this rename finds nothing, and that process's witness stands.
    await rename(shared, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new AuditError('AUDIT_STORE_UNAVAILABLE', `cannot take over the witness ${shared} as ${file}: ${(error as Error).message}`, { cause: error });
  }
  return file;
}

/** @throws AuditError AUDIT_ROLLED_BACK when the log is behind `witness`, or does not extend it. */
async function checkNotRolledBack(store: AuditStore, witness: SignedCheckpoint): Promise<void> {
  const head = await store.head();
  if (head.size < witness.size) {
    throw new AuditError('AUDIT_ROLLED_BACK', `the audit log at ${store.where} has ${head.size} records but this state directory saw a checkpoint for ${witness.size}: it was rolled back; run 'corral audit verify'`);
  }
  if (witness.size > 0 && !hashesEqual(await storedRootAt(store, witness.size), witness.root)) {
    throw new AuditError('AUDIT_ROLLED_BACK', `the audit log at ${store.where} does not extend the checkpoint witnessed at size ${witness.size}: it was rolled back and rewritten; run 'corral audit verify'`);
  }
}
