// A page of approvals is bounded by count and by bytes: a thousand pending
// approvals of 256 KiB each are never read, parsed or sent at once.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openGatewayDb } from '../store/store.ts';
import { ApprovalStore } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-approvals-pages-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const KIB = 1024;
const approvals = new ApprovalStore(openGatewayDb(dir));
const big = (n: number) => approvals.create({ digest: createHash('sha256').update(`big ${n}`).digest('hex'), action: { principal: 'Agent::bot', argv: ['echo', String(n)], cwd: '/', env: { BLOB: 'x'.repeat(300 * KIB) } }, quorum: 1 });
const made = Array.from({ length: 12 }, (_, n) => big(n).id);
const resolved = approvals.create({ digest: createHash('sha256').update('settled').digest('hex'), action: { argv: ['ls'] }, quorum: 1 });
approvals.resolve(resolved.id, 'deny', 'alice');

describe('when many large approvals are pending', () => {
  it('serves at most maxBytes of them a page (one at least), oldest first, and the cursor leads through every one exactly once', () => {
    const seen: string[] = [];
    let after: number | undefined;
    let pages = 0;
    do {
      const page = approvals.listPage({ status: 'pending', limit: 1000, maxBytes: 1024 * KIB, ...(after !== undefined ? { after } : {}) });
      assert.ok(page.approvals.length >= 1 && page.approvals.length <= 3, `a page of ${page.approvals.length}`);
      seen.push(...page.approvals.map((a) => a.id));
      after = page.nextAfter ?? undefined;
      pages += 1;
    } while (after !== undefined);
    assert.deepEqual(seen, made);
    assert.equal(pages, 4);
  });

  it('serves one approval larger than maxBytes alone, and at most `limit` a page', () => {
    assert.deepEqual(approvals.listPage({ status: 'pending', limit: 1000, maxBytes: 1 }).approvals.map((a) => a.id), made.slice(0, 1));
    const two = approvals.listPage({ status: 'pending', limit: 2, maxBytes: 64 * 1024 * KIB });
    assert.deepEqual(two.approvals.map((a) => a.id), made.slice(0, 2));
    assert.ok(two.nextAfter !== null);
  });

  it('lists every approval, settled ones too, when no status is given', () => {
    const all = approvals.listPage({ limit: 100, maxBytes: 64 * 1024 * KIB });
    assert.deepEqual(all.approvals.map((a) => a.id), [...made, resolved.id]);
    assert.equal(all.nextAfter, null);
  });

  it('bounds the history read newest page first by bytes too', () => {
    const page = approvals.page({ limit: 1000, maxBytes: 1024 * KIB });
    assert.deepEqual(page.approvals.map((a) => a.id), [...made.slice(-3), resolved.id]);
    assert.ok(page.nextBefore !== null);
  });
});

describe('how many approvals are pending', () => {
  it('counts those pending whose time is not up, without reading one (regression: the status page parsed every pending approval to count them)', () => {
    let now = Date.now();
    const clocked = new ApprovalStore(openGatewayDb(mkdtempSync(join(dir, 'count-'))), () => now);
    assert.equal(clocked.pendingTotal(), 0);
    const digest = (n: number) => createHash('sha256').update(`count ${n}`).digest('hex');
    const [a, b] = [1, 2].map((n) => clocked.create({ digest: digest(n), action: { argv: ['ls'] }, quorum: 1, ttlMs: 60_000 * n }));
    clocked.resolve(a!.id, 'deny', 'alice');
    clocked.create({ digest: digest(3), action: { argv: ['ls'] }, quorum: 1, ttlMs: 60_000 });
    assert.equal(clocked.pendingTotal(), 2);
    now += 90_000;
    assert.equal(clocked.pendingTotal(), 1, 'the one whose time is up is not counted');
    assert.equal(clocked.get(b!.id).status, 'pending');
  });
});
