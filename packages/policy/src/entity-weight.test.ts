import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies } from './load.ts';

// Imports only what the decision point had before the ancestor relation was bounded, so these tests run against that code too.

const POLICIES = [
  '@id("staff") permit(principal in Group::"L2-3", action == Action::"system.run", resource);',
  '@id("contractors") forbid(principal in Group::"L3-7", action, resource);',
  // The ip() condition keeps this one on the cedar-wasm path, which is handed the entities the request reaches.
  '@id("finance") permit(principal in Group::"L2-5", action, resource) when { ip("127.0.0.1").isLoopback() };',
].join('\n');

const group = (id: string) => ({ type: 'Group', id });

/** Groups in `depth` layers of `width`, each a member of every group of the layer above: the ancestor relation grows as width² × depth². */
function layered(width: number, depth: number): unknown[] {
  const out: unknown[] = [];
  for (let l = 0; l < depth; l++) {
    for (let i = 0; i < width; i++) out.push({ uid: group(`l${l}g${i}`), attrs: {}, parents: l === 0 ? [] : Array.from({ length: width }, (_, j) => group(`l${l - 1}g${j}`)) });
  }
  return out;
}

/**
 * A real org chart, pseudo-randomly but always the same: 1,000 groups in 5
 * levels (10, 40, 100, 250, 600), each in 1–3 groups of the level above, and
 * `humans` humans each in 3 groups (mostly of the lowest level).
 */
function org(humans: number): unknown[] {
  let seed = 1;
  const pick = (n: number) => Math.floor((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 65_536) % n;
  const levels: string[][] = [];
  const out: unknown[] = [];
  for (const [l, size] of [10, 40, 100, 250, 600].entries()) {
    const above = levels[l - 1] ?? [];
    levels.push(Array.from({ length: size }, (_, i) => `L${l}-${i}`));
    for (const id of levels[l]!) {
      const parents = l === 0 ? [] : [...new Set(Array.from({ length: 1 + pick(3) }, () => above[pick(above.length)]!))];
      out.push({ uid: group(id), attrs: { name: id }, parents: parents.map(group) });
    }
  }
  const all = levels.flat();
  for (let h = 0; h < humans; h++) {
    const groups = [...new Set(Array.from({ length: 3 }, () => (pick(4) === 0 ? all[pick(all.length)]! : levels[4]![pick(600)]!)))];
    out.push({ uid: { type: 'Human', id: `h${h}` }, attrs: { email: `h${h}@example.com`, roles: [] }, parents: groups.map(group) });
  }
  return out;
}

function point(): DecisionPoint {
  const pdp = new DecisionPoint();
  pdp.load(loadPolicies([{ file: 'org.cedar', text: POLICIES }]));
  return pdp;
}

const request = (human: string) => ({ principal: { type: 'Human', id: human }, action: 'system.run', resource: { type: 'Command', id: 'echo' } });

describe('entities whose groups nest wide as well as deep', () => {
  it('refuses an 11-wide, 256-deep layered graph of groups (~1.1 MB: it held the loading thread ~10 s) with POLICY_ENTITIES_INVALID naming the file, an entity and the remedy, and keeps the old data', (t) => {
    const pdp = point();
    const entities = org(100);
    pdp.setEntities(entities);
    const before = pdp.decide(request('h1'));
    const graph = layered(11, 256);
    const started = performance.now();
    assert.throws(
      () => pdp.setEntities(graph, { file: 'entities.json' }),
      (error) => {
        assert.ok(error instanceof PolicyError, String(error));
        assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
        assert.match(error.message, /^entities\.json: /);
        assert.match(error.message, /entity Group::"l\d+g\d+"/);
        assert.match(error.message, /make entities members of fewer, flatter groups/);
        assert.deepEqual(error.issues.map((i) => i.file), ['entities.json']);
        return true;
      },
      'the entities were taken',
    );
    t.diagnostic(`refused in ${Math.round(performance.now() - started)} ms`);
    assert.deepEqual(pdp.decide(request('h1')), before);
  });

  it('accepts a real org chart of 10,000 humans in 1,000 groups nested 5 deep, and decides as cedar-wasm does on the whole set', (t) => {
    const pdp = point();
    const started = performance.now();
    pdp.setEntities(org(10_000), { file: 'entities.json' });
    t.diagnostic(`loaded in ${Math.round(performance.now() - started)} ms`);
    const outcomes = new Set<string>();
    // cedar-wasm on every entity takes a while a request: a few of them, spread over the file.
    for (let h = 0; h < 10_000; h += 2_500) {
      const decided = pdp.evaluate(request(`h${h}`), 'decision')!;
      const reference = pdp.evaluate(request(`h${h}`), 'cedar')!;
      assert.deepEqual([decided.permits.toSorted(), decided.forbids.toSorted()], [reference.permits.toSorted(), reference.forbids.toSorted()], `h${h}`);
    }
    for (let h = 0; h < 10_000; h += 50) {
      const { permits, forbids } = pdp.evaluate(request(`h${h}`), 'decision')!;
      outcomes.add(`${permits.toSorted().join(',')}/${forbids.join(',')}`);
    }
    // The groups decide: some humans are in each policy's group, some in none.
    for (const outcome of ['/', 'staff/', 'finance/']) assert.ok(outcomes.has(outcome), `${outcome} in ${[...outcomes].join(' ')}`);
    assert.ok([...outcomes].some((o) => o.endsWith('/contractors')), [...outcomes].join(' '));
  });
});
