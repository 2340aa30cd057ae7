import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies, loadPolicyDir } from './load.ts';
import { watchPolicyDir } from './watch.ts';

const EXAMPLE = new URL('../../../examples/invoice-intake/cedar', import.meta.url).pathname;
const GOOD = '@id("read")\npermit(principal, action == Action::"record.read", resource);\n';

function refused(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof PolicyError);
    return error;
  }
  assert.fail('expected a PolicyError');
}

describe('loadPolicyDir', () => {
  it('loads the invoice-intake example with ids, annotations and locations', () => {
    const set = loadPolicyDir(EXAMPLE);
    const large = set.policies.find((p) => p.id === 'intake-pays-large');
    assert.ok(large);
    assert.equal(large.approval, true);
    assert.equal(large.quorum, 2);
    assert.equal(large.file, 'invoice-intake.cedar');
    assert.ok(large.line > 1);
    assert.match(set.fingerprint, /^[0-9a-f]{64}$/);
  });

  it('refuses a directory that does not exist', () => {
    assert.equal(refused(() => loadPolicyDir('/nonexistent/corral-policies')).code, 'POLICY_UNREADABLE');
  });
});

describe('loadPolicies: a bad set is refused with file, line and reason', () => {
  it('names the file and line of a syntax error', () => {
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text: GOOD }, { file: 'b.cedar', text: '// one\n// two\npermit(principal, action, resource) when { 1 + };\n' }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.equal(e.issues[0]?.file, 'b.cedar');
    assert.equal(e.issues[0]?.line, 3);
  });

  it('names the file, line and policy of a schema violation', () => {
    const text = `${GOOD}\n@id("typo")\npermit(principal is Agent, action == Action::"record.read", resource)\nwhen { principal.stauts == "active" };\n`;
    const e = refused(() => loadPolicies([{ file: 'typo.cedar', text }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.deepEqual({ file: e.issues[0]?.file, line: e.issues[0]?.line, policyId: e.issues[0]?.policyId }, { file: 'typo.cedar', line: 6, policyId: 'typo' });
    assert.match(e.issues[0]!.message, /stauts/);
  });

  it('refuses an unknown action', () => {
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text: 'permit(principal, action == Action::"launch.missiles", resource);' }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
  });

  for (const [name, text] of [
    ['an @approval other than "required"', '@approval("maybe") permit(principal, action, resource);'],
    ['a @quorum without @approval', '@quorum("2") permit(principal, action, resource);'],
    ['a @quorum of zero', '@approval("required") @quorum("0") permit(principal, action, resource);'],
    ['a @quorum that is not a number', '@approval("required") @quorum("two") permit(principal, action, resource);'],
    ['an @approval on a forbid', '@approval("required") forbid(principal, action, resource);'],
    ['an unknown annotation', '@aproval("required") permit(principal, action, resource);'],
    ['a template', 'permit(principal == ?principal, action, resource);'],
  ] as const) {
    it(`refuses ${name}`, () => {
      const e = refused(() => loadPolicies([{ file: 'a.cedar', text }]));
      assert.equal(e.code, 'POLICY_SET_INVALID');
      assert.equal(e.issues[0]?.file, 'a.cedar');
    });
  }

  it('refuses two policies with the same id, pointing at the first', () => {
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text: GOOD }, { file: 'b.cedar', text: GOOD }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.equal(e.issues[0]?.file, 'b.cedar');
    assert.match(e.issues[0]!.message, /a\.cedar:1/);
  });

  it('never lets a foreign exception out, whatever the text (property)', () => {
    const cedarish = fc.array(fc.constantFrom('permit', 'forbid', '(', ')', 'principal', 'action', 'resource', ',', ';', 'when', '{', '}', '@id("x")', '@approval("required")', '"', '==', 'in', 'Action::"record.read"', '\n', '//', 'é', '\u0000'), { maxLength: 30 }).map((xs) => xs.join(' '));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), cedarish), (text) => {
        try {
          loadPolicies([{ file: 'fuzz.cedar', text }]);
        } catch (error) {
          assert.ok(error instanceof PolicyError, String(error));
          assert.equal(error.code, 'POLICY_SET_INVALID');
          for (const issue of error.issues) assert.ok(issue.line === undefined || issue.line >= 1);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('hot reload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-policy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const request = { principal: { type: 'Agent', id: 'a' }, action: 'record.read', resource: { type: 'Record', id: 'r' } };

  it('keeps the previous set active when the new one is invalid', () => {
    writeFileSync(join(dir, 'p.cedar'), GOOD);
    const pdp = new DecisionPoint();
    const first = pdp.reload(dir);
    writeFileSync(join(dir, 'p.cedar'), 'permit(principal, action, resource) when { nope };');
    assert.equal(refused(() => pdp.reload(dir)).code, 'POLICY_SET_INVALID');
    assert.equal(pdp.policySet, first);
    assert.equal(pdp.decide(request).decision, 'allow');
  });

  it('picks up a changed file, and reports a broken one without dropping policy', async () => {
    writeFileSync(join(dir, 'p.cedar'), GOOD);
    const pdp = new DecisionPoint();
    pdp.reload(dir);
    const events: string[] = [];
    let wake: () => void = () => {};
    const watcher = watchPolicyDir(pdp, dir, { debounceMs: 20, onLoad: () => (events.push('load'), wake()), onError: (e) => (events.push(e.code), wake()) });
    try {
      const next = () => new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reload within 3 s')), 3000);
        wake = () => (clearTimeout(timer), resolve());
      });
      let waiting = next();
      writeFileSync(join(dir, 'p.cedar'), '@id("deny-all") forbid(principal, action, resource);\n' + GOOD);
      await waiting;
      assert.equal(pdp.decide(request).decision, 'deny');
      waiting = next();
      writeFileSync(join(dir, 'p.cedar'), 'this is not cedar');
      await waiting;
      assert.deepEqual(events, ['load', 'POLICY_SET_INVALID']);
      assert.equal(pdp.decide(request).decision, 'deny');
    } finally {
      watcher.close();
    }
  });
});
