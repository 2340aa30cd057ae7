// A hand edit of the policy directory that does not validate is not adopted
// (the gateway goes on deciding with the last valid set), and is not kept
// quiet either: the policy status says so, and so does the gateway's log.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hashFiles, PolicyControl, type PolicyLogEntry } from './policy-control.ts';
import { startTestGateway } from './testing.ts';

const PERMIT = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const BROKEN = 'permit (principal, action, resource';
const request = { principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function stateDir(): string {
  const state = mkdtempSync(join(tmpdir(), 'corral-policy-edit-'));
  dirs.push(state);
  return state;
}

function policyDir(text = PERMIT): string {
  const dir = join(stateDir(), 'policies');
  mkdirSync(dir);
  writeFileSync(join(dir, 'main.cedar'), text);
  return dir;
}

describe('when the policy directory is edited by hand into a set that does not validate', () => {
  it('keeps deciding with the last valid set, and its status names the refusal with the issue\'s file and line', () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    const base = control.active().hash;
    writeFileSync(join(dir, 'main.cedar'), `${PERMIT}${BROKEN}`);
    const status = control.refresh();
    assert.equal(status.hash, base);
    assert.equal(status.refusedEdit?.code, 'POLICY_SET_INVALID');
    assert.equal(status.refusedEdit?.hash, hashFiles([{ name: 'main.cedar', text: `${PERMIT}${BROKEN}` }]));
    assert.equal(status.refusedEdit?.issues[0]?.file, 'main.cedar');
    assert.equal(status.refusedEdit?.issues[0]?.line, 2);
    assert.equal(control.decide(request).decision, 'allow');
  });

  it('logs the refusal once, with its code and no text of the files nor where they are kept', () => {
    const dir = policyDir();
    const entries: PolicyLogEntry[] = [];
    const control = PolicyControl.open(dir, { log: (e) => entries.push(e) });
    writeFileSync(join(dir, 'entities.json'), '[{"uid":{"type":"Human","id":"alice@example.com"},"attrs":{"secretNote":"hunter2"}}]');
    control.refresh();
    control.refresh();
    assert.deepEqual(entries.map((e) => [e.event, e.code]), [['policy-edit-refused', 'POLICY_ENTITIES_INVALID']]);
    const logged = JSON.stringify(entries);
    for (const leak of ['alice@example.com', 'hunter2', dir]) assert.equal(logged.includes(leak), false, `${leak} in ${logged}`);
  });

  it('logs a second, different broken edit again, and clears the refusal once the directory holds a valid set again', () => {
    const dir = policyDir();
    const entries: PolicyLogEntry[] = [];
    const control = PolicyControl.open(dir, { log: (e) => entries.push(e) });
    writeFileSync(join(dir, 'main.cedar'), BROKEN);
    control.refresh();
    writeFileSync(join(dir, 'main.cedar'), `${BROKEN}\n// still broken`);
    control.refresh();
    assert.equal(entries.length, 2);
    writeFileSync(join(dir, 'main.cedar'), `${PERMIT}// fixed\n`);
    const status = control.refresh();
    assert.equal(status.refusedEdit, undefined);
    assert.equal(status.files[0]?.text, `${PERMIT}// fixed\n`);
  });

  it('reports a directory that cannot be read (POLICY_UNREADABLE) without naming where it is', () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    // Permissions do not keep root from reading; a set over the size limit is refused as unreadable whoever reads it.
    writeFileSync(join(dir, 'huge.cedar'), `// ${'x'.repeat(1024 * 1024 + 10)}\n`);
    const status = control.refresh();
    assert.equal(status.refusedEdit?.code, 'POLICY_UNREADABLE');
    assert.equal(JSON.stringify(status.refusedEdit).includes(dir), false, JSON.stringify(status.refusedEdit));
    assert.equal(control.decide(request).decision, 'allow');
  });

  it('denies every request while no valid set was ever loaded (POLICY_NOT_LOADED), and says why', () => {
    const dir = join(stateDir(), 'policies');
    const control = PolicyControl.open(dir);
    mkdirSync(dir);
    writeFileSync(join(dir, 'main.cedar'), BROKEN);
    const status = control.refresh();
    assert.deepEqual(status.files, []);
    assert.equal(status.refusedEdit?.code, 'POLICY_SET_INVALID');
    assert.throws(() => control.decide(request), { code: 'POLICY_NOT_LOADED' });
    assert.throws(() => control.decideEach(request, [request.resource]), { code: 'POLICY_NOT_LOADED' });
  });
});

describe('GET /api/policies after a hand edit that does not validate', () => {
  it('answers the set in use and the refused edit, its issues named by file and line', async () => {
    const state = stateDir();
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), PERMIT);
    const t = await startTestGateway({ stateDir: state });
    try {
      const auditor = await t.as('audrey', ['auditor']);
      const before = (await auditor.get('/api/policies')).body;
      assert.equal(before.refusedEdit, undefined);
      writeFileSync(join(state, 'policies', 'main.cedar'), BROKEN);
      const after = await auditor.get('/api/policies');
      assert.equal(after.status, 200);
      assert.equal(after.body.hash, before.hash);
      assert.equal(after.body.files[0].text, PERMIT);
      assert.equal(after.body.refusedEdit.code, 'POLICY_SET_INVALID');
      assert.equal(after.body.refusedEdit.issues[0].file, 'main.cedar');
      assert.equal(typeof after.body.refusedEdit.message, 'string');
      assert.equal(JSON.stringify(after.body.refusedEdit).includes(state), false);
    } finally {
      await t.close();
    }
  });
});
