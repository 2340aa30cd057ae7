// Policies from the console: the active set, a candidate validated, tested
// and replayed against the recorded decisions, and activation with a
// compare-and-swap on the active hash, an atomic directory swap and a hot reload.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { openAuditLog } from '@corral/audit';
import { countingWorkers } from '../../../../scripts/testing/workers.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';
import { GatewayClient } from '../client/client.ts';
import { type ApiClient, auditEvents, ECHO_CASES, startTestGateway, type TestGateway } from './testing.ts';

const ALLOW_ECHO = '@id("echo")\npermit (principal, action == Action::"system.run", resource == Command::"echo");\n';
const FORBID_ECHO = '@id("no-echo")\nforbid (principal, action == Action::"system.run", resource == Command::"echo");\n';

describe('policies', () => {
  let state: string;
  let t: TestGateway;
  let node: NodePeer;
  let operator: GatewayClient;
  let admin: ApiClient;
  let auditor: ApiClient;
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-http-policies-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), ALLOW_ECHO);
    writeFileSync(join(state, 'policies', 'cases.yaml'), ECHO_CASES);
    t = await startTestGateway({ stateDir: state });
    node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run']);
    operator = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.admin'] });
    admin = await t.as('root', ['admin']);
    auditor = await t.as('audrey', ['auditor']);
  });
  after(async () => {
    await operator.close();
    await node.close();
    await t.close();
    rmSync(state, { recursive: true, force: true });
  });

  const run = (argv: string[]) => operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv }, idempotencyKey: randomUUID() }).then(
    () => 'ran' as const,
    () => 'refused' as const,
  );

  it('shows the active set: its files, their hash and the schema', async () => {
    const active = await auditor.get('/api/policies');
    assert.equal(active.status, 200);
    assert.deepEqual(active.body.files.map((f: { name: string }) => f.name), ['cases.yaml', 'main.cedar']);
    assert.match(active.body.hash, /^[0-9a-f]{64}$/);
    assert.match(active.body.schema, /action "system.run"/);
  });

  it('validates a candidate, naming the file and line of each issue', async () => {
    const good = await auditor.post('/api/policies/validate', { files: [{ name: 'main.cedar', text: FORBID_ECHO }] });
    assert.deepEqual(good.body, { ok: true, issues: [] });
    const bad = await auditor.post('/api/policies/validate', { files: [{ name: 'main.cedar', text: `${ALLOW_ECHO}\npermit (principal, action == Action::"no.such.action", resource);\n` }] });
    assert.equal(bad.body.ok, false);
    assert.equal(bad.body.issues[0].file, 'main.cedar');
    assert.equal(bad.body.issues[0].line, 4);
    const hostile = await auditor.post('/api/policies/validate', { files: [{ name: '../../etc/passwd.cedar', text: '' }] });
    assert.equal(hostile.status, 400);
  });

  it('checks a large candidate off the event loop: other requests are answered while it is validated and tested (it stalled every connection for seconds)', async () => {
    let text = '';
    for (let i = 0; text.length < 300_000; i++) text += `@id("p${i}")\npermit (principal == Agent::"a${i}", action in Action::"node.command", resource) when { context has argv && context.argv.contains("tool-${i}") };\n`;
    const files = [{ name: 'big.cedar', text }];
    for (const [path, body] of [['/api/policies/validate', { files }], ['/api/policies/test', { files, cases: ECHO_CASES }]] as const) {
      let checked = false;
      const checking = admin.post(path, body).then((r) => {
        checked = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await auditor.get('/api/policies')).status, 200);
      assert.equal(checked, false, `${path}: another request was answered while the candidate was checked`);
      const answer = await checking;
      assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
      assert.equal(answer.body.ok, path.endsWith('validate'), path);
    }
  });

  it('answers 503 with a message when too many candidates wait to be checked, and checks the others', async () => {
    let text = '';
    // Big enough that checks overlap: each takes a second or so.
    for (let i = 0; text.length < 100_000; i++) text += `@id("q${i}")\npermit (principal == Agent::"a${i}", action in Action::"node.command", resource) when { context has argv && context.argv.contains("tool-${i}") };\n`;
    const files = [{ name: 'main.cedar', text }];
    const answers = await Promise.all(Array.from({ length: 12 }, () => auditor.post('/api/policies/validate', { files })));
    const busy = answers.filter((a) => a.status === 503);
    assert.equal(answers.filter((a) => a.status === 200 && a.body.ok === true).length, 10);
    assert.deepEqual(busy.map((a) => [a.body.error, a.body.code]), [['unavailable', 'POLICY_ENGINE_BUSY'], ['unavailable', 'POLICY_ENGINE_BUSY']]);
    assert.match(busy[0]!.body.message, /wait to be checked already; try again/);
  });

  it('tests a candidate against the active cases, and against cases sent with it', async () => {
    const kept = await auditor.post('/api/policies/test', { files: [{ name: 'main.cedar', text: ALLOW_ECHO }] });
    assert.deepEqual(kept.body.results.map((r: { name: string; pass: boolean }) => [r.name, r.pass]), [['operator may echo', true]]);
    const broken = await auditor.post('/api/policies/test', { files: [{ name: 'main.cedar', text: FORBID_ECHO }] });
    assert.equal(broken.body.ok, false);
    assert.deepEqual(broken.body.results.map((r: { expected: string; actual: string }) => [r.expected, r.actual]), [['allow', 'deny']]);
    const sent = await auditor.post('/api/policies/test', { files: [{ name: 'main.cedar', text: FORBID_ECHO }], cases: ECHO_CASES.replace('expect: allow', 'expect: deny') });
    assert.equal(sent.body.ok, true);
  });

  it('reads and runs the cases of one test request on one worker thread (regression: read on a worker of the gateway\'s own and run on another, so one request could hold four)', async () => {
    const { started } = await countingWorkers(async () => {
      const answer = await auditor.post('/api/policies/test', { files: [{ name: 'main.cedar', text: ALLOW_ECHO }], cases: ECHO_CASES });
      assert.deepEqual([answer.status, answer.body.ok], [200, true]);
    });
    assert.equal(started, 1);
  });

  it('replays the recorded decisions under a candidate and lists each one it would change', async () => {
    assert.equal(await run(['echo', 'recorded']), 'ran');
    const replay = await auditor.post('/api/policies/replay', { files: [{ name: 'main.cedar', text: FORBID_ECHO }] });
    assert.equal(replay.status, 200);
    assert.ok(replay.body.replayed >= 1);
    const change = replay.body.changed.find((c: { action: string }) => c.action === 'system.run');
    assert.deepEqual([change.principal, change.was, change.now], ['Human::"operator"', 'allow', 'deny']);
    const same = await auditor.post('/api/policies/replay', { files: [{ name: 'main.cedar', text: ALLOW_ECHO }] });
    assert.deepEqual(same.body.changed, []);
  });

  it('keeps the active set when the candidate does not validate (400 with issues), and refuses a stale baseHash (409)', async () => {
    const before = (await admin.get('/api/policies')).body;
    const invalid = await admin.post('/api/policies/activate', { files: [{ name: 'main.cedar', text: 'permit (principal, action, resource' }], baseHash: before.hash });
    assert.equal(invalid.status, 400);
    assert.ok(invalid.body.issues.length > 0);
    const stale = await admin.post('/api/policies/activate', { files: [{ name: 'main.cedar', text: FORBID_ECHO }], baseHash: 'f'.repeat(64) });
    assert.deepEqual([stale.status, stale.body.error], [409, 'conflict']);
    assert.equal((await admin.get('/api/policies')).body.hash, before.hash);
    assert.equal(await run(['echo', 'still allowed']), 'ran');
  });

  it('refuses a bad replay limit or a missing baseHash before checking the candidate, naming the field (regression: seconds of Cedar first, then an invalid_policy that did not say what was wrong with the request)', async () => {
    const broken = [{ name: 'main.cedar', text: 'permit (principal, action, resource' }];
    for (const [path, body, field] of [
      ['/api/policies/replay', { files: broken, limit: 0 }, 'limit'],
      ['/api/policies/replay', { files: broken, limit: '10' }, 'limit'],
      ['/api/policies/activate', { files: broken }, 'baseHash'],
    ] as const) {
      const answer = await admin.post(path, body);
      assert.deepEqual([answer.status, answer.body.error], [400, 'invalid_request'], `${path} ${JSON.stringify(body).slice(-20)}`);
      assert.match(answer.body.message, new RegExp(`^${field} `));
    }
  });

  it('activates a candidate: the directory is swapped at once, decisions follow it without a restart, and the log records who', async () => {
    const before = (await admin.get('/api/policies')).body;
    const activated = await admin.post('/api/policies/activate', { files: [{ name: 'main.cedar', text: FORBID_ECHO }], baseHash: before.hash });
    assert.equal(activated.status, 200);
    assert.notEqual(activated.body.hash, before.hash);
    assert.equal(lstatSync(join(state, 'policies')).isSymbolicLink(), true);
    assert.equal(readFileSync(join(state, 'policies', 'main.cedar'), 'utf8'), FORBID_ECHO);
    assert.equal((await admin.get('/api/policies')).body.hash, activated.body.hash);
    assert.equal(await run(['echo', 'now forbidden']), 'refused');
    const again = await admin.post('/api/policies/activate', { files: [{ name: 'main.cedar', text: ALLOW_ECHO }], baseHash: before.hash });
    assert.equal(again.status, 409, 'the old base hash is stale now');
    const record = (await auditEvents(state)).find((e) => e.action === 'policy.activate');
    assert.deepEqual([record?.actor, record?.resource.id], [{ kind: 'human', id: 'root' }, activated.body.hash]);
  });
});

describe('activating a policy set', () => {
  it('records a set of 200 files with long names (its record lists the first 100 and the count; regression: the record was too large, the activation stood unrecorded)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'corral-http-policies-many-'));
    const t = await startTestGateway({ stateDir: state });
    try {
      const admin = await t.as('root', ['admin']);
      const name = (i: number) => `${'d'.repeat(95)}${String(i).padStart(3, '0')}/${'e'.repeat(100)}/${'f'.repeat(100)}/p.cedar`;
      const files = Array.from({ length: 200 }, (_, i) => ({ name: name(i), text: `@id("p${i}") permit (principal, action == Action::"system.run", resource == Command::"echo${i}");\n` }));
      const activated = await admin.post('/api/policies/activate', { files, baseHash: (await admin.get('/api/policies')).body.hash });
      assert.equal(activated.status, 200, JSON.stringify(activated.body));
      const record = (await auditEvents(state)).find((e) => e.action === 'policy.activate');
      assert.deepEqual([(record?.details as { fileCount: number }).fileCount, (record?.details as { files: string[] }).files.length], [200, 100]);
    } finally {
      await t.close();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('puts the set it replaced back when the audit log cannot take the record (regression: the new set stayed in force, unrecorded)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'corral-http-policies-unrecorded-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), FORBID_ECHO);
    const log = await openAuditLog({ stateDir: state });
    const t = await startTestGateway({ stateDir: state, audit: log });
    try {
      const admin = await t.as('root', ['admin']);
      const before = (await admin.get('/api/policies')).body.hash;
      await log.close();
      const activated = await admin.post('/api/policies/activate', { files: [{ name: 'main.cedar', text: ALLOW_ECHO }], baseHash: before });
      assert.ok(activated.status >= 500, `answered ${activated.status}`);
      assert.equal((await admin.get('/api/policies')).body.hash, before);
      assert.equal(readFileSync(join(state, 'policies', 'main.cedar'), 'utf8'), FORBID_ECHO);
    } finally {
      await t.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('activating while another process holds the policy directory\'s activation lock', () => {
  let state: string;
  let t: TestGateway;
  let admin: ApiClient;
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-http-policies-locked-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), FORBID_ECHO);
    t = await startTestGateway({ stateDir: state });
    admin = await t.as('root', ['admin']);
  });
  after(async () => {
    await t.close();
    rmSync(state, { recursive: true, force: true });
  });

  /** Takes the activation lock as another process's activation (a second gateway, `corral approvals revoke`) does: its own connection to the lock file. */
  function holdActivationLock(): { held: () => boolean; release: () => void } {
    mkdirSync(join(state, 'policies.versions'), { recursive: true });
    const holder = new DatabaseSync(join(state, 'policies.versions', 'activation.lock'));
    holder.exec('BEGIN IMMEDIATE');
    return {
      held: () => holder.isTransaction,
      release: () => {
        holder.exec('ROLLBACK');
        holder.close();
      },
    };
  }

  /** Posts an activation and notes when it is answered. */
  function activate(files: Array<{ name: string; text: string }>, baseHash: string) {
    const answer = { settled: false, reply: admin.post('/api/policies/activate', { files, baseHash }) };
    answer.reply.then(
      () => (answer.settled = true),
      () => (answer.settled = true),
    );
    return answer;
  }

  /** Asks for the status several times over a second, each answered while the activation still waits (the candidate is checked on a worker first, then the lock is waited for). */
  async function answeredMeanwhile(lock: { held: () => boolean }, activation: { settled: boolean }): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const status = await admin.get('/api/status');
      assert.equal(status.status, 200);
      assert.equal(activation.settled, false, 'answered while the activation still waits for the lock');
      assert.equal(lock.held(), true);
    }
  }

  it('answers other requests while the activation waits, and activates once the lock is let go (regression: the wait was inside SQLite and stalled every connection for up to 10 s)', async () => {
    const before = (await admin.get('/api/policies')).body.hash;
    const lock = holdActivationLock();
    let activation;
    try {
      activation = activate([{ name: 'main.cedar', text: ALLOW_ECHO }], before);
      await answeredMeanwhile(lock, activation);
    } finally {
      lock.release();
    }
    const activated = await activation.reply;
    assert.equal(activated.status, 200, JSON.stringify(activated.body));
    assert.equal((await admin.get('/api/policies')).body.hash, activated.body.hash);
    assert.equal(readFileSync(join(state, 'policies', 'main.cedar'), 'utf8'), ALLOW_ECHO);
  });

  it('answers 409 conflict, the active set unchanged, when the lock is held past the wait, and answers other requests meanwhile', async () => {
    const before = (await admin.get('/api/policies')).body.hash;
    const lock = holdActivationLock();
    try {
      const activation = activate([{ name: 'main.cedar', text: FORBID_ECHO }], before);
      await answeredMeanwhile(lock, activation);
      // The gateway's wait is 10 s.
      const refused = await activation.reply;
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.equal(refused.body.error, 'conflict');
    } finally {
      lock.release();
    }
    assert.equal((await admin.get('/api/policies')).body.hash, before);
    assert.equal(readFileSync(join(state, 'policies', 'main.cedar'), 'utf8'), ALLOW_ECHO);
  });
});

describe('replaying a candidate that changes how many approvers an ask needs', () => {
  it('reports a recorded ask the candidate would let fewer approvers allow (regression: @quorum("2") lowered to one approver was replayed as no change)', async () => {
    const asks = (quorum: number) => [{ name: 'main.cedar', text: `@id("printf-asks") @approval("required") @quorum("${quorum}") permit (principal, action == Action::"system.run", resource == Command::"printf");\n` }];
    const state = mkdtempSync(join(tmpdir(), 'corral-http-policies-quorum-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), asks(2)[0]!.text);
    const t = await startTestGateway({ stateDir: state });
    const node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run']);
    const operator = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.admin'] });
    try {
      await assert.rejects(operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['printf', 'two-eyes'] }, timeoutMs: 100, idempotencyKey: randomUUID() }));
      const auditor = await t.as('audrey', ['auditor']);
      const lowered = await auditor.post('/api/policies/replay', { files: asks(1) });
      assert.deepEqual(lowered.body.changed.map((c: Record<string, unknown>) => [c.resource, c.was, c.wasQuorum, c.now, c.quorum]), [['Command::"printf"', 'ask', 2, 'ask', 1]]);
      assert.deepEqual((await auditor.post('/api/policies/replay', { files: asks(2) })).body.changed, []);
    } finally {
      await operator.close();
      await node.close();
      await t.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('replaying a candidate over actions a standing grant covers', () => {
  it('judges them as the gateway will decide them: the grant answers the ask (regression: a candidate dropping a forbid was replayed as deny -> ask, then ran with no one asked)', async () => {
    const asks = '@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");\n';
    const state = mkdtempSync(join(tmpdir(), 'corral-http-policies-grant-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), asks);
    const t = await startTestGateway({ stateDir: state, approvalPollMs: 20 });
    const node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run']);
    const operator = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.admin'] });
    const run = (timeoutMs = 5_000) => operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['printf', 'standing'] }, timeoutMs, idempotencyKey: randomUUID() }).then(() => 'ran', () => 'refused');
    try {
      assert.equal(await run(100), 'refused');
      const id = t.gw.approvals.list({ status: 'pending' })[0]!.id;
      await t.gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
      assert.equal(await run(), 'ran');
      assert.equal(await run(), 'ran', 'allowed by the grant, recorded as a decision of its own');
      const admin = await t.as('root', ['admin']);
      const granted = (await admin.get('/api/policies')).body;
      // The set in force, replayed: the run the grant allowed stays allowed, and the asks before the grant are allowed by it now.
      const inForce = (await admin.post('/api/policies/replay', { files: granted.files })).body.changed;
      assert.deepEqual([...new Set(inForce.map((c: Record<string, unknown>) => `${c.was} -> ${c.now}`))], ['ask -> allow']);
      const forbidden = await admin.post('/api/policies/activate', { files: [...granted.files, { name: 'forbid.cedar', text: '@id("no-printf") forbid (principal, action == Action::"system.run", resource == Command::"printf");\n' }], baseHash: granted.hash });
      assert.equal(await run(100), 'refused');
      const dropped = await admin.post('/api/policies/replay', { files: granted.files });
      const changes = dropped.body.changed.filter((c: { was: string }) => c.was === 'deny');
      assert.deepEqual(changes.map((c: Record<string, unknown>) => [c.was, c.now, c.reason]), [['deny', 'allow', `allowed always by approval-${id}`]]);
      assert.equal((await admin.post('/api/policies/activate', { files: granted.files, baseHash: forbidden.body.hash })).status, 200);
      assert.equal(await run(100), 'ran', 'as replay said');
      // Revoked, the grant answers nothing: replay asks, as the gateway will.
      await t.gw.invoker.revokeGrant(`approval-${id}`, 'root');
      const revoked = await admin.post('/api/policies/replay', { files: granted.files });
      assert.ok(revoked.body.changed.some((c: Record<string, unknown>) => c.was === 'allow' && c.now === 'ask'));
    } finally {
      await operator.close();
      await node.close();
      await t.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
