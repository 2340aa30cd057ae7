// What the connections that append tell the checkpointer thread
// (sqlite-checkpointer-thread.ts): how many records and commits reached the
// write-ahead log, and when to stop; and what the checkpointer tells back: how
// often it looked at the log to decide, and how many checkpoints it ran. One
// shared array, written with Atomics.

const RECORDS = 0;
const COMMITS = 1;
const CLOSING = 2;
const CHECKPOINTS = 3;
const LOOKS = 4;

export type CommitCount = Int32Array;

export function newCommitCount(): CommitCount {
  return new Int32Array(new SharedArrayBuffer(5 * Int32Array.BYTES_PER_ELEMENT));
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

/** Counts one look at the log, and the checkpoint it decided on, if it did. */
export function noteLook(count: CommitCount, checkpointed: boolean): void {
  if (checkpointed) Atomics.add(count, CHECKPOINTS, 1);
  Atomics.add(count, LOOKS, 1);
}

/** Looks at the log the checkpointer took so far, and the checkpoints it ran. */
export function checkpointsRun(count: CommitCount): { looks: number; checkpoints: number } {
  return { looks: Atomics.load(count, LOOKS), checkpoints: Atomics.load(count, CHECKPOINTS) };
}
