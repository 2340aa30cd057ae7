// The shared store suite against a real PostgreSQL (a throwaway cluster this
// file starts; if PostgreSQL cannot start, these tests fail, they never skip).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { sampleEvent } from '../../test/fixtures.ts';
import { usePostgres } from '../../test/postgres.ts';
import { storeSuite } from '../../test/store.suite.ts';
import { openAuditLog, type AuditLog } from '../log/audit-log.ts';
import { openAuditReader } from '../log/open-reader.ts';
import { readRecord, verifyStore } from '../log/reader.ts';
import { COPY_CHUNK, PostgresStore, copyText } from './postgres.ts';

const postgres = usePostgres('audit');

storeSuite({
  name: 'PostgreSQL',
  async fresh() {
    const { stateDir, postgresUrl } = postgres.fresh();
    const sql = async (statement: string) => {
      const store = await PostgresStore.connect({ url: postgresUrl, poolSize: 1 });
      try {
        await store.query(statement);
      } finally {
        await store.close();
      }
    };
    return {
      options: { stateDir, postgresUrl },
      sql,
      blob: (hex: string) => `decode('${hex}', 'hex')`,
      plantForeign: () => sql('CREATE TABLE audit_meta (id INTEGER PRIMARY KEY, format INTEGER NOT NULL, key_id TEXT NOT NULL, created_at TEXT NOT NULL); INSERT INTO audit_meta VALUES (1, 99, \'x\', \'y\')'),
    };
  },
});

/** `log` verifies, all `records` of it. */
async function assertVerifies(log: AuditLog, records: number): Promise<void> {
  const report = await verifyStore(log.store, log.publicKey);
  assert.equal(report.ok, true, JSON.stringify(report.damage));
  assert.equal(report.verified, records);
}

describe('appending to PostgreSQL', () => {
  const open = (stateDir: string, postgresUrl: string) => openAuditLog({ stateDir, postgresUrl });

  it('a lone writer commits each append after its second in one guarded statement', async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const log = await open(stateDir, postgresUrl);
    try {
      for (let i = 0; i < 20; i++) assert.equal((await log.append(sampleEvent(i))).seq, i);
      assert.deepEqual((log.store as PostgresStore).commits, { locked: 2, guarded: 18 });
    } finally {
      await log.close();
    }
  });

  it('two writers taking turns each build on the records the other wrote, and the log verifies', async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const a = await open(stateDir, postgresUrl);
    const b = await open(stateDir, postgresUrl);
    try {
      const seqs: number[] = [];
      // Three in a row make each writer bet it is alone; the other's next append then proves it wrong.
      for (let turn = 0; turn < 6; turn++) {
        const w = turn % 2 === 0 ? a : b;
        for (let i = 0; i < 3; i++) seqs.push((await w.append(sampleEvent(seqs.length))).seq);
      }
      assert.deepEqual(seqs, Array.from({ length: 18 }, (_, i) => i));
      for (const w of [a, b]) assert.ok((w.store as PostgresStore).commits.guarded > 0, 'the writer never bet it was alone');
      await assertVerifies(a, 18);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a guarded append that waits on the head while another writer moves it writes nothing of its batch, and appends after that writer', async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const log = await open(stateDir, postgresUrl);
    const rival = new pg.Client({ connectionString: postgresUrl });
    await rival.connect();
    try {
      for (let i = 0; i < 3; i++) await log.append(sampleEvent(i));
      const before = { ...(log.store as PostgresStore).commits };
      // The rival holds the head's row lock, as a writer in its transaction does, and moves the head.
      await rival.query('BEGIN; SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE');
      const appended = log.append(sampleEvent(3));
      while (Number((await rival.query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0].n) === 0) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await rival.query('UPDATE audit_head SET checkpoint_time = checkpoint_time + 1 WHERE id = 1; COMMIT');
      assert.equal((await appended).seq, 3);
      assert.deepEqual((log.store as PostgresStore).commits, { guarded: before.guarded, locked: before.locked + 1 });
      await assertVerifies(log, 4);
    } finally {
      await rival.end();
      await log.close();
    }
  });
});

describe('when someone puts a record beyond the head of a PostgreSQL log open for appending', () => {
  for (const batch of [1, 200]) {
    it(`refuses a batch of ${batch} that would take its seq with AUDIT_CHAIN_BROKEN, writing nothing (it failed AUDIT_STORE_UNAVAILABLE, retry later, for ever)`, async () => {
      const { stateDir, postgresUrl } = postgres.fresh();
      const log = await openAuditLog({ stateDir, postgresUrl });
      try {
        for (let i = 0; i < 5; i++) await log.append(sampleEvent(i));
        await (log.store as PostgresStore).query('INSERT INTO audit_records SELECT seq + 1, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 4');
        const results = await Promise.allSettled(Array.from({ length: batch }, (_, i) => log.append(sampleEvent(5 + i))));
        for (const r of results) assert.equal(r.status === 'rejected' && (r.reason as { code?: string }).code, 'AUDIT_CHAIN_BROKEN', JSON.stringify(r));
        assert.equal((await log.store.head()).size, 5);
      } finally {
        await log.close().catch(() => {});
      }
    });
  }
});

describe('when the database commits without waiting for its write-ahead log by default (synchronous_commit = off)', () => {
  it('the writer still commits each append durably before acknowledging it (it took the default: an acknowledged record could be lost in a crash)', async () => {
    const { stateDir, postgresUrl, database } = postgres.fresh();
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${database} SET synchronous_commit = off`);
    } finally {
      await admin.end();
    }
    const log = await openAuditLog({ stateDir, postgresUrl });
    try {
      await log.append(sampleEvent(0));
      // The pool's one connection in use is the one that appended (poolSize is 4: ask on each).
      const settings = await Promise.all(Array.from({ length: 4 }, () => (log.store as PostgresStore).query('SHOW synchronous_commit')));
      for (const rows of settings) assert.equal(rows[0]?.synchronous_commit, 'on');
    } finally {
      await log.close();
    }
  });
});

describe('when the database runs its transactions REPEATABLE READ or SERIALIZABLE by default', () => {
  /** A fresh database whose transactions default to `level`. */
  const isolated = async (level: string) => {
    const fresh = postgres.fresh();
    const admin = new pg.Client({ connectionString: fresh.postgresUrl });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${fresh.database} SET default_transaction_isolation = '${level}'`);
    } finally {
      await admin.end();
    }
    return fresh;
  };

  for (const level of ['repeatable read', 'serializable']) {
    it(`two writers appending at once commit every append, gapless, and the log verifies (${level}; regression: the writer that waited for the head's lock failed AUDIT_STORE_UNAVAILABLE, 'could not serialize access')`, async () => {
      const { stateDir, postgresUrl } = await isolated(level);
      const a = await openAuditLog({ stateDir, postgresUrl });
      const b = await openAuditLog({ stateDir, postgresUrl });
      try {
        const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).append(sampleEvent(i))));
        const failed = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as { code?: string }).code)] : []));
        assert.deepEqual(failed, []);
        const seqs = results.map((r) => (r as PromiseFulfilledResult<{ seq: number }>).value.seq).sort((x, y) => x - y);
        assert.deepEqual(seqs, Array.from({ length: 200 }, (_, i) => i));
        await assertVerifies(a, 200);
      } finally {
        await a.close();
        await b.close();
      }
    });
  }

  it("four writers opening a log that is not there yet all open it (regression: those that waited for the first to create it refused it, AUDIT_STORE_FOREIGN 'an empty audit_meta table')", async () => {
    const { stateDir, postgresUrl } = await isolated('repeatable read');
    const opened = await Promise.allSettled(Array.from({ length: 4 }, () => openAuditLog({ stateDir, postgresUrl })));
    try {
      for (const r of opened) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
    } finally {
      for (const r of opened) if (r.status === 'fulfilled') await r.value.close();
    }
  });
});

describe('when the database cannot encode every character an event may hold', () => {
  /** A new database of `encoding` in the cluster (C locale: any encoding goes with it). */
  const encoded = async (encoding: string) => {
    const database = `encoded_${encoding.toLowerCase()}_${process.pid}`;
    const admin = new pg.Client({ connectionString: postgres.cluster.url });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database} ENCODING '${encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`);
    } finally {
      await admin.end();
    }
    return { stateDir: postgres.stateDir(), postgresUrl: postgres.cluster.url.replace(/\/postgres$/, `/${database}`) };
  };

  it("a writer refuses a LATIN1 database as the log opens, AUDIT_STORE_FOREIGN naming the encoding (regression: it opened, and an event holding '€' failed every append sharing its commit, AUDIT_STORE_UNAVAILABLE, for ever)", async () => {
    const { stateDir, postgresUrl } = await encoded('LATIN1');
    await assert.rejects(openAuditLog({ stateDir, postgresUrl }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'AUDIT_STORE_FOREIGN');
      assert.match(e.message, /LATIN1/);
      return true;
    });
  });

  it('a writer takes a SQL_ASCII database, which keeps the bytes it is sent', async () => {
    const { stateDir, postgresUrl } = await encoded('SQL_ASCII');
    const log = await openAuditLog({ stateDir, postgresUrl });
    try {
      const record = await log.append({ ...sampleEvent(0), details: { file: 'facture-€.pdf' } });
      assert.deepEqual((await readRecord(log.store, record.seq)).event.details, { file: 'facture-€.pdf' });
      await assertVerifies(log, 1);
    } finally {
      await log.close();
    }
  });
});

describe("when another role holds the advisory lock that serialises the log's creation (any role that can connect can take it)", () => {
  it('a writer still opens the existing log (regression: every writer waited for the lock until its statement timeout and failed AUDIT_STORE_UNAVAILABLE)', async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    await (await openAuditLog({ stateDir, postgresUrl })).close();
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    await admin.query('CREATE ROLE squatter LOGIN');
    const squatter = new pg.Client({ connectionString: postgresUrl.replace('postgres@', 'squatter@') });
    await squatter.connect();
    try {
      // 0x636f7272616c: "corral" in ASCII, the key the writers use.
      await squatter.query('SELECT pg_advisory_lock(x\'636f7272616c\'::bigint)');
      const log = await openAuditLog({ stateDir, postgresUrl: `${postgresUrl}?statement_timeout=2000` });
      try {
        assert.equal((await log.append(sampleEvent(0))).seq, 0);
      } finally {
        await log.close();
      }
    } finally {
      await squatter.end();
      await admin.end();
    }
  });
});

describe('when a table of the log\'s names is in the database before the log is created (another role made it first)', () => {
  it('the first writer refuses to create the log on it with AUDIT_STORE_FOREIGN (it created the log around that table, trigger and all)', async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE TABLE audit_records (seq BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, prev BYTEA NOT NULL, hash BYTEA NOT NULL, nodes BYTEA NOT NULL, body TEXT NOT NULL);
        CREATE FUNCTION rewrite() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body := replace(NEW.body, 'alice', 'mallory'); RETURN NEW; END $$;
        CREATE TRIGGER rewrite BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION rewrite()`);
    } finally {
      await admin.end();
    }
    await assert.rejects(openAuditLog({ stateDir, postgresUrl }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'AUDIT_STORE_FOREIGN');
      assert.match(e.message, /audit_records/);
      return true;
    });
  });
});

describe('when someone altered the tables of a PostgreSQL log', () => {
  /** A log of 25 records, closed, then `alter` run on its database as its owner. */
  const altered = async (alter: string) => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const log = await openAuditLog({ stateDir, postgresUrl, checkpointEvery: 10 });
    for (let i = 0; i < 25; i++) await log.append(sampleEvent(i));
    await log.close();
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    try {
      await admin.query(alter);
    } finally {
      await admin.end();
    }
    return { stateDir, postgresUrl, publicKey: log.publicKey };
  };

  describe('when audit_head holds a second row (its primary key dropped)', () => {
    it('verify and the writer refuse it with AUDIT_STORE_FOREIGN instead of trusting whichever row comes first', async () => {
      const { stateDir, postgresUrl, publicKey } = await altered('ALTER TABLE audit_head DROP CONSTRAINT audit_head_pkey; INSERT INTO audit_head SELECT 1, 3, last_hash, frontier, 0, 0 FROM audit_head');
      const store = await PostgresStore.connect({ url: postgresUrl });
      try {
        await assert.rejects(verifyStore(store, publicKey), { code: 'AUDIT_STORE_FOREIGN' });
      } finally {
        await store.close();
      }
      await assert.rejects(openAuditLog({ stateDir, postgresUrl }), { code: 'AUDIT_STORE_FOREIGN' });
    });
  });

  describe("when another role's schema on the search path holds tables of the same names (named after the reader's role, it comes first)", () => {
    it('a reader and a writer refuse the log with AUDIT_STORE_FOREIGN naming both schemas, instead of reading the copy (there, one cut at 10 records, which verified)', async () => {
      const { stateDir, postgresUrl } = await altered(`
        CREATE ROLE auditor LOGIN; CREATE ROLE tenant;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO auditor;
        CREATE SCHEMA auditor AUTHORIZATION tenant;
        GRANT USAGE ON SCHEMA auditor TO auditor;
        CREATE TABLE auditor.audit_meta AS SELECT * FROM audit_meta;
        CREATE TABLE auditor.audit_head AS SELECT 1 AS id, 10::bigint AS size, (SELECT hash FROM audit_records WHERE seq = 9) AS last_hash, '\\x'::bytea AS frontier, 10::bigint AS checkpoint_size, checkpoint_time FROM audit_head;
        CREATE TABLE auditor.audit_records AS SELECT * FROM audit_records WHERE seq < 10;
        CREATE TABLE auditor.audit_checkpoints AS SELECT * FROM audit_checkpoints WHERE size <= 10;
        GRANT SELECT ON ALL TABLES IN SCHEMA auditor TO auditor;`);
      const asAuditor = postgresUrl.replace('postgres@', `auditor@`);
      await assert.rejects(openAuditReader({ stateDir, postgresUrl: asAuditor }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'AUDIT_STORE_FOREIGN');
        assert.match(e.message, new RegExp(`audit_\\w+ in auditor, public`));
        return true;
      });
      await assert.rejects(openAuditLog({ stateDir, postgresUrl: asAuditor }), { code: 'AUDIT_STORE_FOREIGN' });
      // As the message says: the schema named in the URL is the only one read.
      const pinned = await openAuditReader({ stateDir, postgresUrl: `${asAuditor}?options=-c%20search_path%3Dpublic` });
      try {
        assert.equal((await verifyStore(pinned.store, pinned.publicKey())).verified, 25);
      } finally {
        await pinned.close();
      }
    });
  });

  for (const [what, alter, names] of [
    ['the primary key of audit_records is dropped (no row doubled yet)', 'ALTER TABLE audit_records DROP CONSTRAINT audit_records_pkey', /audit_records has no primary key on seq/],
    ['audit_checkpoints.size is altered to text (it sorts as text)', 'ALTER TABLE audit_checkpoints ALTER COLUMN size TYPE text', /audit_checkpoints\.size is text, not bigint/],
    ['audit_records.body may hold NULL', 'ALTER TABLE audit_records ALTER COLUMN body DROP NOT NULL', /audit_records\.body may be null/],
    [
      'a trigger on audit_records rewrites the bodies written from now on',
      "CREATE FUNCTION rewrite() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body := replace(NEW.body, 'alice', 'mallory'); RETURN NEW; END $$; CREATE TRIGGER rewrite BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION rewrite()",
      /trigger rewrite on audit_records/,
    ],
    ['a rule on audit_checkpoints drops what is written there', 'CREATE RULE forget AS ON INSERT TO audit_checkpoints DO INSTEAD NOTHING', /rule forget on audit_checkpoints/],
    ['audit_records is made unlogged (a crash of the server would empty it)', 'ALTER TABLE audit_records SET UNLOGGED', /audit_records is unlogged/],
    ['a row security policy on audit_records hides rows from readers', 'ALTER TABLE audit_records ENABLE ROW LEVEL SECURITY; CREATE POLICY hide ON audit_records USING (seq <> 3)', /audit_records has row security enabled/],
  ] as const) {
    describe(`when ${what}`, () => {
      it('a reader refuses the log with AUDIT_STORE_FOREIGN naming what was altered (it opened it, and verify said ok)', async () => {
        const { stateDir, postgresUrl } = await altered(alter);
        await assert.rejects(openAuditReader({ stateDir, postgresUrl }), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'AUDIT_STORE_FOREIGN');
          assert.match(e.message, names);
          return true;
        });
      });
    });
  }

  describe('when audit_records.seq is altered to text', () => {
    it('verify refuses the store as foreign (AUDIT_STORE_FOREIGN), not as one to retry later (it said AUDIT_STORE_UNAVAILABLE)', async () => {
      const { postgresUrl, publicKey } = await altered('ALTER TABLE audit_records ALTER COLUMN seq TYPE text');
      const store = await PostgresStore.connect({ url: postgresUrl });
      try {
        await assert.rejects(verifyStore(store, publicKey), { code: 'AUDIT_STORE_FOREIGN' });
      } finally {
        await store.close();
      }
    });
  });

  describe('when audit_records.seq is altered to numeric and a row put at seq 3.5', () => {
    it('verify reports the record expected at seq 4 as malformed, naming row 3.5, after verifying seq 0–3 (it threw AUDIT_RECORD_MALFORMED)', async () => {
      const { postgresUrl, publicKey } = await altered('ALTER TABLE audit_records ALTER COLUMN seq TYPE numeric; INSERT INTO audit_records SELECT 3.5, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 3');
      const store = await PostgresStore.connect({ url: postgresUrl });
      try {
        const report = await verifyStore(store, publicKey);
        assert.equal(report.ok, false);
        assert.equal(report.verified, 4);
        assert.equal(report.firstBadSeq, 4);
        const first = report.damage[0];
        assert.equal(first?.kind, 'malformed');
        assert.match(first.message, /row seq 3\.5/);
      } finally {
        await store.close();
      }
    });
  });
});

describe('a PostgreSQL group commit of large events', () => {
  /** 300 events of ~16 KiB: their COPY text (~4.8 MiB) goes in several pieces. */
  const large = (i: number) => ({ ...sampleEvent(i), details: { pad: 'x'.repeat(16_000), n: i } });

  it('streams its COPY text in pieces of whole rows, which together are the text of every row (regression: one string of it all passed V8’s longest string past ~8,200 events of 64 KiB, and the commit failed whole)', () => {
    const records = Array.from({ length: 40 }, (_, seq) => ({ seq, timeMs: seq, prev: 'aa'.repeat(32), hash: 'bb'.repeat(32), nodes: seq % 2 ? ['cc'.repeat(32)] : [], body: `{"n":${seq},"s":"a\\\\b${'y'.repeat(seq * 100)}"}` }));
    const whole = [...copyText(records, Number.POSITIVE_INFINITY)];
    assert.equal(whole.length, 1);
    const pieces = [...copyText(records, 10_000)];
    assert.ok(pieces.length > 5, `${pieces.length} pieces`);
    assert.equal(pieces.join(''), whole[0]);
    for (const p of pieces) assert.ok(p.endsWith('\n'), 'a piece ends at the end of a row');
    for (const p of pieces.slice(0, -1)) assert.ok(p.length >= 10_000);
    assert.ok(COPY_CHUNK <= 4 << 20, 'each piece is small beside the longest string');
  });

  it('commits 300 events of 16 KiB in pieces, and the log verifies', async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const log = await openAuditLog({ stateDir, postgresUrl });
    try {
      const records = await Promise.all(Array.from({ length: 300 }, (_, i) => log.append(large(i))));
      assert.deepEqual(records.map((r) => r.seq), Array.from({ length: 300 }, (_, i) => i));
      assert.equal((await readRecord(log.store, 299)).event.details?.n, 299);
      await assertVerifies(log, 300);
    } finally {
      await log.close();
    }
  });

  it('writes nothing of such a batch when a row of a later piece fails (a row no append made sits at seq 250)', async () => {
    const { stateDir, postgresUrl } = postgres.fresh();
    const log = await openAuditLog({ stateDir, postgresUrl });
    try {
      await log.append(sampleEvent(0));
      const store = log.store as PostgresStore;
      await store.query("INSERT INTO audit_records SELECT 250, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 0");
      const results = await Promise.allSettled(Array.from({ length: 256 }, (_, i) => log.append(large(i + 1))));
      assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'AUDIT_CHAIN_BROKEN'), JSON.stringify(results.slice(0, 2)));
      assert.equal((await log.store.head()).size, 1);
      const rows = await store.query('SELECT count(*)::int AS n FROM audit_records');
      assert.equal((rows[0] as { n: number }).n, 2, 'record 0 and the planted row only');
    } finally {
      await log.close();
    }
  });
});
