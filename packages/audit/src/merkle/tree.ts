// Shape of an RFC 9162 Merkle tree over n leaves (section 2.1.1): which
// subtrees a proof names, and how a subtree splits into perfect subtrees
// (the ones a store keeps hashes for). Pure arithmetic, no hashing.

/** A perfect subtree: 2^level leaves starting at leaf index * 2^level. */
export interface NodeId {
  level: number;
  index: number;
}

/** A subtree of the RFC 9162 tree: leaves [lo, hi). */
export interface Span {
  lo: number;
  hi: number;
}

/** The largest power of two strictly less than n (n ≥ 2): RFC 9162's k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The subtrees whose hashes form the inclusion proof of leaf `index` in a tree
 * of `size` leaves, in proof order (RFC 9162 section 2.1.3.1, PATH), bottom first.
 */
export function inclusionSpans(index: number, size: number): Span[] {
  const out: Span[] = [];
  const path = (m: number, lo: number, hi: number): void => {
    const n = hi - lo;
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) {
      path(m, lo, lo + k);
      out.push({ lo: lo + k, hi });
    } else {
      path(m - k, lo + k, hi);
      out.push({ lo, hi: lo + k });
    }
  };
  path(index, 0, size);
  return out;
}

/**
 * The subtrees whose hashes form the consistency proof between tree sizes
 * `m` and `n` (0 < m ≤ n), in proof order (RFC 9162 section 2.1.4.1, SUBPROOF).
 */
export function consistencySpans(m: number, n: number): Span[] {
  const out: Span[] = [];
  const sub = (m: number, lo: number, hi: number, whole: boolean): void => {
    const size = hi - lo;
    if (m === size) {
      if (!whole) out.push({ lo, hi });
      return;
    }
    const k = splitPoint(size);
    if (m <= k) {
      sub(m, lo, lo + k, whole);
      out.push({ lo: lo + k, hi });
    } else {
      sub(m - k, lo + k, hi, false);
      out.push({ lo, hi: lo + k });
    }
  };
  sub(m, 0, n, true);
  return out;
}

/**
 * Splits [lo, hi) into aligned perfect subtrees, left to right. For a subtree
 * of the RFC 9162 tree, folding their hashes from the right
 * (node(a, node(b, c))) gives the subtree's hash.
 */
export function perfectCover(span: Span): NodeId[] {
  const out: NodeId[] = [];
  let lo = span.lo;
  while (lo < span.hi) {
    let level = 0;
    while (lo % 2 ** (level + 1) === 0 && lo + 2 ** (level + 1) <= span.hi) level++;
    out.push({ level, index: lo / 2 ** level });
    lo += 2 ** level;
  }
  return out;
}

/** The expected inclusion proof length for leaf `index` in a tree of `size` (index < size). */
export function inclusionProofLength(index: number, size: number): number {
  return inclusionSpans(index, size).length;
}

/** The expected consistency proof length between sizes m and n (0 < m < n). */
export function consistencyProofLength(m: number, n: number): number {
  return consistencySpans(m, n).length;
}
