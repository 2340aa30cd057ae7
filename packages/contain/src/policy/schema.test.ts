import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SCHEMA_FILE, schemaText } from '../../scripts/write-schema.ts';
import { ContainerPolicySchema } from './schema.ts';

describe('the published JSON Schema', () => {
  it('matches the schema the loader validates with (regenerate: node packages/contain/scripts/write-schema.ts)', () => {
    assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), schemaText());
  });

  it('forbids unknown fields at the top level and in every section', () => {
    const schema = JSON.parse(schemaText()) as { additionalProperties: boolean; properties: Record<string, { additionalProperties?: boolean }> };
    assert.equal(schema.additionalProperties, false);
    for (const section of ['filesystem', 'network', 'process', 'ui', 'environment']) {
      assert.equal(schema.properties[section]?.additionalProperties, false, section);
    }
  });
});

describe('a validated policy left to its defaults', () => {
  it('shares no list or map with another: each gets its own (regression: the lists inside a default object were one array for every policy, so a change to one policy changed every policy planned after it)', () => {
    const [a, b] = [ContainerPolicySchema.parse({}), ContainerPolicySchema.parse({ version: 1 })];
    for (const pick of [(p: typeof a) => p.filesystem.readwrite, (p: typeof a) => p.filesystem.readonly, (p: typeof a) => p.filesystem.denied, (p: typeof a) => p.network.ingress, (p: typeof a) => p.environment.pass, (p: typeof a) => p.environment.set, (p: typeof a) => p.runtime]) {
      assert.notEqual(pick(a), pick(b));
    }
  });
});
