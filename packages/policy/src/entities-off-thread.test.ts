// A decision point whose entities file is checked on a worker thread
// (decisionPointOffThread): it decides as one given the same entities with
// setEntities, refuses what that refuses, and leaves the event loop running.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint, type Decision } from './decision-point.ts';
import { MAX_PARENT_DEPTH } from './entities.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies, type PolicySource } from './load.ts';
import { decisionPointOffThread } from './load-thread.ts';
import { longestGap } from '../../../scripts/testing/event-loop.ts';
import { orgChart } from '../../../scripts/testing/org-chart.ts';

const SOURCES: PolicySource[] = [
  { file: 'staff.cedar', text: '@id("staff")\npermit (principal in Group::"g1-3", action == Action::"system.run", resource);\n' },
  { file: 'ops.cedar', text: '@id("ops")\npermit (principal, action == Action::"system.run", resource == Command::"deploy") when { principal has roles && principal.roles.contains("ops") };\n' },
  { file: 'outside.cedar', text: '@id("outside")\nforbid (principal in Group::"g2-7", action, resource) unless { principal has email && principal.email like "*@example.com" };\n' },
  { file: 'rm.cedar', text: '@id("rm")\n@approval("required")\npermit (principal in Group::"g0-1", action == Action::"system.run", resource == Command::"rm");\n' },
  // Not compiled (an extension function): cedar-wasm decides it, handed the entities the request reaches.
  { file: 'ring.cedar', text: '@id("ring")\npermit (principal in Group::"g3-11", action == Action::"file.read", resource) when { ip("127.0.0.1").isLoopback() && principal in Group::"g0-2" };\n' },
];


/** The requests asked of every human: compiled policies, an approval, and one cedar-wasm decides. */
const REQUESTS = [
  { action: 'system.run', resource: { type: 'Command', id: 'echo' } },
  { action: 'system.run', resource: { type: 'Command', id: 'deploy' } },
  { action: 'system.run', resource: { type: 'Command', id: 'rm' } },
  { action: 'file.read', resource: { type: 'File', id: '/srv/report' } },
];

/** A decision point made the way the gateway used to make one on its own thread: load, then setEntities. */
function onThisThread(sources: PolicySource[], text: string): DecisionPoint {
  const point = new DecisionPoint();
  point.load(loadPolicies(sources));
  point.setEntities(JSON.parse(text), { file: 'entities.json' });
  return point;
}

/** What `point` decides for each human in `entities`, and every stored entity's ancestors. */
function behaviour(point: DecisionPoint, entities: unknown[]): { decisions: Decision[]; ancestors: string[][] } {
  const humans = entities.map((e) => (e as { uid: { type: string; id: string } }).uid).filter((uid) => uid.type === 'Human');
  const decisions = humans.flatMap((principal, i) => (i % 8 === 0 ? REQUESTS : REQUESTS.slice(0, 3)).map((r) => point.decide({ principal, ...r })));
  const ancestors = point.entities.json.map((e) => {
    const uid = e.uid as { type: string; id: string };
    return [...point.entities.ancestors(`${uid.type}::${JSON.stringify(uid.id)}`)].sort();
  });
  return { decisions, ancestors };
}

/** What a refusal says: its code, message and issues. */
function refusal(error: unknown): { code: string; message: string; issues: unknown } {
  assert.ok(error instanceof PolicyError, String(error));
  return { code: error.code, message: error.message, issues: error.issues };
}


describe('a decision point whose entities are checked on a worker thread', () => {
  describe('with an org chart of 2,000 people in 1,000 groups', () => {
    it('decides every request, and finds every ancestor, as a decision point given the same entities with setEntities', async () => {
      const entities = orgChart(2_000);
      const text = JSON.stringify(entities);
      const before = behaviour(onThisThread(SOURCES, text), entities);
      const after = behaviour(await decisionPointOffThread(SOURCES, { entities: { file: 'entities.json', text } }), entities);
      assert.deepEqual(after, before);
      // not vacuous: the hierarchy, attributes, the approval and cedar-wasm all decided some
      const kinds = new Set(after.decisions.map((d) => `${d.decision}:${d.engine}:${d.policies.join(',')}`));
      for (const kind of ['allow:compiled:staff', 'allow:compiled:ops', 'deny:compiled:outside', 'ask:compiled:rm', 'allow:cedar:ring', 'deny:compiled:']) assert.ok(kinds.has(kind), `${kind} in ${[...kinds].join(' ')}`);
    });

    it('holds the same entities in Cedar JSON, in the same order, as setEntities', async () => {
      const text = JSON.stringify(orgChart(2_000));
      const point = await decisionPointOffThread(SOURCES, { entities: { file: 'entities.json', text } });
      assert.deepEqual(point.entities.json, onThisThread(SOURCES, text).entities.json);
      assert.equal(point.entities.version, 1);
    });
  });

  it('decides as setEntities would, or refuses as it does, for any small hierarchy with attributes (property)', async () => {
    const uid = fc.constantFrom('a', 'b', 'c', 'd', 'e').map((id) => ({ type: 'Group', id }));
    const human = fc.constantFrom('h1', 'h2', 'h3').map((id) => ({ type: 'Human', id }));
    const humanEntity = fc.record({ uid: human, attrs: fc.record({ email: fc.constantFrom('x@example.com', 'y@elsewhere.example'), roles: fc.subarray(['ops', 'dev']) }), parents: fc.array(uid, { maxLength: 3 }) });
    const groupEntity = fc.record({ uid, parents: fc.array(uid, { maxLength: 2 }) });
    // Duplicates, loops, parents never listed and ill-typed attributes all come up.
    const data = fc.array(fc.oneof(groupEntity, humanEntity, fc.constant({ uid: { type: 'Human', id: 'h9' }, attrs: { email: 3, roles: [] } })), { maxLength: 10 });
    const sources: PolicySource[] = [
      { file: 'a.cedar', text: '@id("in-a")\npermit (principal in Group::"a", action == Action::"system.run", resource);\n' },
      { file: 'b.cedar', text: '@id("not-b")\nforbid (principal in Group::"b", action, resource) unless { principal has email && principal.email like "*@example.com" };\n' },
      { file: 'c.cedar', text: '@id("c-ring")\npermit (principal, action == Action::"file.read", resource) when { ip("127.0.0.1").isLoopback() && principal in Group::"c" };\n' },
    ];
    const outcome = async (make: () => DecisionPoint | Promise<DecisionPoint>, entities: unknown[]) => {
      try {
        return behaviour(await make(), entities);
      } catch (error) {
        return refusal(error);
      }
    };
    let decided = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(data, async (entities) => {
        const text = JSON.stringify(entities);
        const before = await outcome(() => onThisThread(sources, text), entities);
        const after = await outcome(() => decisionPointOffThread(sources, { entities: { file: 'entities.json', text } }), entities);
        assert.deepEqual(after, before);
        if ('decisions' in after) decided++;
        else refused++;
      }),
      {
        numRuns: Number(process.env.CORRAL_FC_RUNS ?? 25),
        // Run first, so that both outcomes are compared whatever the random ones are (most random hierarchies are refused).
        examples: [
          [[{ uid: { type: 'Human', id: 'h1' }, attrs: { email: 'x@example.com', roles: ['ops'] }, parents: [{ type: 'Group', id: 'a' }] }, { uid: { type: 'Group', id: 'a' }, parents: [] }]],
          [[{ uid: { type: 'Group', id: 'a' }, parents: [{ type: 'Group', id: 'a' }] }]],
        ],
      },
    );
    // not vacuous: some decided, some refused
    assert.ok(decided > 0 && refused > 0, JSON.stringify({ decided, refused }));
  });

  describe('refuses what setEntities refuses, with the same code, message and issue naming the file', () => {
    const chain = (n: number) => Array.from({ length: n }, (_, i) => ({ uid: { type: 'Group', id: `c${i}` }, parents: i + 1 < n ? [{ type: 'Group', id: `c${i + 1}` }] : [] }));
    const cases: Array<[string, string]> = [
      ['entities that are not a list', '{"uid": {"type": "Group", "id": "g"}}'],
      ['an entity listed twice', JSON.stringify([{ uid: { type: 'Group', id: 'g' } }, { uid: { type: 'Group', id: 'g' } }])],
      ['a loop of parents', JSON.stringify([{ uid: { type: 'Group', id: 'a' }, parents: [{ type: 'Group', id: 'b' }] }, { uid: { type: 'Group', id: 'b' }, parents: [{ type: 'Group', id: 'a' }] }])],
      [`a chain of parents more than ${MAX_PARENT_DEPTH} deep`, JSON.stringify(chain(MAX_PARENT_DEPTH + 2))],
      ['an attribute that does not fit the schema', JSON.stringify([{ uid: { type: 'Human', id: 'h' }, attrs: { email: 3, roles: [] } }])],
      ['an action', JSON.stringify([{ uid: { type: 'Action', id: 'system.run' } }])],
    ];
    for (const [what, text] of cases) {
      it(`refuses ${what}`, async () => {
        const here = (() => {
          try {
            onThisThread(SOURCES, text);
          } catch (error) {
            return refusal(error);
          }
          throw new Error('setEntities took them');
        })();
        assert.equal(here.code, 'POLICY_ENTITIES_INVALID');
        await assert.rejects(decisionPointOffThread(SOURCES, { entities: { file: 'entities.json', text } }), (error) => {
          assert.deepEqual(refusal(error), here);
          return true;
        });
      });
    }

    it('refuses a file that is not JSON, naming it, the line and column, and why (regression: "not JSON" alone, said twice)', async () => {
      await assert.rejects(decisionPointOffThread(SOURCES, { entities: { file: 'org/entities.json', text: '[\n  {' } }), (error) => {
        const message = "not JSON (Expected property name or '}')";
        assert.deepEqual(refusal(error), { code: 'POLICY_ENTITIES_INVALID', message: `org/entities.json:2:4: ${message}`, issues: [{ file: 'org/entities.json', line: 2, column: 4, message }] });
        return true;
      });
    });

    it('says where JSON.parse gives no place, and never quotes the text', async () => {
      for (const [text, message] of [['', 'not JSON (Unexpected end of JSON input)'], ['sk_live_51HSECRETSECRET', 'not JSON (Unexpected token)']] as const) {
        await assert.rejects(decisionPointOffThread(SOURCES, { entities: { file: 'entities.json', text } }), (error) => {
          assert.deepEqual(refusal(error), { code: 'POLICY_ENTITIES_INVALID', message: `entities.json: ${message}`, issues: [{ file: 'entities.json', message }] });
          return true;
        });
      }
    });

    it('reports the set before its entities when both are wrong', async () => {
      await assert.rejects(decisionPointOffThread([{ file: 'bad.cedar', text: 'permit (' }], { entities: { file: 'entities.json', text: '[{' } }), { code: 'POLICY_SET_INVALID' });
    });

    it('takes a set with no entities file, holding only the schema\'s actions', async () => {
      const point = await decisionPointOffThread(SOURCES);
      assert.ok(point.entities.json.every((e) => (e.uid as { type: string }).type === 'Action'));
      assert.equal(point.decide({ principal: { type: 'Human', id: 'h0' }, ...REQUESTS[0]! }).decision, 'deny');
    });
  });

  describe('with an org chart of 10,000 people in 1,000 groups nested 5 deep', () => {
    it('keeps the event loop answering while it is taken (regression: its checks held the thread taking it ~1 s)', async () => {
      const text = JSON.stringify(orgChart(10_000));
      // What taking these entities with setEntities costs on this machine, now: the stall it used to cause (slowness scales both).
      const start = performance.now();
      onThisThread(SOURCES, text);
      const syncMs = performance.now() - start;
      const { gap, value: point } = await longestGap(() => decisionPointOffThread(SOURCES, { entities: { file: 'entities.json', text } }), 2);
      assert.ok(gap < syncMs / 4, `the event loop stalled ${gap.toFixed(0)} ms; setEntities takes ${syncMs.toFixed(0)} ms`);
      assert.equal(point.decide({ principal: { type: 'Human', id: 'h9999' }, ...REQUESTS[0]! }).policySet, point.policySet!.fingerprint);
    });
  });
});
