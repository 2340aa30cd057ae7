// A log's head against the tree its records make. The head is no part of
// what is hashed and signed, but a writer opening the log builds on it: the
// next record's prev is its last hash, and every new checkpoint's root is
// folded from its frontier. A head that is not the records' would have the
// writer sign a tree the records do not make.
import { frontierNodes } from '../merkle/compact-range.ts';
import type { Damage } from './report.ts';
import type { VerifyStart } from './verifier.ts';

/**
 * What is wrong with `head` (a store's audit_head: size, last hash, frontier)
 * given `made`, the tree and chain tip its records make through it
 * (LogVerifier.state() after records [0, head.size) verified): `tree-altered`
 * damage (seq null: the head is no record) for a last hash, a frontier of
 * another length, and each frontier hash, that differs, naming the subtree
 * (its level and seqs) and both hashes. Empty when the head is the records'.
 * Precondition: made.size === head.size.
 */
export function headDamage(head: VerifyStart, made: VerifyStart): Damage[] {
  if (made.size !== head.size) return [];
  const damage: Damage[] = [];
  const fix = "a writer refuses to open a log whose head is not its records' (it would sign its next checkpoint over a tree the records do not make); restore audit_head from a backup";
  if (head.lastHash !== made.lastHash) {
    damage.push({ kind: 'tree-altered', seq: null, message: `the log's head names ${head.lastHash} as the hash of its last record (seq ${head.size - 1}), but that record hashes to ${made.lastHash}: ${fix}` });
  }
  const ids = frontierNodes(head.size);
  if (head.frontier.length !== ids.length) {
    damage.push({
      kind: 'tree-altered',
      seq: null,
      message: `the log's head holds ${head.frontier.length} frontier hashes (the right edge of its Merkle tree), but a tree of ${head.size} records has ${ids.length}: ${fix}`,
    });
    return damage;
  }
  let first = 0;
  ids.forEach((id, i) => {
    const width = 2 ** id.level;
    const held = head.frontier[i] as string;
    const expected = made.frontier[i] as string;
    if (held !== expected) {
      damage.push({
        kind: 'tree-altered',
        seq: null,
        message: `the log's head's frontier (the right edge of its Merkle tree, which every new checkpoint's root is built on) holds ${held} for the subtree of seq ${first}–${first + width - 1} (level ${id.level}), but the records make ${expected}: ${fix}`,
      });
    }
    first += width;
  });
  return damage;
}
