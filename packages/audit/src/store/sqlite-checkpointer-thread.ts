// Copies committed pages from the SQLite write-ahead log into the database
// file (a WAL checkpoint) on a thread of its own. Left to the writer, a
// checkpoint runs inside whichever commit crosses the threshold and holds up
// every append waiting on it for tens of milliseconds; here it runs beside
// the writer (PASSIVE: it never takes the write lock), and the writer's
// commits pay only for their own pages.
//
// Each process appending to the log runs one of these, and each counts only
// its own process's commits. So before it checkpoints it looks at the log:
// in WAL mode only a checkpoint writes the database file, so a file written
// since this thread last looked means another process checkpointed meanwhile,
// and this one leaves its turn to it. With one process the file changes only
// by this thread's own checkpoints, and it checkpoints as often as before;
// with several, about as often as one process making all their commits
// would, rather than once per process.
import { statSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { committed, isClosing, noteLook, waitForCommit, type CommitCount } from './sqlite-commit-count.ts';

/**
 * Checkpoint once this many records were committed since the last one… A
 * checkpoint ends with an fsync of the database file, and a commit's fsync
 * made meanwhile waits for the disk to take everything written before it:
 * the checkpoint's pages as well as its own. So the pages copied at once
 * bound how long a commit beside a checkpoint takes. At 50,000 appends/s,
 * checkpoints of ~1,600 records (~1.2 MB, when this was 2,048 and the 32
 * commits below came first) made commits beside them take 5–20 ms and the
 * acknowledgement p99 4.8–26 ms; of 512 records, 2.2–3.7 ms, with appends
 * per second unchanged (docs/measured.md, 2026-11-29).
 */
const EVERY_RECORDS = 512;
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

/** When and to what size the database file was last written; null when it cannot be told (then every look checkpoints). */
function lastWrite(): string | null {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.mtimeNs}/${s.size}`;
  } catch {
    return null;
  }
}

let done = committed(count);
/** The database file as this thread last saw it: after its own checkpoint, or when it left one to another process. */
let seenWrite = lastWrite();
/** True when this thread left commits it counted to another process's checkpoint, and looks again once the log is idle. */
let owed = false;
// Ready only once the count it starts from is read: a commit made before then would be taken as done, and the
// commits of a gateway that then waits for a look (or a test) would never reach the next one.
parentPort?.postMessage('ready');
while (!isClosing(count)) {
  const seen = committed(count);
  if (seen.records === done.records && seen.commits === done.commits) {
    if (!waitForCommit(count, seen.records, IDLE_MS) && owed) look();
    continue;
  }
  // Fewer new ones than either threshold: wait for the writer to pause first.
  const few = seen.records - done.records < EVERY_RECORDS && seen.commits - done.commits < EVERY_COMMITS;
  if (few && waitForCommit(count, seen.records, IDLE_MS)) continue;
  done = seen;
  look();
}
db.close();

/** Checkpoints, unless another process did since this thread last looked. */
function look(): void {
  const written = lastWrite();
  if (written !== null && written !== seenWrite) {
    // Another process's checkpoint copied (most of) what this one would.
    seenWrite = written;
    owed = true;
    noteLook(count, false);
    return;
  }
  try {
    db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    noteLook(count, true);
  } catch {
    // The writer's own automatic checkpoint is the fallback; nothing
    // acknowledged depends on this thread.
    noteLook(count, false);
  }
  seenWrite = lastWrite();
  owed = false;
}
