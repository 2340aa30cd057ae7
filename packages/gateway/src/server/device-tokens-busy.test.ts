// Device tokens while another process (a `corral` command) holds
// gateway.db's write lock: a token is handed out only once stored, and the
// connect that asks for one never waits inside SQLite for the lock.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { GATEWAY_DB_FILE, openGatewayDb } from '../store/store.ts';
import { DeviceTokens } from './device-tokens.ts';

describe('DeviceTokens.issue', () => {
  describe('when another connection holds the write lock of gateway.db', () => {
    it('returns no token at once (not after the busy timeout), stores none, keeps the tokens issued before valid, and issues again once the lock is free', () => {
      const stateDir = mkdtempSync(join(tmpdir(), 'corral-device-tokens-'));
      // openGatewayDb's busy_timeout (5 s): a write that waited inside SQLite would take that long.
      const db = openGatewayDb(stateDir);
      const holder = new DatabaseSync(join(stateDir, GATEWAY_DB_FILE));
      try {
        const tokens = new DeviceTokens(db);
        const first = tokens.issue('device-1', 'node');
        assert.ok(first);
        holder.exec('BEGIN IMMEDIATE');
        let issued: ReturnType<DeviceTokens['issue']> | 'threw';
        const started = performance.now();
        try {
          issued = tokens.issue('device-1', 'node');
        } catch {
          issued = 'threw';
        } finally {
          holder.exec('ROLLBACK');
        }
        const ms = performance.now() - started;
        assert.equal(issued, undefined);
        assert.ok(ms < 2_500, `issue() took ${Math.round(ms)} ms`);
        assert.equal(tokens.verify('device-1', 'node', first.deviceToken), true);
        assert.equal((db.prepare('SELECT COUNT(*) AS n FROM device_tokens').get() as { n: number }).n, 1, 'nothing stored');
        const next = tokens.issue('device-1', 'node');
        assert.ok(next);
        assert.equal(tokens.verify('device-1', 'node', next.deviceToken), true);
      } finally {
        holder.close();
        db.close();
        rmSync(stateDir, { recursive: true, force: true });
      }
    });
  });

  describe('when the store cannot be written for another reason', () => {
    it('throws, as before: only a held lock is skipped', () => {
      const db = new DatabaseSync(':memory:');
      const tokens = new DeviceTokens(db);
      db.exec('PRAGMA query_only = ON');
      assert.throws(() => tokens.issue('device-1', 'node'));
    });
  });
});
