// Verifying a large SQLite log on two threads: the first verifies records
// [0, k) from the empty log, the second [k, …) starting from the tree state
// the store holds at k. When the first ends exactly in that state, the two
// reports together are the sequential one; anything else (damage anywhere, a
// mismatch at k) is verified again sequentially for an exact diagnosis.
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { publicKeyPem } from '../checkpoint/key.ts';
import { frontierNodes } from '../merkle/compact-range.ts';
import { nodeKey } from '../merkle/prover.ts';
import { GENESIS_PREV } from '../record/envelope.ts';
import type { SqliteStore } from '../store/sqlite.ts';
import type { VerifyReport } from '../verify/report.ts';
import type { VerifyStart } from '../verify/verifier.ts';

interface SliceResult {
  report: VerifyReport;
  state: VerifyStart;
}

/** What a slice's thread posts: how many of its records it has verified so far (when asked to), then its result. */
type SliceMessage = SliceResult | { verified: number };

/**
 * A slice's thread; `stop` ends it early (its result is then never asked for).
 * `progress`, when given, is told how many of the slice's records were verified, after each batch the thread reads.
 */
function slice(job: object, progress?: (verified: number) => void): { result: Promise<SliceResult>; stop: () => void } {
  const worker = new Worker(new URL('./verify-worker.ts', import.meta.url), { workerData: { ...job, progress: progress !== undefined } });
  let stopped = false;
  const result = new Promise<SliceResult>((resolve, reject) => {
    worker.on('message', (m: SliceMessage) => ('report' in m ? resolve(m) : progress?.(m.verified)));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && !stopped && reject(new AuditError('AUDIT_STORE_UNAVAILABLE', `a verification thread exited with code ${code}`)));
  });
  return {
    result,
    stop: () => {
      stopped = true;
      void worker.terminate();
    },
  };
}

/**
 * Both slices' results; null as soon as either finds damage (or fails), the
 * other thread then stopped: the log is verified again sequentially anyway,
 * and a log damaged early need not be read to its end twice first.
 */
async function both(jobs: [object, object], progress?: (verified: number) => void): Promise<[SliceResult, SliceResult] | null> {
  const counts = [0, 0];
  const threads = jobs.map((job, i) =>
    slice(
      job,
      progress &&
        ((verified) => {
          counts[i] = verified;
          progress((counts[0] as number) + (counts[1] as number));
        }),
    ),
  );
  const stopAll = () => {
    for (const t of threads) t.stop();
  };
  const damaged = (r: SliceResult) => {
    if (!r.report.ok) throw r;
    return r;
  };
  try {
    return (await Promise.all(threads.map((t) => t.result.then(damaged)))) as [SliceResult, SliceResult];
  } catch {
    stopAll();
    return null;
  }
}

/**
 * The parallel fast path: the report, and the tree and chain tip the records
 * make (what the head must hold); null when the caller must verify sequentially.
 * `progress`, when given, is told how many records both threads have verified together, as they go.
 */
export async function verifySqliteInParallel(
  store: SqliteStore,
  publicKey: KeyObject,
  checkpoints: SignedCheckpoint[],
  witness: SignedCheckpoint | readonly SignedCheckpoint[] | null | undefined,
  size: number,
  progress?: (verified: number) => void,
): Promise<SliceResult | null> {
  const k = Math.floor(size / 2);
  const ids = frontierNodes(k);
  let start: VerifyStart;
  try {
    const nodes = await store.nodes(ids);
    const before = await store.record(k - 1);
    if (!before) return null;
    start = { size: k, lastHash: before.hash, frontier: ids.map((id) => nodes.get(nodeKey(id)) as string) };
  } catch {
    return null;
  }
  const pem = publicKeyPem(publicKey);
  const witnesses = ([] as SignedCheckpoint[]).concat(witness ?? []);
  // A row a slice could not read (AUDIT_RECORD_MALFORMED) is damage the sequential pass reports at its seq.
  const results = await both([
    // Each witness goes to the slice whose records lead up to it (a verifier refuses one before its start).
    {
      path: store.where,
      publicKeyPem: pem,
      from: 0,
      to: k,
      start: { size: 0, lastHash: GENESIS_PREV, frontier: [] },
      checkpoints: checkpoints.filter((c) => c.size <= k),
      partial: true,
      witness: witnesses.filter((w) => w.size <= k),
    },
    { path: store.where, publicKeyPem: pem, from: k, to: size, start, checkpoints: checkpoints.filter((c) => c.size > k), partial: false, witness: witnesses.filter((w) => w.size > k) },
  ], progress);
  if (!results) return null;
  const [a, b] = results;
  const joined = a.state.size === k && a.state.lastHash === start.lastHash && a.state.frontier.join() === start.frontier.join();
  if (!joined || !a.report.ok || !b.report.ok) return null;
  const report: VerifyReport = {
    ok: true,
    records: a.report.records + b.report.records,
    from: a.report.from,
    verified: a.report.verified + b.report.verified,
    sealed: Math.max(a.report.sealed, b.report.sealed),
    checkpoints: { total: a.report.checkpoints.total + b.report.checkpoints.total, valid: a.report.checkpoints.valid + b.report.checkpoints.valid },
    root: b.report.root,
    damage: [],
    firstBadSeq: null,
  };
  return { report, state: b.state };
}
