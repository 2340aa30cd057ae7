// The witness of PostgreSQL logs, against a real throwaway cluster: one per
// database and schema, and the one witness per database kept before taken
// over safely by the log it was kept for.
import { existsSync, renameSync } from 'node:fs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { sampleEvent } from '../../test/fixtures.ts';
import { usePostgres } from '../../test/postgres.ts';
import { readWitness, witnessPath } from '../io/witness-file.ts';
import { postgresWhere } from '../store/postgres-where.ts';
import { openAuditLog } from './audit-log.ts';

const postgres = usePostgres('witness');

const TABLES = ['audit_meta', 'audit_head', 'audit_records', 'audit_checkpoints'];

/** One database with the schemas `a` and `b`, a URL for the log in each, and the superuser to edit them. */
async function fresh() {
  const { stateDir, postgresUrl: url } = postgres.fresh();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query('CREATE SCHEMA a; CREATE SCHEMA b; CREATE SCHEMA backup');
  const in_ = (schema: string) => `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  /** Appends `count` records to the log in `schema` and closes it (which seals them and advances the witness). */
  const append = async (schema: string, count: number) => {
    const log = await openAuditLog({ stateDir, postgresUrl: in_(schema) });
    try {
      const from = (await log.store.head()).size;
      for (let i = 0; i < count; i++) await log.append(sampleEvent(from + i));
    } finally {
      await log.close();
    }
  };
  return {
    stateDir,
    admin,
    url,
    in: in_,
    append,
    /** Keeps the tables of schema `a` as a backup would. */
    backUpA: () => admin.query(TABLES.map((t) => `DROP TABLE IF EXISTS backup.${t}; CREATE TABLE backup.${t} AS TABLE a.${t};`).join('\n')),
    /** Restores schema `a`'s tables from that backup: the log there is rolled back. */
    restoreA: () => admin.query(TABLES.map((t) => `DELETE FROM a.${t}; INSERT INTO a.${t} SELECT * FROM backup.${t};`).join('\n')),
  };
}

describe('the witness of PostgreSQL logs in two schemas of one database', () => {
  it('is one per schema: each log opens and appends beside the other (regression: they shared one, and the second log was refused as rolled back)', async () => {
    const db = await fresh();
    try {
      await db.append('a', 5);
      await db.append('b', 20);
      await db.append('a', 1);
      const a = readWitness(witnessPath(db.stateDir, postgresWhere(db.url, 'a')));
      const b = readWitness(witnessPath(db.stateDir, postgresWhere(db.url, 'b')));
      assert.equal(a?.size, 6);
      assert.equal(b?.size, 20);
    } finally {
      await db.admin.end();
    }
  });

  it('catches a rollback of one log while the other has grown past it', async () => {
    const db = await fresh();
    try {
      await db.append('a', 3);
      await db.backUpA();
      await db.append('a', 3);
      await db.append('b', 30);
      await db.restoreA();
      await assert.rejects(openAuditLog({ stateDir: db.stateDir, postgresUrl: db.in('a') }), { code: 'AUDIT_ROLLED_BACK' });
      await db.append('b', 1);
    } finally {
      await db.admin.end();
    }
  });
});

describe('a witness kept for a whole database, before witnesses were kept per schema', () => {
  /** A log in schema `a`, whose witness is moved to the name it had when witnesses were kept per database. */
  async function keptPerDatabase() {
    const db = await fresh();
    await db.append('a', 4);
    const shared = witnessPath(db.stateDir, postgresWhere(db.url));
    renameSync(witnessPath(db.stateDir, postgresWhere(db.url, 'a')), shared);
    return { ...db, shared };
  }

  it('is taken over by the log it was kept for, and the log of another schema then opens beside it', async () => {
    const db = await keptPerDatabase();
    try {
      // Until then the other log is refused: nothing tells it from the log the witness was kept for, rolled back.
      await assert.rejects(openAuditLog({ stateDir: db.stateDir, postgresUrl: db.in('b') }), { code: 'AUDIT_ROLLED_BACK' });
      assert.ok(existsSync(db.shared), 'the witness was dropped by a log it was not kept for');
      await db.append('a', 1);
      assert.equal(existsSync(db.shared), false);
      assert.equal(readWitness(witnessPath(db.stateDir, postgresWhere(db.url, 'a')))?.size, 5);
      await db.append('b', 2);
    } finally {
      await db.admin.end();
    }
  });

  it('still catches a rollback of the log it was kept for, and stays where it is', async () => {
    const db = await keptPerDatabase();
    try {
      await db.backUpA();
      await db.append('a', 2);
      renameSync(witnessPath(db.stateDir, postgresWhere(db.url, 'a')), db.shared);
      await db.restoreA();
      await assert.rejects(openAuditLog({ stateDir: db.stateDir, postgresUrl: db.in('a') }), { code: 'AUDIT_ROLLED_BACK' });
      assert.equal(readWitness(db.shared)?.size, 6);
    } finally {
      await db.admin.end();
    }
  });
});
