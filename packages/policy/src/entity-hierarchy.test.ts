import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint } from './decision-point.ts';
import { EntityStore, MAX_PARENT_DEPTH, hierarchyProblem } from './entities.ts';
import { PolicyError } from './errors.ts';
import { cedar } from './lib/cedar.ts';
import { entityKey } from './lib/values.ts';
import { loadPolicies } from './load.ts';
import { corralSchema } from './schema.ts';

// The ip() condition keeps the decision on the cedar-wasm path, which is handed the whole chain.
const POLICY = '@id("top") permit(principal in Group::"g0", action, resource) when { ip("127.0.0.1").isLoopback() };';
const request = { principal: { type: 'Human', id: 'h' }, action: 'system.run', resource: { type: 'Command', id: 'echo' } };

/** Human::"h" with `levels` levels of parents above it: Group::"g{levels-1}" in … in Group::"g0". */
function chain(levels: number): unknown[] {
  const group = (i: number) => ({ type: 'Group', id: `g${i}` });
  const groups = Array.from({ length: levels }, (_, i) => ({ uid: group(i), attrs: {}, parents: i === 0 ? [] : [group(i - 1)] }));
  return [{ uid: { type: 'Human', id: 'h' }, attrs: { email: 'h@example.com', roles: [] }, parents: levels === 0 ? [] : [group(levels - 1)] }, ...groups];
}

/** `n` groups, each the parent of the next, and the last the parent of the first. */
function loop(n: number): unknown[] {
  return Array.from({ length: n }, (_, i) => ({ uid: { type: 'Group', id: `g${i}` }, attrs: {}, parents: [{ type: 'Group', id: `g${(i + 1) % n}` }] }));
}

function point(): DecisionPoint {
  const pdp = new DecisionPoint();
  pdp.load(loadPolicies([{ file: 'top.cedar', text: POLICY }]));
  pdp.setEntities(chain(3));
  return pdp;
}

function refusal(act: () => void): PolicyError {
  try {
    act();
  } catch (error) {
    assert.ok(error instanceof PolicyError, String(error));
    return error;
  }
  throw new assert.AssertionError({ message: 'the entities were taken' });
}

describe('entities whose parents nest deeper than cedar-wasm can walk', () => {
  it('refuses a parent chain 8,000 long with POLICY_ENTITIES_INVALID naming the entity, keeps the old data, and cedar-wasm keeps deciding (it trapped, and every later decision failed)', () => {
    const pdp = point();
    const error = refusal(() => pdp.setEntities(chain(8_000)));
    assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
    assert.match(error.message, /Human::"h"/);
    assert.match(error.message, new RegExp(`more than ${MAX_PARENT_DEPTH} levels of parents`));
    assert.deepEqual([pdp.decide(request).decision, pdp.decide(request).engine], ['allow', 'cedar']);
  });

  it('refuses a loop of parents 8,000 long as a loop, naming an entity on it (cedar-wasm trapped on it)', () => {
    const pdp = point();
    const error = refusal(() => pdp.setEntities(loop(8_000)));
    assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
    assert.match(error.message, /Group::"g\d+" is its own ancestor/);
    assert.equal(pdp.decide(request).decision, 'allow');
  });

  it(`takes a chain of exactly ${MAX_PARENT_DEPTH} levels, and cedar-wasm decides through it; refuses one of ${MAX_PARENT_DEPTH + 1}`, () => {
    const pdp = point();
    pdp.setEntities(chain(MAX_PARENT_DEPTH));
    assert.deepEqual([pdp.decide(request).decision, pdp.decide(request).engine], ['allow', 'cedar']);
    assert.deepEqual(pdp.evaluate(request, 'cedar')?.permits, ['top']);
    assert.equal(refusal(() => pdp.setEntities(chain(MAX_PARENT_DEPTH + 1))).code, 'POLICY_ENTITIES_INVALID');
    assert.equal(pdp.decide(request).decision, 'allow');
  });

  it('names the file the entities came from, when told it', () => {
    const error = refusal(() => point().setEntities(chain(8_000), { file: 'entities.json' }));
    assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
    assert.match(error.message, /^entities\.json: /);
    assert.deepEqual(error.issues.map((i) => i.file), ['entities.json']);
    assert.match(error.issues[0]!.message, /Human::"h"/);
  });

  it('refuses a hierarchy only when Cedar refuses it too, while it is within the limit (property)', () => {
    const schema = corralSchema();
    fc.assert(
      fc.property(graph(10), (parents) => {
        const entities = [...parents].map(([id, ps]) => ({ uid: { type: 'Group', id }, attrs: {}, parents: ps.map((p) => ({ type: 'Group', id: p })) }));
        let ours = true;
        try {
          new EntityStore(schema, entities);
        } catch (error) {
          assert.ok(error instanceof PolicyError && error.code === 'POLICY_ENTITIES_INVALID', String(error));
          ours = false;
        }
        const theirs = cedar.checkParseEntities({ entities, schema: schema.text } as never).type === 'success';
        assert.equal(ours, theirs);
      }),
      { numRuns: 200 },
    );
  });
});

describe('hierarchyProblem', () => {
  it('finds nothing in no entities, nor in one without parents', () => {
    assert.equal(hierarchyProblem(new Map(), 0), undefined);
    assert.equal(hierarchyProblem(new Map([['a', []]]), 0), undefined);
    assert.deepEqual(hierarchyProblem(new Map([['a', ['b']]]), 0), { key: 'a', kind: 'deep' });
  });

  it('finds an entity deeper than the limit, or one its own ancestor, as a naive walk of every path does (property)', () => {
    fc.assert(
      fc.property(graph(8), fc.integer({ min: 0, max: 8 }), (parents, limit) => {
        const found = hierarchyProblem(parents, limit);
        const cyclic = [...parents.keys()].some((k) => reaches(parents, k, k));
        const deepest = Math.max(0, ...[...parents.keys()].map((k) => height(parents, k)));
        if (found === undefined) {
          assert.ok(!cyclic && deepest <= limit, `missed: limit ${limit}, ${JSON.stringify([...parents])}`);
        } else if (found.kind === 'cycle') {
          assert.ok(reaches(parents, found.key, found.key), `${found.key} is not its own ancestor`);
        } else {
          assert.ok(height(parents, found.key) > limit, `${found.key} is not deeper than ${limit}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('walks 10,000 entities in one chain without recursion', () => {
    const parents = new Map(Array.from({ length: 10_000 }, (_, i) => [entityKey('Group', `g${i}`), i === 0 ? [] : [entityKey('Group', `g${i - 1}`)]]));
    assert.equal(hierarchyProblem(parents, 10_000), undefined);
    assert.deepEqual(hierarchyProblem(parents, 9_998), { key: entityKey('Group', 'g9999'), kind: 'deep' });
  });
});

/** Up to `n` entities named e0…, each with up to three parents among them or absent ones (x…): loops, self-parents and shared ancestors included. */
function graph(n: number): fc.Arbitrary<Map<string, string[]>> {
  const name = fc.oneof({ weight: 5, arbitrary: fc.nat({ max: n - 1 }).map((i) => `e${i}`) }, { weight: 1, arbitrary: fc.constantFrom('x0', 'x1') });
  return fc.array(fc.array(name, { maxLength: 3 }), { maxLength: n }).map((lists) => new Map(lists.map((ps, i) => [`e${i}`, ps])));
}

/** Naive: whether `to` is an ancestor of `from`, by every path. */
function reaches(parents: ReadonlyMap<string, readonly string[]>, from: string, to: string, seen = new Set<string>()): boolean {
  for (const p of parents.get(from) ?? []) {
    if (p === to) return true;
    if (seen.has(p)) continue;
    seen.add(p);
    if (reaches(parents, p, to, seen)) return true;
  }
  return false;
}

/** Naive: the levels of parents above `key` on its longest path; Infinity when a loop lies above it. */
function height(parents: ReadonlyMap<string, readonly string[]>, key: string, path: readonly string[] = []): number {
  if (path.includes(key)) return Infinity;
  return Math.max(0, ...(parents.get(key) ?? []).map((p) => 1 + height(parents, p, [...path, key])));
}
