// Building proofs from stored perfect-subtree hashes: a proof for a tree of
// n leaves needs O(log n) of them, whatever n is. The store fetches; this
// module only plans and folds.
import { AuditError } from '../errors.ts';
import type { MerkleHasher } from './hasher.ts';
import { consistencySpans, inclusionSpans, perfectCover, type NodeId, type Span } from './tree.ts';

/** Map key of a perfect subtree. */
export function nodeKey(id: NodeId): string {
  return `${id.level}:${id.index}`;
}

/** Every perfect subtree whose hash is needed to hash the given spans, without repeats. */
export function nodesForSpans(spans: readonly Span[]): NodeId[] {
  const seen = new Map<string, NodeId>();
  for (const span of spans) for (const id of perfectCover(span)) seen.set(nodeKey(id), id);
  return [...seen.values()];
}

/**
 * The hash of each span, folding its perfect cover from the right.
 * `nodes` must hold every id `nodesForSpans(spans)` names.
 */
export function hashSpans(hasher: MerkleHasher, spans: readonly Span[], nodes: ReadonlyMap<string, string>): string[] {
  return spans.map((span) => {
    const cover = perfectCover(span);
    const get = (id: NodeId) => {
      const h = nodes.get(nodeKey(id));
      if (h === undefined) throw new AuditError('AUDIT_NOT_FOUND', `tree node ${nodeKey(id)} was not fetched`);
      return h;
    };
    let r = get(cover[cover.length - 1] as NodeId);
    for (let i = cover.length - 2; i >= 0; i--) r = hasher.node(get(cover[i] as NodeId), r);
    return r;
  });
}

/** Fetches perfect-subtree hashes by id (a store, or an in-memory tree). */
export type NodeFetcher = (ids: NodeId[]) => Promise<Map<string, string>>;

/** The inclusion proof of leaf `index` in the tree of `size` leaves (index < size). */
export async function inclusionProof(hasher: MerkleHasher, fetch: NodeFetcher, index: number, size: number): Promise<string[]> {
  const spans = inclusionSpans(index, size);
  return hashSpans(hasher, spans, await fetch(nodesForSpans(spans)));
}

/** The consistency proof between sizes m and n (0 < m ≤ n). */
export async function consistencyProof(hasher: MerkleHasher, fetch: NodeFetcher, m: number, n: number): Promise<string[]> {
  if (m === n) return [];
  const spans = consistencySpans(m, n);
  return hashSpans(hasher, spans, await fetch(nodesForSpans(spans)));
}

/** The root of the first `size` leaves (size ≥ 1) from stored nodes. */
export async function rootAt(hasher: MerkleHasher, fetch: NodeFetcher, size: number): Promise<string> {
  const spans = [{ lo: 0, hi: size }];
  return hashSpans(hasher, spans, await fetch(nodesForSpans(spans)))[0] as string;
}

/** A NodeFetcher over leaf hashes held in memory (exports, tests). */
export function memoryFetcher(hasher: MerkleHasher, leaves: readonly string[]): NodeFetcher {
  const hashNode = (level: number, index: number): string =>
    level === 0 ? (leaves[index] as string) : hasher.node(hashNode(level - 1, 2 * index), hashNode(level - 1, 2 * index + 1));
  return async (ids) => new Map(ids.map((id) => [nodeKey(id), hashNode(id.level, id.index)]));
}
