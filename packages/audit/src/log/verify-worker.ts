// A worker thread verifying one slice of a SQLite log (see verify-parallel.ts).
import { createPublicKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { LogVerifier, type VerifyStart } from '../verify/verifier.ts';

const job = workerData as { path: string; publicKeyPem: string; from: number; to: number; start: VerifyStart; checkpoints: SignedCheckpoint[]; witness: SignedCheckpoint[]; partial: boolean; progress: boolean };
const store = new SqliteStore({ path: job.path, create: false });
try {
  const verifier = new LogVerifier({
    hasher: sha256Hasher,
    publicKey: createPublicKey(job.publicKeyPem),
    checkpoints: job.checkpoints,
    start: job.start,
    partial: job.partial,
    witness: job.witness,
    // A slice with damage is verified again sequentially, which diagnoses it: no record past its first break is needed here.
    lookahead: 0,
  });
  let verified = 0;
  scan: for await (const rows of store.scanChain(job.from, job.to)) {
    for (const [seq, prev, hash, body, timeMs, nodes] of rows) {
      if (verifier.settled) break scan;
      verifier.add(seq, prev, body, hash);
      verifier.timeIndex(seq, body, timeMs);
      verifier.treeNodes(seq, nodes);
    }
    // One message a batch (10,000 records, some 30 ms): the main thread decides how often to show it.
    verified += rows.length;
    if (job.progress) parentPort?.postMessage({ verified });
  }
  parentPort?.postMessage({ report: verifier.finish(), state: verifier.state() });
} finally {
  await store.close();
}
