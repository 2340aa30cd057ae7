// The right edge of a growing tree: the hashes of the perfect subtrees that
// make up leaves [0, size), largest first. Appending a leaf merges equal-sized
// neighbours; the merges are exactly the interior nodes that become complete.
import type { MerkleHasher } from './hasher.ts';

export class CompactRange {
  readonly #hasher: MerkleHasher;
  #size: number;
  /** Perfect-subtree hashes, largest (leftmost) first; one per set bit of size. */
  #hashes: string[];

  constructor(hasher: MerkleHasher, size = 0, hashes: string[] = []) {
    this.#hasher = hasher;
    this.#size = size;
    this.#hashes = [...hashes];
  }

  get size(): number {
    return this.#size;
  }

  /** The frontier hashes, largest subtree first (a copy). */
  get hashes(): string[] {
    return [...this.#hashes];
  }

  /**
   * Adds a leaf hash; returns the interior nodes it completes, level 1 upward
   * (for leaf index i there are as many as i has trailing one bits).
   */
  append(leafHash: string): string[] {
    const completed: string[] = [];
    let h = leafHash;
    let i = this.#size;
    while (i % 2 === 1) {
      h = this.#hasher.node(this.#hashes.pop() as string, h);
      completed.push(h);
      i = (i - 1) / 2;
    }
    this.#hashes.push(h);
    this.#size++;
    return completed;
  }

  /** MTH of leaves [0, size): the frontier folded from the right. */
  root(): string {
    if (this.#hashes.length === 0) return this.#hasher.emptyRoot();
    let r = this.#hashes[this.#hashes.length - 1] as string;
    for (let i = this.#hashes.length - 2; i >= 0; i--) r = this.#hasher.node(this.#hashes[i] as string, r);
    return r;
  }

  clone(): CompactRange {
    return new CompactRange(this.#hasher, this.#size, this.#hashes);
  }
}

/** The perfect subtrees (level, index) a frontier of `size` leaves holds, largest first. */
export function frontierNodes(size: number): { level: number; index: number }[] {
  const out: { level: number; index: number }[] = [];
  let start = 0;
  for (let level = 52; level >= 0; level--) {
    const width = 2 ** level;
    if (Math.floor(size / width) % 2 === 1) {
      out.push({ level, index: start / width });
      start += width;
    }
  }
  return out;
}
