// Corral's verifier against the RFC 6962/9162 vectors transparency-dev/merkle
// publishes (vendored under test/vectors/transparency-dev with their licence).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { verifyConsistency } from './consistency.ts';
import { sha256Hasher } from './hasher.ts';
import { verifyInclusion } from './inclusion.ts';

const root = join(import.meta.dirname, '..', '..', 'test', 'vectors', 'transparency-dev');
const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : name.endsWith('.json') ? [p] : [];
  });
}

describe('the transparency-dev inclusion vectors', () => {
  const all = files(join(root, 'inclusion'));
  it('are all present', () => assert.ok(all.length >= 80, `found ${all.length}`));
  for (const file of all) {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { leafIdx: number; treeSize: number; root: string; leafHash: string; proof: string[] | null; desc: string; wantErr: boolean };
    const name = file.slice(root.length + 1);
    it(`${v.wantErr ? 'refuses' : 'accepts'} ${name} (${v.desc})`, () => {
      const run = () => verifyInclusion(sha256Hasher, v.leafIdx, v.treeSize, hex(v.leafHash), (v.proof ?? []).map(hex), hex(v.root));
      if (v.wantErr) assert.throws(run, (e: { code?: string }) => e.code === 'AUDIT_PROOF_MALFORMED' || e.code === 'AUDIT_PROOF_MISMATCH');
      else run();
    });
  }
});

// Where Corral is deliberately stricter than the vectors: they accept equal
// sizes with equal roots of any length; Corral refuses any root that is not a
// 32-byte hash before comparing anything.
const STRICTER = new Set(['consistency/additional/sizes-are-equal-one-and-proof-is-empty.json']);

describe('the transparency-dev consistency vectors', () => {
  const all = files(join(root, 'consistency'));
  it('are all present', () => assert.ok(all.length >= 90, `found ${all.length}`));
  for (const file of all) {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { size1: number; size2: number; root1: string; root2: string; proof: string[] | null; desc: string; wantErr: boolean };
    const name = file.slice(root.length + 1);
    const wantErr = v.wantErr || STRICTER.has(name);
    it(`${wantErr ? 'refuses' : 'accepts'} ${name} (${v.desc})`, () => {
      const run = () => verifyConsistency(sha256Hasher, v.size1, v.size2, (v.proof ?? []).map(hex), hex(v.root1), hex(v.root2));
      if (STRICTER.has(name)) assert.throws(run, { code: 'AUDIT_PROOF_MALFORMED' });
      else if (wantErr) assert.throws(run, (e: { code?: string }) => e.code === 'AUDIT_PROOF_MALFORMED' || e.code === 'AUDIT_PROOF_MISMATCH');
      else run();
    });
  }
});
