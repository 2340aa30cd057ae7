import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, it } from 'node:test';
import { generateSigningKey } from '../checkpoint/key.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { LogVerifier } from './verifier.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('LogVerifier', () => {
  describe('after the first broken link', () => {
    it('keeps what diagnosis needs, not every body: 100 MB of records after a break grow the heap by little (it kept every body: an export of heavy lines could exhaust memory)', () => {
      const verifier = new LogVerifier({ hasher: sha256Hasher, publicKey: generateSigningKey().publicKey, checkpoints: [] });
      verifier.add(0, 'ff'.repeat(32), '{}'); // seq 0 must follow the genesis hash: the link is broken at once
      gc();
      const before = process.memoryUsage().heapUsed;
      // Bodies of 500,000 one-byte characters: each its own string on the heap (Node makes larger ones external).
      for (let seq = 1; seq <= 200; seq++) verifier.add(seq, 'ab'.repeat(32), `{"x":"${Buffer.alloc(500_000, 97 + (seq % 26)).toString('latin1')}"}`);
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      assert.ok(grown < 10_000_000, `the heap grew by ${grown} bytes`);
      assert.deepEqual(verifier.finish().damage.map((d) => [d.kind, d.seq]), [['edited', 0]]);
    });
  });
});
