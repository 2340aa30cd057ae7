// The tree nodes a store keeps beside its records — each record's stored
// interior nodes, and the head's frontier and last hash — checked against the
// tree the records make. Proofs are built from the first, and a writer builds
// its next record and checkpoint on the second: verify must not pass either
// when it is not the records'.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { generateSigningKey } from '../checkpoint/key.ts';
import { CompactRange } from '../merkle/compact-range.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { GENESIS_PREV, recordBytes } from '../record/envelope.ts';
import { headDamage } from './head.ts';
import { LogVerifier, MAX_LISTED_TREE_ALTERED, type VerifyStart } from './verifier.ts';

const publicKey = generateSigningKey().publicKey;

interface Row {
  seq: number;
  prev: string;
  body: string;
  hash: string;
  /** The interior nodes it completes, level 1 upward, concatenated hex (what a store keeps). */
  nodes: string;
}

/** A log of `n` records as a store holds them, and its head. */
function log(n: number): { rows: Row[]; head: VerifyStart } {
  const range = new CompactRange(sha256Hasher);
  const rows: Row[] = [];
  let prev = GENESIS_PREV;
  for (let seq = 0; seq < n; seq++) {
    const body = `{"n":${seq}}`;
    const hash = sha256Hasher.leaf(recordBytes(seq, prev, body));
    rows.push({ seq, prev, body, hash, nodes: range.append(hash).join('') });
    prev = hash;
  }
  return { rows, head: { size: n, lastHash: prev, frontier: range.hashes } };
}

/** Verifies the rows as verifyStore feeds a store's, their stored nodes checked. */
function verify(rows: readonly Row[]) {
  const v = new LogVerifier({ hasher: sha256Hasher, publicKey, checkpoints: [] });
  for (const r of rows) {
    v.add(r.seq, r.prev, r.body, r.hash);
    v.treeNodes(r.seq, r.nodes);
  }
  return { report: v.finish(), made: v.state() };
}

/** `hex` with its first character changed. */
const flipped = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);

/** Trailing one bits of `seq`: how many interior nodes record seq completes. */
const completes = (seq: number) => {
  let k = 0;
  while ((seq >> k) & 1) k++;
  return k;
};

describe('verify, against the tree nodes a store keeps beside its records', () => {
  describe('when nothing was touched', () => {
    it('passes a log of any size from 0 to 300, and its head is the one the records make', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 300 }), (n) => {
          const { rows, head } = log(n);
          const { report, made } = verify(rows);
          assert.deepEqual(report.damage, []);
          assert.deepEqual(headDamage(head, made), []);
        }),
      );
    });
  });

  describe("when one stored tree node is edited (the chain and every record's hash left alone)", () => {
    it('names its record as tree-altered, with the level and the subtree it covers, and both hashes', () => {
      const edits = fc.integer({ min: 2, max: 300 }).chain((n) =>
        fc
          .integer({ min: 0, max: n - 1 })
          .filter((seq) => completes(seq) > 0)
          .chain((seq) => fc.record({ n: fc.constant(n), seq: fc.constant(seq), level: fc.integer({ min: 1, max: completes(seq) }) })),
      );
      fc.assert(
        fc.property(edits, ({ n, seq, level }) => {
          const { rows } = log(n);
          const row = rows[seq] as Row;
          const at = (level - 1) * 64;
          const original = row.nodes.slice(at, at + 64);
          row.nodes = row.nodes.slice(0, at) + flipped(original) + row.nodes.slice(at + 64);
          const { report } = verify(rows);
          assert.deepEqual(
            report.damage.map((d) => [d.kind, d.seq]),
            [['tree-altered', seq]],
          );
          const message = report.damage[0]!.message;
          assert.ok(message.includes(`level ${level} (the subtree of seq ${seq - 2 ** level + 1}–${seq})`), message);
          assert.ok(message.includes(flipped(original)) && message.includes(original), message);
          assert.deepEqual([report.verified, report.firstBadSeq], [n, seq], 'the records themselves verify');
        }),
      );
    });
    it('names a record whose stored nodes were dropped, or one added where it completes none', () => {
      fc.assert(
        fc.property(fc.integer({ min: 2, max: 300 }), fc.nat(), (n, pick) => {
          const { rows } = log(n);
          const row = rows[pick % n] as Row;
          row.nodes = row.nodes === '' ? 'ab'.repeat(32) : '';
          assert.deepEqual(
            verify(rows).report.damage.map((d) => [d.kind, d.seq]),
            [['tree-altered', row.seq]],
          );
        }),
      );
    });
  });

  describe('when every stored node of a large log is edited', () => {
    it(`lists the first ${MAX_LISTED_TREE_ALTERED} records and counts the rest, with their range`, () => {
      const { rows } = log(1000);
      const altered = rows.filter((r) => r.nodes !== '');
      for (const r of altered) r.nodes = flipped(r.nodes);
      const { damage } = verify(rows).report;
      assert.equal(damage.length, MAX_LISTED_TREE_ALTERED + 1);
      const rest = damage.at(-1)!;
      assert.deepEqual([rest.kind, rest.seq, rest.throughSeq], ['tree-altered', altered[MAX_LISTED_TREE_ALTERED]!.seq, altered.at(-1)!.seq]);
      assert.match(rest.message, new RegExp(`^${altered.length - MAX_LISTED_TREE_ALTERED} more records`));
    });
  });

  describe("when the head's frontier is edited", () => {
    it('names each edited frontier hash by the subtree it covers (its level and seqs), and both hashes', () => {
      const edits = fc.integer({ min: 1, max: 2 ** 20 }).chain((n) => fc.record({ n: fc.constant(n), which: fc.subarray([...Array(countBits(n)).keys()], { minLength: 1 }) }));
      fc.assert(
        fc.property(edits, ({ n, which }) => {
          // The records' frontier, from a naive reference: each set bit of n, largest first, is one perfect subtree.
          const made = { size: n, lastHash: 'aa'.repeat(32), frontier: Array.from({ length: countBits(n) }, (_, i) => i.toString(16).padStart(64, '0')) };
          const head = { ...made, frontier: made.frontier.map((h, i) => (which.includes(i) ? flipped(h) : h)) };
          const damage = headDamage(head, made);
          assert.equal(damage.length, which.length);
          const subtrees = referenceSubtrees(n);
          damage.forEach((d, k) => {
            const i = which[k] as number;
            const { first, last, level } = subtrees[i]!;
            assert.equal(d.kind, 'tree-altered');
            assert.equal(d.seq, null);
            assert.ok(d.message.includes(`holds ${head.frontier[i]} for the subtree of seq ${first}–${last} (level ${level}), but the records make ${made.frontier[i]}`), d.message);
          });
        }),
      );
    });
    it('names a frontier of the wrong length, and a last hash that is not the last record’s', () => {
      const { rows, head } = log(25);
      const { made } = verify(rows);
      assert.deepEqual(
        headDamage({ ...head, frontier: head.frontier.slice(1) }, made).map((d) => d.message.match(/holds \d+ frontier hashes/)?.[0]),
        ['holds 2 frontier hashes'],
      );
      const last = headDamage({ ...head, lastHash: flipped(head.lastHash) }, made);
      assert.equal(last.length, 1);
      assert.match(last[0]!.message, /as the hash of its last record \(seq 24\)/);
    });
  });
});

function countBits(n: number): number {
  return n.toString(2).replaceAll('0', '').length;
}

/** The perfect subtrees of a tree of n leaves, largest first: one per set bit of n, from the reading of n in binary. */
function referenceSubtrees(n: number): { first: number; last: number; level: number }[] {
  const bits = n.toString(2);
  const out: { first: number; last: number; level: number }[] = [];
  let first = 0;
  for (let i = 0; i < bits.length; i++) {
    if (bits[i] !== '1') continue;
    const level = bits.length - 1 - i;
    out.push({ first, last: first + 2 ** level - 1, level });
    first += 2 ** level;
  }
  return out;
}
