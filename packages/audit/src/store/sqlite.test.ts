import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { after, afterEach, describe, it } from 'node:test';
import { openAuditLog, type AuditLog, type OpenAuditLogOptions } from '../log/audit-log.ts';
import { verifyStore } from '../log/reader.ts';
import { checkedEvent } from '../record/event.ts';
import { sampleEvent } from '../../test/fixtures.ts';
import { storeSuite } from '../../test/store.suite.ts';
import { SqliteStore } from './sqlite.ts';
import type { AuditError } from '../errors.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A new state directory, removed after the file's tests. */
function freshDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `corral-audit-sqlite-${name}-`));
  dirs.push(dir);
  return dir;
}

/** Logs the tests open, closed after each test whether it passed or not (an open log's threads keep the test file running). */
const opened: AuditLog[] = [];
afterEach(async () => void (await Promise.allSettled(opened.splice(0).map((log) => log.close()))));
async function openLog(options: OpenAuditLogOptions): Promise<AuditLog> {
  const log = await openAuditLog(options);
  opened.push(log);
  return log;
}

function sqliteHarness(name: string, extra: { oneShot?: boolean }) {
  return {
    name,
    async fresh() {
      const stateDir = freshDir('log');
      const dbPath = join(stateDir, 'audit.db');
      return {
        options: { stateDir, ...extra },
        async sql(statement: string) {
          const db = new DatabaseSync(dbPath);
          try {
            db.exec(statement);
          } finally {
            db.close();
          }
        },
        blob: (hex: string) => `X'${hex}'`,
        async plantForeign() {
          writeFileSync(dbPath, 'this is not a database, it is a shopping list\n'.repeat(200));
        },
      };
    },
  };
}

/**
 * Appends one event while another connection holds the write lock for 100 ms:
 * the append is acknowledged only after the lock is let go, and a 1 ms timer
 * keeps running meanwhile (the wait never blocks the event loop).
 */
async function appendsWhileLockedElsewhere(options: { oneShot?: boolean }): Promise<void> {
  const stateDir = freshDir('locked');
  const log = await openLog({ stateDir, ...options });
  const other = new DatabaseSync(join(stateDir, 'audit.db'));
  other.exec('BEGIN IMMEDIATE');
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  let releasedAt = 0;
  setTimeout(() => {
    releasedAt = performance.now();
    other.exec('COMMIT');
  }, 100);
  const record = await log.append(sampleEvent(0));
  const ackedAt = performance.now();
  clearInterval(timer);
  other.close();
  assert.equal(record.seq, 0);
  assert.ok(releasedAt > 0 && ackedAt >= releasedAt, 'acknowledged only after the other connection let go of the lock');
  assert.ok(ticks >= 10, `a 1 ms timer ran ${ticks} times while the append waited 100 ms`);
  await log.close();
}

storeSuite(sqliteHarness('SQLite', {}));
storeSuite(sqliteHarness('SQLite (one-shot writer)', { oneShot: true }));

describe('a one-shot SQLite writer', () => {
  it('opens, appends and closes without starting a thread', async () => {
    const stateDir = freshDir('one-shot');
    const threads = () => readdirSync('/proc/self/task').length; // this process's OS threads
    const before = threads();
    const log = await openLog({ stateDir, oneShot: true });
    const record = await log.append(sampleEvent(0));
    assert.equal(threads(), before);
    await log.close();
    const reader = await openLog({ stateDir });
    assert.equal((await reader.store.checkpoints()).at(-1)?.size, 1, 'close sealed a checkpoint of the one record');
    assert.equal((await verifyStore(reader.store, reader.publicKey)).verified, 1);
    assert.equal((await reader.store.record(0))?.hash, record.hash);
  });
  it('keeps timers running while appends are acknowledged back to back (commits chained by microtasks starved them)', async () => {
    const stateDir = freshDir('one-shot-busy');
    const log = await openLog({ stateDir, oneShot: true });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const end = Date.now() + 300;
    await Promise.all(Array.from({ length: 16 }, async (_, lane) => {
      while (Date.now() < end) await log.append(sampleEvent(lane));
    }));
    clearInterval(timer);
    await log.close();
    assert.ok(ticks >= 5, `a 1 ms timer ran ${ticks} times in 300 ms of appending`);
  });
  it('waits for the write lock another connection holds, with timers, then appends', async () => {
    await appendsWhileLockedElsewhere({ oneShot: true });
  });
  it('writes the same records, hashes and final root as the writer thread, however the appends are grouped', async () => {
    /** Appends `groups[k]` events at once for each k, closes, and reads back every record and the last checkpoint. */
    async function written(groups: number[], oneShot: boolean) {
      const stateDir = freshDir('same');
      const log = await openLog({ stateDir, oneShot, checkpointEvery: 16 });
      let i = 0;
      for (const n of groups) await Promise.all(Array.from({ length: n }, () => log.append(sampleEvent(i++))));
      await log.close();
      const store = new SqliteStore({ path: join(stateDir, 'audit.db'), create: false });
      try {
        const records = [];
        for await (const rows of store.scan(0, i)) records.push(...rows.map((r) => [r.seq, r.prev, r.hash, r.body, r.nodes.join()]));
        return { records, last: (await store.checkpoints()).at(-1)?.root };
      } finally {
        await store.close();
      }
    }
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 }), async (groups) => {
        const [threaded, oneShot] = [await written(groups, false), await written(groups, true)];
        assert.equal(oneShot.records.length, groups.reduce((a, b) => a + b, 0));
        assert.deepEqual(oneShot, threaded);
      }),
      { numRuns: 6 },
    );
  });
  it('interleaves with a writer thread on the same file without a gap or a fork', async () => {
    const stateDir = freshDir('mixed');
    const threaded = await openLog({ stateDir });
    const oneShot = await openLog({ stateDir, oneShot: true });
    const records = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? threaded : oneShot).append(sampleEvent(i))));
    assert.deepEqual(records.map((r) => r.seq).sort((p, q) => p - q), Array.from({ length: 200 }, (_, i) => i));
    await oneShot.close();
    const report = await verifyStore(threaded.store, threaded.publicKey);
    assert.equal(report.ok, true, JSON.stringify(report.damage));
    assert.equal(report.verified, 200);
    await threaded.close();
  });
});

describe('a SQLite log with its writer thread', () => {
  const request = (from: number, n: number) => {
    const events = Array.from({ length: n }, (_, i) => checkedEvent(sampleEvent(from + i)));
    return { bodies: events.map((e) => e.body), timesMs: events.map((e) => Date.parse(e.event.time)), seal: 'due' as const };
  };
  const count = (dbPath: string) => {
    const db = new DatabaseSync(dbPath, { readOnly: true });
    try {
      return Number((db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n);
    } finally {
      db.close();
    }
  };

  it('commits a lone append on the calling thread: it is in the file before append() returns', async () => {
    const stateDir = freshDir('lone');
    const log = await openLog({ stateDir });
    const appended = log.store.append(request(0, 1));
    assert.equal(count(join(stateDir, 'audit.db')), 1);
    assert.equal((await appended).firstSeq, 0);
    await log.close();
  });
  /** Whether `appended` settles within a few microtasks: only a commit made on this thread can (the thread answers with a message, a later event). */
  const settledAtOnce = async (appended: Promise<unknown>) => {
    let settled = false;
    void appended.then(() => (settled = true));
    for (let i = 0; i < 3; i++) await null;
    const atOnce = settled;
    await appended;
    return atOnce;
  };
  it('leaves a request of more than 16 records to the thread, and commits one of 16 here', async () => {
    const stateDir = freshDir('lone-size');
    const log = await openLog({ stateDir });
    assert.equal(await settledAtOnce(log.store.append(request(0, 17))), false);
    await new Promise((r) => setTimeout(r, 50)); // past the share the first commit here would have spent
    assert.equal(await settledAtOnce(log.store.append(request(17, 16))), true);
  });
  it('commits a burst of lone appends here (a governed run\'s two records), then sends them to the thread: commits here take at most a fifth of the time', async () => {
    const stateDir = freshDir('lone-share');
    const log = await openLog({ stateDir });
    const here: boolean[] = [];
    const tookMs: number[] = [];
    // Back to back, each commit here spends more of the budget than the time it takes gives back.
    for (let seq = 0; seq < 2000 && !here.includes(false); seq++) {
      const started = performance.now();
      const appended = log.store.append(request(seq, 1)); // a commit here is made inside this call
      tookMs.push(performance.now() - started);
      here.push(await settledAtOnce(appended));
    }
    assert.equal(here[0], true);
    // The second fits in the burst unless the first alone spent it (an fsync slower than 4 ms, on a loaded host).
    if (tookMs[0]! < 3) assert.equal(here[1], true, `the first commit took ${tookMs[0]!.toFixed(2)} ms, and the second went to the thread`);
    assert.equal(here.at(-1), false, `all of ${here.length} back-to-back appends were committed here`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await settledAtOnce(log.store.append(request(here.length, 1))), true, 'after a pause, here again');
    await log.close();
  });
  it('keeps appends in the order they were made when a lone one follows a batch the thread is still writing', async () => {
    const stateDir = freshDir('order');
    const log = await openLog({ stateDir });
    const batch = log.store.append(request(0, 500));
    const lone = log.store.append(request(500, 1));
    assert.deepEqual([(await batch).firstSeq, (await lone).firstSeq], [0, 500]);
    const report = await verifyStore(log.store, log.publicKey);
    assert.equal(report.ok, true, JSON.stringify(report.damage));
    await log.close();
  });
  it('leaves a lone append to the thread while another connection holds the write lock: the event loop runs meanwhile', async () => {
    await appendsWhileLockedElsewhere({});
  });
  it('keeps its write-ahead log from growing while records come one commit at a time: a checkpoint every 32 commits lets it start over', async () => {
    const stateDir = freshDir('wal');
    const log = await openLog({ stateDir });
    // Each lone commit adds some 34 KiB of whole pages: 200 of them, never
    // checkpointed, leave a log of about 7 MB; started over every 32, about
    // 1.1 MB (a checkpoint a commit overtakes lets it grow one round more).
    for (let i = 0; i < 200; i++) {
      await log.append(sampleEvent(i));
      await new Promise((r) => setTimeout(r, 5));
    }
    const wal = statSync(join(stateDir, 'audit.db-wal')).size;
    assert.ok(wal < 4 * 1024 * 1024, `the write-ahead log holds ${wal} bytes`);
  });
});

describe('two writers on one SQLite file', () => {
  it('interleave without a gap or a fork: a batch built on a stale head is rebuilt', async () => {
    const stateDir = freshDir('two');
    const a = await openLog({ stateDir });
    const b = await openLog({ stateDir });
    const seqs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const [x, y] = await Promise.all([a.append(sampleEvent(2 * i)), b.append(sampleEvent(2 * i + 1))]);
      seqs.push(x.seq, y.seq);
    }
    assert.deepEqual(seqs.sort((p, q) => p - q), Array.from({ length: 40 }, (_, i) => i));
    await a.close();
    const report = await verifyStore(b.store, b.publicKey);
    assert.equal(report.ok, true, JSON.stringify(report.damage));
    assert.equal(report.verified, 40);
    await b.close();
  });

  it("opens a new log while another connection holds the write lock on the new file (turning it to WAL was refused at once, 'database is locked', without SQLite's busy wait)", async () => {
    const stateDir = freshDir('wal-turn');
    const other = new DatabaseSync(join(stateDir, 'audit.db'));
    other.exec('BEGIN IMMEDIATE');
    const release = setTimeout(() => other.exec('COMMIT'), 150);
    try {
      const log = await openLog({ stateDir });
      assert.equal((await log.append(sampleEvent(0))).seq, 0);
    } finally {
      clearTimeout(release);
      if (other.isTransaction) other.exec('COMMIT');
      other.close();
    }
  });

  it("refuses to open a log whose write lock another connection keeps past the wait, naming the file and what to do (it said only 'database is locked')", async () => {
    const stateDir = freshDir('wal-held');
    const where = join(stateDir, 'audit.db');
    const other = new DatabaseSync(where);
    other.exec('BEGIN IMMEDIATE');
    try {
      await assert.rejects(openLog({ stateDir }), (error: AuditError) => {
        assert.equal(error.code, 'AUDIT_STORE_UNAVAILABLE');
        assert.ok(error.message.startsWith(`audit log ${where} is locked: another connection has held its write lock`), error.message);
        assert.ok(error.message.includes(`fuser ${where}`), error.message);
        return true;
      });
    } finally {
      other.exec('COMMIT');
      other.close();
    }
  });

  it("open a new log at the same instant from eight processes, each then appending (one could fail 'database is locked' while another turned the new file to WAL, or find the signing key half-written)", async () => {
    const script = `const { openAuditLog } = await import(${JSON.stringify(join(import.meta.dirname, '..', 'log', 'audit-log.ts'))});
      const log = await openAuditLog({ stateDir: process.argv[2] });
      await log.append({ actor: { kind: 'node', id: 'n' }, action: 'open.race', resource: { kind: 'log', id: 'audit' } });
      await log.close();`;
    const file = join(freshDir('race-script'), 'open.mjs');
    writeFileSync(file, script);
    for (let round = 0; round < 2; round++) {
      const stateDir = freshDir('race');
      const runs = await Promise.all(
        Array.from({ length: 8 }, () => new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const p = spawn(process.execPath, [file, stateDir], { stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          p.on('close', (code) => resolve({ code, stderr }));
        })),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const log = await openLog({ stateDir });
      assert.equal((await log.store.head()).size, 8);
    }
  });
});

describe("when the SQLite file's schema is not the log's", () => {
  async function logOf(name: string): Promise<string> {
    const stateDir = freshDir(name);
    const log = await openLog({ stateDir });
    for (let i = 0; i < 20; i++) await log.append(sampleEvent(i));
    await log.close();
    return stateDir;
  }
  const rewrite = (stateDir: string, statement: string) => {
    const db = new DatabaseSync(join(stateDir, 'audit.db'));
    db.exec(statement);
    db.close();
  };

  it('refuses audit_records rebuilt without its primary key, holding a second row of one seq, to readers and writers alike with AUDIT_STORE_FOREIGN (verify read one row and show the other)', async () => {
    const stateDir = await logOf('schema');
    rewrite(
      stateDir,
      `CREATE TABLE copy AS SELECT * FROM audit_records; DROP TABLE audit_records;
       CREATE TABLE audit_records (seq INTEGER, time_ms INTEGER NOT NULL, prev BLOB NOT NULL, hash BLOB NOT NULL, nodes BLOB NOT NULL, body TEXT NOT NULL);
       INSERT INTO audit_records SELECT * FROM copy; INSERT INTO audit_records SELECT * FROM copy WHERE seq = 19; DROP TABLE copy;`,
    );
    const store = new SqliteStore({ path: join(stateDir, 'audit.db'), create: false });
    opened.push({ close: () => store.close() } as AuditLog);
    await assert.rejects(store.readMeta(), { code: 'AUDIT_STORE_FOREIGN' });
    await assert.rejects(openAuditLog({ stateDir }), { code: 'AUDIT_STORE_FOREIGN' });
  });

  it('refuses a trigger or a view added beside the tables', async () => {
    for (const added of ['CREATE VIEW v AS SELECT 1', 'CREATE TRIGGER t AFTER INSERT ON audit_records BEGIN SELECT 1; END', 'CREATE INDEX i ON audit_records (body)']) {
      const stateDir = await logOf('extra');
      rewrite(stateDir, added);
      const store = new SqliteStore({ path: join(stateDir, 'audit.db'), create: false });
      opened.push({ close: () => store.close() } as AuditLog);
      await assert.rejects(store.readMeta(), { code: 'AUDIT_STORE_FOREIGN' }, added);
    }
  });
});

describe('reading a SQLite log', () => {
  it("changes nothing on disk: a copy's write-ahead log stays beside it, unmerged, after verify (closing a reader folded it into the file and deleted it)", async () => {
    const stateDir = freshDir('copy');
    const log = await openLog({ stateDir });
    for (let i = 0; i < 50; i++) await log.append(sampleEvent(i));
    // A copy taken while the writer runs, as an auditor takes one: the last commits are in the write-ahead log.
    const copy = freshDir('copied');
    for (const f of readdirSync(stateDir).filter((n) => n.startsWith('audit.db'))) writeFileSync(join(copy, f), readFileSync(join(stateDir, f)));
    const { publicKey } = log;
    await log.close();
    const before = Object.fromEntries(readdirSync(copy).map((f) => [f, readFileSync(join(copy, f)).toString('base64')]));
    assert.ok(statSync(join(copy, 'audit.db-wal')).size > 0);
    const store = new SqliteStore({ path: join(copy, 'audit.db'), create: false });
    const report = await verifyStore(store, publicKey);
    await store.close();
    assert.equal(report.ok, true, JSON.stringify(report.damage));
    assert.equal(report.verified, 50);
    for (const f of ['audit.db', 'audit.db-wal']) assert.equal(readFileSync(join(copy, f)).toString('base64'), before[f], `${f} is unchanged`);
  });
});

describe('when pages of the SQLite file are overwritten', () => {
  it('verify reports the records it cannot read as malformed instead of crashing', async () => {
    const stateDir = freshDir('corrupt');
    const log = await openLog({ stateDir });
    await Promise.all(Array.from({ length: 3000 }, (_, i) => log.append(sampleEvent(i))));
    const { publicKey } = log;
    await log.close();
    const fd = openSync(join(stateDir, 'audit.db'), 'r+');
    writeSync(fd, Buffer.alloc(16_384, 0x5a), 0, 16_384, 400_000);
    closeSync(fd);
    const store = new SqliteStore({ path: join(stateDir, 'audit.db'), create: false });
    try {
      const report = await verifyStore(store, publicKey);
      assert.equal(report.ok, false);
      assert.equal(report.damage[0]?.kind, 'malformed', JSON.stringify(report.damage));
      assert.ok((report.firstBadSeq ?? -1) > 0, 'the records before the broken page still verify');
    } finally {
      await store.close();
    }
  });
});

describe('when a column of the SQLite file holds a value of another type (SQLite does not enforce column types)', () => {
  /** A closed log of 25 records (checkpoints at 10, 20, 25) with `statement` run on its file, and a reader's store on it. */
  async function tampered(statement: string) {
    const stateDir = freshDir('types');
    const log = await openLog({ stateDir, checkpointEvery: 10 });
    for (let i = 0; i < 25; i++) await log.append(sampleEvent(i));
    const { publicKey } = log;
    await log.close();
    const db = new DatabaseSync(join(stateDir, 'audit.db'));
    db.exec(statement);
    db.close();
    const store = new SqliteStore({ path: join(stateDir, 'audit.db'), create: false });
    opened.push({ close: () => store.close() } as AuditLog);
    return { store, publicKey };
  }

  it('verify reports a text hash at seq 7 as malformed there (it used to abort with ERR_INVALID_ARG_TYPE)', async () => {
    const { store, publicKey } = await tampered('UPDATE audit_records SET hash = lower(hex(hash)) WHERE seq = 7');
    await assert.rejects(store.record(7), { code: 'AUDIT_RECORD_MALFORMED', seq: 7, message: /audit_records row seq 7: column hash is text/ });
    const report = await verifyStore(store, publicKey);
    assert.deepEqual(report.damage.map((d) => [d.kind, d.seq]), [['malformed', 7]]);
  });
  it('verify reports it the same on two threads', async () => {
    const { store, publicKey } = await tampered("UPDATE audit_records SET body = X'7b7d' WHERE seq = 17");
    const report = await verifyStore(store, publicKey, null, { parallelFrom: 1 });
    assert.deepEqual(report.damage.map((d) => [d.kind, d.seq]), [['malformed', 17]]);
  });
  it('refuses a record whose time_ms is past 2^53 - 1, naming the column', async () => {
    const { store } = await tampered('UPDATE audit_records SET time_ms = 9007199254740993 WHERE seq = 3');
    await assert.rejects(store.record(3), { code: 'AUDIT_RECORD_MALFORMED', seq: 3, message: /column time_ms/ });
  });
  for (const [what, value] of [['past 2^53 - 1', '9007199254740993'], ['text', "'soon'"], ['a fraction', '1.5']]) {
    // node:sqlite refuses to read an integer past 2^53 - 1 as a number: verify must not abort on it.
    it(`verify reports a time_ms of ${what} at seq 3 as malformed there, naming the column, on one thread and on two`, async () => {
      const { store, publicKey } = await tampered(`UPDATE audit_records SET time_ms = ${value} WHERE seq = 3`);
      for (const parallelFrom of [Number.POSITIVE_INFINITY, 1]) {
        const report = await verifyStore(store, publicKey, null, { parallelFrom });
        assert.deepEqual(report.damage.map((d) => [d.kind, d.seq]), [['malformed', 3]]);
        assert.match(report.damage[0]!.message, /column time_ms/);
      }
    });
  }
  it('verify on two threads names seq 17, whose time_ms was edited, as misindexed, as one thread does', async () => {
    const { store, publicKey } = await tampered('UPDATE audit_records SET time_ms = 0 WHERE seq = 17');
    const report = await verifyStore(store, publicKey, null, { parallelFrom: 1 });
    assert.deepEqual(report.damage.map((d) => [d.kind, d.seq]), [['misindexed', 17]]);
    assert.equal(report.verified, 25);
  });
  it("verify reports root = 'zzz' in the checkpoint at size 10 as checkpoint-forged at size 10", async () => {
    const { store, publicKey } = await tampered("UPDATE audit_checkpoints SET root = 'zzz' WHERE size = 10");
    await assert.rejects(store.checkpointFor(10, true), { code: 'AUDIT_CHECKPOINT_MALFORMED', checkpointSize: 10, message: /audit_checkpoints row size 10: column root is text/ });
    const report = await verifyStore(store, publicKey);
    assert.deepEqual(report.damage.map((d) => [d.kind, d.checkpointSize]), [['checkpoint-forged', 10]]);
  });
  it('refuses a head of size 9007199254740993 with AUDIT_STORE_FOREIGN naming audit_head.size', async () => {
    const { store, publicKey } = await tampered('UPDATE audit_head SET size = 9007199254740993');
    await assert.rejects(verifyStore(store, publicKey), { code: 'AUDIT_STORE_FOREIGN', message: /audit_head row is corrupt: column size/ });
  });
  it('refuses a text last_hash in the head with AUDIT_STORE_FOREIGN naming audit_head.last_hash', async () => {
    const { store } = await tampered("UPDATE audit_head SET last_hash = 'abc'");
    await assert.rejects(store.tip(), { code: 'AUDIT_STORE_FOREIGN', message: /column last_hash is text/ });
  });
  it('verify names a row at seq 2^63 - 1, past any number JavaScript holds exactly, as inserted', async () => {
    const { store, publicKey } = await tampered('INSERT INTO audit_records SELECT 9223372036854775807, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 3');
    const report = await verifyStore(store, publicKey);
    assert.deepEqual(report.damage.map((d) => d.kind), ['inserted']);
    assert.ok((report.firstBadSeq as number) > Number.MAX_SAFE_INTEGER);
  });
});
