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
import { orgChart } from '../../../../scripts/testing/org-chart.ts';

const POLICY = '@id("staff") permit (principal in Group::"g1-3", action == Action::"system.run", resource);\n';



describe('a candidate whose entities are a large org chart (5,000 people in 1,000 groups, under 1 MiB)', () => {
  let state: string;
  let t: TestGateway;
  let admin: ApiClient;
  const entities = JSON.stringify(orgChart(5_000, { seed: 1, attributes: 'minimal' }));
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
