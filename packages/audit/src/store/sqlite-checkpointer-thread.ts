// Copies committed pages from the SQLite write-ahead log into the database
// file (a WAL checkpoint) on a thread of its own. Left to the writer, a
// checkpoint runs inside whichever commit crosses the threshold and holds up
// every append waiting on it for tens of milliseconds; here it runs beside
// the writer (PASSIVE: it never takes the write lock), and the writer's
// commits pay only for their own pages.
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { committed, isClosing, waitForCommit, type CommitCount } from './sqlite-commit-count.ts';

/** Checkpoint once this many records were committed since the last one… */
const EVERY_RECORDS = 2048;
/**
 * …or this many commits. Once a checkpoint has copied the whole log, the next
 * commit starts the log over from its beginning and overwrites pages the file
 * already has; a commit that makes the file longer also waits for the file
 * system to journal its new size, which doubles its fsync (0.7 against
 * 1.4 ms at p50 on this project's test machines). Small commits — a gateway
 * recording one decision at a time — write a few whole pages each, so
 * counting records alone would leave the log growing for thousands of them.
 */
const EVERY_COMMITS = 32;
/** …or this long after a commit when fewer came. */
const IDLE_MS = 250;

const { path, committed: count } = workerData as { path: string; committed: CommitCount };
const db = new DatabaseSync(path);
db.exec('PRAGMA synchronous = FULL');
parentPort?.postMessage('ready');
let done = committed(count);
while (!isClosing(count)) {
  const seen = committed(count);
  if (seen.records === done.records && seen.commits === done.commits) {
    waitForCommit(count, seen.records, IDLE_MS);
    continue;
  }
  // Fewer new ones than either threshold: wait for the writer to pause first.
  const few = seen.records - done.records < EVERY_RECORDS && seen.commits - done.commits < EVERY_COMMITS;
  if (few && waitForCommit(count, seen.records, IDLE_MS)) continue;
  try {
    db.exec('PRAGMA wal_checkpoint(PASSIVE)');
  } catch {
    // The writer's own automatic checkpoint is the fallback; nothing
    // acknowledged depends on this thread.
  }
  done = seen;
}
db.close();
