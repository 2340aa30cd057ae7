import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { countingWorkers } from '../../../scripts/testing/workers.ts';
import { parseCases, runCases, type PolicyCase } from './cases.ts';
import { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies } from './load.ts';
import { loadPoliciesOffThread, MAX_WAITING, runCaseTextOffThread, runCasesOffThread, setEntitiesOffThread, validatePoliciesOffThread } from './load-thread.ts';

const SOURCES = [
  { file: 'a.cedar', text: '@id("echo")\npermit (principal, action == Action::"system.run", resource == Command::"echo");\n' },
  { file: 'b.cedar', text: '@id("no-rm")\n@reason("nothing is removed")\nforbid (principal, action == Action::"system.run", resource == Command::"rm");\n' },
];
const CASES: PolicyCase[] = [
  { name: 'echo', request: { principal: { type: 'Human', id: 'op' }, action: 'system.run', resource: { type: 'Command', id: 'echo' } }, expect: 'allow' },
  { name: 'rm', request: { principal: { type: 'Human', id: 'op' }, action: 'system.run', resource: { type: 'Command', id: 'rm' } }, expect: 'allow' },
];

describe('checking a policy set on a worker thread', () => {
  it('loads the same set as on this thread', async () => {
    assert.deepEqual(await loadPoliciesOffThread(SOURCES), loadPolicies(SOURCES));
  });

  it('refuses an invalid set with the same coded error and issues as on this thread', async () => {
    const bad = [...SOURCES, { file: 'c.cedar', text: 'permit (principal, action == Action::"no.such", resource);\nforbid (' }];
    const here = (() => {
      try {
        loadPolicies(bad);
      } catch (error) {
        return error as PolicyError;
      }
      throw new Error('the set loaded');
    })();
    await assert.rejects(loadPoliciesOffThread(bad), (error: PolicyError) => {
      assert.ok(error instanceof PolicyError);
      assert.deepEqual([error.code, error.issues], [here.code, here.issues]);
      return true;
    });
  });

  it('refuses entities a decision point would refuse, and runs cases as on this thread', async () => {
    await assert.rejects(validatePoliciesOffThread(SOURCES, { not: 'an array' }), { code: 'POLICY_ENTITIES_INVALID' });
    await validatePoliciesOffThread(SOURCES, []);
    const point = new DecisionPoint();
    point.load(loadPolicies(SOURCES));
    assert.deepEqual(await runCasesOffThread(SOURCES, [], CASES), runCases(point, CASES));
  });

  it('keeps going after a worker fails: a set too deep for Cedar is refused, and the next one loads', async () => {
    const deep = `permit (principal, action, resource) when { ${'('.repeat(400)}true${')'.repeat(400)} };`;
    await assert.rejects(loadPoliciesOffThread([{ file: 'deep.cedar', text: deep }]), { code: 'POLICY_SET_INVALID' });
    assert.equal((await loadPoliciesOffThread(SOURCES)).policies.length, 2);
  });

  it('never runs more than two workers at once, counting one until it has exited (a freed turn let a newcomer in beside the woken one)', async () => {
    const { mostAtOnce } = await countingWorkers(async () => {
      const first = validatePoliciesOffThread(SOURCES);
      const more = [validatePoliciesOffThread(SOURCES), validatePoliciesOffThread(SOURCES), validatePoliciesOffThread(SOURCES)];
      // Newcomers the moment the first is done, while the next waiting one has been woken.
      const late = first.then(() => Promise.all([validatePoliciesOffThread(SOURCES), validatePoliciesOffThread(SOURCES)]));
      await Promise.all([first, ...more, late]);
    });
    assert.equal(mostAtOnce, 2);
  });

  it(`refuses a check when ${MAX_WAITING} wait already (POLICY_ENGINE_BUSY), but never an urgent one, which goes first`, async () => {
    const finished: string[] = [];
    const plain = Array.from({ length: MAX_WAITING + 3 }, (_, i) => validatePoliciesOffThread(SOURCES).then(() => finished.push(`plain-${i}`)));
    const urgent = loadPoliciesOffThread(SOURCES, undefined, { urgent: true }).then(() => finished.push('urgent'));
    const settled = await Promise.allSettled([...plain, urgent]);
    const refused = settled.filter((r) => r.status === 'rejected');
    assert.equal(refused.length, 1);
    assert.equal((refused[0] as PromiseRejectedResult).reason.code, 'POLICY_ENGINE_BUSY');
    // Two were running when it came; it started with the first free turn, beside the next one waiting.
    assert.ok(finished.indexOf('urgent') <= 3, `the urgent check went before those waiting: ${finished.join(' ')}`);
  });
});

describe('new entities for a decision point holding a set (setEntitiesOffThread)', () => {
  const GROUPED = [{ file: 'g.cedar', text: '@id("billing")\npermit (principal in Group::"billing", action == Action::"system.run", resource == Command::"ls");\n' }];
  const bot = (group: string) => ({ file: 'entities.json', text: JSON.stringify([{ uid: { type: 'Group', id: group }, attrs: {}, parents: [] }, { uid: { type: 'Agent', id: 'bot' }, attrs: { owner: 'o@example.com', process: group, status: 'active', scopes: [] }, parents: [{ type: 'Group', id: group }] }]) });
  const ls = { principal: { type: 'Agent', id: 'bot' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };

  it('decides with them as with setEntities, the set loaded no second time, the entities checked on one worker', async () => {
    const point = new DecisionPoint();
    point.load(loadPolicies(GROUPED));
    const set = point.policySet;
    const workers = await countingWorkers(async () => {
      await setEntitiesOffThread(point, bot('billing'));
      assert.equal(point.decide(ls).decision, 'allow');
      await setEntitiesOffThread(point, bot('mail'));
      assert.equal(point.decide(ls).decision, 'deny');
    });
    assert.equal(point.policySet, set);
    assert.equal(workers.started, 2, 'one worker for each entities file');
  });

  it('keeps the entities it holds when the new ones are refused, naming the file', async () => {
    const point = new DecisionPoint();
    point.load(loadPolicies(GROUPED));
    await setEntitiesOffThread(point, bot('billing'));
    const looped = { file: 'entities.json', text: JSON.stringify([{ uid: { type: 'Group', id: 'a' }, attrs: {}, parents: [{ type: 'Group', id: 'a' }] }]) };
    await assert.rejects(setEntitiesOffThread(point, looped), (error: PolicyError) => error.code === 'POLICY_ENTITIES_INVALID' && error.issues[0]?.file === 'entities.json');
    assert.equal(point.decide(ls).decision, 'allow');
  });
});

describe('when the data cannot be copied to a worker thread', () => {
  const nested = (depth: number): unknown => {
    let value: unknown = 'x';
    for (let i = 0; i < depth; i++) value = [value];
    return value;
  };
  const deep = nested(100_000);
  const caseWith = (name: string, context: unknown): PolicyCase => ({ name, request: { ...CASES[0]!.request, context: { deep: context } }, expect: 'allow' });

  it('refuses entities nested 100,000 deep with POLICY_ENTITIES_INVALID (a raw RangeError from the copy escaped)', async () => {
    await assert.rejects(validatePoliciesOffThread(SOURCES, [{ uid: { type: 'Group', id: 'g' }, attrs: { deep }, parents: [] }]), (error: unknown) => {
      assert.ok(error instanceof PolicyError, String(error));
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.match(error.message, /entities/);
      return true;
    });
    await assert.rejects(runCasesOffThread(SOURCES, deep, CASES), { code: 'POLICY_ENTITIES_INVALID' });
  });

  it('refuses cases nested 100,000 deep with POLICY_CASES_INVALID naming the case (a raw RangeError from the copy escaped)', async () => {
    await assert.rejects(runCasesOffThread(SOURCES, [], [CASES[0]!, caseWith('deep', deep)]), (error: unknown) => {
      assert.ok(error instanceof PolicyError, String(error));
      assert.equal(error.code, 'POLICY_CASES_INVALID');
      assert.match(error.message, /cases\[1\]/);
      return true;
    });
  });

  it('refuses data that is not data (a function) with the coded error of the part at fault', async () => {
    await assert.rejects(validatePoliciesOffThread(SOURCES, [{ uid: { type: 'Group', id: 'g' }, attrs: { f: () => 1 }, parents: [] }]), { code: 'POLICY_ENTITIES_INVALID' });
    await assert.rejects(runCasesOffThread(SOURCES, [], [caseWith('fn', () => 1)]), { code: 'POLICY_CASES_INVALID' });
  });

  it('gives its turn back: after such refusals, more checks than may run at once all run', async () => {
    const refusals = Array.from({ length: 3 }, () => validatePoliciesOffThread(SOURCES, deep).catch((error: PolicyError) => error.code));
    assert.deepEqual(await Promise.all(refusals), ['POLICY_ENTITIES_INVALID', 'POLICY_ENTITIES_INVALID', 'POLICY_ENTITIES_INVALID']);
    assert.equal((await Promise.all([loadPoliciesOffThread(SOURCES), loadPoliciesOffThread(SOURCES), loadPoliciesOffThread(SOURCES)])).length, 3);
  });

  it('still refuses entities deep enough to copy but too deep for a decision point, on the worker, with POLICY_ENTITIES_INVALID (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 33, max: 3_000 }), async (depth) => {
        await assert.rejects(validatePoliciesOffThread(SOURCES, [{ uid: { type: 'Group', id: 'g' }, attrs: { deep: nested(depth) }, parents: [] }]), { code: 'POLICY_ENTITIES_INVALID' });
      }),
      { numRuns: 5 },
    );
  });
});

describe('reading and running a cases text on a worker thread (runCaseTextOffThread)', () => {
  const ECHO = `cases:
  - name: echo
    principal: { type: Human, id: op }
    action: system.run
    resource: { type: Command, id: echo }
    expect: allow
`;


  it('reads the text and runs its cases on one worker, with the same results as on this thread (the text was read on a worker of its own, and the cases copied to another)', async () => {
    const point = new DecisionPoint();
    point.load(loadPolicies(SOURCES));
    let results: unknown;
    const { started: workers } = await countingWorkers(async () => (results = await runCaseTextOffThread(SOURCES, ECHO)));
    assert.deepEqual(results, runCases(point, parseCases(ECHO).cases));
    assert.equal(workers, 1);
  });

  it("adds the cases' entities, from a file they name, to the set's own, and a case's entity replaces the set's with the same uid", async () => {
    const member = `@id("crew")\npermit (principal in Group::"crew", action == Action::"system.run", resource == Command::"ls");\n`;
    const ls = (id: string, expect: string) => `  - name: ${id}\n    principal: { type: Human, id: ${id} }\n    action: system.run\n    resource: { type: Command, id: ls }\n    expect: ${expect}\n`;
    const own = { file: 'entities.json', text: JSON.stringify([{ uid: { type: 'Human', id: 'ann' }, attrs: { email: 'x@example.com', roles: [] }, parents: [{ type: 'Group', id: 'crew' }] }, { uid: { type: 'Human', id: 'bo' }, attrs: { email: 'x@example.com', roles: [] }, parents: [{ type: 'Group', id: 'crew' }] }]) };
    const theirs = { file: 'more.json', text: JSON.stringify([{ uid: { type: 'Human', id: 'bo' }, attrs: { email: 'x@example.com', roles: [] }, parents: [] }, { uid: { type: 'Human', id: 'cy' }, attrs: { email: 'x@example.com', roles: [] }, parents: [{ type: 'Group', id: 'crew' }] }]) };
    const results = await runCaseTextOffThread([{ file: 'm.cedar', text: member }], `entities: more.json\ncases:\n${ls('ann', 'allow')}${ls('bo', 'deny')}${ls('cy', 'allow')}`, { entities: own, files: [theirs] });
    assert.deepEqual(results.map((r) => [r.name, r.passed]), [['ann', true], ['bo', true], ['cy', true]]);
  });

  it('refuses an entities file the cases name that gives one key twice in an object (the worker kept the last silently, and the cases ran on data the file did not show)', async () => {
    const twice = { file: 'more.json', text: '[{"uid": {"type": "Group", "id": "g"}, "parents": [{"type": "Group", "id": "top"}], "parents": []}]' };
    await assert.rejects(runCaseTextOffThread(SOURCES, `entities: more.json\n${ECHO}`, { files: [twice] }), (error: PolicyError) => {
      assert.equal(error.code, 'POLICY_CASES_INVALID');
      assert.match(error.message, /more\.json:1:85: the key "parents" appears twice/);
      return true;
    });
  });

  it('keeps every entity whose uid is written {"__entity": {…}} when it adds the cases\' entities to the set\'s (all were taken as one uid, and only the last was kept)', async () => {
    const member = `@id("crew")\npermit (principal in Group::"crew", action == Action::"system.run", resource == Command::"ls");\n`;
    const ls = (id: string) => `  - name: ${id}\n    principal: { type: Human, id: ${id} }\n    action: system.run\n    resource: { type: Command, id: ls }\n    expect: allow\n`;
    const human = (id: string) => ({ uid: { __entity: { type: 'Human', id } }, attrs: { email: 'x@example.com', roles: [] }, parents: [{ type: 'Group', id: 'crew' }] });
    const own = { file: 'entities.json', text: JSON.stringify([human('ann'), human('bo')]) };
    const results = await runCaseTextOffThread([{ file: 'm.cedar', text: member }], `entities: [${JSON.stringify(human('cy'))}]\ncases:\n${ls('ann')}${ls('bo')}${ls('cy')}`, { entities: own });
    assert.deepEqual(results.map((r) => [r.name, r.passed]), [['ann', true], ['bo', true], ['cy', true]]);
  });

  it("refuses the set's entities file when it is JSON but not a list, naming it (it was taken as no entities)", async () => {
    await assert.rejects(runCaseTextOffThread(SOURCES, ECHO, { entities: { file: 'entities.json', text: '{"uid": {"type": "Human", "id": "op"}}' } }), (error: PolicyError) => {
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.deepEqual(error.issues.map((i) => i.file), ['entities.json']);
      return true;
    });
  });

  it("reports the set's issues first, then its entities file not being JSON, then cases that do not read", async () => {
    await assert.rejects(runCaseTextOffThread([{ file: 'bad.cedar', text: 'forbid (' }], 'not: [cases', { entities: { file: 'entities.json', text: '{' } }), { code: 'POLICY_SET_INVALID' });
    await assert.rejects(runCaseTextOffThread(SOURCES, 'not: [cases', { entities: { file: 'entities.json', text: '{' } }), (error: PolicyError) => {
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.deepEqual(error.issues.map((i) => i.file), ['entities.json']);
      return true;
    });
    await assert.rejects(runCaseTextOffThread(SOURCES, 'not: [cases', { entities: { file: 'entities.json', text: '[]' } }), { code: 'POLICY_CASES_INVALID' });
  });

  it('refuses cases naming a file it was not given, or one nested thousands deep, with POLICY_CASES_INVALID', async () => {
    await assert.rejects(runCaseTextOffThread(SOURCES, `entities: gone.json\n${ECHO}`), { code: 'POLICY_CASES_INVALID' });
    const deep = { file: 'deep.json', text: '['.repeat(10_000) + ']'.repeat(10_000) };
    await assert.rejects(runCaseTextOffThread(SOURCES, `entities: deep.json\n${ECHO}`, { files: [deep] }), { code: 'POLICY_CASES_INVALID' });
  });

  it('refuses valid cases that take the YAML parser more than 10 s to read (a list of 5,000,000 items, 15 MB: half a minute) with POLICY_CASES_INVALID, and frees its turn', async () => {
    const long = `padding: [${'x, '.repeat(5_000_000)}x]`;
    await assert.rejects(runCaseTextOffThread(SOURCES, `${long}\n${ECHO}`), { code: 'POLICY_CASES_INVALID' });
    assert.equal((await runCaseTextOffThread(SOURCES, ECHO)).length, 1);
  });
});
