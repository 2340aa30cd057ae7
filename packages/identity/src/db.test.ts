import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { Identity } from './identity.ts';
import { damageTable } from '../../../scripts/testing/damage-sqlite.ts';

/** A new directory for one test, removed once all this file's tests have run. */
const freshDir = () => tempDir('corral-identity-db-');

/** Writes `sql` into a new identity.db in a fresh state directory, as another program would. */
function storeWith(sql: string): string {
  const dir = freshDir();
  const db = new DatabaseSync(join(dir, 'identity.db'));
  db.exec(sql);
  db.close();
  return dir;
}

/** Asserts Identity.open refuses the store in `dir` as not Corral's, leaving identity.db in rollback-journal mode; returns its tables. */
function refusedAsForeign(dir: string): string[] {
  assert.throws(() => Identity.open(dir), (error: unknown) => {
    assert.equal((error as { code?: string }).code, 'IDENTITY_STORE_FAILED');
    assert.match((error as Error).message, /is not a Corral identity store/);
    return true;
  });
  const db = new DatabaseSync(join(dir, 'identity.db'));
  try {
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'delete');
    return (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
  } finally {
    db.close();
  }
}

describe('the identity store', () => {
  describe('when identity.db is another application’s SQLite file', () => {
    const foreign: Array<[string, string]> = [
      ['a meta table of other columns', "CREATE TABLE meta (k TEXT, v TEXT); INSERT INTO meta VALUES ('issuer', 'theirs');"],
      // With a meta table as Corral's, so that it is the columns that give them away.
      ['an agents table of other columns', 'CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE agents (id TEXT PRIMARY KEY, label TEXT)'],
      ['a signing_keys table of other columns', 'CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE signing_keys (kid TEXT, secret TEXT)'],
    ];
    it('refuses one none of whose tables is Corral\'s: IDENTITY_STORE_FAILED, and leaves the file as it was', () => {
      // Before: Corral switched it to write-ahead logging and wrote its own tables, signing keys included, into it beside the other program's.
      const dir = storeWith("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT); INSERT INTO moz_places VALUES (1, 'https://example.com/')");
      assert.deepEqual(refusedAsForeign(dir), ['moz_places']);
    });

    for (const [what, sql] of foreign) {
      it(`refuses one with ${what}: IDENTITY_STORE_FAILED, and leaves the file as it was`, () => {
        // Before: an uncoded ERR_SQLITE_ERROR escaped Identity.open, with the file switched to write-ahead logging and Corral's other tables added.
        const dir = storeWith(sql);
        assert.equal(refusedAsForeign(dir).length, sql.split('CREATE TABLE').length - 1);
      });
    }
  });

  describe('when identity.db is damaged', () => {
    /** A store with an agent and a token of it, whose `table`'s first page is then overwritten with junk (as a failing disk or a torn copy would). */
    async function damaged(table: string): Promise<{ dir: string; token: string }> {
      const dir = freshDir();
      const id = Identity.open(dir);
      let token: string;
      try {
        id.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
        token = (await id.issueToken('bot')).token;
      } finally {
        id.close();
      }
      damageTable(join(dir, 'identity.db'), table);
      return { dir, token };
    }

    it('refuses to open one whose settings cannot be read: IDENTITY_STORE_FAILED, not an uncoded SQLite error', async () => {
      const { dir } = await damaged('meta');
      assert.throws(() => Identity.open(dir), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'IDENTITY_STORE_FAILED');
        assert.match((error as Error).message, /damaged/);
        return true;
      });
    });

    it('answers IDENTITY_STORE_FAILED when an agent cannot be read: listing agents, and verifying a token, which is refused', async () => {
      const { dir, token } = await damaged('agents');
      const id = Identity.open(dir);
      try {
        assert.throws(() => id.agents.list(), { code: 'IDENTITY_STORE_FAILED' });
        await assert.rejects(id.verifyToken(token), { code: 'IDENTITY_STORE_FAILED' });
      } finally {
        id.close();
      }
    });
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

describe('when a row of identity.db holds a list that is not one', () => {
  it('answers IDENTITY_STORE_FAILED naming the row for an agent\'s scopes, and refuses its token so, not with the parser\'s SyntaxError', async () => {
    const dir = freshDir();
    const id = Identity.open(dir);
    try {
      const bot = id.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com', scopes: ['records:read'] });
      const { token } = await id.issueToken('bot');
      for (const damage of ['["records:read"', '{"records":"read"}', '[1]']) {
        const raw = new DatabaseSync(join(dir, 'identity.db'));
        raw.prepare('UPDATE agents SET scopes = ? WHERE id = ?').run(damage, bot.id);
        raw.close();
        assert.throws(() => id.agents.get('bot'), (error: unknown) => {
          assert.equal((error as { code?: string }).code, 'IDENTITY_STORE_FAILED', damage);
          assert.match((error as Error).message, new RegExp(bot.id));
          return true;
        });
        assert.throws(() => id.agents.list(), { code: 'IDENTITY_STORE_FAILED' });
        await assert.rejects(id.verifyToken(token), { code: 'IDENTITY_STORE_FAILED' });
      }
    } finally {
      id.close();
    }
  });

  it('answers IDENTITY_STORE_FAILED naming the node for its approved or requested commands', async () => {
    const { createDeviceIdentity } = await import('./device.ts');
    const dir = freshDir();
    const id = Identity.open(dir);
    try {
      const device = createDeviceIdentity();
      const raw = new DatabaseSync(join(dir, 'identity.db'));
      raw.prepare("INSERT INTO nodes (device_id, public_key, display_name, platform, status, requested_at, commands, requested_commands, request_id) VALUES (?, ?, 'n', 'linux', 'paired', 1, ?, ?, ?)").run(device.deviceId, device.publicKey, '["system.run"', null, null);
      raw.close();
      for (const read of [() => id.nodes.get(device.deviceId), () => id.nodes.list(), () => id.nodes.get(device.deviceId.slice(0, 12))]) {
        assert.throws(read, (error: unknown) => {
          assert.equal((error as { code?: string }).code, 'IDENTITY_STORE_FAILED');
          assert.match((error as Error).message, new RegExp(device.deviceId));
          return true;
        });
      }
      const again = new DatabaseSync(join(dir, 'identity.db'));
      again.prepare("UPDATE nodes SET commands = '[]', requested_commands = ?, request_id = ? WHERE device_id = ?").run('"system.run"', 'ab'.repeat(16), device.deviceId);
      again.close();
      assert.throws(() => id.nodes.get(device.deviceId), { code: 'IDENTITY_STORE_FAILED' });
    } finally {
      id.close();
    }
  });
});
