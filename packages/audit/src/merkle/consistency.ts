// Consistency proofs (the log only grew), verified the RFC 9162 section
// 2.1.4.2 way: compute both roots the proof implies, then compare.
import { AuditError } from '../errors.ts';
import { hashesEqual, isHash, type MerkleHasher } from './hasher.ts';
import { consistencyProofLength } from './tree.ts';

function refuse(message: string): never {
  throw new AuditError('AUDIT_PROOF_MALFORMED', message);
}

/**
 * The two roots — of the first `size1` leaves and of all `size2` leaves — that
 * a consistency proof implies, given the trusted first root `root1`.
 *
 * Preconditions, checked before any hashing: sizes are safe integers with
 * 0 < size1 ≤ size2 (a proof from the empty tree proves nothing); root1 and
 * every proof element are well-formed hashes; when size1 = size2 the proof is
 * empty, otherwise it has exactly the length RFC 9162 gives.
 *
 * @throws AuditError AUDIT_PROOF_MALFORMED when a precondition fails.
 */
export function rootsFromConsistencyProof(
  hasher: MerkleHasher,
  size1: number,
  size2: number,
  proof: readonly string[],
  root1: string,
): { root1: string; root2: string } {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2)) refuse('tree sizes are not integers');
  if (size1 <= 0) refuse('a consistency proof from the empty tree proves nothing');
  if (size2 < size1) refuse(`second size ${size2} is smaller than first size ${size1}`);
  if (!isHash(root1)) refuse('first root is not a 32-byte hash');
  if (!Array.isArray(proof)) refuse('proof is not a list');
  if (size1 === size2) {
    if (proof.length !== 0) refuse('equal sizes need an empty proof');
    return { root1, root2: root1 };
  }
  const want = consistencyProofLength(size1, size2);
  if (proof.length !== want) refuse(`proof has ${proof.length} hashes, expected ${want}`);
  // Indexed, not forEach: forEach skips the holes of a sparse array.
  for (let i = 0; i < proof.length; i++) if (!isHash(proof[i])) refuse(`proof element ${i} is not a 32-byte hash`);

  // RFC 9162 section 2.1.4.2, steps 2-7.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as string;
  let sr = fr;
  for (const c of path.slice(1)) {
    if (sn === 0) refuse('proof is longer than the path'); // unreachable after the length check
    if (fn % 2 === 1 || fn === sn) {
      fr = hasher.node(c, fr);
      sr = hasher.node(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = hasher.node(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) refuse('proof is shorter than the path'); // unreachable after the length check
  return { root1: fr, root2: sr };
}

/**
 * Checks that the tree of `size2` leaves with root `root2` extends the tree of
 * `size1` leaves with root `root1`.
 *
 * @throws AuditError AUDIT_PROOF_MALFORMED (see rootsFromConsistencyProof), or
 *   AUDIT_PROOF_MISMATCH when either computed root differs from the given one.
 */
export function verifyConsistency(hasher: MerkleHasher, size1: number, size2: number, proof: readonly string[], root1: string, root2: string): void {
  if (!isHash(root2)) refuse('second root is not a 32-byte hash');
  const computed = rootsFromConsistencyProof(hasher, size1, size2, proof, root1);
  const ok1 = hashesEqual(computed.root1, root1);
  const ok2 = hashesEqual(computed.root2, root2);
  if (!ok1 || !ok2) throw new AuditError('AUDIT_PROOF_MISMATCH', 'consistency proof does not lead to the expected roots');
}

function isPowerOfTwo(n: number): boolean {
  let p = 1;
  while (p < n) p *= 2;
  return p === n;
}
