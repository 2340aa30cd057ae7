// What the connections that append tell the checkpointer thread
// (sqlite-checkpointer-thread.ts): how many records and commits reached the
// write-ahead log, and when to stop. One shared array, written with Atomics.

const RECORDS = 0;
const COMMITS = 1;
const CLOSING = 2;

export type CommitCount = Int32Array;

export function newCommitCount(): CommitCount {
  return new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
}

/** Counts one commit of `records` records and wakes the checkpointer. */
export function noteCommit(count: CommitCount, records: number): void {
  Atomics.add(count, RECORDS, records);
  Atomics.add(count, COMMITS, 1);
  Atomics.notify(count, RECORDS);
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

/**
 * Sleeps until a commit is noted after `records` were, or `ms` pass;
 * true when one was (or had been already).
 */
export function waitForCommit(count: CommitCount, records: number, ms: number): boolean {
  return Atomics.wait(count, RECORDS, records, ms) !== 'timed-out';
}
