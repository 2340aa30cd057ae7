import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SCHEMA_FILE, schemaText } from '../../scripts/write-schema.ts';

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
