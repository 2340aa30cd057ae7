// A candidate whose entities.json is a large org chart, replayed and
// activated from the console: the gateway goes on answering meanwhile.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { MAX_SET_BYTES } from './policy-control.ts';
import { startTestGateway, type ApiClient, type TestGateway } from './testing.ts';
import { longestGap } from '../../../../scripts/testing/event-loop.ts';

const POLICY = '@id("staff") permit (principal in Group::"g1-3", action == Action::"system.run", resource);\n';

/**
 * An org chart as JSON entities: 1,000 groups in 5 levels (10, 40, 100, 250,
 * 600), each in 1–3 groups of the level above, and `people` humans each in
 * up to 3 groups, mostly of the lowest level. Pseudo-random, the same every run.
 */
function org(people: number): unknown[] {
  let seed = 1;
  const pick = (n: number) => Math.floor((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 65_536) % n;
  const group = (id: string) => ({ type: 'Group', id });
  const levels: string[][] = [];
  const out: unknown[] = [];
  for (const [l, size] of [10, 40, 100, 250, 600].entries()) {
    const above = levels[l - 1] ?? [];
    levels.push(Array.from({ length: size }, (_, i) => `g${l}-${i}`));
    for (const id of levels[l]!) out.push({ uid: group(id), parents: (l === 0 ? [] : [...new Set(Array.from({ length: 1 + pick(3) }, () => above[pick(above.length)]!))]).map(group) });
  }
  const all = levels.flat();
  for (let h = 0; h < people; h++) {
    const groups = [...new Set([0, 1, 2].map(() => (pick(4) === 0 ? all[pick(all.length)]! : levels[4]![pick(600)]!)))];
    out.push({ uid: { type: 'Human', id: `h${h}` }, attrs: { email: '', roles: [] }, parents: groups.map(group) });
  }
  return out;
}


describe('a candidate whose entities are a large org chart (5,000 people in 1,000 groups, under 1 MiB)', () => {
  let state: string;
  let t: TestGateway;
  let admin: ApiClient;
  const entities = JSON.stringify(org(5_000));
  /** What taking these entities on this thread costs, now: the stall replay and activation used to cause (slowness scales both). */
  let syncMs = 0;
  before(async () => {
    assert.ok(entities.length < MAX_SET_BYTES - 4096, `${entities.length} bytes`);
    state = mkdtempSync(join(tmpdir(), 'corral-http-policies-org-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), POLICY);
    t = await startTestGateway({ stateDir: state });
    admin = await t.as('root', ['admin']);
    const point = new DecisionPoint();
    point.load(loadPolicies([{ file: 'main.cedar', text: POLICY }]));
    const start = performance.now();
    point.setEntities(JSON.parse(entities));
    syncMs = performance.now() - start;
  });
  after(async () => {
    await t.close();
    rmSync(state, { recursive: true, force: true });
  });

  const files = () => [{ name: 'main.cedar', text: POLICY }, { name: 'entities.json', text: entities }];

  it('keeps the event loop answering while the candidate is replayed (regression: its entities were checked on the gateway thread, stalling every connection ~0.5 s)', async () => {
    const { gap, value } = await longestGap(() => admin.post('/api/policies/replay', { files: files() }));
    assert.equal(value.status, 200);
    assert.ok(gap < syncMs / 4, `the event loop stalled ${gap.toFixed(0)} ms; taking the entities on this thread takes ${syncMs.toFixed(0)} ms`);
  });

  it('keeps the event loop answering while the candidate is activated', async () => {
    const baseHash = (await admin.get('/api/policies')).body.hash;
    const { gap, value } = await longestGap(() => admin.post('/api/policies/activate', { files: files(), baseHash }));
    assert.equal(value.status, 200);
    assert.ok(gap < syncMs / 4, `the event loop stalled ${gap.toFixed(0)} ms; taking the entities on this thread takes ${syncMs.toFixed(0)} ms`);
    assert.equal((await admin.get('/api/policies')).body.hash, value.body.hash);
  });
});
