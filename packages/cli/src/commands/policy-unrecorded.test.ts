// `corral policy explain` on a policy directory whose set in force decides
// nothing in any gateway: its activation was neither recorded in the audit
// log nor undone, so it is marked unrecorded on disk, or the marks cannot be
// read. The marks here are made by the gateway's own PolicyControl, as a
// gateway whose audit log refused the record would leave them.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuditError } from '@corral/audit';
import { compileCandidate, parseFiles, PolicyControl } from '../../../gateway/src/http/policy-control.ts';
import { holdActivationLock } from '../../../gateway/test/activation-lock.ts';
import { corral } from '../../test/corral.ts';

const PERMIT = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const FORBID = 'forbid (principal, action == Action::"system.run", resource == Command::"ls");\n';
const REQUEST = { principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A state directory whose policies/ holds `text`, and a request file beside it. */
function stateWith(text: string): { state: string; policies: string; request: string } {
  const state = mkdtempSync(join(tmpdir(), 'corral-explain-unrecorded-'));
  dirs.push(state);
  mkdirSync(join(state, 'policies'));
  writeFileSync(join(state, 'policies', 'main.cedar'), text);
  const request = join(state, 'request.json');
  writeFileSync(request, JSON.stringify(REQUEST));
  return { state, policies: join(state, 'policies'), request };
}

const setOf = (text: string) => compileCandidate(parseFiles([{ name: 'main.cedar', text }]));

/** Activates `text` in `dir` as a gateway would, its record refused by the audit log and the put-back kept from the lock: the set stays in force, marked unrecorded. */
async function leaveUnrecorded(dir: string, text: string): Promise<string> {
  const control = PolicyControl.open(dir, { lockWaitMs: 50 });
  const candidate = setOf(text);
  let release: (() => void) | undefined;
  try {
    const outcome = await control.activateRecorded(candidate, control.active().hash, async () => {
      release = holdActivationLock(dir);
      throw new AuditError('AUDIT_STORE_UNAVAILABLE', 'the audit log is unavailable');
    });
    assert.equal(outcome, 'unrecorded');
  } finally {
    release?.();
  }
  return candidate.hash;
}

const explain = (s: { state: string; request: string }, ...more: string[]) => corral(['--state-dir', s.state, 'policy', 'explain', '--request', s.request, ...more]);

describe('corral policy explain, when the set in force is marked unrecorded', () => {
  it('says every request is denied until a set is activated and recorded, with what the set itself would decide, exit 3 (regression: it explained the set as if it decided, exit 0)', async () => {
    const s = stateWith(FORBID);
    const hash = await leaveUnrecorded(s.policies, PERMIT);
    const r = await explain(s);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^decision: deny \(the policy set in force is marked unrecorded\)\n/);
    assert.match(r.stdout, new RegExp(`reason: +the policy set in force \\(${hash.slice(0, 12)}\\) was activated, but its activation is not recorded in the audit log: every request is denied, by every gateway and corral command on this policy directory, until a set \\(this one included\\) is activated and recorded\n`));
    assert.match(r.stdout, /once activated and recorded, the set would decide:\n {2}decision: allow\n/);
  });

  it('under --json: decision deny, unrecorded, POLICY_NOT_LOADED, the hash, and the set\'s own decision apart', async () => {
    const s = stateWith(FORBID);
    const hash = await leaveUnrecorded(s.policies, PERMIT);
    const r = await explain(s, '--json');
    assert.equal(r.code, 3, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual([out.decision, out.policies, out.unrecorded, out.code, out.hash], ['deny', [], true, 'POLICY_NOT_LOADED', hash]);
    assert.equal(out.setDecision.decision, 'allow');
  });

  it('with --policies naming that directory, says the same', async () => {
    const s = stateWith(FORBID);
    await leaveUnrecorded(s.policies, PERMIT);
    const elsewhere = stateWith(FORBID);
    const r = await explain({ state: elsewhere.state, request: s.request }, '--policies', s.policies, '--json');
    assert.equal(r.code, 3, r.stderr);
    assert.equal(JSON.parse(r.stdout).unrecorded, true);
  });

  it('explains the set as deciding again once it is activated and recorded (exit 0)', async () => {
    const s = stateWith(FORBID);
    const hash = await leaveUnrecorded(s.policies, PERMIT);
    assert.equal(await PolicyControl.open(s.policies).activateRecorded(setOf(PERMIT), hash, async () => {}), 'activated');
    const r = await explain(s, '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual([out.decision, out.unrecorded], ['allow', undefined]);
  });
});

describe('corral policy explain, when a mark stands for a set no longer in force', () => {
  it('explains the set in force as deciding (exit 0): the mark denies nothing', async () => {
    const s = stateWith(FORBID);
    const hash = await leaveUnrecorded(s.policies, PERMIT);
    assert.equal(await PolicyControl.open(s.policies).activate(setOf(FORBID), hash), true);
    const r = await explain(s);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^decision: deny\npolicies: /);
    assert.doesNotMatch(r.stdout, /unrecorded/);
  });
});

describe('corral policy explain, when the marks cannot be read', () => {
  it('says every set counts as marked and every request is denied, naming where the marks are, exit 3 (regression: it explained the set as if it decided)', async () => {
    const s = stateWith(PERMIT);
    mkdirSync(`${s.policies}.versions`);
    writeFileSync(join(`${s.policies}.versions`, 'unrecorded'), 'not a directory\n');
    const r = await explain(s);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^decision: deny \(the policy set in force is taken as unrecorded: its marks cannot be read\)\n/);
    assert.ok(r.stdout.includes(`the marks of policy sets activated unrecorded (${join(`${s.policies}.versions`, 'unrecorded')}) cannot be read`), r.stdout);
    const j = JSON.parse((await explain(s, '--json')).stdout);
    assert.deepEqual([j.decision, j.unrecorded, j.marksUnreadable, j.setDecision.decision], ['deny', true, true, 'allow']);
  });
});
