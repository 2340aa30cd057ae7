// The PostgreSQL store while its server is down, against a real throwaway
// cluster: appends fail at once and coded instead of each waiting to
// connect, the store tries the server again only now and then (one caller
// at a time, pauses growing to RECONNECT_BACKOFF.maxMs), and once the server
// is back appends resume within that bound, the log whole and verifying.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { sampleEvent } from '../../test/fixtures.ts';
import { usePostgres } from '../../test/postgres.ts';
import { assertHoldsExactly, steadyAppending, stopAllAppending } from '../../test/steady-appending.ts';
import { openAuditLog, type AuditLog } from '../log/audit-log.ts';
import { PostgresStore, RECONNECT_BACKOFF } from './postgres.ts';

const postgres = usePostgres('reconnect');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The most connection attempts a store makes while its server stays down for
 * `windowMs`: the first failure, then one test after each pause, the pauses
 * at least half of firstMs, 2 × firstMs, … (capped at maxMs); and a few more
 * for the attempts under way as it went down.
 */
function mostAttempts(windowMs: number): number {
  let attempts = 1;
  for (let spent = 0, k = 0; ; k++) {
    spent += Math.min(RECONNECT_BACKOFF.maxMs, RECONNECT_BACKOFF.firstMs * 2 ** k) / 2;
    if (spent > windowMs) break;
    attempts++;
  }
  return attempts + 4;
}

describe('when the PostgreSQL server of an open log is down', () => {
  it('fails every append at once with AUDIT_STORE_UNAVAILABLE, connecting only after growing pauses, one attempt at a time, and resumes within RECONNECT_BACKOFF.maxMs of its return, losing and repeating nothing', { timeout: 90_000 }, async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const gate = await postgres.proxy();
    const log = await openAuditLog({ stateDir, postgresUrl: gate.url(postgresUrl) });
    try {
      const before = steadyAppending(log, 8, 2);
      await before.until(() => before.acked.size >= 200, 20_000);
      await before.stop();
      assert.deepEqual(before.failed, []);
      gate.set('refuse');
      const downAt = Date.now();
      const attemptsBefore = gate.connections;
      const run = steadyAppending(log, 8, 2);
      // Long enough for several pauses, and enough failed appends to show they do not each connect.
      await run.until(() => run.failed.length >= 2_000 && Date.now() - downAt >= 3_000, 30_000);
      const downMs = Date.now() - downAt;
      const attempts = gate.connections - attemptsBefore;
      const failedWhileDown = run.failed.length;
      assert.ok(failedWhileDown >= 2_000, `only ${failedWhileDown} appends failed in ${downMs} ms while the server was down`);
      // A pooled connection the outage cut as it was used may leave its append in doubt (AUDIT_COMMIT_UNKNOWN); every other fails as not written.
      assert.ok(run.failed.every((code) => code === 'AUDIT_STORE_UNAVAILABLE' || code === 'AUDIT_COMMIT_UNKNOWN'), [...new Set(run.failed)].join());
      assert.ok(run.failed.filter((code) => code === 'AUDIT_STORE_UNAVAILABLE').length >= failedWhileDown - 8);
      assert.equal(run.acked.size, 0);
      assert.ok(attempts <= mostAttempts(downMs), `${attempts} connection attempts in ${downMs} ms for ${failedWhileDown} failed appends`);
      gate.set('forward');
      const backAt = Date.now();
      await run.until(() => run.acked.size > 0, RECONNECT_BACKOFF.maxMs + 30_000);
      const resumedMs = Date.now() - backAt;
      assert.ok(run.acked.size > 0, 'the log did not append again once the server was back');
      // The longest pause, and time to connect and commit on a slow machine.
      assert.ok(resumedMs <= RECONNECT_BACKOFF.maxMs + 5_000, `appends resumed ${resumedMs} ms after the server was back`);
      await run.until(() => run.acked.size >= 200, 30_000);
      await run.stop();
      const acked = new Map([...before.acked, ...run.acked]);
      // Nothing reached the server while it was down: the log holds exactly what was acknowledged, each seq once.
      await assertHoldsExactly(log, acked, acked.size);
    } finally {
      gate.set('forward');
      await stopAllAppending();
      await log.close();
    }
  });

  it('fails appends at once when the server accepts and never answers, rather than each waiting for its connect timeout', { timeout: 120_000 }, async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const gate = await postgres.proxy();
    // Short, so that waiting for it shows, yet long enough for a loaded machine to connect when the server does answer
    // (opening the log, and again once it is back): a connection there can take over a second.
    const connectMs = 3_000;
    const log = await openAuditLog({ stateDir, postgresUrl: `${gate.url(postgresUrl)}?connect_timeout=${connectMs / 1000}` });
    try {
      const first = await log.append(sampleEvent(0));
      // Open connections cut, new ones accepted and never answered.
      gate.set('refuse');
      gate.set('silent');
      // The first learns the server is gone, by its connect timeout (or the cut connection).
      await assert.rejects(log.append(sampleEvent(1)), { code: 'AUDIT_STORE_UNAVAILABLE' });
      const started = Date.now();
      const attemptsBefore = gate.connections;
      for (let i = 0; i < 20; i++) await assert.rejects(log.append(sampleEvent(2 + i)), { code: 'AUDIT_STORE_UNAVAILABLE' });
      const took = Date.now() - started;
      const attempts = gate.connections - attemptsBefore;
      // Each waiting for its own connect timeout, twenty would take 20 connect timeouts; failing at once, about one (the store's single test of the server).
      assert.ok(took < 10 * connectMs, `twenty appends took ${took} ms against a silent server (connect timeout ${connectMs} ms)`);
      assert.ok(attempts <= mostAttempts(took), `${attempts} connection attempts in ${took} ms`);
      gate.set('forward');
      let r: Awaited<ReturnType<AuditLog['append']>> | undefined;
      // A test of the server under way as it comes back waits out its connect timeout (its first bytes went unanswered), then the pause.
      const deadline = Date.now() + connectMs + RECONNECT_BACKOFF.maxMs + 30_000;
      while (!r && Date.now() < deadline) r = await log.append(sampleEvent(30)).catch(async () => void (await sleep(20)));
      assert.ok(r, 'the log did not append again once the server answered');
      assert.equal(r.seq, 1);
      await assertHoldsExactly(log, new Map([[0, first.hash], [1, r.hash]]), 2);
    } finally {
      gate.set('forward');
      await stopAllAppending();
      await log.close();
    }
  });

  it('still seals and closes the log when closed right after the server is back, within the pause (close tries the server itself)', { timeout: 60_000 }, async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const gate = await postgres.proxy();
    const url = gate.url(postgresUrl);
    const log = await openAuditLog({ stateDir, postgresUrl: url });
    const first = await log.append(sampleEvent(0));
    gate.set('refuse');
    // Until the store knows the server down (a pooled connection may fail first), and the next test of it is still to come.
    let refused: (Error & { code?: string }) | undefined;
    for (let i = 1; i <= 10 && !refused?.message.includes('tried again'); i++) refused = await log.append(sampleEvent(i)).then(() => undefined, (e: Error & { code?: string }) => e);
    assert.equal(refused?.code, 'AUDIT_STORE_UNAVAILABLE');
    assert.match(refused.message, /tried again/);
    gate.set('forward');
    await log.close();
    const again = await openAuditLog({ stateDir, postgresUrl: url });
    try {
      assert.equal((await again.store.head()).checkpointSize, 1, 'the close sealed the record it held');
      await assertHoldsExactly(again, new Map([[0, first.hash]]), 1);
    } finally {
      await again.close();
    }
  });

  it('tests the server one caller at a time even when a seal trying the server itself fails while such a test is under way', { timeout: 90_000 }, async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const gate = await postgres.proxy();
    const connectMs = 6_000;
    const log = await openAuditLog({ stateDir, postgresUrl: `${gate.url(postgresUrl)}?connect_timeout=${connectMs / 1000}` });
    const calls: Promise<unknown>[] = [];
    try {
      await log.append(sampleEvent(0));
      gate.set('refuse');
      // Until the store knows the server down (a pooled connection may fail first).
      let refused: Error | undefined;
      for (let i = 1; i <= 10 && !refused?.message.includes('tried again'); i++) refused = await log.store.head().then(() => undefined, (e: Error) => e);
      assert.match(refused?.message ?? '', /tried again/);
      // Connections accepted and never answered: each attempt lasts its connect timeout.
      gate.set('silent');
      const settled = (p: Promise<string | undefined>) => {
        const s = { done: false, value: p };
        void p.finally(() => void (s.done = true));
        return s;
      };
      const connectedOr = async (before: number, gaveUp: () => boolean) => {
        while (gate.connections === before && !gaveUp()) await sleep(5);
        return gate.connections > before;
      };
      // A final seal tries the server itself, whatever the pause...
      let before = gate.connections;
      const seal = settled(log.checkpoint().then(() => 'sealed', (e: { code?: string }) => e.code));
      calls.push(seal.value);
      assert.ok(await connectedOr(before, () => seal.done), 'the seal did not try the server');
      // ...and while its attempt is under way, a read past the pause tests the server. Starting the read a while after
      // the seal's attempt keeps the read's under way that long after the seal's fails: the window a second test would use.
      await sleep(2_000);
      before = gate.connections;
      const test = settled(log.store.head().then(() => 'read', (e: { code?: string }) => e.code));
      calls.push(test.value);
      assert.ok(await connectedOr(before, () => test.done), 'the read did not test the server');
      assert.ok(!seal.done, "the seal's attempt ended before the read's began (a machine too slow for this test's 4 s of slack)");
      const whileTesting = gate.connections;
      assert.equal(await seal.value, 'AUDIT_STORE_UNAVAILABLE');
      // The seal's attempt failed; until the read's test ends, every other caller fails at once, connecting to nothing.
      let madeDuringTest = 0;
      while (!test.done) {
        calls.push(log.store.head().catch(() => undefined));
        await sleep(20);
        if (!test.done) madeDuringTest = gate.connections - whileTesting;
      }
      assert.equal(await test.value, 'AUDIT_STORE_UNAVAILABLE');
      assert.equal(madeDuringTest, 0, `${madeDuringTest} more connection attempts while a test of the server was under way`);
    } finally {
      gate.set('forward');
      await Promise.allSettled(calls);
      await log.close();
    }
  });

  it('when the server restarts under steady appending, fails appends only coded while it is away, connects rarely, and appends again on the same log, which verifies', { timeout: 90_000 }, async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const gate = await postgres.proxy();
    const log = await openAuditLog({ stateDir, postgresUrl: gate.url(postgresUrl) });
    try {
      const run = steadyAppending(log, 8, 2);
      await run.until(() => run.acked.size >= 300, 20_000);
      const attemptsBefore = gate.connections;
      await postgres.cluster.restart();
      const before = run.acked.size;
      await run.until(() => run.acked.size >= before + 300, RECONNECT_BACKOFF.maxMs + 30_000);
      await run.stop();
      assert.ok(run.acked.size >= before + 300, `the log appended only ${run.acked.size - before} records after the restart`);
      // The restart ended every connection the writer had: appending again took a new one.
      const attempts = gate.connections - attemptsBefore;
      assert.ok(attempts > 0, 'the writer did not connect again: the restart missed it');
      // Whether any append fails depends on where the restart lands: one that cuts the answer to a commit that happened
      // leaves the store asking whether it did (#settle) while the other appends wait, and all of them may then succeed.
      // A commit the restart cut before its answer is AUDIT_COMMIT_UNKNOWN when the server takes longer than #settle asks (a slow machine): in doubt, not lost.
      const inDoubt = run.failed.filter((code) => code === 'AUDIT_COMMIT_UNKNOWN').length;
      assert.ok(run.failed.every((code) => code === 'AUDIT_STORE_UNAVAILABLE' || code === 'AUDIT_COMMIT_UNKNOWN'), [...new Set(run.failed)].join());
      // Connections made from the restart until appending resumed: the pool's own, and a few tests of the server; not one per failed append.
      assert.ok(attempts < Math.max(30, run.failed.length / 10), `${attempts} connection attempts for ${run.failed.length} failed appends`);
      const size = (await log.store.head()).size;
      assert.ok(size >= run.acked.size && size <= run.acked.size + inDoubt, `the log holds ${size} records; ${run.acked.size} were acknowledged and ${inDoubt} left in doubt`);
      await assertHoldsExactly(log, run.acked, size);
    } finally {
      await stopAllAppending();
      await log.close();
    }
  });

  describe('when the network goes silent while a connection waits idle in the pool', () => {
    /**
     * A store known to be unable to reach its server (a new connection was
     * refused) that still holds one pooled connection made before, which
     * then goes silent with every other (a network split). Its last answer
     * came before the store learned the server was down.
     */
    async function downWithAnIdleConnection() {
      const { postgresUrl } = postgres.fresh();
      const database = new URL(postgresUrl).pathname.slice(1);
      const gate = await postgres.proxy();
      // A connection the network has dropped gives up in seconds: a statement gets 1 s, its answer 2 s more.
      const store = await PostgresStore.connect({ url: `${gate.url(postgresUrl)}?connect_timeout=2&statement_timeout=1000`, poolSize: 4 });
      const admin = new pg.Client({ connectionString: postgres.cluster.url });
      await admin.connect();
      const allow = (yes: boolean) => admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS ${yes}`);
      try {
        // The one pooled connection is busy when the next caller needs one, and the server refuses that caller's new one.
        await allow(false);
        const busy = store.query('SELECT pg_sleep(0.2)');
        await assert.rejects(store.query('SELECT 1'), { code: 'AUDIT_STORE_UNAVAILABLE' });
        await busy;
        await allow(true);
        gate.set('silent');
        return { store, gate, admin };
      } catch (error) {
        await admin.end();
        await store.close();
        throw error;
      }
    }

    it('tests the server with a round trip on the pooled connection, failing every other caller at once meanwhile, connecting to nothing (regression: taking it from the pool counted as reaching the server, and every caller went on to connect)', { timeout: 60_000 }, async () => {
      const { store, gate, admin } = await downWithAnIdleConnection();
      const calls: Promise<unknown>[] = [];
      try {
        // Past the first pause, the next caller tests the server: the pool hands it the idle connection.
        await sleep(RECONNECT_BACKOFF.firstMs + 50);
        const before = gate.connections;
        let done = false;
        const test = store.query('SELECT 1').then(
          () => 'answered',
          (e: { code?: string }) => e.code,
        );
        void test.finally(() => void (done = true));
        calls.push(test);
        let refusedAtOnce = 0;
        let others = 0;
        while (!done) {
          await sleep(50);
          if (done) break;
          others++;
          // Refused at once means refused while the test is still under way: a caller let through waits for the silent server.
          const other = store.query('SELECT 1').then(
            () => 'answered',
            (e: Error & { code?: string }) => (e.code === 'AUDIT_STORE_UNAVAILABLE' && !done && /tried again/.test(e.message) ? 'refused' : String(e.code)),
          );
          calls.push(other);
          if ((await Promise.race([other, test.then(() => 'waiting')])) === 'refused') refusedAtOnce++;
        }
        assert.equal(await test, 'AUDIT_STORE_UNAVAILABLE');
        assert.ok(others > 0, 'the test of the server ended before any other caller came');
        assert.equal(refusedAtOnce, others, `${others - refusedAtOnce} of ${others} callers were let through while the server was being tested`);
        assert.equal(gate.connections - before, 0, `${gate.connections - before} connection attempts while the server was being tested`);
        // The test failed: the server is still known down, and the next caller is refused at once.
        await assert.rejects(store.query('SELECT 1'), (e: Error & { code?: string }) => e.code === 'AUDIT_STORE_UNAVAILABLE' && /tried again/.test(e.message));
      } finally {
        gate.set('forward');
        await Promise.allSettled(calls);
        await admin.end();
        await store.close();
      }
    });

    it('uses the server again once the pooled connection answers the test', { timeout: 60_000 }, async () => {
      const { store, gate, admin } = await downWithAnIdleConnection();
      try {
        gate.set('forward');
        await sleep(RECONNECT_BACKOFF.firstMs + 50);
        const before = gate.connections;
        assert.deepEqual(await store.query('SELECT 1 AS one'), [{ one: 1 }]);
        assert.equal(gate.connections - before, 0, 'the test did not use the pooled connection');
        assert.deepEqual(await store.query('SELECT 2 AS two'), [{ two: 2 }]);
      } finally {
        await admin.end();
        await store.close();
      }
    });
  });
});
