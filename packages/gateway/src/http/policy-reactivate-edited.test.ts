// Once the policy directory is a link to a saved version, a hand edit of the
// directory edits that saved version. Activating the set in use again (how an
// admin undoes a hand edit from the console) must put that set back on disk:
// the saved version is rewritten to the files activated, and the hand edit
// is kept aside, not lost.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { compileCandidate, hashFiles, parseFiles, PolicyControl } from './policy-control.ts';
import { startTestGateway } from './testing.ts';

const PERMIT = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const FORBID = 'forbid (principal, action == Action::"system.run", resource == Command::"ls");\n';
const BROKEN = 'permit (principal, action, resource';
const request = { principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function stateDir(): string {
  const state = mkdtempSync(join(tmpdir(), 'corral-policy-reactivate-'));
  dirs.push(state);
  mkdirSync(join(state, 'policies'));
  writeFileSync(join(state, 'policies', 'main.cedar'), PERMIT);
  return state;
}

/** A directory already activated once: a link to the saved version of `text`. */
async function linkedTo(text: string): Promise<{ dir: string; control: PolicyControl; hash: string }> {
  const dir = join(stateDir(), 'policies');
  const control = PolicyControl.open(dir);
  const candidate = compileCandidate(parseFiles([{ name: 'main.cedar', text }]));
  assert.equal(await control.activate(candidate, control.active().hash), true);
  return { dir, control, hash: candidate.hash };
}

describe('activating the set in use again after its saved version was edited by hand', () => {
  it('clears a refused edit: the saved version holds the activated files again, and a fresh load reads them (regression: the edit stayed, refused, since a saved version was never rewritten)', async () => {
    const { dir, control, hash } = await linkedTo(FORBID);
    writeFileSync(join(dir, 'main.cedar'), BROKEN);
    assert.equal(control.refresh().refusedEdit?.code, 'POLICY_SET_INVALID');
    assert.equal(await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }])), hash), true);
    const status = control.refresh();
    assert.equal(status.refusedEdit, undefined);
    assert.equal(status.hash, hash);
    assert.equal(readFileSync(join(dir, 'main.cedar'), 'utf8'), FORBID);
    assert.equal(readFileSync(join(`${dir}.versions`, hash, 'main.cedar'), 'utf8'), FORBID, 'the saved version is the activated set again');
    assert.equal(control.decide(request).decision, 'deny');
    assert.equal(PolicyControl.open(dir).active().hash, hash, 'a restart reads the activated set');
  });

  it('keeps the hand edit aside, in the versions directory', async () => {
    const { dir, control, hash } = await linkedTo(FORBID);
    writeFileSync(join(dir, 'main.cedar'), BROKEN);
    control.refresh();
    await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }])), hash);
    const edited = readdirSync(`${dir}.versions`).filter((v) => v.startsWith('edited-'));
    assert.equal(edited.length, 1, readdirSync(`${dir}.versions`).join(' '));
    assert.equal(readFileSync(join(`${dir}.versions`, edited[0]!, 'main.cedar'), 'utf8'), BROKEN);
  });

  it('puts a set back whose saved version was edited by hand into another valid set (regression: the activation reported success and the edit stayed in force)', async () => {
    const { dir, control, hash } = await linkedTo(FORBID);
    // Edited by hand into a valid set, adopted; then another set; then the first one again.
    writeFileSync(join(dir, 'main.cedar'), `${PERMIT}// by hand\n`);
    const edited = control.refresh().hash;
    assert.notEqual(edited, hash);
    assert.equal(await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }])), edited), true);
    assert.equal(control.refresh().hash, hash);
    assert.equal(readFileSync(join(dir, 'main.cedar'), 'utf8'), FORBID);
    assert.equal(control.decide(request).decision, 'deny');
  });

  it('leaves an unedited saved version as it is', async () => {
    const { dir, control, hash } = await linkedTo(FORBID);
    assert.equal(await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: PERMIT }])), hash), true);
    assert.equal(await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }])), control.active().hash), true);
    assert.equal(control.refresh().hash, hash);
    assert.deepEqual(readdirSync(`${dir}.versions`).filter((v) => v.startsWith('edited-') || v.startsWith('.staging-')), []);
  });
});

describe('POST /api/policies/activate of the set in use, after a refused hand edit of its saved version', () => {
  it('clears the refusal: GET /api/policies shows no refusedEdit and the files activated', async () => {
    const state = stateDir();
    const t = await startTestGateway({ stateDir: state });
    try {
      const admin = await t.as('root', ['admin']);
      const first = await admin.post('/api/policies/activate', { files: [{ name: 'main.cedar', text: FORBID }], baseHash: (await admin.get('/api/policies')).body.hash });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      writeFileSync(join(state, 'policies', 'main.cedar'), BROKEN);
      const refused = (await admin.get('/api/policies')).body;
      assert.equal(refused.refusedEdit.code, 'POLICY_SET_INVALID');
      const again = await admin.post('/api/policies/activate', { files: refused.files, baseHash: refused.hash });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      const status = (await admin.get('/api/policies')).body;
      assert.equal(status.refusedEdit, undefined);
      assert.equal(status.hash, hashFiles([{ name: 'main.cedar', text: FORBID }]));
      assert.deepEqual(status.files, [{ name: 'main.cedar', text: FORBID }]);
    } finally {
      await t.close();
    }
  });
});
