// Entity data is checked against the schema by cedar-wasm, which, given the
// schema, also reads other forms of an entity or an extension value where
// the schema declares one: ["Group", "g"], {"__entity": {…}, "x": 1},
// "10.0.0.1" for an ipaddr. Decisions read the data without the schema (the
// compiled evaluator, and cedar-wasm on the fallback path), as a set, a
// record or a string: a forbid on the value never applied. Each form is
// refused when the data is set; only the forms read alike either way are taken.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecisionPoint, acceptIllTypedEntities } from './decision-point.ts';
import type { PolicyError } from './errors.ts';
import { cedar } from './lib/cedar.ts';
import { loadPolicies } from './load.ts';
import { parseSchema } from './schema.ts';

const SCHEMA = `entity Group;
entity User in [Group] {
  manager?: Group, groups?: Set<Group>, team?: { lead: Group },
  ip?: ipaddr, ips?: Set<ipaddr>, level?: decimal, since?: datetime, ttl?: duration,
  named?: { "__entity"?: { "type": String, "id": String } },
  extn?: { "__extn": { fn: String, arg: String } }
} tags Group;
entity Doc tags ipaddr;
type Approval = { state: String, approvers: Long };
type Time = { epoch: Long, hour: Long, weekday: Long };
action read appliesTo { principal: User, resource: Doc, context: {
  classification: String, time: Time, approval: Approval,
  who?: Group, rec?: { "__entity"?: { "type": String, "id": String } }
} };`;
const schema = parseSchema(SCHEMA);
const CONTEXT = { classification: 'unclassified', time: { epoch: 1, hour: 1, weekday: 1 }, approval: { state: 'none', approvers: 0 } };
const request = { principal: { type: 'User', id: 'u' }, action: 'read', resource: { type: 'Doc', id: 'd' }, context: CONTEXT };
const GROUP = { uid: { type: 'Group', id: 'g' }, attrs: {}, parents: [] };
const DOC = { uid: { type: 'Doc', id: 'd' }, attrs: {}, parents: [] };
const user = (data: { attrs?: Record<string, unknown>; tags?: Record<string, unknown> }) => ({ uid: { type: 'User', id: 'u' }, attrs: data.attrs ?? {}, parents: [], ...(data.tags ? { tags: data.tags } : {}) });

function point(forbid: string): DecisionPoint {
  const pdp = new DecisionPoint({ schema });
  pdp.load(loadPolicies([{ file: 'a.cedar', text: `@id("forbid") forbid(principal, action, resource) when { ${forbid} };\n@id("all") permit(principal, action, resource);` }], schema));
  return pdp;
}

/** Cedar's decision given the schema, with every entity and the context as given. */
function cedarWithSchema(forbid: string, entities: unknown[], context: Record<string, unknown> = CONTEXT): { decision: string; reason: string[] } {
  const answer = cedar.isAuthorized({
    principal: request.principal,
    action: { type: 'Action', id: 'read' },
    resource: request.resource,
    context: context as never,
    schema: SCHEMA,
    policies: { staticPolicies: { forbid: `forbid(principal, action, resource) when { ${forbid} };`, all: 'permit(principal, action, resource);' } },
    entities: entities as never,
  });
  assert.equal(answer.type, 'success', JSON.stringify(answer));
  if (answer.type !== 'success') throw new Error('unreachable');
  return { decision: answer.response.decision, reason: answer.response.diagnostics.reason };
}

function refusal(run: () => void): PolicyError {
  try {
    run();
  } catch (error) {
    return error as PolicyError;
  }
  assert.fail('expected a refusal');
}

// name, the forbid, the data, where the refusal names, what it says to write
const FAIL_OPEN: [string, string, { attrs?: Record<string, unknown>; tags?: Record<string, unknown> }, string, string][] = [
  ['an entity written as an array ["Group", "g"] (read as a set)', 'principal has manager && principal.manager == Group::"g"', { attrs: { manager: ['Group', 'g'] } }, 'attrs.manager', '{"__entity": {"type": "Group", "id": …}}'],
  ['an entity written {"type", "id"} (read as a record)', 'principal has manager && principal.manager == Group::"g"', { attrs: { manager: { type: 'Group', id: 'g' } } }, 'attrs.manager', '{"__entity": {"type": "Group", "id": …}}'],
  ['an entity written {"__entity": {…}, "x": 1} (read as a record)', 'principal has manager && principal.manager == Group::"g"', { attrs: { manager: { __entity: { type: 'Group', id: 'g' }, x: 1 } } }, 'attrs.manager', '{"__entity": {"type": "Group", "id": …}}'],
  ['an entity written {"__entity": ["Group", "g"]}', 'principal has manager && principal.manager == Group::"g"', { attrs: { manager: { __entity: ['Group', 'g'] } } }, 'attrs.manager', '{"__entity": {"type": "Group", "id": …}}'],
  ['an array in a set of entities', 'principal has groups && principal.groups.contains(Group::"g")', { attrs: { groups: [['Group', 'g']] } }, 'attrs.groups[0]', '{"__entity": {"type": "Group", "id": …}}'],
  ['an array in a record\'s entity field', 'principal has team && principal.team.lead == Group::"g"', { attrs: { team: { lead: ['Group', 'g'] } } }, 'attrs.team.lead', '{"__entity": {"type": "Group", "id": …}}'],
  ['an entity tag written as an array (getTag)', 'principal.hasTag("t") && principal.getTag("t") == Group::"g"', { tags: { t: ['Group', 'g'] } }, 'tags.t', '{"__entity": {"type": "Group", "id": …}}'],
  ['an entity tag with a key beside "__entity"', 'principal.hasTag("t") && principal.getTag("t") == Group::"g"', { tags: { t: { __entity: { type: 'Group', id: 'g' }, y: 2 } } }, 'tags.t', '{"__entity": {"type": "Group", "id": …}}'],
  ['an ipaddr written "10.0.0.1" (read as a string)', 'principal has ip && principal.ip == ip("10.0.0.1")', { attrs: { ip: '10.0.0.1' } }, 'attrs.ip', '{"__extn": {"fn": "ip", "arg": …}}'],
  ['a decimal written "1.5"', 'principal has level && principal.level == decimal("1.5")', { attrs: { level: '1.5' } }, 'attrs.level', '{"__extn": {"fn": "decimal", "arg": …}}'],
  ['a datetime written "2024-01-01"', 'principal has since && principal.since == datetime("2024-01-01")', { attrs: { since: '2024-01-01' } }, 'attrs.since', '{"__extn": {"fn": "datetime", "arg": …}}'],
  ['a duration written "1h"', 'principal has ttl && principal.ttl == duration("1h")', { attrs: { ttl: '1h' } }, 'attrs.ttl', '{"__extn": {"fn": "duration", "arg": …}}'],
  ['an ipaddr string in a set of them', 'principal has ips && principal.ips.contains(ip("10.0.0.1"))', { attrs: { ips: ['10.0.0.1'] } }, 'attrs.ips[0]', '{"__extn": {"fn": "ip", "arg": …}}'],
  ['an extension value written {"__extn": {…}, "x": 1} (read as a record)', 'principal has ip && principal.ip == ip("10.0.0.1")', { attrs: { ip: { __extn: { fn: 'ip', arg: '10.0.0.1' }, x: 1 } } }, 'attrs.ip', '{"__extn": {"fn": "ip", "arg": …}}'],
  ['an extension value written {"fn", "arg"} (read as a record)', 'principal has ip && principal.ip == ip("10.0.0.1")', { attrs: { ip: { fn: 'ip', arg: '10.0.0.1' } } }, 'attrs.ip', '{"__extn": {"fn": "ip", "arg": …}}'],
  ['a record whose one field is named "__entity" (read as an entity)', 'principal has named && principal.named has "__entity"', { attrs: { named: { __entity: { type: 'Group', id: 'g' } } } }, 'attrs.named.__entity', 'another name'],
  ['a record whose one field is named "__extn" (read as an ipaddr)', 'principal has extn && principal.extn == {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}', { attrs: { extn: { __extn: { fn: 'ip', arg: '10.0.0.1' } } } }, 'attrs.extn.__extn', 'another name'],
];

describe('an entity or extension value in entity data, in a form Cedar reads as one only with the schema', () => {
  for (const [name, forbid, data, path, write] of FAIL_OPEN) {
    it(`is refused: ${name}, naming the entity, the attribute and what to write (Cedar with the schema denies; decisions, reading it without, allowed)`, () => {
      const entities = [user(data), GROUP, DOC];
      assert.deepEqual(cedarWithSchema(forbid, entities), { decision: 'deny', reason: ['forbid'] }, 'Cedar given the schema takes the data and applies the forbid');
      const unchecked = acceptIllTypedEntities(point(forbid));
      unchecked.setEntities(entities);
      assert.equal(unchecked.decide(request).decision, 'allow', 'decisions read the data without the schema: the forbid does not apply');
      const pdp = point(forbid);
      const error = refusal(() => pdp.setEntities(entities));
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.ok(error.message.startsWith(`entity User::"u": entities[0].${path} `), error.message);
      assert.ok(error.message.includes(write), error.message);
      assert.equal(pdp.decide(request).decision, 'allow', 'the old (empty) data stays');
    });
  }

  it('is refused as a resource\'s extension-typed tag written as a string (resource.getTag)', () => {
    const forbid = 'resource.hasTag("net") && resource.getTag("net") == ip("127.0.0.1")';
    const entities = [{ ...DOC, tags: { net: '127.0.0.1' } }];
    assert.equal(cedarWithSchema(forbid, entities).decision, 'deny');
    assert.match(refusal(() => point(forbid).setEntities(entities)).message, /^entity Doc::"d": entities\[0\]\.tags\.net is a string/);
  });

  it('names the file the data came from', () => {
    const error = refusal(() => point('true').setEntities([user({ attrs: { manager: ['Group', 'g'] } })], { file: 'entities.json' }));
    assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
    assert.deepEqual(error.issues.map((i) => i.file), ['entities.json']);
  });

  it('is refused with keys inside "__entity" or "__extn", or "args" for "arg": one form to check (both readers take these alike)', () => {
    for (const attrs of [
      { manager: { __entity: { type: 'Group', id: 'g', x: 1 } } },
      { ip: { __extn: { fn: 'ip', arg: '10.0.0.1', x: 1 } } },
      { ip: { __extn: { fn: 'ip', args: ['10.0.0.1'] } } },
    ]) {
      assert.equal(refusal(() => point('true').setEntities([user({ attrs })])).code, 'POLICY_ENTITIES_INVALID', JSON.stringify(attrs));
    }
  });

  it('is taken in the one form each, and decided as Cedar decides with the schema', () => {
    const forms = {
      manager: { __entity: { type: 'Group', id: 'g' } },
      groups: [{ __entity: { type: 'Group', id: 'g' } }],
      team: { lead: { __entity: { type: 'Group', id: 'g' } } },
      ip: { __extn: { fn: 'ip', arg: '10.0.0.1' } },
      ips: [{ __extn: { fn: 'ip', arg: '10.0.0.1' } }],
      level: { __extn: { fn: 'decimal', arg: '1.5' } },
      since: { __extn: { fn: 'datetime', arg: '2024-01-01' } },
      ttl: { __extn: { fn: 'duration', arg: '1h' } },
    };
    const entities = [user({ attrs: forms, tags: { t: { __entity: { type: 'Group', id: 'g' } } } }), GROUP, { ...DOC, tags: { net: { __extn: { fn: 'ip', arg: '127.0.0.1' } } } }];
    for (const [, forbid] of FAIL_OPEN.filter(([, f]) => !f.includes('"__'))) {
      const pdp = point(forbid);
      pdp.setEntities(entities);
      const made = pdp.decide(request);
      assert.deepEqual({ decision: made.decision, reason: made.policies }, cedarWithSchema(forbid, entities), forbid);
      assert.equal(made.decision, 'deny', forbid);
    }
  });
});

describe('an entity in a request\'s context, in a form Cedar reads as one only with the schema', () => {
  it('is refused POLICY_REQUEST_INVALID as an array, with keys beside or inside "__entity", or as a record field named "__entity" (Cedar with the schema denies)', () => {
    const forbid = '(context has who && context.who == Group::"g") || (context has rec && context.rec has "__entity")';
    const pdp = point(forbid);
    pdp.setEntities([GROUP]);
    for (const extra of [{ who: ['Group', 'g'] }, { who: { __entity: { type: 'Group', id: 'g' }, x: 1 } }, { who: { __entity: { type: 'Group', id: 'g', x: 1 } } }, { rec: { __entity: { type: 'Group', id: 'g' } } }]) {
      const context = { ...CONTEXT, ...extra };
      assert.equal(cedarWithSchema(forbid, [GROUP], context).decision, 'deny', JSON.stringify(extra));
      assert.equal(refusal(() => pdp.decide({ ...request, context })).code, 'POLICY_REQUEST_INVALID', JSON.stringify(extra));
    }
    assert.equal(pdp.decide({ ...request, context: { ...CONTEXT, who: { __entity: { type: 'Group', id: 'g' } } } }).decision, 'deny');
  });
});
