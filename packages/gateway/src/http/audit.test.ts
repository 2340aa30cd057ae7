// The audit explorer: search and page, one record with an inclusion proof
// that verifies on its own against the signed checkpoint, and whole-log verification.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

describe('verifying the log when its witness file cannot be used', () => {
  let t: TestGateway;
  let auditor: ApiClient;
  before(async () => {
    t = await startTestGateway();
    auditor = await t.as('audrey', ['auditor']);
  });
  after(() => t.close());
  const witness = () => join(t.state, 'audit-witness.json');

  it('answers 503 AUDIT_STORE_UNAVAILABLE naming the witness file and what to do, not the state directory, when the witness is a directory (regression: a bare 500)', async () => {
    rmSync(witness(), { recursive: true, force: true });
    mkdirSync(witness());
    try {
      const answer = await auditor.get('/api/audit/verify');
      assert.deepEqual([answer.status, answer.body.error, answer.body.code], [503, 'unavailable', 'AUDIT_STORE_UNAVAILABLE']);
      assert.match(answer.body.message, /not verified.*audit-witness\.json.*cannot be read.*can read/);
      assert.ok(!answer.body.message.includes(t.state), 'the state directory stays in the gateway');
      assert.ok(!JSON.stringify(answer.body).includes('EISDIR'), 'no system error text');
    } finally {
      rmSync(witness(), { recursive: true, force: true });
    }
  });

  it('answers 503 AUDIT_CHECKPOINT_MALFORMED when the witness holds no checkpoint, and verifies again once it is put right', async () => {
    writeFileSync(witness(), 'not a checkpoint\n');
    try {
      const answer = await auditor.get('/api/audit/verify');
      assert.deepEqual([answer.status, answer.body.code], [503, 'AUDIT_CHECKPOINT_MALFORMED']);
      assert.match(answer.body.message, /audit-witness\.json/);
      assert.ok(!answer.body.message.includes(t.state));
    } finally {
      rmSync(witness(), { force: true });
    }
    const again = await auditor.get('/api/audit/verify');
    assert.deepEqual([again.status, again.body.ok], [200, true]);
  });
});

describe('searching the audit log by time', () => {
  let t: TestGateway;
  let auditor: ApiClient;
  before(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-http-audit-time-'));
    const log = await openAuditLog({ stateDir });
    // Seq order is not time order: the third record was appended late, with an earlier time (another process, a clock set back).
    for (const [id, time] of [['jan-01', '2026-01-01T10:00:00.000Z'], ['jan-02', '2026-01-02T10:00:00.000Z'], ['dec-31', '2025-12-31T10:00:00.000Z'], ['jan-03', '2026-01-03T10:00:00.000Z'], ['jan-04', '2026-01-04T10:00:00.000Z']] as const) {
      await log.append({ time, actor: { kind: 'service', id: 'clock' }, action: 'test.tick', resource: { kind: 'day', id } });
    }
    await log.close();
    t = await startTestGateway({ stateDir });
    auditor = await t.as('audrey', ['auditor']);
  });
  after(async () => {
    await t.close();
    rmSync(t.state, { recursive: true, force: true });
  });

  const days = async (query: string) => {
    const answer = await auditor.get(`/api/audit?action=test.tick&${query}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return (answer.body.records as Array<{ resource: { id: string } }>).map((r) => r.resource.id);
  };

  it('returns only records whose time is inside the bounds: neither the record after until, nor one appended late with an earlier time (regression: both were listed)', async () => {
    assert.deepEqual(await days('since=2026-01-01T00:00:00Z&until=2026-01-02T12:00:00Z'), ['jan-02', 'jan-01']);
    assert.deepEqual(await days('since=2026-01-02T00:00:00Z&until=2026-01-03T12:00:00Z'), ['jan-03', 'jan-02']);
  });

  it('takes a date as the whole day, and an offset as the instant it names, as corral audit export does', async () => {
    assert.deepEqual(await days('since=2026-01-02&until=2026-01-02'), ['jan-02']);
    assert.deepEqual(await days(`since=${encodeURIComponent('2026-01-03T11:00:00+01:00')}&until=${encodeURIComponent('2026-01-03T05:00:00-05:00')}`), ['jan-03']);
  });

  it('refuses what Date.parse would have guessed at (12 as the year 2001, 2026-02-30 as March 2), naming the parameter', async () => {
    for (const [query, field] of [['since=12', 'since'], ['since=1', 'since'], ['until=2026-02-30', 'until'], ['until=2026-01-01T24:00:00Z', 'until'], ['since=2026-01-01T10:00:00', 'since'], ['until=yesterday', 'until']] as const) {
      const answer = await auditor.get(`/api/audit?${query}`);
      assert.deepEqual([answer.status, answer.body.error], [400, 'invalid_request'], query);
      assert.match(answer.body.message, new RegExp(`^${field} must be a date`), query);
    }
  });

  it('refuses since later than until, and names the one parameter that is wrong', async () => {
    const reversed = await auditor.get('/api/audit?since=2026-01-03&until=2026-01-01');
    assert.deepEqual([reversed.status, reversed.body.message], [400, 'since must not be later than until']);
    assert.match((await auditor.get('/api/audit?limit=0')).body.message, /^limit /);
    assert.match((await auditor.get('/api/audit?effect=maybe')).body.message, /^effect /);
    assert.match((await auditor.get('/api/activity?limit=501')).body.message, /^limit /);
    assert.match((await auditor.get('/api/activity?effect=maybe')).body.message, /^effect /);
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
