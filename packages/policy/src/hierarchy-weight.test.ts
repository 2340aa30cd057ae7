import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hierarchyWeight } from './entities.ts';

const UNLIMITED = { pairs: Infinity, links: Infinity };

describe('hierarchyWeight', () => {
  it('weighs nothing in no entities, nor in one without parents', () => {
    assert.deepEqual(hierarchyWeight(new Map(), UNLIMITED), { pairs: 0, links: 0 });
    assert.deepEqual(hierarchyWeight(new Map([['a', []]]), UNLIMITED), { pairs: 0, links: 0 });
  });

  it('counts a parent with no entry of its own as an ancestor with no parents', () => {
    assert.deepEqual(hierarchyWeight(new Map([['a', ['x']]]), UNLIMITED), { pairs: 1, links: 1 });
  });

  it('counts a shared ancestor once per entity, however many paths reach it', () => {
    // d in b and c, both in a: d has 3 ancestors, b and c one each.
    const parents = new Map([['a', []], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']]]);
    assert.deepEqual(hierarchyWeight(parents, UNLIMITED), { pairs: 5, links: 6 });
  });

  it('admits exactly the limit and stops one past it, naming the entity being walked', () => {
    const parents = new Map([['a', []], ['b', ['a']], ['c', ['b']]]); // 0 + 1 + 2 = 3 pairs
    assert.equal(hierarchyWeight(parents, { pairs: 3, links: Infinity }).over, undefined);
    assert.deepEqual(hierarchyWeight(parents, { pairs: 2, links: Infinity }), { pairs: 3, links: 3, over: 'c' });
    assert.equal(hierarchyWeight(parents, { pairs: Infinity, links: 3 }).over, undefined);
    assert.equal(hierarchyWeight(parents, { pairs: Infinity, links: 2 }).over, 'c');
  });

  it('walks 10,000 entities in one chain without recursion, and stops at the limit without walking the rest', () => {
    const parents = new Map(Array.from({ length: 10_000 }, (_, i) => [`g${i}`, i === 0 ? [] : [`g${i - 1}`]]));
    assert.equal(hierarchyWeight(parents, { pairs: 1_000, links: Infinity }).over, 'g45'); // 0 + 1 + … + 45 = 1,035
    assert.deepEqual(hierarchyWeight(new Map([...parents].slice(0, 1_000)), UNLIMITED), { pairs: 499_500, links: 499_500 });
  });

  it('counts what a naive computation of the ancestor relation counts, and passes the limit exactly when it is passed (property)', () => {
    fc.assert(
      fc.property(graph(10), fc.nat({ max: 60 }), fc.nat({ max: 80 }), (parents, pairLimit, linkLimit) => {
        const expected = naiveWeight(parents);
        assert.deepEqual(hierarchyWeight(parents, UNLIMITED), expected);
        const limited = hierarchyWeight(parents, { pairs: pairLimit, links: linkLimit });
        assert.equal(limited.over !== undefined, expected.pairs > pairLimit || expected.links > linkLimit);
        if (limited.over !== undefined) assert.ok(limited.pairs > pairLimit || limited.links > linkLimit);
      }),
      { numRuns: 500 },
    );
  });
});

/** Up to `n` entities named e0…, each with up to four parents among them or absent ones (x…): loops, self-parents, repeated parents and shared ancestors included. */
function graph(n: number): fc.Arbitrary<Map<string, string[]>> {
  const name = fc.oneof({ weight: 5, arbitrary: fc.nat({ max: n - 1 }).map((i) => `e${i}`) }, { weight: 1, arbitrary: fc.constantFrom('x0', 'x1') });
  return fc.array(fc.array(name, { maxLength: 4 }), { maxLength: n }).map((lists) => new Map(lists.map((ps, i) => [`e${i}`, ps])));
}

/**
 * Naive: for each entity, the set of everything reachable by following
 * parents (itself only through a loop), by repeating until nothing is added;
 * pairs sums those sets' sizes, links the parents listed by the entity and by
 * each of its ancestors other than itself.
 */
function naiveWeight(parents: ReadonlyMap<string, readonly string[]>): { pairs: number; links: number } {
  let pairs = 0;
  let links = 0;
  for (const [key, own] of parents) {
    const ancestors = new Set(own);
    for (let grew = true; grew; ) {
      grew = false;
      for (const a of [...ancestors]) {
        for (const p of parents.get(a) ?? []) {
          if (!ancestors.has(p)) {
            ancestors.add(p);
            grew = true;
          }
        }
      }
    }
    pairs += ancestors.size;
    links += own.length;
    for (const a of ancestors) if (a !== key) links += parents.get(a)?.length ?? 0;
  }
  return { pairs, links };
}
