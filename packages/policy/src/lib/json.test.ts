import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nestedDeeperThan } from './json.ts';

describe('how deep cases read from a text nest (nestedDeeperThan)', () => {
  const chain = (n: number): unknown => (n === 0 ? 1 : [chain(n - 1)]);
  it('counts each array or object on the way down: [[1]] is 2 deep, a scalar 0', () => {
    assert.deepEqual([nestedDeeperThan(1, 0), nestedDeeperThan([], 0), nestedDeeperThan([[1]], 1), nestedDeeperThan([[1]], 2), nestedDeeperThan({ a: { b: [] } }, 3)], [false, true, true, false, false]);
  });
  it('reads data nested far deeper than the stack allows without overflowing it', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown;
    assert.equal(nestedDeeperThan(deep, 64), true);
  });
  it('walks one object that YAML aliases put in many places once, and still counts its depth wherever it is deepest', () => {
    let shared: unknown = chain(10);
    // Each level holds the one below twice: 2^40 paths, 40 objects.
    for (let i = 0; i < 40; i++) shared = [shared, shared];
    assert.equal(nestedDeeperThan(shared, 50), false);
    assert.equal(nestedDeeperThan([1, shared, [[shared]]], 52), true, 'met shallow first, then 2 deeper');
  });
  it('takes a cycle as deeper than any limit', () => {
    const loop: unknown[] = [];
    loop.push([loop]);
    assert.equal(nestedDeeperThan(loop, 1000), true);
  });
});
