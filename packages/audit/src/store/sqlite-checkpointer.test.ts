import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { EVERY_COMMITS, EVERY_RECORDS, checkpointsRun, lookDue, newCommitCount, noteClosing, noteCommit, type CommitCount } from './sqlite-commit-count.ts';

const PAGE = 16384;

const dir = mkdtempSync(join(tmpdir(), 'corral-checkpointer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A log file as the store makes it (WAL, 16 KiB pages), and a connection that commits a page-sized row at a time. */
function newLog(name: string): { path: string; db: DatabaseSync; commit: () => void } {
  const path = join(dir, name);
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA page_size = ${PAGE}`);
  db.exec('PRAGMA journal_mode = WAL');
  // Durability is not what these tests are about: without a sync per commit they run in a fraction of the time.
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (x BLOB)');
  const insert = db.prepare('INSERT INTO t (x) VALUES (randomblob(3000))');
  return { path, db, commit: () => insert.run() };
}

/** Why each checkpointer thread ended before it was asked to, by its count: a test waiting on it says so instead of waiting out its minute. */
const ended = new WeakMap<CommitCount, string>();

/** Starts the checkpointer thread a process runs beside its writer, counting that process's commits. */
async function startCheckpointer(path: string): Promise<{ count: CommitCount; stop: () => Promise<void> }> {
  const count = newCommitCount();
  const worker = new Worker(new URL('./sqlite-checkpointer-thread.ts', import.meta.url), { workerData: { path, committed: count } });
  await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  let stopping = false;
  worker.on('error', (error) => ended.set(count, `failed: ${error.stack ?? error.message}`));
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  void exited.then((code) => stopping || ended.has(count) || ended.set(count, `exited with code ${String(code)}`));
  return {
    count,
    stop: async () => {
      stopping = true;
      noteClosing(count);
      await exited;
    },
  };
}

/** Waits (generously: the host may be slow) until the checkpointer has looked at the log more than `looks` times. */
async function lookedAfter(count: CommitCount, looks: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (checkpointsRun(count).looks <= looks) {
    const end = ended.get(count);
    if (end !== undefined) assert.fail(`the checkpointer thread ended before it looked at the log: ${end}`);
    if (Date.now() > deadline) assert.fail(`the checkpointer did not look at the log within a minute (${JSON.stringify(checkpointsRun(count))} so far)`);
    await sleep(2);
  }
}

describe('the checkpointer thread', () => {
  describe('when one process commits one small record at a time', () => {
    it('checkpoints every few dozen commits, so the log restarts from its beginning and its file stops growing', async () => {
      const log = newLog('lone.db');
      const checkpointer = await startCheckpointer(log.path);
      try {
        for (let i = 0; i < 30 * EVERY_COMMITS; i++) {
          const looks = checkpointsRun(checkpointer.count).looks;
          log.commit();
          noteCommit(checkpointer.count, 1);
          // A gateway's commits are further apart than a checkpoint takes: let this one finish before the next commit.
          if ((i + 1) % EVERY_COMMITS === 0) await lookedAfter(checkpointer.count, looks);
        }
        assert.ok(checkpointsRun(checkpointer.count).checkpoints >= 29, `${checkpointsRun(checkpointer.count).checkpoints} checkpoints`);
        // Without restarts 960 commits leave ~960 pages (15 MiB) in the log; restarted, it holds one round's.
        const wal = statSync(`${log.path}-wal`).size;
        assert.ok(wal < 4 * EVERY_COMMITS * (PAGE + 24), `the log grew to ${wal} bytes`);
      } finally {
        await checkpointer.stop();
        log.db.close();
      }
    });
  });

  describe('when commits are fewer than a look is due for', () => {
    it('wakes for none of them, and looks at the log once it has been idle', async () => {
      const log = newLog('idle.db');
      const checkpointer = await startCheckpointer(log.path);
      try {
        for (let i = 0; i < 3; i++) {
          log.commit();
          noteCommit(checkpointer.count, 1);
        }
        await lookedAfter(checkpointer.count, 0);
        assert.deepEqual(checkpointsRun(checkpointer.count), { looks: 1, checkpoints: 1, wakes: 0 });
        // A look is due at EVERY_COMMITS commits since the last one: the commits before that wake nothing either.
        for (let i = 1; i < EVERY_COMMITS; i++) {
          log.commit();
          noteCommit(checkpointer.count, 1);
        }
        assert.equal(checkpointsRun(checkpointer.count).wakes, 0);
        log.commit();
        noteCommit(checkpointer.count, 1);
        await lookedAfter(checkpointer.count, 1);
        assert.equal(checkpointsRun(checkpointer.count).checkpoints, 2);
      } finally {
        await checkpointer.stop();
        log.db.close();
      }
    });
  });

  describe('a look is due', () => {
    it('at EVERY_RECORDS records or EVERY_COMMITS commits since the last, right across the wrap of a 32-bit count', () => {
      fc.assert(
        fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.nat(10_000), fc.nat(100), (records, commits, moreRecords, moreCommits) => {
          const seen = { records: (records + moreRecords) | 0, commits: (commits + moreCommits) | 0 };
          assert.equal(lookDue(seen, { records, commits }), moreRecords >= EVERY_RECORDS || moreCommits >= EVERY_COMMITS);
        }),
      );
    });
  });

  describe('when several processes commit to one log', () => {
    it('runs about the checkpoints one process would for those commits, not one set per process', async () => {
      const log = newLog('shared.db');
      const processes = await Promise.all(Array.from({ length: 4 }, () => startCheckpointer(log.path)));
      const rounds = 4;
      try {
        for (let round = 0; round < rounds; round++) {
          for (const p of processes) {
            const looks = checkpointsRun(p.count).looks;
            for (let i = 0; i < EVERY_COMMITS; i++) {
              log.commit();
              noteCommit(p.count, 1);
            }
            await lookedAfter(p.count, looks);
          }
        }
        const checkpoints = processes.reduce((n, p) => n + checkpointsRun(p.count).checkpoints, 0);
        // One process making all these commits would checkpoint once a round; one each is four a round.
        assert.ok(checkpoints >= rounds, `${checkpoints} checkpoints`);
        assert.ok(checkpoints <= 2 * rounds, `${checkpoints} checkpoints for ${rounds} rounds of ${processes.length} processes`);
      } finally {
        await Promise.all(processes.map((p) => p.stop()));
        log.db.close();
      }
    });
  });
});
