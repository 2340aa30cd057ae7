// A naive RFC 9162 Merkle tree, written straight from the RFC's recursive
// definitions (section 2.1.1, 2.1.3.1, 2.1.4.1) with its own hashing, to
// cross-check Corral's fast code. Quadratic and slow on purpose: obviously right.
import { createHash } from 'node:crypto';

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();

export function refLeafHash(data: Buffer): Buffer {
  return sha(Buffer.of(0), data);
}

function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

/** MTH(D[n]) over leaf hashes. */
export function refRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return leaves[0] as Buffer;
  const split = k(leaves.length);
  return sha(Buffer.of(1), refRoot(leaves.slice(0, split)), refRoot(leaves.slice(split)));
}

/** PATH(m, D[n]). */
export function refInclusion(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const split = k(leaves.length);
  if (m < split) return [...refInclusion(m, leaves.slice(0, split)), refRoot(leaves.slice(split))];
  return [...refInclusion(m - split, leaves.slice(split)), refRoot(leaves.slice(0, split))];
}

function subproof(m: number, leaves: Buffer[], whole: boolean): Buffer[] {
  const n = leaves.length;
  if (m === n) return whole ? [] : [refRoot(leaves)];
  const split = k(n);
  if (m <= split) return [...subproof(m, leaves.slice(0, split), whole), refRoot(leaves.slice(split))];
  return [...subproof(m - split, leaves.slice(split), false), refRoot(leaves.slice(0, split))];
}

/** PROOF(m, D[n]). */
export function refConsistency(m: number, leaves: Buffer[]): Buffer[] {
  return subproof(m, leaves, true);
}
