// GET /api/policies right after another process changed the policy
// directory (`corral policy activate`, `corral approvals revoke`, a second
// gateway): the set it found is compiled off the gateway's thread, so every
// other connection goes on being served, and the answer is what compiling it
// on the thread gave — the new set's hash, a refused edit, an unrecorded mark.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileCandidate, PolicyControl, type PolicyFile } from './policy-control.ts';
import { startTestGateway, type ApiClient, type TestGateway } from './testing.ts';
import { longestGap } from '../../../../scripts/testing/event-loop.ts';
import { LARGE_ORG, linkUnchecked, syncCompileMs } from '../../test/large-set.ts';

const ORG = LARGE_ORG;
const PERMIT = '@id("ls") permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const FORBID = '@id("ls-withdrawn") forbid (principal, action == Action::"system.run", resource == Command::"ls");\n';
const set = (main: string, entities?: string): PolicyFile[] => [{ name: 'main.cedar', text: main }, ...(entities !== undefined ? [{ name: 'entities.json', text: entities }] : [])];

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A state directory whose policies are `files`, a plain directory. */
function stateDir(files: PolicyFile[]): string {
  const state = mkdtempSync(join(tmpdir(), 'corral-policies-off-thread-'));
  dirs.push(state);
  mkdirSync(join(state, 'policies'));
  for (const f of files) writeFileSync(join(state, 'policies', f.name), f.text);
  return state;
}

/** The GET's answer without the schema. */
async function policies(client: ApiClient): Promise<Record<string, unknown>> {
  const answer = await client.get('/api/policies');
  assert.equal(answer.status, 200);
  const { schema, ...status } = answer.body as Record<string, unknown>;
  assert.equal(typeof schema, 'string');
  return status;
}

describe('GET /api/policies right after another process activated a set over a large org chart (5,000 people in 1,000 groups)', () => {
  let t: TestGateway;
  let admin: ApiClient;
  let dir: string;
  before(async () => {
    const state = stateDir(set(PERMIT, ORG));
    dir = join(state, 'policies');
    t = await startTestGateway({ stateDir: state });
    admin = await t.as('root', ['admin']);
  });
  after(() => t?.close());

  it('answers with the new set while every connection goes on being served (regression: the set was compiled on the gateway thread, stalling every connection ~0.5-1 s)', async () => {
    const syncMs = syncCompileMs(set(`${PERMIT}${FORBID}`, ORG));
    const other = PolicyControl.open(dir);
    const theirs = compileCandidate(set(`${PERMIT}${FORBID}`, ORG));
    assert.equal(await other.activate(theirs, other.active().hash), true);
    const { gap, value } = await longestGap(() => policies(admin));
    assert.equal(value.hash, theirs.hash, 'never the set it replaced');
    assert.equal(value.refusedEdit, undefined);
    assert.equal(value.unrecorded, undefined);
    assert.ok(gap < syncMs / 2, `the event loop stalled ${gap.toFixed(0)} ms; compiling the set on this thread takes ${syncMs.toFixed(0)} ms`);
  });
});

describe("GET /api/policies' answer, with the set compiled off the thread", () => {
  /** A gateway on a small set, another process's control on its directory, and a control that reads the directory on its thread (refresh) to compare with. */
  async function gateway() {
    const state = stateDir(set(PERMIT));
    const dir = join(state, 'policies');
    const t = await startTestGateway({ stateDir: state });
    const admin = await t.as('root', ['admin']);
    return { t, admin, dir, other: PolicyControl.open(dir), onThread: PolicyControl.open(dir) };
  }

  it('is the new set, as compiling it on the thread gives, after another process activated one', async () => {
    const { t, admin, other, onThread } = await gateway();
    try {
      const theirs = compileCandidate(set(`${PERMIT}${FORBID}`));
      assert.equal(await other.activate(theirs, other.active().hash), true);
      const status = await policies(admin);
      assert.equal(status.hash, theirs.hash);
      assert.deepEqual(status, JSON.parse(JSON.stringify(onThread.refresh())));
    } finally {
      await t.close();
    }
  });

  it('names the refused edit, the set in use kept, as compiling it on the thread does, when the set found does not validate', async () => {
    const { t, admin, dir, onThread } = await gateway();
    try {
      const inUse = (await policies(admin)).hash;
      linkUnchecked(dir, set(`${FORBID}permit (principal, action, resource) when { nonsense };\n`));
      const status = await policies(admin);
      assert.equal(status.hash, inUse);
      const refused = status.refusedEdit as { code?: string; issues?: unknown[] } | undefined;
      assert.equal(refused?.code, 'POLICY_SET_INVALID');
      assert.ok((refused?.issues ?? []).length > 0);
      assert.deepEqual(status, JSON.parse(JSON.stringify(onThread.refresh())));
      assert.deepEqual(await policies(admin), status, 'asked again, the same answer');
    } finally {
      await t.close();
    }
  });

  it('says unrecorded, as compiling it on the thread does, for a set found in force marked unrecorded', async () => {
    const { t, admin, dir, other, onThread } = await gateway();
    try {
      const theirs = compileCandidate(set(`${PERMIT}${FORBID}`));
      // Marked as an activation that could be neither recorded nor undone leaves it (see PolicyControl.activateRecorded).
      mkdirSync(join(`${dir}.versions`, 'unrecorded'), { recursive: true });
      writeFileSync(join(`${dir}.versions`, 'unrecorded', theirs.hash), 'marked by a test\n');
      assert.equal(await other.activate(theirs, other.active().hash), true);
      const status = await policies(admin);
      assert.equal(status.hash, theirs.hash);
      assert.equal(status.unrecorded, true);
      assert.deepEqual(status, JSON.parse(JSON.stringify(onThread.refresh())));
    } finally {
      await t.close();
    }
  });
});
