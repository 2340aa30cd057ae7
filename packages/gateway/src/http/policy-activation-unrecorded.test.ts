// An activation the audit log cannot record does not stand: the set it
// replaced goes back. When that put-back fails too (another process keeps
// the activation lock, the directory cannot be written), the new set is on
// disk unrecorded: the gateway denies every request while it is in force,
// says so in its status and its log, and answers the activation plainly.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuditError, openAuditLog, type AuditEventInput } from '@corral/audit';
import { pairedNodePeer } from '../../test/node-peer.ts';
import { GatewayClient } from '../client/client.ts';
import { compileCandidate, parseFiles, PolicyControl, type PolicyLogEntry } from './policy-control.ts';
import { auditEvents, startTestGateway } from './testing.ts';
import { holdActivationLock } from '../../test/activation-lock.ts';

const PERMIT = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const FORBID = 'forbid (principal, action == Action::"system.run", resource == Command::"ls");\n';
const ALLOW_ECHO = '@id("echo")\npermit (principal, action == Action::"system.run", resource == Command::"echo");\n';
const FORBID_ECHO = '@id("no-echo")\nforbid (principal, action == Action::"system.run", resource == Command::"echo");\n';
const request = { principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function stateWith(text: string): string {
  const state = mkdtempSync(join(tmpdir(), 'corral-policy-unrecorded-'));
  dirs.push(state);
  mkdirSync(join(state, 'policies'));
  writeFileSync(join(state, 'policies', 'main.cedar'), text);
  return state;
}


const downLog = () => new AuditError('AUDIT_STORE_UNAVAILABLE', 'the audit log is unavailable');

describe('when an activation cannot be recorded', () => {
  it('decides nothing with the new set while the set it replaced is put back, then decides with that one again', async () => {
    const dir = join(stateWith(FORBID), 'policies');
    const control = PolicyControl.open(dir);
    const candidate = compileCandidate(parseFiles([{ name: 'main.cedar', text: PERMIT }]));
    let release: (() => void) | undefined;
    const meanwhile: string[] = [];
    const activation = control.activateRecorded(candidate, control.active().hash, async () => {
      // The put-back waits for this lock: decisions are asked for meanwhile.
      release = holdActivationLock(dir);
      setTimeout(() => {
        try {
          control.decide(request);
          meanwhile.push('decided');
        } catch (error) {
          meanwhile.push((error as { code: string }).code);
        }
        release!();
      }, 100);
      throw downLog();
    });
    await assert.rejects(activation, { code: 'AUDIT_STORE_UNAVAILABLE' });
    assert.deepEqual(meanwhile, ['POLICY_NOT_LOADED']);
    assert.equal(control.decide(request).decision, 'deny', 'the set it replaced decides again');
    assert.equal(control.status().unrecorded, undefined);
    assert.equal(readFileSync(join(dir, 'main.cedar'), 'utf8'), FORBID);
  });

  it('denies every request with a set neither recorded nor put back, says so in its status and log, until a set is activated and recorded', async () => {
    const dir = join(stateWith(FORBID), 'policies');
    const entries: PolicyLogEntry[] = [];
    const control = PolicyControl.open(dir, { lockWaitMs: 50, log: (e) => entries.push(e) });
    const candidate = compileCandidate(parseFiles([{ name: 'main.cedar', text: PERMIT }]));
    let release: (() => void) | undefined;
    const outcome = await control.activateRecorded(candidate, control.active().hash, async () => {
      release = holdActivationLock(dir);
      throw downLog();
    });
    try {
      assert.equal(outcome, 'unrecorded');
      assert.equal(readFileSync(join(dir, 'main.cedar'), 'utf8'), PERMIT, 'the new set is still on disk');
      assert.throws(() => control.decide(request), { code: 'POLICY_NOT_LOADED' });
      assert.throws(() => control.decideEach(request, [request.resource]), { code: 'POLICY_NOT_LOADED' });
      const status = control.refresh();
      assert.deepEqual([status.hash, status.unrecorded], [candidate.hash, true]);
      assert.deepEqual(entries, [{ event: 'policy-activation-unrecorded', code: 'AUDIT_STORE_UNAVAILABLE', hash: candidate.hash, putBack: 'GATEWAY_CONFLICT' }]);
    } finally {
      release?.();
    }
    assert.throws(() => control.decide(request), { code: 'POLICY_NOT_LOADED' }, 'still denied once the lock is let go: nothing recorded it');
    assert.equal(await control.activateRecorded(candidate, candidate.hash, async () => {}), 'activated');
    assert.equal(control.decide(request).decision, 'allow');
    assert.equal(control.status().unrecorded, undefined);
  });

  it('decides again once another set comes into force (adopted from the directory)', async () => {
    const dir = join(stateWith(FORBID), 'policies');
    const control = PolicyControl.open(dir, { lockWaitMs: 50 });
    const candidate = compileCandidate(parseFiles([{ name: 'main.cedar', text: PERMIT }]));
    let release: (() => void) | undefined;
    assert.equal(await control.activateRecorded(candidate, control.active().hash, async () => {
      release = holdActivationLock(dir);
      throw downLog();
    }), 'unrecorded');
    release?.();
    writeFileSync(join(dir, 'main.cedar'), `${FORBID}// by hand\n`);
    assert.equal(control.refresh().unrecorded, undefined);
    assert.equal(control.decide(request).decision, 'deny');
    assert.equal(control.decide({ ...request, resource: { type: 'Command', id: 'cat' } }).decision, 'deny');
  });
});

describe('POST /api/policies/activate when the audit log cannot record it and the set it replaced cannot be put back', () => {
  it('answers 500 saying so, denies every request with the unrecorded set, shows it in the status, and decides again once a set is activated and recorded (regression: the new set stayed in force unrecorded, answered 409)', async () => {
    const state = stateWith(FORBID_ECHO);
    const dir = join(state, 'policies');
    const log = await openAuditLog({ stateDir: state });
    const append = log.append.bind(log);
    let release: (() => void) | undefined;
    let failNext = true;
    log.append = async (event: AuditEventInput) => {
      if (event.action !== 'policy.activate' || !failNext) return append(event);
      failNext = false;
      // The put-back needs the activation lock: another process holds it past the gateway's wait.
      release = holdActivationLock(dir);
      throw downLog();
    };
    const t = await startTestGateway({ stateDir: state, audit: log });
    const node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run']);
    const operator = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.admin'] });
    const run = () => operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['echo', 'hi'] }, idempotencyKey: randomUUID() }).then(
      () => 'ran' as const,
      () => 'refused' as const,
    );
    try {
      const admin = await t.as('root', ['admin']);
      const before = (await admin.get('/api/policies')).body.hash;
      const activation = admin.post('/api/policies/activate', { files: [{ name: 'main.cedar', text: ALLOW_ECHO }], baseHash: before });
      // While the put-back waits for the lock (10 s), the unrecorded set decides nothing.
      while (release === undefined) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await run(), 'refused');
      const answer = await activation;
      assert.equal(answer.status, 500, JSON.stringify(answer.body));
      assert.deepEqual([answer.body.error, answer.body.code], ['internal_error', 'POLICY_NOT_LOADED']);
      assert.match(answer.body.message, /could not be put back/);
      release!();
      const status = (await admin.get('/api/policies')).body;
      assert.equal(status.unrecorded, true);
      assert.equal(readFileSync(join(dir, 'main.cedar'), 'utf8'), ALLOW_ECHO);
      assert.equal(await run(), 'refused');
      const again = await admin.post('/api/policies/activate', { files: [{ name: 'main.cedar', text: ALLOW_ECHO }], baseHash: status.hash });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal((await admin.get('/api/policies')).body.unrecorded, undefined);
      assert.equal(await run(), 'ran');
      assert.equal((await auditEvents(state)).filter((e) => e.action === 'policy.activate').length, 1);
    } finally {
      release?.();
      await operator.close();
      await node.close();
      await t.close();
      await log.close();
    }
  });
});
