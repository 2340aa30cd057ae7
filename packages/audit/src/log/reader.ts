// Reading a log: records, proofs against its checkpoints, full verification.
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { consistencyProof, inclusionProof } from '../merkle/prover.ts';
import { normalizeEvent, type AuditEvent, type AuditEventInput } from '../record/event.ts';
import type { AuditStore, ChainRow, LogHead, SeqSpan, StoredRecord } from '../store/store.ts';
import { progressReporter, type VerifyProgressOptions } from '../verify/progress.ts';
import type { Damage, VerifyReport } from '../verify/report.ts';
import { headDamage } from '../verify/head.ts';
import { LogVerifier, type VerifyStart } from '../verify/verifier.ts';
import { CompactRange } from '../merkle/compact-range.ts';
import { canonicalize } from '../record/canonical.ts';
import { recordBytes } from '../record/envelope.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { LogRecord, type AuditRecord } from './audit-record.ts';
import { verifySqliteInParallel } from './verify-parallel.ts';

/** Records per read when scanning (the store's default batch). */
const SCAN_BATCH = 10_000;

/**
 * Logs at least this large verify on two threads (SQLite) on hosts with two
 * or more cores: on this project's two shared cores, 1.08 to 1.8 times as
 * fast as on one (medians of three alternating rounds in three runs,
 * 2026-11-26: 323,600 / 300,400, 453,600 / 254,400, 471,000 / 311,900 records/s).
 */
const PARALLEL_FROM = availableParallelism() >= 2 ? 300_000 : Number.POSITIVE_INFINITY;

export interface VerifyStoreOptions extends VerifyProgressOptions {
  /** Logs at least this large verify on two threads (SQLite; default: 300,000 given two cores, else never). */
  parallelFrom?: number;
}

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

/** A stored event has its own time: one without is malformed, not "now". */
const NO_TIME = () => new Date(Number.NaN);

/**
 * A stored record as callers see it, once its content is checked against the
 * leaf hash stored when it was appended: a reader never shows, exports or
 * proves an altered record as if it were the one the log wrote. A body and
 * hash rewritten together may hold any JSON, so the body must also be what
 * append() writes: the canonical JSON of an event that passes its checks
 * (what show, tail and the OCSF mapper read is there; no member twice, which
 * parsers read differently; nothing nested too deep to print).
 *
 * @throws AuditError AUDIT_CHAIN_BROKEN, AUDIT_RECORD_MALFORMED (with `seq`).
 */
export function toAuditRecord(r: StoredRecord): AuditRecord {
  checkLeaf(r);
  let event: AuditEvent;
  let canonical: string;
  try {
    event = JSON.parse(r.body) as AuditEvent;
    normalizeEvent(event as unknown as AuditEventInput, NO_TIME);
    canonical = canonicalize(event);
  } catch (error) {
    throw new AuditError('AUDIT_RECORD_MALFORMED', `record ${r.seq} holds no valid audit event: ${(error as Error).message}`, { cause: error, seq: r.seq });
  }
  if (canonical !== r.body) throw new AuditError('AUDIT_RECORD_MALFORMED', `record ${r.seq} holds an event that is not in canonical form (RFC 8785)`, { seq: r.seq });
  return new LogRecord(r.seq, r.prev, r.hash, r.body, event);
}

function checkLeaf(r: StoredRecord): void {
  if (sha256Hasher.leaf(recordBytes(r.seq, r.prev, r.body)) !== r.hash) {
    throw new AuditError('AUDIT_CHAIN_BROKEN', `record ${r.seq} no longer hashes to the leaf hash stored when it was appended: it was altered; run 'corral audit verify'`);
  }
}

/**
 * Record `seq` of the log: one within its head (a row beyond it is none the log appended).
 * @throws AuditError AUDIT_NOT_FOUND, and as toAuditRecord.
 */
export async function readRecord(store: AuditStore, seq: number): Promise<AuditRecord> {
  const r = await store.record(seq);
  if (!r) throw new AuditError('AUDIT_NOT_FOUND', `there is no record ${seq} in ${store.where}`);
  // The head is read after the record: by then it covers a record appended meanwhile.
  const size = (await store.head()).size;
  if (seq >= size) throw new AuditError('AUDIT_NOT_FOUND', `there is no record ${seq} in ${store.where}: the log holds ${size}, and the row at seq ${seq} lies beyond its head, where no append put it; run 'corral audit verify'`);
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

/** True when `error` is the package's error with this code. */
function isCode(error: unknown, code: AuditError['code']): error is AuditError {
  return error instanceof AuditError && error.code === code;
}

/** A checkpoint row that cannot be read, as damage: it cannot vouch for anything. */
function unreadableCheckpoint(error: AuditError): Damage {
  const size = error.checkpointSize;
  return { kind: 'checkpoint-forged', seq: null, ...(size === undefined ? {} : { checkpointSize: size }), message: `${size === undefined ? 'a checkpoint' : `checkpoint at size ${size}`} cannot be read: ${error.message}` };
}

/**
 * Every checkpoint the store holds. A row that cannot be read is damage, not
 * a reason to stop: the rows are then read one at a time (each from the
 * smallest size not yet read), each unreadable one reported as a
 * checkpoint that cannot vouch for anything.
 */
async function readCheckpoints(store: AuditStore): Promise<{ checkpoints: SignedCheckpoint[]; unreadable: Damage[] }> {
  try {
    return { checkpoints: await store.checkpoints(), unreadable: [] };
  } catch (error) {
    if (!isCode(error, 'AUDIT_CHECKPOINT_MALFORMED')) throw error;
  }
  const checkpoints: SignedCheckpoint[] = [];
  const unreadable: Damage[] = [];
  for (let size = Number.MIN_SAFE_INTEGER; size <= Number.MAX_SAFE_INTEGER; ) {
    let c: SignedCheckpoint | null;
    try {
      c = await store.checkpointFor(size, false);
    } catch (error) {
      if (!isCode(error, 'AUDIT_CHECKPOINT_MALFORMED')) throw error;
      unreadable.push(unreadableCheckpoint(error));
      // A size that is no integer (text, bytes, a fraction: a foreign schema) gives no next size to read from.
      if (error.checkpointSize === undefined || error.checkpointSize < size) break;
      size = error.checkpointSize + 1;
      continue;
    }
    if (!c) break;
    checkpoints.push(c);
    size = c.size + 1;
  }
  return { checkpoints, unreadable };
}

/** Feeds the verifier one stored record: its place in the chain, then the time the store indexes it by and the tree nodes it stored. */
function take(verifier: LogVerifier, r: ChainRow): void {
  const body = r[3];
  verifier.add(r[0], r[1], body, r[2]);
  verifier.timeIndex(r[0], body, r[4]);
  verifier.treeNodes(r[0], r[5]);
}

/**
 * Feeds the verifier the records with from ≤ seq < to. A row that cannot be
 * read (a column of the wrong type) is `malformed` damage at its seq, and
 * reading goes on after it. Returns false when the store itself broke
 * mid-scan (a corrupt page), after reporting the first record it could not read.
 * `progress`, when given, is told after each batch how many records were read.
 */
async function feed(store: AuditStore, verifier: LogVerifier, from: number, to: number, progress?: (verified: number) => void): Promise<boolean> {
  let next = from;
  for (;;) {
    try {
      for await (const rows of store.scanChain(next, to)) {
        // Once the first break is diagnosed, hashing the rest would only cost time: count it.
        for (const r of rows) verifier.settled ? verifier.skip() : take(verifier, r);
        next = (rows[rows.length - 1] as ChainRow)[0] + 1;
        progress?.(next - from);
        // SQLite reads are synchronous: without a turn of the event loop between batches, a gateway
        // verifying its log (the HTTP API) would answer nothing else until the whole log was read.
        await yieldToLoop();
      }
      return true;
    } catch (error) {
      if (isCode(error, 'AUDIT_RECORD_MALFORMED') && error.seq !== undefined && error.seq >= next && error.seq < to) {
        // The rows before it in its batch were not handed over: they read fine, so read them again.
        for await (const rows of store.scanChain(next, error.seq)) for (const r of rows) take(verifier, r);
        verifier.malformed(error.message, undefined, error.seq);
        next = error.seq + 1;
        continue;
      }
      if (isCode(error, 'AUDIT_RECORD_MALFORMED') && error.seq === undefined) {
        // A row whose seq is no integer (the column altered to numeric) sorts among the records but has no
        // place in the chain: feed the rows before it, then name it as the record expected next.
        const good = await readablePrefix(store, next, to);
        for (const r of good) take(verifier, r);
        verifier.malformed(error.message);
        // Reading on from the seq after the last good row passes over it (it lies below that seq).
        next = good.length > 0 ? (good[good.length - 1] as ChainRow)[0] + 1 : next + 1;
        continue;
      }
      // A store that breaks mid-scan (a corrupt page) is damage to report, not a
      // crash: read on record by record to name the first one that cannot be read.
      if (!isCode(error, 'AUDIT_STORE_FOREIGN')) throw error;
      for (let seq = next; seq < Math.min(to, next + SCAN_BATCH); seq++) {
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
        take(verifier, [r.seq, r.prev, r.hash, r.body, r.timeMs, r.nodes.join('')]);
      }
      return false;
    }
  }
}

/**
 * The rows from `from` that read before the first that cannot, in the batch
 * of SCAN_BATCH rows from `from` that failed: the largest first batch that
 * reads, found by halving.
 */
async function readablePrefix(store: AuditStore, from: number, to: number): Promise<readonly ChainRow[]> {
  let good: readonly ChainRow[] = [];
  // A first batch of `lo` rows reads; one of `hi` does not.
  let lo = 0;
  let hi = SCAN_BATCH;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    try {
      good = await firstBatch(store, from, to, mid);
      lo = mid;
    } catch (error) {
      if (!isCode(error, 'AUDIT_RECORD_MALFORMED')) throw error;
      hi = mid;
    }
  }
  return good;
}

async function firstBatch(store: AuditStore, from: number, to: number, size: number): Promise<readonly ChainRow[]> {
  for await (const rows of store.scanChain(from, to, size)) return rows;
  return [];
}

/** Sorts the damage, earliest seq first, and sets ok and firstBadSeq from it. */
function settle(report: VerifyReport): VerifyReport {
  report.damage.sort((a, b) => (a.seq ?? Number.MAX_SAFE_INTEGER) - (b.seq ?? Number.MAX_SAFE_INTEGER));
  report.ok = report.damage.length === 0;
  report.firstBadSeq = report.damage.find((d) => d.seq !== null)?.seq ?? null;
  return report;
}

const span = (s: SeqSpan) => (s.count === 1 ? `a record at seq ${s.first}` : `${s.count} records at seq ${s.first}–${s.last}`);

/**
 * Rows at or beyond the head no append made (an append moves the head with
 * its records, in one transaction). When they continue the chain from the
 * head up to a checkpoint the trusted key signed, the records are the log's
 * and the head was moved back behind them (rolled back); else they were
 * inserted.
 */
async function judgeBeyond(store: AuditStore, publicKey: KeyObject, checkpoints: SignedCheckpoint[], head: LogHead, verifier: LogVerifier, beyond: SeqSpan, report: VerifyReport): Promise<void> {
  const state = verifier.state();
  if (beyond.first === head.size && state.size === head.size) {
    const after = new LogVerifier({ hasher: sha256Hasher, publicKey, checkpoints: checkpoints.filter((c) => c.size > head.size), start: state, partial: true });
    const sealed = (await feed(store, after, head.size, Number.MAX_SAFE_INTEGER)) ? after.finish().sealed : 0;
    if (sealed > head.size) {
      // The head's move is what made these look cut off: one finding, not two.
      report.damage = report.damage.filter((d) => !(d.kind === 'truncated' && d.seq === head.size && (d.checkpointSize ?? 0) <= sealed));
      report.damage.push({
        kind: 'rolled-back',
        seq: head.size,
        checkpointSize: sealed,
        message: `the log's head says ${head.size} records, but seq ${head.size}–${sealed - 1} follow them in the chain and a checkpoint signed at size ${sealed} covers them: the head was rolled back behind its records`,
      });
      return;
    }
  }
  report.damage.push({ kind: 'inserted', seq: beyond.first, message: `${span(beyond)} lie${beyond.count === 1 ? 's' : ''} beyond the log's head (${head.size} records): the log never appended ${beyond.count === 1 ? 'it' : 'them'}` });
}

/**
 * Recomputes everything in the store: every leaf hash and link of the chain,
 * the root at every checkpoint and each checkpoint's signature, against
 * `publicKey` and, when given, checkpoints witnessed earlier (the state
 * directory's witness, one an auditor kept): the log must extend each; and checks the
 * head against both: no row outside [0, head.size), and the checkpoint the
 * head says was signed last is there, and its last hash and frontier are the
 * ones the records make (a writer builds the next record and checkpoint on
 * them); and that each record's time index (what reads by time select by) is
 * its event time, and the tree nodes it stored (what proofs are built from)
 * are the ones the records make.
 * Reports damage; never throws for damage and never changes the store.
 * Tells `options.onProgress` how far it has come (see VerifyStoreOptions).
 * @throws AuditError AUDIT_STORE_FOREIGN (no or a corrupt head row), AUDIT_STORE_UNAVAILABLE.
 */
export async function verifyStore(store: AuditStore, publicKey: KeyObject, witness?: SignedCheckpoint | readonly SignedCheckpoint[] | null, options: VerifyStoreOptions = {}): Promise<VerifyReport> {
  // The checkpoints before the head: a checkpoint commits with the head that covers it, so on a live log
  // every checkpoint read lies within the head read after it — unless the head was moved back.
  const { checkpoints, unreadable } = await readCheckpoints(store);
  const head = await store.head();
  const known: Damage[] = [...unreadable];
  // A loop, not Math.max(...sizes): a log signs a checkpoint each time a one-shot writer closes,
  // and past about 120,000 of them spreading the sizes overflows the stack.
  let largest = 0;
  for (const c of checkpoints) largest = Math.max(largest, c.size);
  for (const d of unreadable) largest = Math.max(largest, d.checkpointSize ?? 0);
  const signedSince = (size: number) => size > largest;
  if (head.checkpointSize > 0 && signedSince(head.checkpointSize)) {
    const late = await store.checkpointFor(head.checkpointSize, true).catch(() => null);
    if (late) checkpoints.push(late);
  }
  if (head.checkpointSize > 0 && !checkpoints.some((c) => c.size === head.checkpointSize) && !unreadable.some((d) => d.checkpointSize === head.checkpointSize)) {
    known.push({
      kind: 'checkpoint-deleted',
      seq: null,
      checkpointSize: head.checkpointSize,
      message: `the log's head says a checkpoint was signed at size ${head.checkpointSize}, but the store holds none of that size: it was deleted`,
    });
  }
  const { before, beyond: past } = await store.outside(head.size);
  // A live log grows while it is verified: rows its head has moved on to cover since were appended, not inserted.
  const beyond = past && (await store.head()).size > past.last ? null : past;
  if (store instanceof SqliteStore && known.length === 0 && !before && !beyond && head.size >= (options.parallelFrom ?? PARALLEL_FROM)) {
    const fast = await verifySqliteInParallel(store, publicKey, checkpoints, witness, head.size, progressReporter(options, head.size));
    if (fast && fast.report.verified === head.size) {
      fast.report.damage.push(...headDamage(head, fast.state));
      return settle(fast.report);
    }
  }
  const verifier = new LogVerifier({ hasher: sha256Hasher, publicKey, checkpoints, ...(witness ? { witness } : {}) });
  // Through the head only: rows beyond it are judged apart (judgeBeyond).
  const readable = await feed(store, verifier, 0, head.size, progressReporter(options, head.size));
  const report = verifier.finish();
  report.damage = report.damage.concat(known);
  report.checkpoints.total += unreadable.length;
  if (!readable) {
    settle(report);
    report.ok = false;
    return report;
  }
  const rewrite = report.damage.find((d) => d.kind === 'edited' && d.throughSeq !== undefined);
  if (rewrite) await narrowRewrite(store, verifier.sealedState(), rewrite, report);
  if (report.ok && head.size > report.verified) {
    report.damage.push({ kind: 'truncated', seq: report.verified, message: `the log's head says ${head.size} records but ${report.verified} are present` });
  }
  if (beyond) await judgeBeyond(store, publicKey, checkpoints, head, verifier, beyond, report);
  // The head is judged against the records only when they verified through it (else it names their damage
  // again) and no row lies beyond it nor was it moved back: the inserted and rolled-back findings name those
  // (the report fails either way).
  if (!beyond && !report.damage.some((d) => d.kind === 'edited' || d.kind === 'rolled-back')) report.damage.push(...headDamage(head, verifier.state()));
  if (before) {
    report.damage.push({ kind: 'inserted', seq: before.first, message: `${span(before)} lie${before.count === 1 ? 's' : ''} before seq 0, outside the log: the log never appended ${before.count === 1 ? 'it' : 'them'}` });
  }
  return settle(report);
}
