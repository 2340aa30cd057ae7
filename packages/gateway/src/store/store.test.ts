// gateway.db that cannot be opened is the host's problem, not a wrong
// configuration: its own code, and a message that names the file and what to do.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { holdWriteLock } from '../../../../scripts/testing/sqlite-lock.ts';
import { GatewayError } from '../errors.ts';
import { openGatewayDb } from './store.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'corral-gateway-store-'));
  dirs.push(dir);
  return dir;
}

/** What openGatewayDb threw for `dir`. */
function refusal(dir: string): GatewayError {
  try {
    openGatewayDb(dir).close();
  } catch (error) {
    assert.ok(error instanceof GatewayError, String(error));
    return error;
  }
  assert.fail('gateway.db was opened');
}

describe('openGatewayDb', () => {
  it('opens a fresh state directory, creating gateway.db', () => {
    openGatewayDb(stateDir()).close();
  });

  it("creates gateway.db while another process holds the new file's write lock a moment (turning it to WAL was refused at once, without waiting: GATEWAY_STORE_FAILED)", async () => {
    const dir = stateDir();
    const holder = await holdWriteLock(join(dir, 'gateway.db'), 300);
    try {
      openGatewayDb(dir).close();
    } finally {
      await holder.ended;
    }
  });

  describe('when gateway.db is not a database', () => {
    it('throws GATEWAY_STORE_FAILED naming the file and saying to restore or move it aside (regression: GATEWAY_CONFIG_INVALID, "the gateway state could not be opened")', () => {
      const dir = stateDir();
      writeFileSync(join(dir, 'gateway.db'), 'not a database: text long enough for SQLite to read a header from it\n', { mode: 0o600 });
      const error = refusal(dir);
      assert.equal(error.code, 'GATEWAY_STORE_FAILED');
      assert.ok(error.message.startsWith(`cannot open the gateway state ${join(dir, 'gateway.db')}: it is not a database, or is damaged: restore it from a backup, or move it aside`), error.message);
      assert.equal((error.cause as { errcode?: number }).errcode, 26);
    });
  });

  describe('when a directory stands in the place of gateway.db', () => {
    it('throws GATEWAY_STORE_FAILED naming the file and saying it is a directory (regression: GATEWAY_CONFIG_INVALID)', () => {
      const dir = stateDir();
      mkdirSync(join(dir, 'gateway.db'));
      const error = refusal(dir);
      assert.equal(error.code, 'GATEWAY_STORE_FAILED');
      assert.ok(error.message.startsWith(`cannot open the gateway state ${join(dir, 'gateway.db')}: it is a directory, not a file: move it aside`), error.message);
    });
  });
});
