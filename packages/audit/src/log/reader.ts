// Reading a log: records, proofs against its checkpoints, full verification.
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { consistencyProof, inclusionProof } from '../merkle/prover.ts';
import type { AuditEvent } from '../record/event.ts';
import type { AuditStore, ChainRow, StoredRecord } from '../store/store.ts';
import type { Damage, VerifyReport } from '../verify/report.ts';
import { LogVerifier, type VerifyStart } from '../verify/verifier.ts';
import { CompactRange } from '../merkle/compact-range.ts';
import { recordBytes } from '../record/envelope.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { LogRecord, type AuditRecord } from './audit-record.ts';
import { verifySqliteInParallel } from './verify-parallel.ts';

/** Records per read when scanning (the store's default batch). */
const SCAN_BATCH = 10_000;

/**
 * Logs at least this large verify on two threads (SQLite) on hosts with four
 * or more cores; on this project's two shared cores the bench found neither
 * way reliably faster, so there they verify on one.
 */
const PARALLEL_FROM = availableParallelism() >= 4 ? 300_000 : Number.POSITIVE_INFINITY;

export interface InclusionProofResult {
  seq: number;
  leafHash: string;
  treeSize: number;
  root: string;
  proof: string[];
  /** The signed checkpoint whose root the proof leads to. */
  checkpoint: SignedCheckpoint;
}

export interface ConsistencyProofResult {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[];
  checkpoint1: SignedCheckpoint;
  checkpoint2: SignedCheckpoint;
}

/**
 * A stored record as callers see it, once its content is checked against the
 * leaf hash stored when it was appended: a reader never shows, exports or
 * proves an altered record as if it were the one the log wrote.
 *
 * @throws AuditError AUDIT_CHAIN_BROKEN, AUDIT_RECORD_MALFORMED.
 */
export function toAuditRecord(r: StoredRecord): AuditRecord {
  checkLeaf(r);
  let event: AuditEvent;
  try {
    event = JSON.parse(r.body) as AuditEvent;
  } catch (error) {
    throw new AuditError('AUDIT_RECORD_MALFORMED', `record ${r.seq} holds an event that is not JSON`, { cause: error });
  }
  return new LogRecord(r.seq, r.prev, r.hash, r.body, event);
}

function checkLeaf(r: StoredRecord): void {
  if (sha256Hasher.leaf(recordBytes(r.seq, r.prev, r.body)) !== r.hash) {
    throw new AuditError('AUDIT_CHAIN_BROKEN', `record ${r.seq} no longer hashes to the leaf hash stored when it was appended: it was altered; run 'corral audit verify'`);
  }
}

/** Record `seq`. @throws AuditError AUDIT_NOT_FOUND */
export async function readRecord(store: AuditStore, seq: number): Promise<AuditRecord> {
  const r = await store.record(seq);
  if (!r) throw new AuditError('AUDIT_NOT_FOUND', `there is no record ${seq} in ${store.where}`);
  return toAuditRecord(r);
}

/** The smallest checkpoint covering `size` leaves, or the exact one when `exact`. */
async function checkpointCovering(store: AuditStore, size: number, exact: boolean): Promise<SignedCheckpoint> {
  const found = await store.checkpointFor(size, exact);
  if (!found) throw new AuditError('AUDIT_NOT_FOUND', exact ? `there is no checkpoint at size ${size}` : `no checkpoint covers seq ${size - 1} yet`);
  return found;
}

/**
 * Proof that record `seq` is in the tree signed by a checkpoint: the given
 * `treeSize`'s checkpoint, else the smallest checkpoint covering it.
 */
export async function proveInclusion(store: AuditStore, seq: number, treeSize?: number): Promise<InclusionProofResult> {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new AuditError('AUDIT_BAD_ARGUMENT', 'seq must be a non-negative integer');
  const record = await store.record(seq);
  if (!record) throw new AuditError('AUDIT_NOT_FOUND', `there is no record ${seq} in ${store.where}`);
  checkLeaf(record);
  const checkpoint = await checkpointCovering(store, treeSize ?? seq + 1, treeSize !== undefined);
  if (checkpoint.size <= seq) throw new AuditError('AUDIT_BAD_ARGUMENT', `checkpoint size ${checkpoint.size} does not cover seq ${seq}`);
  const fetch = (ids: Parameters<AuditStore['nodes']>[0]) => store.nodes(ids);
  const proof = await inclusionProof(sha256Hasher, fetch, seq, checkpoint.size);
  return { seq, leafHash: record.hash, treeSize: checkpoint.size, root: checkpoint.root, proof, checkpoint };
}

/** Proof that the checkpoint at `size2` extends the one at `size1` (both must exist). */
export async function proveConsistency(store: AuditStore, size1: number, size2: number): Promise<ConsistencyProofResult> {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 <= 0 || size2 < size1) {
    throw new AuditError('AUDIT_BAD_ARGUMENT', 'sizes must satisfy 0 < OLD <= NEW');
  }
  const checkpoint1 = await checkpointCovering(store, size1, true);
  const checkpoint2 = await checkpointCovering(store, size2, true);
  const proof = await consistencyProof(sha256Hasher, (ids) => store.nodes(ids), size1, size2);
  return { size1, size2, root1: checkpoint1.root, root2: checkpoint2.root, proof, checkpoint1, checkpoint2 };
}

/**
 * A consistent rewrite (records and their chain recomputed, but not re-signed)
 * shows only as a signed root that no longer matches. The interior nodes
 * stored when each record was appended still hold the original hashes unless
 * they were rewritten too: the first one that differs from the recomputed
 * tree bounds the first rewritten record to its subtree.
 */
async function narrowRewrite(store: AuditStore, start: VerifyStart, damage: Damage, report: VerifyReport): Promise<void> {
  const range = new CompactRange(sha256Hasher, start.size, start.frontier);
  for await (const rows of store.scan(start.size, Number.MAX_SAFE_INTEGER)) {
    for (const r of rows) {
      if (r.seq !== range.size) return;
      const completed = range.append(sha256Hasher.leaf(recordBytes(r.seq, r.prev, r.body)));
      const level = completed.findIndex((h, i) => h !== r.nodes[i]);
      if (level < 0) continue;
      const first = Math.max(start.size, r.seq - 2 ** (level + 1) + 1);
      damage.seq = first;
      damage.throughSeq = r.seq;
      damage.message = `the records were rewritten (chain recomputed, checkpoint at size ${damage.checkpointSize} no longer matches); the tree nodes stored at append time place the first rewritten record in seq ${first}–${r.seq}`;
      report.damage.sort((a, b) => (a.seq ?? Number.MAX_SAFE_INTEGER) - (b.seq ?? Number.MAX_SAFE_INTEGER));
      report.firstBadSeq = report.damage.find((d) => d.seq !== null)?.seq ?? null;
      return;
    }
  }
}

/**
 * Recomputes everything in the store: every leaf hash and link of the chain,
 * the root at every checkpoint and each checkpoint's signature, against
 * `publicKey` and, when given, a checkpoint witnessed earlier.
 * Reports damage; never throws for damage and never changes the store.
 */
export async function verifyStore(store: AuditStore, publicKey: KeyObject, witness?: SignedCheckpoint | null, options: { parallelFrom?: number } = {}): Promise<VerifyReport> {
  const head = await store.head();
  const checkpoints = await store.checkpoints();
  if (store instanceof SqliteStore && head.size >= (options.parallelFrom ?? PARALLEL_FROM)) {
    const fast = await verifySqliteInParallel(store, publicKey, checkpoints, witness, head.size);
    if (fast && fast.verified === head.size) return fast;
  }
  const verifier = new LogVerifier({ hasher: sha256Hasher, publicKey, checkpoints, ...(witness ? { witness } : {}) });
  // Scan past the head too: rows beyond it were not appended through the head.
  let next = 0;
  try {
    for await (const rows of store.scanChain(0, Number.MAX_SAFE_INTEGER)) {
      for (const r of rows) verifier.add(r[0], r[1], r[3], r[2]);
      next = (rows[rows.length - 1] as ChainRow)[0] + 1;
    }
  } catch (error) {
    // A store that breaks mid-scan (a corrupt page) is damage to report, not a
    // crash: read on record by record to name the first one that cannot be read.
    if (!(error instanceof AuditError) || error.code !== 'AUDIT_STORE_FOREIGN') throw error;
    for (let seq = next; seq < next + SCAN_BATCH; seq++) {
      let r: StoredRecord | null;
      try {
        r = await store.record(seq);
      } catch (inner) {
        verifier.malformed(`record ${seq} cannot be read from the store: ${(inner as Error).message}`);
        break;
      }
      if (!r) {
        verifier.malformed(`record ${seq} cannot be read from the store, which is corrupt from here on`);
        break;
      }
      verifier.add(r.seq, r.prev, r.body, r.hash);
    }
    const report = verifier.finish();
    report.ok = false;
    return report;
  }
  const report = verifier.finish();
  const rewrite = report.damage.find((d) => d.kind === 'edited' && d.throughSeq !== undefined);
  if (rewrite) await narrowRewrite(store, verifier.sealedState(), rewrite, report);
  if (report.ok && head.size !== report.verified) {
    report.ok = false;
    const seq = Math.min(head.size, report.verified);
    report.damage.push({ kind: head.size > report.verified ? 'truncated' : 'inserted', seq, message: `the log's head says ${head.size} records but ${report.verified} are present` });
    report.firstBadSeq = seq;
  }
  return report;
}
