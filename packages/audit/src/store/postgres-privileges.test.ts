// A role that lacks a privilege the log needs, against a real throwaway
// cluster with real roles: the log refuses it AUDIT_STORE_UNAVAILABLE naming
// the GRANT that fixes it, and running exactly that GRANT lets the role in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { sampleEvent } from '../../test/fixtures.ts';
import { usePostgres } from '../../test/postgres.ts';
import { openAuditLog } from '../log/audit-log.ts';
import { openAuditReader } from '../log/open-reader.ts';
import { searchPath } from './postgres-privileges.ts';

const postgres = usePostgres('privileges');
let roles = 0;

/** A database with a log in it (made by the superuser), and a login role that may do nothing there yet. */
async function fresh(options: { schema?: string } = {}) {
  const { stateDir, postgresUrl: adminUrl, database } = postgres.fresh();
  const role = `writer_${++roles}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const path = options.schema === undefined ? '' : `?options=${encodeURIComponent(`-c search_path=${options.schema}`)}`;
  if (options.schema !== undefined) await admin.query(`CREATE SCHEMA ${options.schema}`);
  await admin.query(`CREATE ROLE ${role} LOGIN; REVOKE CONNECT ON DATABASE ${database} FROM PUBLIC`);
  return {
    stateDir,
    database,
    role,
    admin,
    adminUrl: adminUrl + path,
    url: adminUrl.replace('postgres@', `${role}@`) + path,
    sql: (text: string) => admin.query(text),
  };
}

/** Asserts `attempt` is refused naming GRANTs, runs them as the superuser, and returns them. */
async function grantsNamed(attempt: Promise<unknown>, admin: pg.Client): Promise<string[]> {
  let grants: string[] = [];
  await assert.rejects(attempt, (e: Error & { code?: string }) => {
    assert.equal(e.code, 'AUDIT_STORE_UNAVAILABLE');
    grants = e.message.match(/GRANT [^;]+;/g) ?? [];
    assert.ok(grants.length > 0, `no GRANT named: ${e.message}`);
    return true;
  });
  for (const g of grants) await admin.query(g);
  return grants;
}

describe('when the role lacks a privilege the log needs', () => {
  it('refuses a role without CONNECT on the database naming GRANT CONNECT, and the role reads the log once granted', async () => {
    const { stateDir, admin, adminUrl, url, database, role } = await fresh();
    try {
      await (await openAuditLog({ stateDir, postgresUrl: adminUrl })).close();
      await admin.query(`GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
      assert.deepEqual(await grantsNamed(openAuditReader({ stateDir, postgresUrl: url }), admin), [`GRANT CONNECT ON DATABASE ${database} TO ${role};`]);
      await (await openAuditReader({ stateDir, postgresUrl: url })).close();
    } finally {
      await admin.end();
    }
  });

  it('refuses a reader without USAGE on the schema that holds the log (a schema whose name needs quotes: capitals and a quote), rather than saying there is no log', async () => {
    const { stateDir, admin, adminUrl, url, database, role } = await fresh({ schema: '"Audit""Log"' });
    try {
      const log = await openAuditLog({ stateDir, postgresUrl: adminUrl });
      await log.append(sampleEvent(0));
      await log.close();
      await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA "Audit""Log" TO ${role}`);
      assert.deepEqual(await grantsNamed(openAuditReader({ stateDir, postgresUrl: url }), admin), [`GRANT USAGE ON SCHEMA "Audit""Log" TO ${role};`]);
      const reader = await openAuditReader({ stateDir, postgresUrl: url });
      try {
        assert.equal((await reader.store.head()).size, 1);
      } finally {
        await reader.close();
      }
    } finally {
      await admin.end();
    }
  });

  it('refuses a reader without SELECT on the tables naming one GRANT per table', async () => {
    const { stateDir, admin, adminUrl, url, database, role } = await fresh();
    try {
      await (await openAuditLog({ stateDir, postgresUrl: adminUrl })).close();
      await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}; GRANT USAGE ON SCHEMA public TO ${role}`);
      assert.equal((await grantsNamed(openAuditReader({ stateDir, postgresUrl: url }), admin)).length, 4);
      await (await openAuditReader({ stateDir, postgresUrl: url })).close();
    } finally {
      await admin.end();
    }
  });

  it('refuses to create the log in a schema the role may not create in (public, as of PostgreSQL 15) naming GRANT CREATE, and creates it once granted', async () => {
    const { stateDir, admin, url, database, role } = await fresh();
    try {
      await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}`);
      assert.deepEqual(await grantsNamed(openAuditLog({ stateDir, postgresUrl: url }), admin), [`GRANT CREATE ON SCHEMA public TO ${role};`]);
      const log = await openAuditLog({ stateDir, postgresUrl: url });
      await log.append(sampleEvent(0));
      await log.close();
    } finally {
      await admin.end();
    }
  });

  it('refuses a writer that may only read as the log opens (regression: it opened, and its first append failed with "permission denied for table audit_head"), naming the GRANTs that let it append', async () => {
    const { stateDir, admin, adminUrl, url, database, role } = await fresh();
    try {
      await (await openAuditLog({ stateDir, postgresUrl: adminUrl })).close();
      await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}; GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
      const grants = await grantsNamed(openAuditLog({ stateDir, postgresUrl: url }), admin);
      assert.deepEqual(grants, [`GRANT UPDATE ON TABLE public.audit_head TO ${role};`, `GRANT INSERT ON TABLE public.audit_records TO ${role};`, `GRANT INSERT ON TABLE public.audit_checkpoints TO ${role};`]);
      const log = await openAuditLog({ stateDir, postgresUrl: url });
      await log.append(sampleEvent(0));
      await log.close();
    } finally {
      await admin.end();
    }
  });

  it('fails an append at once, naming the GRANT, when a privilege is revoked under an open log (regression: a lone writer\'s append waited 3 s and said AUDIT_COMMIT_UNKNOWN), and appends again once granted', async () => {
    const { stateDir, admin, url, database, role } = await fresh();
    try {
      await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}; GRANT CREATE ON SCHEMA public TO ${role}`);
      const log = await openAuditLog({ stateDir, postgresUrl: url });
      try {
        // Three appends: the lone writer then bets it is alone and appends with one guarded statement.
        for (let i = 0; i < 3; i++) await log.append(sampleEvent(i));
        await admin.query(`ALTER TABLE audit_records OWNER TO postgres; REVOKE ALL ON audit_records FROM ${role}; GRANT SELECT ON audit_records TO ${role}`);
        const started = Date.now();
        assert.deepEqual(await grantsNamed(log.append(sampleEvent(3)), admin), [`GRANT INSERT ON TABLE public.audit_records TO ${role};`]);
        assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
        assert.equal((await log.append(sampleEvent(3))).seq, 3);
      } finally {
        await log.close();
      }
    } finally {
      await admin.end();
    }
  });
});

describe('when CONNECT on the database is revoked under an open log', () => {
  it('fails each append naming GRANT CONNECT, the ones refused at once while the server is not tried again too (regression: they said the log was unreachable, "permission denied for database"), and appends again once granted', { timeout: 60_000 }, async () => {
    const { stateDir, admin, url, database, role } = await fresh();
    try {
      await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}; GRANT CREATE ON SCHEMA public TO ${role}`);
      const log = await openAuditLog({ stateDir, postgresUrl: url });
      try {
        await log.append(sampleEvent(0));
        await admin.query(`REVOKE CONNECT ON DATABASE ${database} FROM ${role}`);
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
        const grant = `GRANT CONNECT ON DATABASE ${database} TO ${role};`;
        // The first may meet a pooled connection the server just ended; then one connects and is refused, then the rest fail at once.
        const messages: string[] = [];
        for (let i = 0; i < 4; i++) {
          await assert.rejects(log.append(sampleEvent(1)), (e: Error & { code?: string }) => (assert.equal(e.code, 'AUDIT_STORE_UNAVAILABLE'), messages.push(e.message), true));
        }
        assert.ok(messages.slice(-2).every((m) => m.includes(grant)), messages.join('\n'));
        await admin.query(grant);
        for (const until = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 250))) {
          try {
            assert.equal((await log.append(sampleEvent(1))).seq, 1);
            break;
          } catch (error) {
            if (Date.now() > until) throw error;
          }
        }
      } finally {
        await log.close();
      }
    } finally {
      await admin.end();
    }
  });
});

describe('when the URL\'s search path names a schema that does not exist', () => {
  it('refuses a reader and a writer with AUDIT_BAD_ARGUMENT (regression: search_path=Audit, unquoted, for the log in "Audit": the reader said there was no log yet, the writer "no schema has been selected to create in")', async () => {
    const { stateDir, admin, adminUrl } = await fresh({ schema: '"Audit"' });
    try {
      await (await openAuditLog({ stateDir, postgresUrl: adminUrl })).close();
      const unquoted = adminUrl.replace(encodeURIComponent('"Audit"'), 'Audit');
      await assert.rejects(openAuditReader({ stateDir, postgresUrl: unquoted }), { code: 'AUDIT_BAD_ARGUMENT' });
      await assert.rejects(openAuditLog({ stateDir, postgresUrl: unquoted }), { code: 'AUDIT_BAD_ARGUMENT' });
      await (await openAuditReader({ stateDir, postgresUrl: adminUrl })).close();
    } finally {
      await admin.end();
    }
  });
});

describe('reading a search_path setting', () => {
  it('splits at commas outside quotes, folds unquoted names, keeps quoted ones and takes $user for the role', () => {
    assert.deepEqual(searchPath({ path: '"$user", public', role: 'Ann' }), ['Ann', 'public']);
    assert.deepEqual(searchPath({ path: 'Audit,"My, ""Log""" ,  x', role: 'r' }), ['audit', 'My, "Log"', 'x']);
    assert.deepEqual(searchPath({ path: '', role: 'r' }), []);
  });
});
