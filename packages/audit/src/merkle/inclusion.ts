// Inclusion proofs, verified the RFC 9162 section 2.1.3.2 way: first compute
// the root the proof implies, then compare it with the trusted root.
import { AuditError } from '../errors.ts';
import { hashesEqual, isHash, type MerkleHasher } from './hasher.ts';
import { inclusionProofLength } from './tree.ts';

function refuse(message: string): never {
  throw new AuditError('AUDIT_PROOF_MALFORMED', message);
}

/**
 * The root a proof implies for leaf `index` of a tree of `size` leaves.
 *
 * Preconditions, checked in this order before any hashing: index and size are
 * safe non-negative integers; index < size; leafHash and every proof element
 * are well-formed hashes; the proof has exactly the length RFC 9162 gives for
 * (index, size).
 *
 * @throws AuditError AUDIT_PROOF_MALFORMED when a precondition fails.
 */
export function rootFromInclusionProof(hasher: MerkleHasher, index: number, size: number, leafHash: string, proof: readonly string[]): string {
  if (!Number.isSafeInteger(index) || index < 0) refuse('leaf index is not a non-negative integer');
  if (!Number.isSafeInteger(size) || size < 0) refuse('tree size is not a non-negative integer');
  if (index >= size) refuse(`leaf index ${index} is not below tree size ${size}`);
  if (!isHash(leafHash)) refuse('leaf hash is not a 32-byte hash');
  if (!Array.isArray(proof)) refuse('proof is not a list');
  const want = inclusionProofLength(index, size);
  if (proof.length !== want) refuse(`proof has ${proof.length} hashes, expected ${want}`);
  // Indexed, not forEach: forEach skips the holes of a sparse array.
  for (let i = 0; i < proof.length; i++) if (!isHash(proof[i])) refuse(`proof element ${i} is not a 32-byte hash`);

  // RFC 9162 section 2.1.3.2, steps 2-6.
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) refuse('proof is longer than the path'); // unreachable after the length check
    if (fn % 2 === 1 || fn === sn) {
      r = hasher.node(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hasher.node(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) refuse('proof is shorter than the path'); // unreachable after the length check
  return r;
}

/**
 * Checks that leaf `index` with hash `leafHash` is in the tree of `size`
 * leaves whose root is `root`.
 *
 * @throws AuditError AUDIT_PROOF_MALFORMED (see rootFromInclusionProof), or
 *   AUDIT_PROOF_MISMATCH when the computed root differs from `root`.
 */
export function verifyInclusion(hasher: MerkleHasher, index: number, size: number, leafHash: string, proof: readonly string[], root: string): void {
  if (!isHash(root)) refuse('root is not a 32-byte hash');
  const computed = rootFromInclusionProof(hasher, index, size, leafHash, proof);
  if (!hashesEqual(computed, root)) throw new AuditError('AUDIT_PROOF_MISMATCH', 'inclusion proof does not lead to the expected root');
}
