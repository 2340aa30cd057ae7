import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { storeSuite } from '../../test/store.suite.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

storeSuite({
  name: 'SQLite',
  async fresh() {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-sqlite-'));
    dirs.push(stateDir);
    const dbPath = join(stateDir, 'audit.db');
    return {
      options: { stateDir },
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
});
