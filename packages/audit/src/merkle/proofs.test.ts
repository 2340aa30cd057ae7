import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { refConsistency, refInclusion, refLeafHash, refRoot } from '../../test/reference-merkle.ts';
import { CompactRange } from './compact-range.ts';
import { rootsFromConsistencyProof, verifyConsistency } from './consistency.ts';
import { sha256Hasher as H } from './hasher.ts';
import { rootFromInclusionProof, verifyInclusion } from './inclusion.ts';
import { consistencyProof, inclusionProof, memoryFetcher, rootAt } from './prover.ts';

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`leaf ${i}`));
const hex = (b: Buffer) => b.toString('hex');

describe('the hasher', () => {
  it('hashes the empty tree as SHA-256 of nothing', () => {
    assert.equal(H.emptyRoot(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
  it('prefixes leaves with 0x00 and nodes with 0x01 (RFC 9162 2.1.1)', () => {
    // Known RFC 6962 values: the empty leaf, and a node over two of them.
    assert.equal(H.leaf(''), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    assert.equal(H.leaf(new Uint8Array()), H.leaf(''));
    assert.equal(hex(refLeafHash(Buffer.from('x'))), H.leaf('x'));
  });
});

describe('the compact range', () => {
  it('has the empty root when empty', () => assert.equal(new CompactRange(H).root(), H.emptyRoot()));
  it('gives the reference root at every size up to 70', () => {
    const leaves = leavesOf(70).map(refLeafHash);
    const range = new CompactRange(H);
    leaves.forEach((leaf, i) => {
      range.append(hex(leaf));
      assert.equal(range.root(), hex(refRoot(leaves.slice(0, i + 1))), `size ${i + 1}`);
    });
  });
  it('reports as many completed nodes as the index has trailing one bits', () => {
    const range = new CompactRange(H);
    for (let i = 0; i < 64; i++) {
      const completed = range.append(H.leaf(String(i)));
      let ones = 0;
      for (let j = i; j % 2 === 1; j = (j - 1) / 2) ones++;
      assert.equal(completed.length, ones);
    }
  });
});

describe('proofs built from stored nodes', () => {
  it('match the reference PATH and PROOF for every pair up to 33 leaves', async () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = leavesOf(n).map(refLeafHash);
      const fetch = memoryFetcher(H, leaves.map(hex));
      assert.equal(await rootAt(H, fetch, n), hex(refRoot(leaves)));
      for (let m = 0; m < n; m++) {
        assert.deepEqual(await inclusionProof(H, fetch, m, n), refInclusion(m, leaves).map(hex), `inclusion ${m} of ${n}`);
      }
      for (let m = 1; m <= n; m++) {
        assert.deepEqual(await consistencyProof(H, fetch, m, n), refConsistency(m, leaves).map(hex), `consistency ${m} to ${n}`);
      }
    }
  });

  it('verify for any tree, leaf and earlier size (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), async (n, a, b) => {
        const leaves = leavesOf(n).map((l) => H.leaf(l));
        const fetch = memoryFetcher(H, leaves);
        const root = await rootAt(H, fetch, n);
        const m = a % n;
        verifyInclusion(H, m, n, leaves[m] as string, await inclusionProof(H, fetch, m, n), root);
        const size1 = (b % n) + 1;
        const root1 = await rootAt(H, fetch, size1);
        verifyConsistency(H, size1, n, await consistencyProof(H, fetch, size1, n), root1, root);
      }),
      { numRuns: 150 },
    );
  });

  it('refuse any single flipped bit in a proof, leaf or root (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 200 }), fc.nat(), fc.nat(), fc.nat(), async (n, a, pick, bit) => {
        const leaves = leavesOf(n).map((l) => H.leaf(l));
        const fetch = memoryFetcher(H, leaves);
        const root = await rootAt(H, fetch, n);
        const m = a % n;
        const proof = await inclusionProof(H, fetch, m, n);
        const parts = [leaves[m] as string, root, ...proof];
        const which = pick % parts.length;
        const flipped = flip(parts[which] as string, bit % 256);
        const [leaf, r, ...p] = parts.map((x, i) => (i === which ? flipped : x)) as string[];
        assert.throws(() => verifyInclusion(H, m, n, leaf as string, p, r as string), { code: 'AUDIT_PROOF_MISMATCH' });
      }),
      { numRuns: 150 },
    );
  });
});

describe('when a proof is malformed', () => {
  const leaves = leavesOf(8).map((l) => H.leaf(l));
  it('refuses a proof one hash too long before hashing', async () => {
    const proof = await inclusionProof(H, memoryFetcher(H, leaves), 3, 8);
    assert.throws(() => rootFromInclusionProof(H, 3, 8, leaves[3] as string, [...proof, H.emptyRoot()]), { code: 'AUDIT_PROOF_MALFORMED' });
  });
  it('refuses a leaf index at the tree size', () => {
    assert.throws(() => rootFromInclusionProof(H, 8, 8, leaves[0] as string, []), { code: 'AUDIT_PROOF_MALFORMED' });
  });
  it('refuses a proof element that is not hex', async () => {
    const proof = await inclusionProof(H, memoryFetcher(H, leaves), 3, 8);
    proof[1] = 'zz'.repeat(32);
    assert.throws(() => rootFromInclusionProof(H, 3, 8, leaves[3] as string, proof), { code: 'AUDIT_PROOF_MALFORMED' });
  });
  it('refuses a consistency proof from the empty tree', () => {
    assert.throws(() => rootsFromConsistencyProof(H, 0, 8, [], H.emptyRoot()), { code: 'AUDIT_PROOF_MALFORMED' });
  });
  it('refuses a shrinking tree', () => {
    assert.throws(() => rootsFromConsistencyProof(H, 5, 4, [], leaves[0] as string), { code: 'AUDIT_PROOF_MALFORMED' });
  });
  it('refuses a proof with a hole of the right length with AUDIT_PROOF_MALFORMED (a TypeError escaped the hasher)', () => {
    assert.throws(() => rootFromInclusionProof(H, 0, 2, leaves[0] as string, new Array(1)), { code: 'AUDIT_PROOF_MALFORMED' });
    assert.throws(() => rootsFromConsistencyProof(H, 1, 2, new Array(1), leaves[0] as string), { code: 'AUDIT_PROOF_MALFORMED' });
  });
  it('answers any sizes, index and proof with a root or AUDIT_PROOF_MALFORMED, never another exception (property)', () => {
    const hash = fc.stringMatching(/^[0-9a-f]{64}$/);
    const number = fc.oneof(fc.integer({ min: -2, max: 20 }), fc.double(), fc.constantFrom(2 ** 53, 2 ** 53 - 1, -0, Number.NaN, Number.POSITIVE_INFINITY));
    const proof = fc.oneof(fc.array(hash, { maxLength: 6 }), fc.sparseArray(hash, { maxLength: 6 }), fc.array(fc.oneof(fc.string(), fc.constant(undefined), fc.integer(), hash), { maxLength: 6 }));
    const answers = (work: () => unknown) => {
      try {
        work();
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'AUDIT_PROOF_MALFORMED', String(error));
      }
    };
    fc.assert(
      fc.property(number, number, proof as fc.Arbitrary<string[]>, (a, b, p) => {
        answers(() => rootFromInclusionProof(H, a, b, leaves[0] as string, p));
        answers(() => rootsFromConsistencyProof(H, a, b, p, leaves[0] as string));
      }),
      { numRuns: 2000 },
    );
  });
});

function flip(h: string, bit: number): string {
  const b = Buffer.from(h, 'hex');
  b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
  return b.toString('hex');
}
