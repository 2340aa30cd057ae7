// The node's record of the approval receipts it took, as a restart and a
// damaged file see it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { RECEIPT_CLOCK_SKEW_MS, RECEIPT_VALIDITY_MS, ReceiptSigner, type ApprovalReceipt } from '@corral/gateway';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { TAKEN_RECEIPTS_FILE, TakenReceipts } from './taken-receipts.ts';

const signer = ReceiptSigner.open(new DatabaseSync(':memory:'));

function receipt(issuedAtMs: number): ApprovalReceipt {
  return signer.sign({ v: 2, approvalId: randomUUID(), digest: 'a'.repeat(64), decision: 'allow-once', approvers: ['alice'], quorum: 1, resolvedAtMs: issuedAtMs, issuedAtMs, expiresAtMs: issuedAtMs + RECEIPT_VALIDITY_MS, runId: 'run-1', principal: 'Agent::"payer"', nodeId: 'node-1', command: 'system.run' });
}

describe("the node's record of the receipts it took", () => {
  it('is on disk once take() returns, so the node started again refuses a receipt issued just before it started (regression: the memory went with the process)', () => {
    const dir = tempDir('corral-taken-');
    const now = Date.now();
    const taken = receipt(now - 1_000);
    new TakenReceipts(dir, now - 5_000).take(taken, now);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, TAKEN_RECEIPTS_FILE), 'utf8')), { v: 1, taken: { [taken.approvalId]: taken.expiresAtMs + RECEIPT_CLOCK_SKEW_MS } });
    const restarted = new TakenReceipts(dir, now);
    assert.throws(() => restarted.take(taken, now + 10), { code: 'GATEWAY_APPROVAL_RESOLVED' });
    // Another receipt is taken, and the record holds both until they lapse; then neither.
    const other = receipt(now);
    restarted.take(other, now + 10);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(dir, TAKEN_RECEIPTS_FILE), 'utf8')).taken).sort(), [taken.approvalId, other.approvalId].sort());
    const later = receipt(now + 200_000);
    restarted.take(later, now + 200_000);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(dir, TAKEN_RECEIPTS_FILE), 'utf8')).taken), [later.approvalId]);
    assert.deepEqual(readdirSync(dir), [TAKEN_RECEIPTS_FILE], 'nothing half-written left beside it');
  });

  it('starts empty where there is none yet', () => {
    const dir = tempDir('corral-taken-');
    new TakenReceipts(dir).take(receipt(Date.now()), Date.now());
  });

  it('stops the node starting when others may change it (NODE_CONFIG_INVALID, naming the file and what to do): whoever wrote it could have left a receipt out', { skip: process.getuid === undefined && 'no user ids on this platform' }, () => {
    const dir = tempDir('corral-taken-');
    const path = join(dir, TAKEN_RECEIPTS_FILE);
    writeFileSync(path, '{"v":1,"taken":{}}\n');
    chmodSync(path, 0o666);
    assert.throws(() => new TakenReceipts(dir), (e: { code?: string; message: string }) => e.code === 'NODE_CONFIG_INVALID' && e.message.includes(path) && /changed by other users/.test(e.message) && /chmod go-w/.test(e.message));
    chmodSync(path, 0o600);
    new TakenReceipts(dir).take(receipt(Date.now()), Date.now());
  });

  const damaged: Array<[string, string]> = [
    ['text that is not JSON', '{"v":1,"taken":{'],
    ['another version', '{"v":2,"taken":{}}'],
    ['a list', '[]'],
    ['taken as a list', '{"v":1,"taken":[]}'],
    ['an entry whose time is not a whole number', '{"v":1,"taken":{"a":"soon"}}'],
    ['an empty approval id', '{"v":1,"taken":{"":1}}'],
    ['more than 4,096 entries', JSON.stringify({ v: 1, taken: Object.fromEntries(Array.from({ length: 4097 }, (_, i) => [`id-${i}`, 1])) })],
  ];
  for (const [what, text] of damaged) {
    it(`stops the node starting when it holds ${what} (NODE_CONFIG_INVALID, naming the file and what to do), and is left as it was`, () => {
      const dir = tempDir('corral-taken-');
      const path = join(dir, TAKEN_RECEIPTS_FILE);
      writeFileSync(path, text, { mode: 0o600 });
      assert.throws(
        () => new TakenReceipts(dir),
        (e: { code?: string; message: string }) => e.code === 'NODE_CONFIG_INVALID' && e.message.includes(path) && /remove it once the node has been stopped for 90 seconds/.test(e.message),
      );
      assert.equal(readFileSync(path, 'utf8'), text);
    });
  }
});
