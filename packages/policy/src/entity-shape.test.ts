import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecisionPoint } from './decision-point.ts';
import { loadPolicies } from './load.ts';
import { parseSchema } from './schema.ts';

const agent = (extra: Record<string, unknown>) => ({ uid: { type: 'Agent', id: 'a' }, attrs: { owner: 'o', process: 'p', status: 'active', scopes: [] }, ...extra });
const read = { principal: { type: 'Agent', id: 'a' }, action: 'file.read', resource: { type: 'File', id: '/srv/x' } };

function contractorsForbidden(): DecisionPoint {
  const pdp = new DecisionPoint();
  pdp.load(loadPolicies([{ file: 'a.cedar', text: '@id("no-contractors") forbid(principal in Group::"contractors", action, resource);\n@id("all") permit(principal, action, resource);' }]));
  return pdp;
}

describe('an entity with a key Cedar entities do not have', () => {
  it('is refused POLICY_ENTITIES_INVALID naming the entity and the key (an agent written with "parent" was in no group, and the forbid on its group never applied)', () => {
    const pdp = contractorsForbidden();
    assert.throws(() => pdp.setEntities([agent({ parent: [{ type: 'Group', id: 'contractors' }] })]), (error: { code: string; message: string }) => {
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.match(error.message, /entities\[0\]/);
      assert.match(error.message, /"parent"/);
      return true;
    });
    assert.equal(pdp.decide(read).decision, 'allow', 'the old (empty) data stays');
  });

  it('names the file the data came from', () => {
    assert.throws(() => contractorsForbidden().setEntities([agent({ parents: [], atrs: {} })], { file: 'entities.json' }), (error: { code: string; issues: { file: string }[] }) => {
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.equal(error.issues[0]?.file, 'entities.json');
      return true;
    });
  });

  it('still takes uid, attrs and parents, with attrs and parents left out', () => {
    const pdp = contractorsForbidden();
    pdp.setEntities([agent({ parents: [{ type: 'Group', id: 'contractors' }] }), { uid: { type: 'Group', id: 'contractors' } }]);
    assert.equal(pdp.decide(read).decision, 'deny');
  });
});

describe('entity tags', () => {
  // A schema of its own, as a decision point may be given one: documents carry string tags.
  const schema = parseSchema(`entity User;
entity Doc tags String;
type Approval = { state: String, approvers: Long };
type Time = { epoch: Long, hour: Long, weekday: Long };
action read appliesTo { principal: User, resource: Doc, context: { classification: String, time: Time, approval: Approval } };`);
  const request = { principal: { type: 'User', id: 'u' }, action: 'read', resource: { type: 'Doc', id: 'd' } };
  const point = () => {
    const pdp = new DecisionPoint({ schema });
    pdp.load(loadPolicies([{ file: 'a.cedar', text: '@id("secret") forbid(principal, action, resource) when { resource.hasTag("secret") };\n@id("all") permit(principal, action, resource);' }], schema));
    return pdp;
  };

  it('reach cedar-wasm, so a forbid on a tag applies (they were dropped, and the tagged document was allowed)', () => {
    const pdp = point();
    pdp.setEntities([{ uid: { type: 'Doc', id: 'd' }, attrs: {}, parents: [], tags: { secret: 'yes' } }]);
    const made = pdp.decide(request);
    assert.equal(made.decision, 'deny');
    assert.deepEqual(made.policies, ['secret']);
    assert.deepEqual(pdp.evaluate(request, 'cedar')?.forbids, ['secret']);
  });

  it('are refused where the schema gives the type none (they were dropped unseen)', () => {
    const pdp = contractorsForbidden();
    assert.throws(() => pdp.setEntities([agent({ parents: [], tags: { team: 'x' } })]), { code: 'POLICY_ENTITIES_INVALID' });
  });

  it('name entities cedar-wasm is handed with the request: a group of the entity a tag names counts (without it, that entity had no groups, and the forbid on them never applied)', () => {
    const owned = parseSchema(`entity Group; entity User in [Group];
entity Doc tags User;
type Approval = { state: String, approvers: Long };
type Time = { epoch: Long, hour: Long, weekday: Long };
action read appliesTo { principal: User, resource: Doc, context: { classification: String, time: Time, approval: Approval } };`);
    const pdp = new DecisionPoint({ schema: owned });
    pdp.load(loadPolicies([{ file: 'a.cedar', text: '@id("owned-by-contractors") forbid(principal, action, resource) when { resource.hasTag("owner") && resource.getTag("owner") in Group::"contractors" };\n@id("all") permit(principal, action, resource);' }], owned));
    pdp.setEntities([
      { uid: { type: 'Doc', id: 'd' }, tags: { owner: { __entity: { type: 'User', id: 'c' } } } },
      { uid: { type: 'User', id: 'c' }, parents: [{ type: 'Group', id: 'contractors' }] },
    ]);
    assert.deepEqual(pdp.decide({ principal: { type: 'User', id: 'u' }, action: 'read', resource: { type: 'Doc', id: 'd' } }).policies, ['owned-by-contractors']);
  });

  it('must be an object', () => {
    assert.throws(() => point().setEntities([{ uid: { type: 'Doc', id: 'd' }, tags: ['secret'] }]), { code: 'POLICY_ENTITIES_INVALID' });
  });
});

// Entities and extension values inside attributes and tags, in the forms Cedar reads alike with and without a schema: entity-value-forms.test.ts.
