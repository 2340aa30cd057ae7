// The PostgreSQL store under the faults an operator meets, against a real
// throwaway cluster: the server restarts or an admin cuts the writer's
// connection mid-appending; the server cannot be reached when the log opens,
// or goes silent; the connection drops after COMMIT was sent and before its
// answer. Appends fail coded and promptly, nothing acknowledged is lost,
// nothing half-written stays, and the same log appends again afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPostgres, type TestPostgres } from '../../../../scripts/testing/postgres.ts';
import { sampleEvent } from '../../test/fixtures.ts';
import { startTcpProxy, type TcpProxy } from '../../test/tcp-proxy.ts';
import { openAuditLog, type AuditLog } from '../log/audit-log.ts';
import { readRecord, verifyStore } from '../log/reader.ts';
import type { PostgresStore } from './postgres.ts';

let cluster: TestPostgres;
let n = 0;
const dirs: string[] = [];
const proxies: TcpProxy[] = [];
before(async () => {
  cluster = await startPostgres();
});
after(async () => {
  for (const p of proxies) await p.close();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  cluster?.stop();
});

function fresh(): { stateDir: string; postgresUrl: string; database: string } {
  const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-pg-faults-'));
  dirs.push(stateDir);
  const database = `faults_${process.pid}_${++n}`;
  return { stateDir, postgresUrl: cluster.createDatabase(database), database };
}

async function proxyTo(): Promise<TcpProxy> {
  const p = await startTcpProxy(cluster.port);
  proxies.push(p);
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The log verifies, holds exactly `acked` records beyond `base`, and each acknowledged record is the one acknowledged. */
async function assertHoldsExactly(log: AuditLog, acked: Map<number, string>, size: number): Promise<void> {
  const report = await verifyStore(log.store, log.publicKey);
  assert.equal(report.ok, true, JSON.stringify(report.damage));
  assert.equal(report.verified, size);
  for (const [seq, hash] of acked) assert.equal((await readRecord(log.store, seq)).hash, hash, `acknowledged record ${seq}`);
}

/**
 * Appends on `lanes` lanes until `stop()` is called, each lane one append
 * at a time; collects what was acknowledged and the codes of what failed.
 */
function steadyAppending(log: AuditLog, lanes: number) {
  const acked = new Map<number, string>();
  const failed: string[] = [];
  let stopping = false;
  let i = 0;
  const lane = async () => {
    while (!stopping) {
      try {
        const r = await log.append(sampleEvent(i++));
        acked.set(r.seq, r.hash);
      } catch (error) {
        failed.push(String((error as { code?: string }).code));
        await sleep(5);
      }
    }
  };
  const running = Promise.all(Array.from({ length: lanes }, lane));
  return {
    acked,
    failed,
    async until(done: () => boolean, ms: number) {
      const deadline = Date.now() + ms;
      while (!done() && Date.now() < deadline) await sleep(10);
    },
    async stop() {
      stopping = true;
      await running;
    },
  };
}

describe('when PostgreSQL fails under a writer', () => {
  for (const fault of ['an admin terminates every connection of the log (pg_terminate_backend)', 'the server restarts'] as const) {
    describe(`when ${fault} in the middle of steady appending`, () => {
      it('fails the appends in flight with AUDIT_STORE_UNAVAILABLE, loses nothing acknowledged, keeps nothing unacknowledged, and the same log appends again', async () => {
        const { stateDir, postgresUrl, database } = fresh();
        const log = await openAuditLog({ stateDir, postgresUrl });
        const admin = new pg.Client({ connectionString: cluster.url });
        await admin.connect();
        try {
          const run = steadyAppending(log, 8);
          await run.until(() => run.acked.size >= 300, 10_000);
          if (fault === 'the server restarts') {
            await admin.end();
            await cluster.restart();
          } else {
            for (let k = 0; k < 3; k++) {
              await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database]);
              await sleep(30);
            }
          }
          const before = run.acked.size;
          await run.until(() => run.acked.size >= before + 300, 10_000);
          await run.stop();
          assert.ok(run.failed.length > 0, 'no append failed: the fault missed the writer');
          assert.deepEqual([...new Set(run.failed)], ['AUDIT_STORE_UNAVAILABLE']);
          assert.ok(run.acked.size >= before + 300, `the log appended only ${run.acked.size - before} records after the fault`);
          // What failed is not in the log: it holds exactly what was acknowledged.
          await assertHoldsExactly(log, run.acked, run.acked.size);
        } finally {
          await admin.end().catch(() => {});
          await log.close();
        }
      });
    });
  }

  describe('when the connection drops after COMMIT reached the server and before its answer', () => {
    it('acknowledges the batch it committed (a large batch, COPY under the lock), and the next append chains on it', async () => {
      const { stateDir, postgresUrl } = fresh();
      const proxy = await proxyTo();
      const log = await openAuditLog({ stateDir, postgresUrl: proxy.url(postgresUrl) });
      try {
        await log.append(sampleEvent(0));
        const cut = proxy.cutAt('COMMIT', 'after');
        const batch = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(sampleEvent(1 + i))));
        await cut;
        assert.deepEqual(
          batch.map((r) => r.seq),
          Array.from({ length: 200 }, (_, i) => 1 + i),
        );
        assert.equal((await log.append(sampleEvent(201))).seq, 201);
        await assertHoldsExactly(log, new Map(batch.map((r) => [r.seq, r.hash])), 202);
      } finally {
        await log.close();
      }
    });

    it('acknowledges the append it committed (a lone writer, one guarded statement), and the next append chains on it', async () => {
      const { stateDir, postgresUrl } = fresh();
      const proxy = await proxyTo();
      const log = await openAuditLog({ stateDir, postgresUrl: proxy.url(postgresUrl) });
      try {
        for (let i = 0; i < 3; i++) await log.append(sampleEvent(i));
        const guarded = (log.store as PostgresStore).commits.guarded;
        assert.ok(guarded > 0);
        // The guarded statement is prepared once per connection; each run binds it by name.
        const cut = proxy.cutAt('corral-append-guarded', 'after');
        const r = await log.append(sampleEvent(3));
        await cut;
        assert.equal(r.seq, 3);
        assert.equal((await log.append(sampleEvent(4))).seq, 4);
        await assertHoldsExactly(log, new Map([[3, r.hash]]), 5);
      } finally {
        await log.close();
      }
    });
  });

  describe('when the connection drops before COMMIT reaches the server', () => {
    it('fails the batch with AUDIT_STORE_UNAVAILABLE, writes none of it, and the next append takes its place', async () => {
      const { stateDir, postgresUrl } = fresh();
      const proxy = await proxyTo();
      const log = await openAuditLog({ stateDir, postgresUrl: proxy.url(postgresUrl) });
      try {
        await log.append(sampleEvent(0));
        const cut = proxy.cutAt('COMMIT', 'before');
        const batch = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => log.append(sampleEvent(1 + i))));
        await cut;
        for (const b of batch) assert.equal(b.status === 'rejected' && (b.reason as { code?: string }).code, 'AUDIT_STORE_UNAVAILABLE');
        assert.equal((await log.append(sampleEvent(201))).seq, 1);
        await assertHoldsExactly(log, new Map(), 2);
      } finally {
        await log.close();
      }
    });
  });

});
