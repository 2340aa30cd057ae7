// What the connections that append tell the checkpointer thread
// (sqlite-checkpointer-thread.ts): how many records and commits reached the
// write-ahead log, and when to stop; and what the checkpointer tells back: up
// to which commits it has looked at the log, how often it looked to decide,
// how many checkpoints it ran, and how often it was woken. One shared array,
// written with Atomics.

const RECORDS = 0;
const COMMITS = 1;
const CLOSING = 2;
const CHECKPOINTS = 3;
const LOOKS = 4;
const LOOKED_RECORDS = 5;
const LOOKED_COMMITS = 6;
const WAKES = 7;

/**
 * The checkpointer looks at the log once this many records were committed
 * since its last look… A checkpoint ends with an fsync of the database file,
 * and a commit's fsync made meanwhile waits for the disk to take everything
 * written before it: the checkpoint's pages as well as its own. So the pages
 * copied at once bound how long a commit beside a checkpoint takes. At
 * 50,000 appends/s, checkpoints of ~1,600 records (~1.2 MB, when this was
 * 2,048 and the 32 commits below came first) made commits beside them take
 * 5–20 ms and the acknowledgement p99 4.8–26 ms; of 512 records, 2.2–3.7 ms,
 * with appends per second unchanged (docs/measured.md, 2026-11-29).
 */
export const EVERY_RECORDS = 512;
/**
 * …or this many commits. Once a checkpoint has copied the whole log, the next
 * commit starts the log over from its beginning and overwrites pages the file
 * already has; a commit that makes the file longer also waits for the file
 * system to journal its new size, which doubles its fsync (0.7 against
 * 1.4 ms at p50 on this project's test machines). Small commits — a gateway
 * recording one decision at a time — write a few whole pages each, so
 * counting records alone would leave the log growing for thousands of them.
 */
export const EVERY_COMMITS = 32;

export type CommitCount = Int32Array;

export function newCommitCount(): CommitCount {
  return new Int32Array(new SharedArrayBuffer(8 * Int32Array.BYTES_PER_ELEMENT));
}

/** `now - then` of two counts, right across the 32-bit wrap of a count kept for a long time. */
function since(now: number, then: number): number {
  return (now - then) | 0;
}

/** Whether `seen` holds enough commits beyond `looked` for a look at the log (EVERY_RECORDS or EVERY_COMMITS). */
export function lookDue(seen: { records: number; commits: number }, looked: { records: number; commits: number }): boolean {
  return since(seen.records, looked.records) >= EVERY_RECORDS || since(seen.commits, looked.commits) >= EVERY_COMMITS;
}

/**
 * Counts one commit of `records` records. Wakes the checkpointer only once a
 * look is due: a commit below both thresholds wakes no thread (a lone
 * commit's waking one took the CPU from the work the commit was made for — a
 * governed run's — on a 2-core host: the audit log's two records of one run
 * cost 0.15–0.25 ms more); the checkpointer finds such commits itself once
 * the log has been idle a while.
 */
export function noteCommit(count: CommitCount, records: number): void {
  const seen = { records: (Atomics.add(count, RECORDS, records) + records) | 0, commits: (Atomics.add(count, COMMITS, 1) + 1) | 0 };
  if (lookDue(seen, { records: Atomics.load(count, LOOKED_RECORDS), commits: Atomics.load(count, LOOKED_COMMITS) })) Atomics.notify(count, RECORDS);
}

/** Asks the checkpointer to finish. */
export function noteClosing(count: CommitCount): void {
  Atomics.store(count, CLOSING, 1);
  Atomics.notify(count, RECORDS);
}

export function isClosing(count: CommitCount): boolean {
  return Atomics.load(count, CLOSING) === 1;
}

/** Records and commits so far. */
export function committed(count: CommitCount): { records: number; commits: number } {
  return { records: Atomics.load(count, RECORDS), commits: Atomics.load(count, COMMITS) };
}

/** The checkpointer's: the commits up to `seen` are looked at (noteCommit wakes it again once enough more are made). */
export function noteLooked(count: CommitCount, seen: { records: number; commits: number }): void {
  Atomics.store(count, LOOKED_RECORDS, seen.records);
  Atomics.store(count, LOOKED_COMMITS, seen.commits);
}

/**
 * Sleeps until a commit makes a look due (or the checkpointer is asked to
 * finish), or `ms` pass; true when woken, or when a commit was noted after
 * `records` were before this was called.
 */
export function waitForCommit(count: CommitCount, records: number, ms: number): boolean {
  const woken = Atomics.wait(count, RECORDS, records, ms);
  if (woken === 'ok') Atomics.add(count, WAKES, 1);
  return woken !== 'timed-out';
}

/** Counts one look at the log, and the checkpoint it decided on, if it did. */
export function noteLook(count: CommitCount, checkpointed: boolean): void {
  if (checkpointed) Atomics.add(count, CHECKPOINTS, 1);
  Atomics.add(count, LOOKS, 1);
}

/** Looks at the log the checkpointer took so far, the checkpoints it ran, and how often it was woken (by a look due, or to finish). */
export function checkpointsRun(count: CommitCount): { looks: number; checkpoints: number; wakes: number } {
  return { looks: Atomics.load(count, LOOKS), checkpoints: Atomics.load(count, CHECKPOINTS), wakes: Atomics.load(count, WAKES) };
}
