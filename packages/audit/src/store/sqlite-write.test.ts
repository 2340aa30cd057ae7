import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { isBusy, tryBeginImmediate } from './sqlite-write.ts';

describe('tryBeginImmediate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-sqlite-write-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'lock.db');
  const holder = new DatabaseSync(path);
  holder.exec('PRAGMA journal_mode = WAL');
  holder.exec('CREATE TABLE t (x)');
  const other = new DatabaseSync(path);
  after(() => {
    holder.close();
    other.close();
  });

  describe('when another connection holds the write lock', () => {
    it('answers false until the deadline, leaving Error.stackTraceLimit as it was', () => {
      holder.exec('BEGIN IMMEDIATE');
      try {
        const limit = Error.stackTraceLimit;
        assert.equal(tryBeginImmediate(other, path, Date.now() + 60_000), false);
        assert.equal(Error.stackTraceLimit, limit);
      } finally {
        holder.exec('ROLLBACK');
      }
    });
    it('makes the refusal without a stack trace (the costly part of an attempt), and throws AUDIT_STORE_UNAVAILABLE with a stack of its own once the deadline passed', () => {
      holder.exec('BEGIN IMMEDIATE');
      try {
        const limit = Error.stackTraceLimit;
        assert.throws(
          () => tryBeginImmediate(other, path, Date.now() - 1),
          (error: Error & { code?: string; cause?: Error }) => {
            assert.equal(error.code, 'AUDIT_STORE_UNAVAILABLE');
            assert.match(error.stack ?? '', /\n\s+at /);
            assert.doesNotMatch(error.cause?.stack ?? '', /\n\s+at /);
            return true;
          },
        );
        assert.equal(Error.stackTraceLimit, limit);
      } finally {
        holder.exec('ROLLBACK');
      }
    });
  });

  it('takes the write lock when it is free', () => {
    assert.equal(tryBeginImmediate(other, path, Date.now() + 60_000), true);
    assert.equal(other.isTransaction, true);
    other.exec('ROLLBACK');
  });
});

describe('isBusy', () => {
  it("takes SQLITE_BUSY's extended codes (BUSY_RECOVERY 261, BUSY_SNAPSHOT 517, BUSY_TIMEOUT 773) as the lock being held, whatever the message, and no other code", () => {
    for (const errcode of [5, 261, 517, 773]) assert.equal(isBusy({ errcode, message: 'refused' }), true, String(errcode));
    for (const errcode of [1, 6, 11, 262]) assert.equal(isBusy({ errcode, message: 'refused' }), false, String(errcode));
  });
});
