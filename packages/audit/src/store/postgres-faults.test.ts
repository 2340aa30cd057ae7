// The PostgreSQL store under the faults an operator meets, against a real
// throwaway cluster: the server restarts or an admin cuts the writer's
// connection mid-appending; the server cannot be reached when the log opens,
// or goes silent; the connection drops after COMMIT was sent and before its
// answer. Appends fail coded and promptly, nothing acknowledged is lost,
// nothing half-written stays, and the same log appends again afterwards.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { freePort } from '../../../../scripts/testing/free-port.ts';
import { sampleEvent } from '../../test/fixtures.ts';
import { usePostgres } from '../../test/postgres.ts';
import { assertHoldsExactly, steadyAppending } from '../../test/steady-appending.ts';
import { openAuditLog, type AuditLog } from '../log/audit-log.ts';
import { MAX_WAITING, TIMEOUT_DEFAULTS, type PostgresStore } from './postgres.ts';

const postgres = usePostgres('faults');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('when PostgreSQL fails under a writer', () => {
  for (const fault of ['an admin terminates every connection of the log (pg_terminate_backend)', 'the server restarts'] as const) {
    describe(`when ${fault} in the middle of steady appending`, () => {
      it('fails the appends in flight with AUDIT_STORE_UNAVAILABLE, loses nothing acknowledged, keeps nothing unacknowledged, and the same log appends again', async () => {
        const { stateDir, postgresUrl, database } = postgres.fresh();
        const log = await openAuditLog({ stateDir, postgresUrl });
        const admin = new pg.Client({ connectionString: postgres.cluster.url });
        await admin.connect();
        try {
          const run = steadyAppending(log, 8, 5);
          await run.until(() => run.acked.size >= 300, 10_000);
          if (fault === 'the server restarts') {
            await admin.end();
            await postgres.cluster.restart();
          } else {
            // Between two commits the writer's connection idles in the pool (its loss then costs nothing): repeat until one hits a commit.
            // After each, wait for the writer to go on or fail: terminating again while it asks the server whether its commit
            // landed would also end those questions, and past 3 s of them it rightly answers AUDIT_COMMIT_UNKNOWN.
            for (let k = 0; k < 200 && run.failed.length === 0; k++) {
              const acked = run.acked.size;
              await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
              await run.until(() => run.failed.length > 0 || run.acked.size >= acked + 20, 5_000);
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
      const { stateDir, postgresUrl } = postgres.fresh();
      const proxy = await postgres.proxy();
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
      const { stateDir, postgresUrl } = postgres.fresh();
      const proxy = await postgres.proxy();
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
      const { stateDir, postgresUrl } = postgres.fresh();
      const proxy = await postgres.proxy();
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

    it('fails the batch even when the writer that took its place appended a batch beginning with the same event (regression: the first record found in place acknowledged the whole batch, and a record the log does not hold)', async () => {
      const { stateDir, postgresUrl } = postgres.fresh();
      const proxy = await postgres.proxy();
      const a = await openAuditLog({ stateDir, postgresUrl: proxy.url(postgresUrl) });
      const b = await openAuditLog({ stateDir, postgresUrl });
      const holder = new pg.Client({ connectionString: postgresUrl });
      await holder.connect();
      const waiting = async (n: number) => {
        const sql = "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
        while (Number((await holder.query(sql)).rows[0].n) < n) await sleep(5);
      };
      try {
        await a.append(sampleEvent(0));
        // Both writers queue for the head's lock, a first; a's COMMIT never reaches the server, so b builds on the same head.
        await holder.query('BEGIN; SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE');
        const cut = proxy.cutAt('COMMIT', 'before');
        const fromA = Promise.allSettled([a.append(sampleEvent(1)), a.append(sampleEvent(2))]);
        await waiting(1);
        const fromB = Promise.all([b.append(sampleEvent(1)), b.append(sampleEvent(3))]);
        await waiting(2);
        await holder.query('COMMIT');
        await cut;
        const [written, lost] = [await fromB, await fromA];
        assert.deepEqual(written.map((r) => r.seq), [1, 2]);
        for (const l of lost) assert.equal(l.status === 'rejected' && (l.reason as { code?: string }).code, 'AUDIT_STORE_UNAVAILABLE', JSON.stringify(l));
        await assertHoldsExactly(b, new Map(written.map((r) => [r.seq, r.hash])), 3);
      } finally {
        await holder.end();
        await a.close();
        await b.close();
      }
    });
  });

  describe('when the server cannot be reached as the log opens', () => {
    it('refuses with AUDIT_STORE_UNAVAILABLE naming host, port and database (never the password) and what to do', async () => {
      const port = await freePort();
      const stateDir = postgres.stateDir();
      const started = Date.now();
      await assert.rejects(openAuditLog({ stateDir, postgresUrl: `postgres://corral:s3cret-pw@127.0.0.1:${port}/audit_main` }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'AUDIT_STORE_UNAVAILABLE');
        assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}/audit_main`));
        assert.match(e.message, /check that PostgreSQL is running/);
        assert.doesNotMatch(e.message, /s3cret-pw|corral:/);
        return true;
      });
      assert.ok(Date.now() - started < 5_000);
    });

    it('gives up after the connect timeout when the server accepts but never answers (connect_timeout=1 in the URL)', { timeout: 15_000 }, async () => {
      const { stateDir, postgresUrl } = postgres.fresh();
      const proxy = await postgres.proxy();
      proxy.set('silent');
      const started = Date.now();
      await assert.rejects(openAuditLog({ stateDir, postgresUrl: `${proxy.url(postgresUrl)}?connect_timeout=1` }), { code: 'AUDIT_STORE_UNAVAILABLE' });
      const took = Date.now() - started;
      assert.ok(took >= 900 && took < 4_000, `took ${took} ms`);
    });
  });

  describe('when the server accepts but never answers and the URL sets no timeout', () => {
    it(`gives up after the default connect timeout (${TIMEOUT_DEFAULTS.connectMs} ms) rather than wait for ever`, { timeout: 15_000 }, async () => {
      const { stateDir, postgresUrl } = postgres.fresh();
      const proxy = await postgres.proxy();
      proxy.set('silent');
      const started = Date.now();
      await assert.rejects(openAuditLog({ stateDir, postgresUrl: proxy.url(postgresUrl) }), { code: 'AUDIT_STORE_UNAVAILABLE' });
      const took = Date.now() - started;
      assert.ok(took >= TIMEOUT_DEFAULTS.connectMs - 100 && took < TIMEOUT_DEFAULTS.connectMs + 2_000, `took ${took} ms`);
    });
  });

  describe('when the server goes silent, then away, then comes back, under an open log', () => {
    it('answers the append whose statement went unanswered within seconds (AUDIT_COMMIT_UNKNOWN: it cannot learn whether it committed), then fails appends at once, then appends again on the same log', { timeout: 20_000 }, async () => {
      const { stateDir, postgresUrl } = postgres.fresh();
      const proxy = await postgres.proxy();
      const log = await openAuditLog({ stateDir, postgresUrl: `${proxy.url(postgresUrl)}?connect_timeout=1&statement_timeout=1000` });
      try {
        const acked = new Map<number, string>();
        for (let i = 0; i < 5; i++) {
          const r = await log.append(sampleEvent(i));
          acked.set(r.seq, r.hash);
        }
        proxy.set('silent');
        let started = Date.now();
        await assert.rejects(log.append(sampleEvent(5)), { code: 'AUDIT_COMMIT_UNKNOWN' });
        let took = Date.now() - started;
        // The statement's timeout and grace (3 s), then asking again whether it committed (3 s at most).
        assert.ok(took < 8_000, `a silent server held an append ${took} ms`);
        proxy.set('refuse');
        started = Date.now();
        for (let i = 0; i < 5; i++) await assert.rejects(log.append(sampleEvent(6 + i)), { code: 'AUDIT_STORE_UNAVAILABLE' });
        took = Date.now() - started;
        assert.ok(took < 1_000, `a refusing server held five appends ${took} ms`);
        proxy.set('forward');
        let r: Awaited<ReturnType<AuditLog['append']>> | undefined;
        for (let tries = 0; !r && tries < 100; tries++) r = await log.append(sampleEvent(20)).catch(async () => void (await sleep(50)));
        assert.ok(r, 'the log did not append again once the server was back');
        // The append in doubt never reached the server.
        assert.equal(r.seq, 5);
        acked.set(r.seq, r.hash);
        await assertHoldsExactly(log, acked, 6);
      } finally {
        proxy.set('forward');
        await log.close();
      }
    });

    it('bounds what waits for a silent server: appends beyond the bound fail at once rather than queue', { timeout: 20_000 }, async () => {
      const { stateDir, postgresUrl } = postgres.fresh();
      const proxy = await postgres.proxy();
      const log = await openAuditLog({ stateDir, postgresUrl: `${proxy.url(postgresUrl)}?connect_timeout=1&statement_timeout=1000` });
      try {
        await log.append(sampleEvent(0));
        proxy.set('silent');
        const events = Array.from({ length: MAX_WAITING + 20_000 }, (_, i) => sampleEvent(1 + i));
        let issued = Infinity;
        let early = 0;
        const all = events.map((e) =>
          log.append(e).then(
            () => 'appended',
            (e: { code?: string }) => {
              if (Date.now() - issued < 500) early++;
              return e.code;
            },
          ),
        );
        issued = Date.now();
        const codes = await Promise.all(all);
        // Batches this large take the head's lock before they write: the silent server is given up before any COMMIT is sent.
        assert.deepEqual([...new Set(codes)], ['AUDIT_STORE_UNAVAILABLE']);
        // Those beyond the bound (and the first request's own share) fail at once; the rest when the server is given up.
        assert.ok(early >= 20_000 - 256, `only ${early} appends failed at once`);
      } finally {
        proxy.set('forward');
        await log.close();
      }
    });
  });
});
