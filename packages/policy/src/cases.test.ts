import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { loadCases, parseCases, runCases } from './cases.ts';
import { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies, loadPolicyDir } from './load.ts';
import { replay, type RecordedDecision } from './replay.ts';

const EXAMPLE = new URL('../../../examples/invoice-intake/cedar', import.meta.url).pathname;

describe('policy cases', () => {
  it('passes every case of the invoice-intake example', () => {
    const pdp = new DecisionPoint();
    pdp.reload(EXAMPLE);
    const cases = loadCases(`${EXAMPLE}/cases.yaml`);
    pdp.setEntities(cases.entities);
    const results = runCases(pdp, cases.cases);
    assert.ok(results.length >= 10);
    assert.deepEqual(results.filter((r) => !r.passed).map((r) => r.name), []);
  });

  it('fails a case whose expected decision differs, and one whose request is refused', () => {
    const pdp = new DecisionPoint();
    pdp.load(loadPolicies([{ file: 'a.cedar', text: '@id("all") permit(principal, action, resource);' }]));
    const { cases } = parseCases(`
cases:
  - name: expects deny
    principal: { type: Agent, id: a }
    action: record.read
    resource: { type: Record, id: r }
    expect: deny
  - name: bad action
    principal: { type: Agent, id: a }
    action: nope
    resource: { type: Record, id: r }
    expect: deny
  - name: expects allow by all
    principal: { type: Agent, id: a }
    action: record.read
    resource: { type: Record, id: r }
    expect: allow
    policies: [all]
`);
    const results = runCases(pdp, cases);
    assert.deepEqual(results.map((r) => r.passed), [false, false, true]);
    assert.equal(results[1]?.actual.code, 'POLICY_REQUEST_INVALID');
  });

  for (const [name, text] of [
    ['YAML that does not parse', 'cases: [ {'],
    ['a document that is a list', '- a'],
    ['no cases', 'cases: []'],
    ['an expectation that is not a decision', 'cases:\n  - { principal: {type: Agent, id: a}, action: x, resource: {type: R, id: r}, expect: maybe }'],
    ['a quorum that is not a number', 'cases:\n  - { expect: ask, quorum: two }'],
  ] as const) {
    it(`refuses ${name} with POLICY_CASES_INVALID`, () => {
      assert.throws(() => parseCases(text), { code: 'POLICY_CASES_INVALID' });
    });
  }

  it('names the line and column of a cases file that is not YAML, without quoting its text (regression: "not valid YAML", nothing more)', () => {
    assert.throws(
      () => parseCases('cases:\n  - name: a\n   expected: allow\n'),
      (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /not valid YAML: .*at line 3, column 1$/.test(e.message) && !e.message.includes('expected: allow'),
    );
  });

  it('refuses a cases file of 100,000 stray `}` on one line in under 2 s of CPU, at its first (regression: 45 s, the whole line copied into each error)', () => {
    const started = process.cpuUsage();
    assert.throws(() => parseCases('}'.repeat(100_000)), (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /not valid YAML: Unexpected flow-map-end token.* at line 1, column 1$/.test(e.message));
    const { user, system } = process.cpuUsage(started);
    assert.ok(user + system < 2_000_000, `took ${((user + system) / 1000).toFixed(0)} ms of CPU`);
  });

  it('never lets a foreign exception out of the cases parser (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseCases(text);
        } catch (error) {
          assert.ok(error instanceof PolicyError, String(error));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('loadCases when the cases file names a hostile entities file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-cases-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const casesNaming = (name: string) => {
    const path = join(dir, `cases-${n++}.yaml`);
    writeFileSync(path, `entities: ${name}\ncases:\n  - { name: x, principal: { type: Agent, id: a }, action: record.read, resource: { type: Record, id: r }, expect: deny }\n`);
    return path;
  };

  it('refuses a FIFO without waiting for a writer (the read blocked the process)', () => {
    execFileSync('mkfifo', [join(dir, 'pipe.json')]);
    assert.throws(() => loadCases(casesNaming('pipe.json')), { code: 'POLICY_UNREADABLE' });
  });

  it('refuses a device without reading it forever', () => {
    assert.throws(() => loadCases(casesNaming('/dev/zero')), { code: 'POLICY_UNREADABLE' });
  });

  it('says a file is not JSON without quoting it (JSON.parse quoted its first bytes in the cause)', () => {
    writeFileSync(join(dir, 'key.txt'), 'sk_live_51HSECRETSECRET');
    const error = (() => {
      try {
        loadCases(casesNaming('key.txt'));
      } catch (e) {
        return e;
      }
      return assert.fail('expected a PolicyError');
    })();
    assert.equal((error as PolicyError).code, 'POLICY_CASES_INVALID');
    assert.doesNotMatch(inspect(error), /sk_live/);
  });

  it('refuses an entities file that gives one key twice in an object, naming the key (JSON.parse kept the last silently, and the cases ran on data the file did not show)', () => {
    writeFileSync(join(dir, 'twice.json'), '[{"uid": {"type": "Group", "id": "g"}, "parents": [{"type": "Group", "id": "top"}], "parents": []}]');
    assert.throws(() => loadCases(casesNaming('twice.json')), (error: PolicyError) => error.code === 'POLICY_CASES_INVALID' && /"parents" appears twice/.test(error.message));
  });

  it('refuses an entities file holding an integer past 2^53 − 1, naming the file, line and column (JSON.parse read it as another number, and the cases ran on data the file did not show)', () => {
    writeFileSync(join(dir, 'port.json'), '[\n{"uid": {"type": "Host", "id": "db"}, "attrs": {"name": "db", "port": 9007199254740993}}\n]');
    assert.throws(() => loadCases(casesNaming('port.json')), (error: PolicyError) => error.code === 'POLICY_CASES_INVALID' && /port\.json:2:71: the number 9007199254740993 /.test(error.message));
  });

  it('refuses an entities file that is not UTF-8 (an id read as U+FFFD named another entity)', () => {
    writeFileSync(join(dir, 'latin1.json'), Buffer.concat([Buffer.from('[{"uid": {"type": "Group", "id": "caf'), Buffer.from([0xe9]), Buffer.from('"}}]')]));
    assert.throws(() => loadCases(casesNaming('latin1.json')), { code: 'POLICY_CASES_INVALID' });
  });
});

describe('replay', () => {
  const history: RecordedDecision[] = [
    { ref: 1, request: { principal: { type: 'Agent', id: 'bot' }, action: 'payment.create', resource: { type: 'Record', id: 'p' }, context: { amount: 50_000 } }, decision: 'allow' },
    { ref: 2, request: { principal: { type: 'Agent', id: 'bot' }, action: 'payment.create', resource: { type: 'Record', id: 'p' }, context: { amount: 500_000 } }, decision: 'allow' },
    { ref: 3, request: { principal: { type: 'Agent', id: 'bot' }, action: 'record.read', resource: { type: 'Record', id: 'r' } }, decision: 'allow' },
    { ref: 4, request: { principal: { type: 'Agent', id: 'bot' }, action: 'retired.action', resource: { type: 'Record', id: 'r' } }, decision: 'deny' },
  ];

  it('lists exactly the past decisions a candidate set would change', () => {
    const candidate = new DecisionPoint();
    candidate.load(loadPolicies([{ file: 'c.cedar', text: `
      @id("read") permit(principal, action == Action::"record.read", resource);
      @id("pay") permit(principal, action == Action::"payment.create", resource) when { context has amount && context.amount <= 100000 };
      @id("pay-big") @approval("required") permit(principal, action == Action::"payment.create", resource) when { context has amount && context.amount > 100000 };
    ` }]));
    const report = replay(candidate, history);
    assert.equal(report.total, 4);
    assert.equal(report.unchanged, 2);
    assert.deepEqual(report.changed.map((c) => [c.ref, c.before, c.after.decision, c.after.policies]), [[2, 'allow', 'ask', ['pay-big']]]);
    assert.deepEqual(report.refused.map((r) => [r.ref, r.code]), [[4, 'POLICY_REQUEST_INVALID']]);
  });

  it('judges a record at its own time, not the replay\'s (a 3 a.m. payment was judged by the hour of the replay)', () => {
    const candidate = new DecisionPoint({ now: () => Date.UTC(2026, 10, 25, 9) });
    candidate.load(loadPolicies([{ file: 'c.cedar', text: '@id("office-hours") permit(principal, action == Action::"payment.create", resource) when { context.time.hour >= 8 && context.time.hour < 18 };' }]));
    const pay = { principal: { type: 'Agent', id: 'bot' }, action: 'payment.create', resource: { type: 'Record', id: 'p' }, context: { amount: 100 } };
    const report = replay(candidate, [
      { ref: 1, at: '2026-10-01T03:00:00Z', request: pay, decision: 'deny' },
      { ref: 2, at: '2026-10-01T10:00:00Z', request: pay, decision: 'allow' },
      // a recorded time wins over `at`
      { ref: 3, at: '2026-10-01T10:00:00Z', request: { ...pay, context: { ...pay.context, time: { epoch: 0, hour: 3, weekday: 4 } } }, decision: 'deny' },
      { ref: 4, at: 'last tuesday', request: pay, decision: 'allow' },
    ]);
    assert.deepEqual([report.unchanged, report.changed.map((c) => c.ref), report.refused.map((r) => [r.ref, r.code])], [3, [], [[4, 'POLICY_REQUEST_INVALID']]]);
  });

  it('reports no change when the candidate is the set that decided', () => {
    const pdp = new DecisionPoint();
    pdp.reload(EXAMPLE);
    const cases = loadCases(`${EXAMPLE}/cases.yaml`);
    pdp.setEntities(cases.entities);
    const recorded = cases.cases.map((c) => ({ request: c.request, decision: pdp.decide(c.request).decision }));
    const candidate = new DecisionPoint();
    candidate.load(loadPolicyDir(EXAMPLE));
    candidate.setEntities(cases.entities);
    const report = replay(candidate, recorded);
    assert.deepEqual([report.total, report.unchanged, report.changed.length], [recorded.length, recorded.length, 0]);
  });
});
