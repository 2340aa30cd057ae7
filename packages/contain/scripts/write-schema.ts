// Writes the published JSON Schema of the container policy from its source of
// truth (src/policy/schema.ts). schema.test.ts fails when the two drift.
import { writeFileSync } from 'node:fs';
import { containerPolicyJsonSchema } from '../src/policy/schema.ts';

export const SCHEMA_FILE = new URL('../schema/container-policy.schema.json', import.meta.url);

export function schemaText(): string {
  return `${JSON.stringify(containerPolicyJsonSchema(), null, 2)}\n`;
}

if (import.meta.main) {
  writeFileSync(SCHEMA_FILE, schemaText());
  process.stdout.write(`wrote ${SCHEMA_FILE.pathname}\n`);
}
