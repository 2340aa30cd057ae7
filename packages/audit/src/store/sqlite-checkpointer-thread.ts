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
import { committed, isClosing, lookDue, noteLook, noteLooked, waitForCommit, type CommitCount } from './sqlite-commit-count.ts';

/**
 * Fewer commits than a look is due for (EVERY_RECORDS, EVERY_COMMITS) wake no
 * one: the log is looked at once none came for this long, 250–500 ms after
 * the last one.
 */
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
noteLooked(count, done);
/** The database file as this thread last saw it: after its own checkpoint, or when it left one to another process. */
let seenWrite = lastWrite();
/** True when this thread left commits it counted to another process's checkpoint, and looks again once the log is idle. */
let owed = false;
// Ready only once the count it starts from is read: a commit made before then would be taken as done, and the
// commits of a gateway that then waits for a look (or a test) would never reach the next one.
parentPort?.postMessage('ready');
while (!isClosing(count)) {
  const seen = committed(count);
  if (!lookDue(seen, done)) {
    // Woken: a look is due now, or a commit came as this began to wait.
    if (waitForCommit(count, seen.records, IDLE_MS)) continue;
    const now = committed(count);
    // Commits came meanwhile, too few to wake this thread: the writer has not paused yet.
    if (now.records !== seen.records || now.commits !== seen.commits) continue;
    if (seen.records === done.records && seen.commits === done.commits) {
      if (owed) look();
      continue;
    }
  }
  done = seen;
  noteLooked(count, done);
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
