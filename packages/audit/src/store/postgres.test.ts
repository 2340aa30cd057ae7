// The shared store suite against a real PostgreSQL (a throwaway cluster this
// file starts; if PostgreSQL cannot start, these tests fail, they never skip).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startPostgres, type TestPostgres } from '../../../../scripts/testing/postgres.ts';
import { storeSuite } from '../../test/store.suite.ts';
import { PostgresStore } from './postgres.ts';

let cluster: TestPostgres;
let n = 0;
const dirs: string[] = [];
before(async () => {
  cluster = await startPostgres();
});
after(() => {
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  cluster?.stop();
});

storeSuite({
  name: 'PostgreSQL',
  async fresh() {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-pg-'));
    dirs.push(stateDir);
    const postgresUrl = cluster.createDatabase(`audit_${process.pid}_${++n}`);
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
