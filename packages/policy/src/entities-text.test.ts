// An entities file's text, as the gateway and corral policy read it: JSON,
// each object's keys given once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { PolicyError } from './errors.ts';
import { duplicateKey } from './lib/json.ts';
import { decisionPointOffThread, parseEntitiesFile } from './load-thread.ts';

const SOURCES = [{ file: 'set.cedar', text: '@id("blocked") forbid(principal in Group::"contractors", action, resource);\n@id("reads") permit(principal, action == Action::"record.read", resource);\n' }];
const READ = { principal: { type: 'Agent', id: 'a' }, action: 'record.read', resource: { type: 'Record', id: 'r' } };

function refusal(text: string): PolicyError {
  try {
    parseEntitiesFile({ file: 'entities.json', text });
  } catch (error) {
    return error as PolicyError;
  }
  assert.fail('expected a refusal');
}

describe('an entities file that gives one key twice in an object', () => {
  const text = '[\n  {\n    "uid": {"type": "Agent", "id": "a"},\n    "attrs": {"owner": "o", "process": "p", "status": "active", "scopes": []},\n    "parents": [{"type": "Group", "id": "contractors"}],\n    "parents": []\n  }\n]';

  it('is refused by the gateway\'s reading of a set, naming the key, file, line and column of the second (JSON.parse kept the last silently: the agent a reviewer saw in contractors was in no group, and allowed)', async () => {
    await assert.rejects(decisionPointOffThread(SOURCES, { entities: { file: 'entities.json', text } }), (error: PolicyError) => {
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.match(error.message, /"parents" appears twice/);
      assert.deepEqual(error.issues.map(({ file, line, column }) => ({ file, line, column })), [{ file: 'entities.json', line: 6, column: 5 }]);
      return true;
    });
  });

  it('is refused when the two spellings differ but read as one key', () => {
    assert.match(refusal('[{"uid": {"type": "Agent", "id": "a"}, "attrs": {"status": "active", "st\\u0061tus": "suspended"}}]').message, /"status" appears twice/);
  });

  it('is not: one key in several objects, or a key that is also a value', async () => {
    const text = '[{"uid": {"type": "Group", "id": "parents"}, "parents": []}, {"uid": {"type": "Group", "id": "contractors"}, "parents": [], "attrs": {"name": "uid"}}]';
    const point = await decisionPointOffThread(SOURCES, { entities: { file: 'entities.json', text } });
    assert.equal(point.decide(READ).decision, 'allow');
  });
});

describe('duplicateKey', () => {
  it('finds none in JSON written from a value, which cannot repeat a key (property)', () => {
    fc.assert(fc.property(fc.jsonValue(), fc.constantFrom(0, 2), (value, indent) => assert.equal(duplicateKey(JSON.stringify(value, null, indent)), undefined)));
  });

  it('finds a key written a second time into any object, at that second place (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }), fc.nat(), fc.jsonValue(), (object, pick, value) => {
        const keys = Object.keys(object);
        const key = keys[pick % keys.length]!;
        const body = JSON.stringify(object);
        const text = `[${body.slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(value)}}]`;
        JSON.parse(text);
        assert.deepEqual(duplicateKey(text), { key, at: body.length + 1 });
      }),
    );
  });
});
