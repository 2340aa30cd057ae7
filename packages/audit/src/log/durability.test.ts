// Acknowledged means durable: kill -9 a writer in the middle of heavy
// appending, reopen, and every acknowledged record is there and verifies.
// An append whose fsync fails is never acknowledged, and answered as not
// known to be in the log: a crash can bring it in. And several
// writer processes share one PostgreSQL log without gaps or forks.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestPostgres } from '../../../../scripts/testing/postgres.ts';
import { openAuditLog } from './audit-log.ts';
import { readRecord, verifyStore } from './reader.ts';
import { sampleEvent } from '../../test/fixtures.ts';

const child = join(import.meta.dirname, '..', '..', 'test', 'append-child.ts');
let cluster: TestPostgres;
const dirs: string[] = [];
before(async () => {
  cluster = await startPostgres();
});
after(() => {
  cluster?.stop();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'corral-audit-durable-'));
  dirs.push(d);
  return d;
}

/** Starts a writer; resolves its acknowledged records once it exits (or is killed). */
function writer(config: object, killAfterAcks?: number): Promise<{ acked: Map<number, string>; signal: NodeJS.Signals | null; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Map<number, string>();
    let rest = '';
    let killed = false;
    p.stdout.on('data', (chunk: Buffer) => {
      const text = rest + chunk.toString();
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const [seq, hash] = line.split(' ');
        acked.set(Number(seq), hash as string);
      }
      if (killAfterAcks !== undefined && !killed && acked.size >= killAfterAcks) {
        killed = true;
        p.kill('SIGKILL');
      }
    });
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ acked, signal, code }));
  });
}

async function checkAfterCrash(options: { stateDir: string; postgresUrl?: string }, acked: Map<number, string>): Promise<void> {
  const log = await openAuditLog(options);
  try {
    const report = await verifyStore(log.store, log.publicKey);
    assert.equal(report.ok, true, JSON.stringify(report.damage));
    for (const [seq, hash] of acked) assert.equal((await readRecord(log.store, seq)).hash, hash, `acknowledged record ${seq}`);
    const next = await log.append({ actor: { kind: 'node', id: 'node-1' }, action: 'audit.restart', resource: { kind: 'log', id: 'audit' } });
    assert.equal(next.seq, (await log.store.head()).size - 1);
  } finally {
    await log.close();
  }
}

describe('durability', () => {
  describe('when a SQLite writer is killed with SIGKILL mid-append', () => {
    it('keeps every acknowledged record and still verifies after restart', async () => {
      const stateDir = tempDir();
      const { acked, signal } = await writer({ stateDir, count: 1e9, inflight: 64, tag: 'sqlite' }, 3000);
      assert.equal(signal, 'SIGKILL');
      assert.ok(acked.size >= 3000);
      await checkAfterCrash({ stateDir }, acked);
    });
  });
  describe('when a one-shot SQLite writer (appending on its own thread) is killed with SIGKILL mid-append', () => {
    it('keeps every acknowledged record and still verifies after restart', async () => {
      const stateDir = tempDir();
      const { acked, signal } = await writer({ stateDir, oneShot: true, count: 1e9, inflight: 64, tag: 'one-shot' }, 1000);
      assert.equal(signal, 'SIGKILL');
      assert.ok(acked.size >= 1000);
      await checkAfterCrash({ stateDir }, acked);
    });
  });
  describe('when every fsync of a SQLite writer fails (EIO injected under strace, a disk that cannot write back)', () => {
    it('acknowledges no append, answers that whether each is in the log is not known, and once the processes close the log none of them is in it and it verifies', async () => {
      const stateDir = tempDir();
      // A log open here with a record in its write-ahead log, and a reader's
      // snapshot of it, keep that log from starting over: the child's commits
      // add frames behind a header already on disk, so the only fsync each
      // needs is its own commit's (were that made after the commit, the record
      // would be visible before it failed).
      // One-shot: with a writer thread this process would be the log's appender, and the child's appends would be committed here.
      const open = await openAuditLog({ stateDir, oneShot: true });
      await open.append(sampleEvent(0));
      const reader = new DatabaseSync(join(stateDir, 'audit.db'), { readOnly: true });
      const failing = join(import.meta.dirname, '..', '..', 'test', 'fsync-failure-child.ts');
      let run: SpawnSyncReturns<string>;
      try {
        reader.exec('BEGIN');
        reader.prepare('SELECT size FROM audit_head').get();
        run = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=fsync,fdatasync', '-e', 'inject=fsync,fdatasync:error=EIO', process.execPath, failing, stateDir], { encoding: 'utf8', timeout: 60_000 });
      } finally {
        reader.close(); // ends its snapshot
        await open.close();
      }
      assert.equal(run.status, 0, `${run.error ?? ''}${run.stderr}`);
      assert.deepEqual(JSON.parse(run.stdout), { lone: 'AUDIT_COMMIT_UNKNOWN', batch: ['AUDIT_COMMIT_UNKNOWN'], close: 'AUDIT_COMMIT_UNKNOWN' });
      // Visible only once synced: no later writer can chain onto a record the disk may never have held.
      const log = await openAuditLog({ stateDir });
      try {
        assert.equal((await log.store.head()).size, 1);
        assert.equal((await verifyStore(log.store, log.publicKey)).ok, true);
      } finally {
        await log.close();
      }
    });

    it("answers AUDIT_COMMIT_UNKNOWN, not 'nothing written', because when every process using the log is killed the next open finds the last failed commit's record in it (regression: answered AUDIT_STORE_UNAVAILABLE, 'nothing was written')", async () => {
      const stateDir = tempDir();
      const holder = join(import.meta.dirname, '..', '..', 'test', 'fsync-failure-holder.ts');
      const run = spawnSync(process.execPath, [holder, stateDir], { encoding: 'utf8', timeout: 90_000 });
      assert.equal(run.signal, 'SIGKILL', run.stderr);
      assert.deepEqual(JSON.parse(run.stdout), { lone: 'AUDIT_COMMIT_UNKNOWN', batch: ['AUDIT_COMMIT_UNKNOWN'] });
      const log = await openAuditLog({ stateDir });
      try {
        // The lone append's commit wrote its frames over the batch's, and was the last: it is the one found.
        assert.equal((await log.store.head()).size, 2);
        assert.deepEqual((await readRecord(log.store, 1)).event.details, sampleEvent(40).details);
        assert.equal((await verifyStore(log.store, log.publicKey)).ok, true);
      } finally {
        await log.close();
      }
    });
  });
  describe('when a PostgreSQL writer is killed with SIGKILL mid-append', () => {
    it('keeps every acknowledged record and still verifies after restart', async () => {
      const stateDir = tempDir();
      const postgresUrl = cluster.createDatabase('killed');
      const { acked, signal } = await writer({ stateDir, postgresUrl, count: 1e9, inflight: 64, tag: 'pg' }, 1000);
      assert.equal(signal, 'SIGKILL');
      await checkAfterCrash({ stateDir, postgresUrl }, acked);
    });
  });
});

describe('several writer processes on one PostgreSQL log', () => {
  it('get a gapless, linear sequence and chain (4 processes × 200 records)', async () => {
    const stateDir = tempDir();
    const postgresUrl = cluster.createDatabase('shared');
    // Create the log (and its key) once, so the writers share one signing key.
    await (await openAuditLog({ stateDir, postgresUrl })).close();
    const runs = await Promise.all([0, 1, 2, 3].map((w) => writer({ stateDir, postgresUrl, count: 200, inflight: 8, tag: `w${w}` })));
    const all = new Map<number, string>();
    for (const r of runs) {
      assert.equal(r.code, 0);
      assert.equal(r.acked.size, 200);
      for (const [seq, hash] of r.acked) {
        assert.ok(!all.has(seq), `seq ${seq} acknowledged twice`);
        all.set(seq, hash);
      }
    }
    assert.deepEqual([...all.keys()].sort((a, b) => a - b), Array.from({ length: 800 }, (_, i) => i));
    const log = await openAuditLog({ stateDir, postgresUrl });
    try {
      const report = await verifyStore(log.store, log.publicKey);
      assert.equal(report.ok, true, JSON.stringify(report.damage));
      assert.equal(report.verified, 800);
      assert.equal(report.sealed, 800);
    } finally {
      await log.close();
    }
  });
});
