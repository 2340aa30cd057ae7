// A set activated but never recorded in the audit log decides nothing — not
// only in the gateway that activated it, but after a restart, and in every
// other process sharing the policy directory (a second gateway, `corral
// approvals revoke`): the mark is kept on disk beside the versions, from
// before the set is swapped in until its record is durable, so a crash in
// between leaves it marked too. A mark that cannot be read denies every
// request; a mark for a set no longer in force denies nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuditError } from '@corral/audit';
import { compileCandidate, hashFiles, parseFiles, PolicyControl, type PolicyLogEntry } from './policy-control.ts';
import { startTestGateway } from './testing.ts';
import { holdActivationLock } from '../../test/activation-lock.ts';

const PERMIT = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const FORBID = 'forbid (principal, action == Action::"system.run", resource == Command::"ls");\n';
const PERMIT_ALL = 'permit (principal, action == Action::"system.run", resource);\n';
const request = { principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function policyDir(text = FORBID): string {
  const state = mkdtempSync(join(tmpdir(), 'corral-policy-mark-'));
  dirs.push(state);
  mkdirSync(join(state, 'policies'));
  writeFileSync(join(state, 'policies', 'main.cedar'), text);
  return join(state, 'policies');
}

const setOf = (text: string) => compileCandidate(parseFiles([{ name: 'main.cedar', text }]));
const downLog = () => new AuditError('AUDIT_STORE_UNAVAILABLE', 'the audit log is unavailable');


/** Activates `text` in `control`, its record refused and the put-back kept from the lock: the set is left in force unrecorded. */
async function leaveUnrecorded(control: PolicyControl, dir: string, text = PERMIT): Promise<string> {
  const candidate = setOf(text);
  let release: (() => void) | undefined;
  try {
    const outcome = await control.activateRecorded(candidate, control.active().hash, async () => {
      release = holdActivationLock(dir);
      throw downLog();
    });
    assert.equal(outcome, 'unrecorded');
  } finally {
    release?.();
  }
  return candidate.hash;
}

/** What `decide` comes to: the decision, or the error's code. */
function decided(control: PolicyControl): string {
  try {
    return control.decide(request).decision;
  } catch (error) {
    return (error as { code: string }).code;
  }
}

describe('a set left in force unrecorded', () => {
  it('decides nothing after a restart, and the status says unrecorded (regression: a fresh load decided with it as if recorded)', async () => {
    const dir = policyDir();
    const hash = await leaveUnrecorded(PolicyControl.open(dir, { lockWaitMs: 50 }), dir);
    const restarted = PolicyControl.open(dir);
    assert.equal(restarted.active().hash, hash);
    assert.equal(decided(restarted), 'POLICY_NOT_LOADED');
    assert.throws(() => restarted.decideEach(request, [request.resource]), { code: 'POLICY_NOT_LOADED' });
    assert.equal(restarted.refresh().unrecorded, true);
  });

  it('is told to the log of a gateway started on it, once, by hash and code only', async () => {
    const dir = policyDir();
    const hash = await leaveUnrecorded(PolicyControl.open(dir, { lockWaitMs: 50 }), dir);
    const entries: PolicyLogEntry[] = [];
    const restarted = PolicyControl.open(dir, { log: (e) => entries.push(e) });
    decided(restarted);
    decided(restarted);
    restarted.refresh();
    assert.deepEqual(entries, [{ event: 'policy-activation-unrecorded', code: 'POLICY_NOT_LOADED', hash }]);
  });

  it('decides nothing in another process that had the directory open already', async () => {
    const dir = policyDir();
    const other = PolicyControl.open(dir);
    assert.equal(decided(other), 'deny');
    await leaveUnrecorded(PolicyControl.open(dir, { lockWaitMs: 50 }), dir);
    assert.equal(decided(other), 'POLICY_NOT_LOADED');
    assert.equal(other.status().unrecorded, true);
  });

  it('decides again everywhere once the same set is activated and recorded, by any process', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir, { lockWaitMs: 50 });
    const other = PolicyControl.open(dir);
    const hash = await leaveUnrecorded(control, dir);
    const fixer = PolicyControl.open(dir);
    assert.equal(await fixer.activateRecorded(setOf(PERMIT), hash, async () => {}), 'activated');
    for (const c of [control, other, fixer, PolicyControl.open(dir)]) {
      assert.equal(decided(c), 'allow');
      assert.equal(c.status().unrecorded, undefined);
    }
  });

  it('decides again everywhere once another process activates another set (a grant revoked by `corral approvals revoke`)', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir, { lockWaitMs: 50 });
    const hash = await leaveUnrecorded(control, dir, PERMIT_ALL);
    assert.equal(await PolicyControl.open(dir).activate(setOf(PERMIT), hash), true);
    assert.equal(decided(control), 'allow');
    assert.equal(decided(PolicyControl.open(dir)), 'allow');
  });

  it('stays marked when a later activation cannot be recorded and it is put back (regression: the put-back cleared the mark)', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir, { lockWaitMs: 50 });
    const hash = await leaveUnrecorded(control, dir);
    await assert.rejects(control.activateRecorded(setOf(FORBID), hash, async () => {
      throw downLog();
    }), { code: 'AUDIT_STORE_UNAVAILABLE' });
    assert.equal(control.active().hash, hash);
    assert.equal(decided(control), 'POLICY_NOT_LOADED');
    assert.equal(decided(PolicyControl.open(dir)), 'POLICY_NOT_LOADED');
  });
});

describe('activating the set in use again when the audit log cannot record it', () => {
  it('leaves the set deciding as before, here and after a restart (regression: it denied every request until the next activation)', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    const hash = control.active().hash;
    await assert.rejects(control.activateRecorded(setOf(FORBID), hash, async () => {
      throw downLog();
    }), { code: 'AUDIT_STORE_UNAVAILABLE' });
    assert.equal(decided(control), 'deny');
    assert.equal(control.status().unrecorded, undefined);
    assert.equal(decided(PolicyControl.open(dir)), 'deny');
  });
});

describe('while an activation is being recorded', () => {
  it('another process decides nothing with the new set until its record is durable', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    const other = PolicyControl.open(dir);
    const meanwhile: string[] = [];
    assert.equal(await control.activateRecorded(setOf(PERMIT), control.active().hash, async () => {
      meanwhile.push(decided(other), decided(control));
    }), 'activated');
    assert.deepEqual(meanwhile, ['POLICY_NOT_LOADED', 'allow'], 'the activating gateway decides with the set it is recording, as before');
    assert.equal(decided(other), 'allow');
  });

  it('a gateway that dies before the record is written leaves the set decided by nothing after a restart', async () => {
    const dir = policyDir();
    const MODULE = new URL('./policy-control.ts', import.meta.url).href;
    const script = `
      import { compileCandidate, PolicyControl } from ${JSON.stringify(MODULE)};
      const control = PolicyControl.open(${JSON.stringify(dir)});
      const candidate = compileCandidate([{ name: 'main.cedar', text: ${JSON.stringify(PERMIT)} }]);
      await control.activateRecorded(candidate, control.active().hash, async () => process.exit(3));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    assert.equal(await new Promise((resolve) => child.on('close', resolve)), 3);
    const restarted = PolicyControl.open(dir);
    assert.equal(restarted.active().hash, setOf(PERMIT).hash, 'the set was swapped in');
    assert.equal(decided(restarted), 'POLICY_NOT_LOADED');
    assert.equal(restarted.status().unrecorded, true);
  });
});

describe('the marks of unrecorded sets on disk', () => {
  it('a mark for a set no longer in force denies nothing', () => {
    const dir = policyDir();
    mkdirSync(join(`${dir}.versions`, 'unrecorded'), { recursive: true });
    writeFileSync(join(`${dir}.versions`, 'unrecorded', hashFiles([{ name: 'main.cedar', text: PERMIT }])), '');
    const control = PolicyControl.open(dir);
    assert.equal(decided(control), 'deny');
    assert.equal(control.status().unrecorded, undefined);
  });

  it('a mark left for a set that a hand edit has since replaced denies nothing', async () => {
    const dir = policyDir();
    await leaveUnrecorded(PolicyControl.open(dir, { lockWaitMs: 50 }), dir);
    writeFileSync(join(dir, 'main.cedar'), `${FORBID}// by hand\n`);
    const control = PolicyControl.open(dir);
    assert.equal(decided(control), 'deny');
    assert.equal(control.status().unrecorded, undefined);
  });

  it('marks that cannot be read (not a directory) deny every request and say unrecorded, until a set is activated and recorded', async () => {
    const dir = policyDir(PERMIT);
    mkdirSync(`${dir}.versions`, { recursive: true });
    writeFileSync(join(`${dir}.versions`, 'unrecorded'), 'garbage\n');
    const control = PolicyControl.open(dir);
    assert.equal(decided(control), 'POLICY_NOT_LOADED');
    assert.equal(control.refresh().unrecorded, true);
    assert.equal(await control.activateRecorded(setOf(PERMIT), control.active().hash, async () => {}), 'activated');
    assert.equal(decided(control), 'allow');
    assert.equal(decided(PolicyControl.open(dir)), 'allow');
  });
});

describe('GET /api/policies from a gateway started on a set left unrecorded', () => {
  it('says unrecorded: true, and an activation of the same set recorded clears it', async () => {
    const dir = policyDir();
    const hash = await leaveUnrecorded(PolicyControl.open(dir, { lockWaitMs: 50 }), dir);
    const t = await startTestGateway({ stateDir: join(dir, '..') });
    try {
      const admin = await t.as('root', ['admin']);
      const status = (await admin.get('/api/policies')).body;
      assert.deepEqual([status.hash, status.unrecorded], [hash, true]);
      const again = await admin.post('/api/policies/activate', { files: status.files, baseHash: hash });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal((await admin.get('/api/policies')).body.unrecorded, undefined);
      assert.equal(readFileSync(join(dir, 'main.cedar'), 'utf8'), PERMIT);
    } finally {
      await t.close();
    }
  });
});
