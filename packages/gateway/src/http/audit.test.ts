// The audit explorer: search and page, one record with an inclusion proof
// that verifies on its own against the signed checkpoint, and whole-log verification.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAuditLog, openAuditReader, parseCheckpoint, sha256Hasher, verifyCheckpointSignature, verifyInclusion } from '@corral/audit';
import { startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

describe('the audit explorer', () => {
  let t: TestGateway;
  let auditor: ApiClient;
  before(async () => {
    t = await startTestGateway();
    const admin = await t.as('root', ['admin']);
    auditor = await t.as('audrey', ['auditor']);
    for (const name of ['invoice-bot', 'report-bot']) {
      t.gw.identity.agents.create({ name, process: 'invoice-intake', owner: 'owner@example.com' });
      await admin.post(`/api/agents/${name}/suspend`, { reason: 'audit explorer test' });
    }
  });
  after(() => t.close());

  it('shows one record with a proof that verifies against the signed checkpoint, sealing one when none covers it yet', async () => {
    const list = await auditor.get('/api/audit?action=agent.suspend');
    const seq = list.body.records[0].seq as number;
    const answer = await auditor.get(`/api/audit/${seq}`);
    assert.equal(answer.status, 200);
    const { record, proof } = answer.body;
    assert.equal(record.seq, seq);
    assert.equal(record.event.action, 'agent.suspend');
    assert.equal(proof.verified, true);
    // Check it independently, the way an auditor would with the log's public key.
    const checkpoint = parseCheckpoint(proof.checkpoint);
    const reader = await openAuditReader({ stateDir: t.state });
    try {
      verifyCheckpointSignature(reader.publicKey(), checkpoint);
    } finally {
      await reader.close();
    }
    assert.equal(checkpoint.root, proof.rootHash);
    assert.equal(checkpoint.size, proof.treeSize);
    verifyInclusion(sha256Hasher, proof.leafIndex, proof.treeSize, record.hash, proof.path, proof.rootHash);
    assert.throws(() => verifyInclusion(sha256Hasher, proof.leafIndex, proof.treeSize, 'ab'.repeat(32), proof.path, proof.rootHash), { code: 'AUDIT_PROOF_MISMATCH' });
  });

  it('verifies the whole log as corral audit verify does', async () => {
    const answer = await auditor.get('/api/audit/verify');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.ok, true);
    assert.equal(answer.body.firstBad, null);
    assert.equal(answer.body.damage, null);
    assert.ok(answer.body.records >= 4);
    assert.ok(answer.body.checkpoints >= 1);
  });


  it('searches by text, actor and action, and pages newest first', async () => {
    const byText = await auditor.get('/api/audit?q=REPORT-BOT');
    assert.ok(byText.body.records.length >= 1);
    assert.ok(byText.body.records.every((r: { summary: string }) => r.summary.includes('report-bot')));
    const byActor = await auditor.get('/api/audit?actor=root');
    assert.ok(byActor.body.records.length >= 3);
    assert.ok(byActor.body.records.every((r: { actor: { id: string } }) => r.actor.id === 'root'));
    const page = await auditor.get('/api/audit?limit=1');
    assert.equal(page.body.records.length, 1);
    assert.equal(page.body.size, page.body.records[0].seq + 1);
    const next = await auditor.get(`/api/audit?limit=1&before=${page.body.nextBefore}`);
    assert.equal(next.body.records[0].seq, page.body.records[0].seq - 1);
    const future = await auditor.get(`/api/audit?since=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`);
    assert.deepEqual(future.body.records, []);
  });

  it('answers 400 for a malformed sequence number or time, and 404 for a record past the end', async () => {
    assert.equal((await auditor.get('/api/audit/-1')).status, 400);
    assert.equal((await auditor.get('/api/audit/12abc')).status, 400);
    assert.equal((await auditor.get('/api/audit?since=yesterday-ish')).status, 400);
    const missing = await auditor.get('/api/audit/999999');
    assert.deepEqual([missing.status, missing.body.error], [404, 'not_found']);
  });

  it('answers a record past the end without naming where the log is kept', async () => {
    const missing = await auditor.get('/api/audit/999999');
    assert.deepEqual([missing.status, missing.body.code], [404, 'AUDIT_NOT_FOUND']);
    assert.equal(JSON.stringify(missing.body).includes(t.state), false, JSON.stringify(missing.body));
  });
});

describe('verifying a large log over the HTTP API', () => {
  let t: TestGateway;
  before(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-http-verify-'));
    const log = await openAuditLog({ stateDir });
    await Promise.all(Array.from({ length: 40_000 }, (_, i) => log.append({ actor: { kind: 'service', id: 'fill' }, action: 'test.fill', resource: { kind: 'record', id: String(i) } })));
    await log.close();
    t = await startTestGateway({ stateDir });
  });
  after(async () => {
    await t.close();
    rmSync(t.state, { recursive: true, force: true });
  });

  it('answers requests made while the log is being verified with that verification, not one each', async () => {
    const auditor = await t.as('audrey', ['auditor']);
    const answers = await Promise.all(Array.from({ length: 8 }, () => auditor.get('/api/audit/verify')));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.ok(answers.every((a) => a.body.ok === true && a.body.records >= 40_000));
    // Eight requests sent at once reach the gateway within a few milliseconds of each other, well inside one verification.
    // Verifications run side by side would end batches apart: those that share one end together.
    const verifications = new Set(answers.map((a) => `${a.body.verifiedAtMs}+${a.body.durationMs}`)).size;
    assert.ok(verifications < answers.length, `${verifications} verifications served ${answers.length} requests`);
    const later = await auditor.get('/api/audit/verify');
    assert.ok(later.body.verifiedAtMs > answers[0]!.body.verifiedAtMs, 'a request after it verifies again');
  });
});
