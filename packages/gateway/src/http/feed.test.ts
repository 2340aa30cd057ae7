// The feed behind the live activity stream: records another process appends
// arrive through a poll of the log's head, which must outlive a failed read.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AuditError, openAuditLog, type AuditRecord, type AuditStore } from '@corral/audit';
import { AuditFeed } from './feed.ts';
import { until } from '../../../../scripts/testing/until.ts';

/** The store, with head() failing while `failing.now` is set (or saying it is closed, `failing.closed`), counting its calls. */
function flaky(store: AuditStore) {
  const failing = { now: false, closed: false, heads: 0 };
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'head') {
        return async () => {
          failing.heads++;
          if (failing.now) throw new AuditError('AUDIT_STORE_UNAVAILABLE', 'the connection to the log was lost');
          if (failing.closed) throw new AuditError('AUDIT_CLOSED', 'the audit log is closed');
          return target.head();
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: proxy, failing };
}

describe('the audit feed', () => {
  it('goes on following the log after a read that failed (a lost database connection), so the records appended since still arrive (regression: one failure stopped it for good)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-feed-'));
    const log = await openAuditLog({ stateDir: dir });
    const feed = new AuditFeed();
    try {
      const { store, failing } = flaky(log.store);
      const seen: AuditRecord[] = [];
      feed.subscribe((r) => seen.push(r));
      await feed.follow(store, 10);
      failing.now = true;
      const before = failing.heads;
      await until('a failed poll', () => failing.heads > before);
      failing.now = false;
      await log.append({ actor: { kind: 'human', id: 'cli-user' }, action: 'agent.create', resource: { kind: 'agent', id: 'after-the-failure' } });
      await until('the record appended after the failure', () => seen.length > 0);
      assert.equal(seen[0]!.event.resource.id, 'after-the-failure');
    } finally {
      feed.stop();
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a log whose reads keep failing less and less often, and stops reading one that says it is closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-feed-'));
    const log = await openAuditLog({ stateDir: dir });
    const feed = new AuditFeed();
    try {
      const { store, failing } = flaky(log.store);
      await feed.follow(store, 10);
      failing.now = true;
      const from = failing.heads;
      await new Promise((r) => setTimeout(r, 400));
      // Forty ticks: read at ticks 1, 2, 4, 8, 16 and 32 apart, not forty times.
      assert.ok(failing.heads - from <= 8, `${failing.heads - from} reads in forty ticks`);
      failing.now = false;
      failing.closed = true;
      const failed = failing.heads;
      await until('the next read', () => failing.heads > failed);
      const last = failing.heads;
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(failing.heads, last, 'no read after the log said it is closed');
    } finally {
      feed.stop();
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads nothing more once stopped, even when stopped before follow() got going (the gateway stopping as it starts)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-feed-'));
    const log = await openAuditLog({ stateDir: dir });
    const feed = new AuditFeed();
    try {
      const { store, failing } = flaky(log.store);
      const following = feed.follow(store, 5);
      feed.stop();
      await following;
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(failing.heads, 1, 'only the head read that follow() began with');
    } finally {
      feed.stop();
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
