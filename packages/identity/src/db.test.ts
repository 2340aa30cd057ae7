import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { Identity } from './identity.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'corral-identity-db-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes `sql` into a new identity.db in a fresh state directory, as another program would. */
function storeWith(sql: string): string {
  const dir = tempDir();
  const db = new DatabaseSync(join(dir, 'identity.db'));
  db.exec(sql);
  db.close();
  return dir;
}

describe('the identity store', () => {
  describe('when identity.db is another application’s SQLite file', () => {
    const foreign: Array<[string, string]> = [
      ['a meta table of other columns', "CREATE TABLE meta (k TEXT, v TEXT); INSERT INTO meta VALUES ('issuer', 'theirs');"],
      ['an agents table of other columns', 'CREATE TABLE agents (id TEXT PRIMARY KEY, label TEXT)'],
      ['a signing_keys table of other columns', 'CREATE TABLE signing_keys (kid TEXT, secret TEXT)'],
    ];
    for (const [what, sql] of foreign) {
      it(`refuses one with ${what}: IDENTITY_STORE_FAILED, and leaves the file as it was`, () => {
        // Before: an uncoded ERR_SQLITE_ERROR escaped Identity.open, with the file switched to write-ahead logging and Corral's other tables added.
        const dir = storeWith(sql);
        assert.throws(() => Identity.open(dir), (error: unknown) => {
          assert.equal((error as { code?: string }).code, 'IDENTITY_STORE_FAILED');
          assert.match((error as Error).message, /is not a Corral identity store/);
          return true;
        });
        const db = new DatabaseSync(join(dir, 'identity.db'));
        try {
          assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'delete');
          assert.equal((db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n, 1);
        } finally {
          db.close();
        }
      });
    }
  });

  it('opens a store an older Corral made, without the tables added since', async () => {
    const dir = storeWith("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT; INSERT INTO meta VALUES ('issuer', 'urn:corral:install:old'), ('audience', 'corral');");
    const id = Identity.open(dir);
    try {
      assert.deepEqual(id.describe(), { issuer: 'urn:corral:install:old', audience: 'corral' });
      id.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
      await id.verifyToken((await id.issueToken('bot')).token);
    } finally {
      id.close();
    }
  });
});
