// Cases written as JSON are read by JSON.parse, at once, up to 16 MiB; YAML
// (the YAML library reads about half a megabyte a second on a small host) up
// to 4 MiB. Both give the same cases, and refuse the same mistakes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseCases } from './cases.ts';
import type { PolicyError } from './errors.ts';

const MiB = 1024 * 1024;
const oneCase = (i: number) => ({ name: `case ${i}`, principal: { type: 'Agent', id: `bot-${i}` }, action: { type: 'Action', id: 'system.run' }, resource: { type: 'Command', id: 'ls' }, expect: 'allow' });
const manyCases = (n: number) => ({ cases: Array.from({ length: n }, (_, i) => oneCase(i)) });

describe('parseCases on cases written as JSON', () => {
  it('reads the same cases from JSON as from the same data written as YAML (property)', () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ maxDepth: 3 }, fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), tie('value'), { maxKeys: 3 })),
    })).value;
    const aCase = fc.record(
      {
        name: fc.string({ minLength: 1, maxLength: 12 }),
        principal: fc.record({ type: fc.constantFrom('Agent', 'Human'), id: fc.string({ maxLength: 8 }) }),
        action: fc.string({ minLength: 1, maxLength: 12 }),
        resource: fc.record({ type: fc.constant('Command'), id: fc.string({ maxLength: 8 }) }),
        context: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), json, { maxKeys: 3 }),
        expect: fc.constantFrom('allow', 'deny', 'ask'),
        quorum: fc.integer({ min: 1, max: 5 }),
        policies: fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 3 }),
      },
      { requiredKeys: ['expect'] },
    );
    fc.assert(
      fc.property(fc.array(aCase, { minLength: 1, maxLength: 5 }), fc.boolean(), (cases, indent) => {
        const data = { entities: [], cases };
        const fromJson = parseCases(JSON.stringify(data, null, indent ? 2 : undefined));
        const fromYaml = parseCases(stringify(data));
        assert.deepEqual(fromJson, fromYaml);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a key written twice in one object, naming its line and column (JSON.parse keeps the last of the two silently)', () => {
    const text = '{\n  "cases": [\n    { "name": "a", "expect": "allow",\n      "expect": "deny" }\n  ]\n}\n';
    assert.throws(() => parseCases(text), (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /at line 4, column 7: the key "expect" appears twice in one object/.test(e.message));
  });

  it('refuses a number JSON.parse would not read as written, naming its line and column, as YAML does (9007199254740993 was read as …992)', () => {
    for (const [amount, column] of [['9007199254740993', 45], ['-9007199254740992', 45], ['1.0', 45], ['1e2', 45]] as const) {
      const json = `{"cases": [\n  {"expect": "allow", "context": {"amount": ${amount}}}\n]}`;
      const yaml = `cases:\n  - expect: allow\n    context: {amount: ${amount}}\n`;
      assert.throws(() => parseCases(json), (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && e.message.startsWith(`the cases file, at line 2, column ${column}: the number ${amount} `), amount);
      assert.throws(() => parseCases(yaml), (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && e.message.startsWith(`the cases file, at line 3, column 23: the number ${amount} `), amount);
    }
    assert.equal(parseCases('{"cases": [{"expect": "allow", "context": {"amount": 9007199254740991, "n": "9007199254740993"}}]}').cases.length, 1);
    assert.equal(parseCases('cases:\n  - expect: allow\n    context: {amount: -9007199254740991, n: "9007199254740993"}\n').cases.length, 1);
  });

  it('refuses in YAML a number not written in decimal digits alone (0x10, and 010 read as 8 under %YAML 1.1)', () => {
    assert.throws(() => parseCases('cases:\n  - expect: allow\n    context: {amount: 0x10}\n'), { code: 'POLICY_CASES_INVALID' });
    assert.throws(() => parseCases('%YAML 1.1\n---\ncases:\n  - expect: allow\n    context: {amount: 010}\n'), { code: 'POLICY_CASES_INVALID' });
  });

  it('refuses JSON nested more than 64 deep, and reads entity data as deep as entities may be (32)', () => {
    const deep = `{"cases": [{"expect": "allow", "context": {"a": ${'['.repeat(70)}${']'.repeat(70)}}}]}`;
    assert.throws(() => parseCases(deep), (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /nested more than 64 deep/.test(e.message));
    const record = `${'{"a": '.repeat(32)}1${'}'.repeat(32)}`;
    assert.equal(parseCases(`{"cases": [{"expect": "allow", "context": ${record}}]}`).cases.length, 1);
  });

  it('reads JSON past a byte order mark', () => {
    assert.equal(parseCases(`\uFEFF${JSON.stringify(manyCases(2))}`).cases.length, 2);
  });

  it('reads a YAML flow mapping that is not JSON as YAML, and names the line and column of text that looks like JSON and is neither', () => {
    assert.equal(parseCases('{cases: [{name: a, expect: allow}]}').cases.length, 1);
    assert.throws(() => parseCases('{"cases": [\n  {"expect": "allow"},\n  {"expect": "allow"\n'), (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /not valid YAML: .* at line \d+, column \d+$/.test(e.message));
  });
});

describe('parseCases on a large cases file', () => {
  const data = manyCases(32_000);
  const json = JSON.stringify(data, null, 1);
  const yaml = stringify(data);

  it('reads JSON past the size YAML is read to (regression: 4.7 MiB of JSON cases took 5 s, read as YAML)', () => {
    assert.ok(json.length > 4 * MiB, `${json.length}`);
    const started = process.cpuUsage();
    assert.equal(parseCases(json).cases.length, 32_000);
    const { user, system } = process.cpuUsage(started);
    assert.ok(user + system < 3_000_000, `took ${((user + system) / 1000).toFixed(0)} ms of CPU`);
  });

  it('refuses YAML over 4 MiB at once, saying to write it as JSON (regression: 16 MiB of YAML took half a minute)', () => {
    assert.ok(yaml.length > 4 * MiB, `${yaml.length}`);
    const started = process.cpuUsage();
    assert.throws(() => parseCases(yaml), (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /YAML of \d+\.\d MiB; YAML cases are read up to 4 MiB .*write a larger set as JSON \(up to 16 MiB\)/.test(e.message));
    const { user, system } = process.cpuUsage(started);
    assert.ok(user + system < 1_000_000, `took ${((user + system) / 1000).toFixed(0)} ms of CPU`);
  });

  it('refuses text over 4 MiB that opens like JSON and is not JSON, without quoting it', () => {
    const broken = `${json.slice(0, -2)}, "secret-looking text"`;
    assert.throws(() => parseCases(broken), (e: PolicyError) => e.code === 'POLICY_CASES_INVALID' && /over 4 MiB, which only JSON may be, and it is not valid JSON/.test(e.message) && !e.message.includes('secret'));
  });
});
