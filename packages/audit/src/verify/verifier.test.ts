import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, it, mock } from 'node:test';
import { generateSigningKey, keyIdOf } from '../checkpoint/key.ts';
import { signCheckpoint } from '../checkpoint/sign.ts';
import { CompactRange } from '../merkle/compact-range.ts';
import { GENESIS_PREV, recordBytes } from '../record/envelope.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { LogVerifier, MAX_LISTED_MISINDEXED } from './verifier.ts';

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

  describe('fed by leaf hash', () => {
    const key = generateSigningKey();
    /** Three records and the checkpoint at 3 signed over them. */
    const bodies = ['{"n":0}', '{"n":1}', '{"n":2}'];
    const range = new CompactRange(sha256Hasher);
    const chain: { seq: number; prev: string; hash: string }[] = [];
    for (const [seq, body] of bodies.entries()) {
      const prev = chain.at(-1)?.hash ?? GENESIS_PREV;
      const hash = sha256Hasher.leaf(recordBytes(seq, prev, body));
      range.append(hash);
      chain.push({ seq, prev, hash });
    }
    const checkpoint = signCheckpoint(key.privateKey, { size: 3, root: range.root(), time: new Date(0).toISOString(), keyId: keyIdOf(key.publicKey) });

    it('reports what add() reports for the same records', () => {
      const byBody = new LogVerifier({ hasher: sha256Hasher, publicKey: key.publicKey, checkpoints: [checkpoint], requireSealed: true });
      const byHash = new LogVerifier({ hasher: sha256Hasher, publicKey: key.publicKey, checkpoints: [checkpoint], requireSealed: true });
      for (const [i, r] of chain.entries()) {
        byBody.add(r.seq, r.prev, bodies[i] as string);
        byHash.addLeaf(r.seq, r.prev, r.hash);
      }
      assert.equal(byHash.clean, true);
      assert.deepEqual(byHash.finish(), byBody.finish());
    });

    it('is not clean once a link breaks, and refuses to diagnose it without the body (AUDIT_BAD_ARGUMENT)', () => {
      const v = new LogVerifier({ hasher: sha256Hasher, publicKey: key.publicKey, checkpoints: [checkpoint] });
      v.addLeaf(0, GENESIS_PREV, chain[0]!.hash);
      assert.equal(v.clean, true);
      v.addLeaf(1, chain[0]!.hash, 'ab'.repeat(32));
      v.addLeaf(2, chain[1]!.hash, chain[2]!.hash);
      assert.equal(v.clean, false);
      assert.throws(() => v.finish(), { code: 'AUDIT_BAD_ARGUMENT' });
    });

    it('again() gives a verifier with the same checkpoints and damage, checking no signature again', () => {
      const forged = { ...checkpoint, size: 2 };
      const v = new LogVerifier({ hasher: sha256Hasher, publicKey: key.publicKey, checkpoints: [checkpoint, forged], witness: checkpoint });
      const spy = mock.method(crypto, 'verify');
      // The verifier imports verify by name: its binding follows the module object only once synced.
      syncBuiltinESMExports();
      let copy: LogVerifier;
      try {
        new LogVerifier({ hasher: sha256Hasher, publicKey: key.publicKey, checkpoints: [checkpoint] });
        assert.equal(spy.mock.callCount(), 1, 'the spy sees the checks a new verifier makes');
        copy = v.again();
        assert.equal(spy.mock.callCount(), 1);
      } finally {
        spy.mock.restore();
        syncBuiltinESMExports();
      }
      for (const [i, r] of chain.entries()) {
        v.add(r.seq, r.prev, bodies[i] as string);
        copy.add(r.seq, r.prev, bodies[i] as string);
      }
      const report = copy.finish();
      assert.deepEqual(report, v.finish());
      assert.deepEqual(report.damage.map((d) => [d.kind, d.checkpointSize]), [['checkpoint-forged', 2]]);
      assert.throws(() => v.again(), { code: 'AUDIT_BAD_ARGUMENT' });
    });
  });

  describe('given two checkpoints witnessed earlier', () => {
    const key = generateSigningKey();
    const keyId = keyIdOf(key.publicKey);
    /** Records `bodies` as a log writes them, and each one's tree root. */
    const log = (bodies: string[]) => {
      const range = new CompactRange(sha256Hasher);
      const chain: { seq: number; prev: string; body: string; root: string }[] = [];
      let prev = GENESIS_PREV;
      for (const [seq, body] of bodies.entries()) {
        const hash = sha256Hasher.leaf(recordBytes(seq, prev, body));
        range.append(hash);
        chain.push({ seq, prev, body, root: range.root() });
        prev = hash;
      }
      return chain;
    };
    const signedAt = (chain: ReturnType<typeof log>, size: number) => signCheckpoint(key.privateKey, { size, root: chain[size - 1]!.root, time: new Date(0).toISOString(), keyId });
    const ours = log(['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}']);
    const fork = log(['{"n":0}', '{"n":"other"}']);
    const verify = (records: number, witnesses: ReturnType<typeof signedAt>[]) => {
      const v = new LogVerifier({ hasher: sha256Hasher, publicKey: key.publicKey, checkpoints: [signedAt(ours, 1)], witness: witnesses });
      for (const r of ours.slice(0, records)) v.add(r.seq, r.prev, r.body);
      return v.finish().damage.map((d) => [d.kind, d.seq, d.checkpointSize]);
    };
    it('names the log rolled back behind the later one, in whichever order they come (regression: with an auditor\'s older checkpoint, the state directory\'s newer one went unchecked)', () => {
      for (const witnesses of [[signedAt(ours, 1), signedAt(ours, 4)], [signedAt(ours, 4), signedAt(ours, 1)]]) assert.deepEqual(verify(2, witnesses), [['rolled-back', 2, 4]]);
    });
    it('names a fork from the earlier one when the log extends the later one', () => {
      assert.deepEqual(verify(4, [signedAt(fork, 2), signedAt(ours, 4)]), [['rolled-back', 1, 2]]);
    });
    it('passes a log that extends both, and checks one given twice once', () => {
      assert.deepEqual(verify(4, [signedAt(ours, 2), signedAt(ours, 4), signedAt(ours, 2)]), []);
    });
  });

  describe("checking each record's time index (timeIndex)", () => {
    const key = generateSigningKey();
    /** `n` chained records, record i at i seconds past 2026-01-01. */
    const records = (n: number) => {
      const out: { seq: number; prev: string; body: string; timeMs: number }[] = [];
      let prev = GENESIS_PREV;
      for (let seq = 0; seq < n; seq++) {
        const timeMs = Date.UTC(2026, 0, 1) + seq * 1000;
        const body = JSON.stringify({ action: 'run.exec', time: new Date(timeMs).toISOString() });
        out.push({ seq, prev, body, timeMs });
        prev = sha256Hasher.leaf(recordBytes(seq, prev, body));
      }
      return out;
    };
    const verify = (n: number, indexOf: (seq: number, timeMs: number) => number, prevOf?: (seq: number, prev: string) => string) => {
      const v = new LogVerifier({ hasher: sha256Hasher, publicKey: key.publicKey, checkpoints: [] });
      for (const r of records(n)) {
        v.add(r.seq, prevOf ? prevOf(r.seq, r.prev) : r.prev, r.body);
        v.timeIndex(r.seq, r.body, indexOf(r.seq, r.timeMs));
      }
      return v;
    };

    it('passes records whose index is their event time', () => {
      const v = verify(5, (_, t) => t);
      assert.equal(v.clean, true);
      assert.equal(v.finish().ok, true);
    });
    it('names seq 3, indexed 1 ms late, as misindexed, and is no longer clean', () => {
      const v = verify(5, (seq, t) => (seq === 3 ? t + 1 : t));
      assert.equal(v.clean, false);
      const r = v.finish();
      assert.deepEqual([r.ok, r.firstBadSeq, r.verified], [false, 3, 5]);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['misindexed', 3]]);
    });
    it(`lists the first ${MAX_LISTED_MISINDEXED} of 150 records indexed at 0 and counts the rest, with their range`, () => {
      const r = verify(150, () => 0).finish();
      assert.equal(r.damage.length, MAX_LISTED_MISINDEXED + 1);
      assert.deepEqual(r.damage.slice(0, 2).map((d) => [d.kind, d.seq]), [['misindexed', 0], ['misindexed', 1]]);
      const rest = r.damage.at(-1)!;
      assert.deepEqual([rest.kind, rest.seq, rest.throughSeq], ['misindexed', MAX_LISTED_MISINDEXED, 149]);
      assert.match(rest.message, /^50 more records/);
    });
    it('checks no record from a broken link on: the break is what is reported', () => {
      const r = verify(5, () => 0, (seq, prev) => (seq === 2 ? 'ab'.repeat(32) : prev)).finish();
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['misindexed', 0], ['misindexed', 1], ['edited', 2]]);
    });
  });
});
