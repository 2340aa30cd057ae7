// Copies committed pages from the SQLite write-ahead log into the database
// file (a WAL checkpoint) on a thread of its own. Left to the writer, a
// checkpoint runs inside whichever commit crosses the threshold and holds up
// every append waiting on it for tens of milliseconds; here it runs beside
// the writer (PASSIVE: it never takes the write lock), and the writer's
// commits pay only for their own pages.
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

/** Checkpoint once this many records were committed since the last one… */
const EVERY_RECORDS = 2048;
/** …or this long after a commit when fewer were. */
const IDLE_MS = 250;

/** Slot 0: records committed so far (the writer adds and notifies); slot 1: 1 once the writer closes. */
const { path, shared } = workerData as { path: string; shared: SharedArrayBuffer };
const state = new Int32Array(shared);
const db = new DatabaseSync(path);
db.exec('PRAGMA synchronous = FULL');
parentPort?.postMessage('ready');
let done = Atomics.load(state, 0);
while (Atomics.load(state, 1) === 0) {
  const seen = Atomics.load(state, 0);
  if (seen === done) {
    Atomics.wait(state, 0, seen, IDLE_MS);
    continue;
  }
  // Fewer than EVERY_RECORDS new ones: wait for the writer to pause first.
  if (seen - done < EVERY_RECORDS && Atomics.wait(state, 0, seen, IDLE_MS) !== 'timed-out') continue;
  try {
    db.exec('PRAGMA wal_checkpoint(PASSIVE)');
  } catch {
    // The writer's own automatic checkpoint is the fallback; nothing
    // acknowledged depends on this thread.
  }
  done = seen;
}
db.close();
