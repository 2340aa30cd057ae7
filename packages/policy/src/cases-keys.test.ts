import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCases } from './cases.ts';
import type { PolicyError } from './errors.ts';

const CASE = '  - { principal: {type: Agent, id: a}, action: x, resource: {type: R, id: r}, expect: allow }\n';

describe('parseCases when a mapping has many keys or one key twice', () => {
  it('reads 30,000 keys in one mapping in under 3 s of CPU (regression: each key was weighed against every other, 13 s of CPU)', () => {
    const keys = Array.from({ length: 30_000 }, (_, i) => `  k${i}: v\n`).join('');
    // CPU time, not the clock's: the bound is on this parse's work, whatever else the host runs.
    const started = process.cpuUsage();
    parseCases(`cases:\n${CASE}extra:\n${keys}`);
    const { user, system } = process.cpuUsage(started);
    assert.ok(user + system < 3_000_000, `took ${((user + system) / 1000).toFixed(0)} ms of CPU`);
  });

  it('refuses a key written twice, naming its second line and column', () => {
    assert.throws(
      () => parseCases(`cases:\n${CASE}cases:\n${CASE}`),
      (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /writes the key "cases" twice in one mapping, at line 3, column 1, first at line 1; keep one$/.test(e.message),
    );
  });

  it('refuses 1 and "1" as one key written twice, as the object read from them holds one (regression: the last one won, unremarked)', () => {
    assert.throws(
      () => parseCases(`cases:\n${CASE}entities: []\n1: a\n"1": b\n`),
      (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /writes the key "1" twice in one mapping, at line 5, column 1, first at line 4;/.test(e.message),
    );
  });
});
