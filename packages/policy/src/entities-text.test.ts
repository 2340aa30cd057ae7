// An entities file's text, as the gateway and corral policy read it: JSON,
// each object's keys given once, each number an integer JSON.parse reads as
// written.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { PolicyError } from './errors.ts';
import { misreadJson } from './lib/json.ts';
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

describe('an entities file with a number JSON.parse does not read as written', () => {
  const host = (port: string) => `[\n  {\n    "uid": {"type": "Host", "id": "db"},\n    "attrs": {"name": "db", "port": ${port}}\n  }\n]`;

  it('is refused for an integer past 2^53 − 1, naming the file, line and column (JSON.parse read 9007199254740993 as …992, which a Cedar tool reads as written: Corral decided about another port)', async () => {
    assert.equal((JSON.parse(host('9007199254740993')) as [{ attrs: { port: number } }])[0].attrs.port, 9007199254740992);
    await assert.rejects(decisionPointOffThread(SOURCES, { entities: { file: 'entities.json', text: host('9007199254740993') } }), (error: PolicyError) => {
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.deepEqual(error.issues.map(({ file, line, column }) => ({ file, line, column })), [{ file: 'entities.json', line: 4, column: 37 }]);
      return true;
    });
  });

  it('is refused for each number not written as an integer within ±(2^53 − 1) in digits alone (Cedar tools refuse 1.0 and 1e2, which JSON.parse reads as 1 and 100)', () => {
    for (const port of ['-9007199254740992', '9007199254740992', '12345678901234567890123', '1.0', '1e2', '443.5', '1E400', '-0.0']) {
      assert.equal(refusal(host(port)).code, 'POLICY_ENTITIES_INVALID', port);
    }
  });

  it('is not: integers up to ±(2^53 − 1), 0 and -0, and digits inside strings', () => {
    for (const port of ['9007199254740991', '-9007199254740991', '0', '-0', '"9007199254740993"', '"1e2"']) {
      assert.doesNotThrow(() => parseEntitiesFile({ file: 'entities.json', text: host(port) }), port);
    }
  });
});

describe('misreadJson, for numbers', () => {
  it('finds a number in JSON written from a value exactly when the value holds one that is not a safe integer, at that number (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(0, 2), (value, indent) => {
        const text = JSON.stringify(value, null, indent);
        const found = misreadJson(text, { numbers: true });
        const unsafe: number[] = [];
        const walk = (v: unknown): void => {
          if (typeof v === 'number' && !Number.isSafeInteger(v)) unsafe.push(v);
          else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
        };
        walk(value);
        assert.equal(found !== undefined, unsafe.length > 0, text);
        if (found?.kind === 'inexact-number') assert.equal(Number(text.slice(found.at, found.at + found.literal.length)), Number(found.literal));
        assert.equal(misreadJson(text, { numbers: false }), undefined);
      }),
    );
  });

  it('finds an integer literal past the range wherever it is written, and none within it (property)', () => {
    const limit = 2n ** 53n - 1n;
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), fc.jsonValue(), (n, beside) => {
        const before = `{"a": ${JSON.stringify(beside) ?? 'null'}, "n": `;
        const literal = n.toString();
        const found = misreadJson(`${before}${literal}}`, { numbers: true });
        const within = n >= -limit && n <= limit;
        if (within) assert.ok(found === undefined || found.at < before.length);
        else assert.ok(found !== undefined && (found.at < before.length || (found.at === before.length && found.kind === 'inexact-number' && found.literal === literal)));
      }),
    );
  });
});

describe('misreadJson, for keys', () => {
  it('finds none in JSON written from a value, which cannot repeat a key (property)', () => {
    fc.assert(fc.property(fc.jsonValue(), fc.constantFrom(0, 2), (value, indent) => assert.equal(misreadJson(JSON.stringify(value, null, indent), { numbers: false }), undefined)));
  });

  it('finds a key written a second time into any object, at that second place (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }), fc.nat(), fc.jsonValue(), (object, pick, value) => {
        const keys = Object.keys(object);
        const key = keys[pick % keys.length]!;
        const body = JSON.stringify(object);
        const text = `[${body.slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(value)}}]`;
        JSON.parse(text);
        assert.deepEqual(misreadJson(text, { numbers: false }), { kind: 'key-twice', key, at: body.length + 1 });
      }),
    );
  });
});
