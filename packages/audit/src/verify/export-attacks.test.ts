// Verifying an export offline, given only the public key: each attack on the
// file is a named mutation of one clean export of 50 records.
import assert from 'node:assert/strict';
import crypto, { type KeyObject } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import fc from 'fast-check';
import { sampleEvent } from '../../test/fixtures.ts';
import { checkpointJson, parseCheckpoint, type SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { generateSigningKey, keyIdOf } from '../checkpoint/key.ts';
import { signCheckpoint } from '../checkpoint/sign.ts';
import { exportJsonl } from '../export/jsonl.ts';
import { verifyExportFile } from '../io/export-file.ts';
import { loadPublicKeyFile, loadSigningKey } from '../io/key-file.ts';
import { openAuditLog } from '../log/audit-log.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { recordBytes } from '../record/envelope.ts';
import { MAX_FORGED_CHECKED, MAX_LISTED_CHECKPOINTS } from './verifier.ts';

/** Any JSON, and objects whose toString or valueOf is no function: String() of one throws a TypeError. */
const hostileJson = fc.oneof(fc.jsonValue(), fc.record({ toString: fc.jsonValue() }), fc.record({ toString: fc.jsonValue(), valueOf: fc.jsonValue() }));

let dir: string;
let clean: string[];
let publicKey: KeyObject;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-audit-export-'));
  const log = await openAuditLog({ stateDir: dir, checkpointEvery: 10 });
  for (let i = 0; i < 50; i++) await log.append(sampleEvent(i));
  await log.checkpoint();
  clean = [];
  for await (const line of exportJsonl(log.store, log.keyId)) clean.push(line);
  publicKey = log.publicKey;
  await log.close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Index in `clean` of the line holding record `seq`. */
const lineOf = (seq: number, lines = clean) => lines.findIndex((l) => l.includes(`"seq":${seq},"v":1}`) && l.startsWith('{"event"'));
function write(name: string, lines: string[]): string {
  const file = join(dir, `${name}.jsonl`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
const verify = (name: string, lines: string[], witness?: Parameters<typeof verifyExportFile>[2]) => verifyExportFile(write(name, lines), publicKey, witness);

/** Runs `work`, counting the signature checks (crypto.verify calls) it makes. */
async function countingSignatureChecks<T>(work: () => Promise<T>): Promise<[T, number]> {
  const spy = mock.method(crypto, 'verify');
  // The verifier imports verify by name: its binding follows the module object only once synced.
  syncBuiltinESMExports();
  try {
    const out = await work();
    return [out, spy.mock.callCount()];
  } finally {
    spy.mock.restore();
    syncBuiltinESMExports();
  }
}

describe('verifying an export offline', () => {
  it('passes the untouched export and seals all 50 records', async () => {
    const r = await verify('happy-path', clean);
    assert.equal(r.ok, true, JSON.stringify(r.damage));
    assert.equal(r.verified, 50);
    assert.equal(r.sealed, 50);
  });

  describe('when a record is edited', () => {
    it('names seq 41 as edited', async () => {
      const lines = [...clean];
      const i = lineOf(41);
      lines[i] = (lines[i] as string).replace('invoice-41.pdf', 'invoice-14.pdf');
      const r = await verify('edited-record-41', lines);
      assert.equal(r.firstBadSeq, 41);
      assert.equal(r.damage[0]?.kind, 'edited');
      assert.equal(r.damage[0]?.line, i + 1);
      assert.equal(r.damage.length, 1, 'the checkpoint at 50 confirms the diagnosis: it vouches for seq 40');
    });
  });

  describe('when the record before the last one is edited', () => {
    it('names seq 48 as edited, not seq 49, and the checkpoint at 50 vouches for seq 40–47 (regression: "seq 49 was edited", and seq 40–48 unsealed)', async () => {
      const lines = [...clean];
      const i = lineOf(48);
      lines[i] = (lines[i] as string).replace('invoice-48.pdf', 'invoice-84.pdf');
      const r = await verify('edited-record-48', lines);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.line]), [['edited', 48, i + 1]]);
    });
  });

  describe('when the export drops a record', () => {
    it('names seq 41 as the first bad record, deleted', async () => {
      const lines = clean.filter((_, i) => i !== lineOf(41));
      const r = await verify('deleted-record-41', lines);
      assert.equal(r.firstBadSeq, 41);
      assert.equal(r.damage[0]?.kind, 'deleted');
      assert.equal(r.damage.length, 1, 'the checkpoint at 50 confirms the diagnosis: it vouches for seq 40');
    });
  });

  describe('when a forged record is inserted before seq 41', () => {
    it('names seq 41 as inserted', async () => {
      const prev = JSON.parse(clean[lineOf(41)] as string).prev as string;
      const forged = recordBytes(41, prev, JSON.stringify({ action: 'tool.call', actor: { id: 'mallory', kind: 'human' }, resource: { id: 'x', kind: 'y' }, time: '2026-11-25T12:00:41.000Z' }));
      const lines = [...clean];
      lines.splice(lineOf(41), 0, forged);
      const r = await verify('inserted-before-41', lines);
      assert.equal(r.firstBadSeq, 41);
      assert.equal(r.damage[0]?.kind, 'inserted');
      assert.equal(r.damage.length, 1, 'the checkpoint at 50 confirms the diagnosis: it vouches for seq 40');
    });
  });

  describe('when a record claiming a later seq is inserted before seq 41', () => {
    for (const [what, line] of [
      ['a copy of seq 45', () => clean[lineOf(45)] as string],
      ['seq 45 of another log', () => recordBytes(45, 'cd'.repeat(32), extractBody(clean[lineOf(45)] as string).replace('invoice-45.pdf', 'invoice-54.pdf'))],
    ] as const) {
      it(`names seq 41 as inserted, not reordered, when it is ${what}, and the checkpoint at 50 vouches for seq 40 (regression: "seq 41 is out of place")`, async () => {
        const lines = [...clean];
        lines.splice(lineOf(41), 0, line());
        const r = await verify(`inserted-45-before-41-${what.length}`, lines);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.line]), [['inserted', 41, lineOf(41) + 1]]);
      });
    }
  });

  describe('when record 41 is replaced by a record claiming another seq', () => {
    for (const [what, line] of [
      ['a copy of seq 30', () => clean[lineOf(30)] as string],
      ['seq 45 of another log', () => recordBytes(45, 'cd'.repeat(32), extractBody(clean[lineOf(45)] as string))],
    ] as const) {
      it(`names seq 41 as edited when it is ${what}, and the checkpoint at 50 vouches for seq 40 (regression: seq 41–44 "missing", or seq 41 inserted, and seq 40 unsealed)`, async () => {
        const lines = [...clean];
        lines[lineOf(41)] = line();
        const r = await verify(`replaced-41-${what.length}`, lines);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.line]), [['edited', 41, lineOf(41) + 1]]);
      });
    }
  });

  describe('when a record of another log claiming seq 41 is inserted before it', () => {
    it('names seq 41 as inserted, not reordered, and the checkpoint at 50 vouches for seq 40 (regression: "seq 41 is out of place", and seq 40 unsealed)', async () => {
      const lines = [...clean];
      lines.splice(lineOf(41), 0, recordBytes(41, 'cd'.repeat(32), extractBody(clean[lineOf(41)] as string)));
      const r = await verify('other-41-before-41', lines);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.line]), [['inserted', 41, lineOf(41) + 1]]);
    });
  });

  describe('when two records swap places', () => {
    it('names seq 41 as reordered', async () => {
      const lines = [...clean];
      const a = lineOf(41);
      const b = lineOf(42);
      [lines[a], lines[b]] = [lines[b] as string, lines[a] as string];
      const r = await verify('reordered-41-42', lines);
      assert.equal(r.firstBadSeq, 41);
      assert.equal(r.damage[0]?.kind, 'reordered');
      assert.equal(r.damage.length, 1, 'the checkpoint at 50 confirms the diagnosis: it vouches for seq 40');
    });
  });

  describe('when the tail is cut but its checkpoint kept', () => {
    it('names seq 45 as the first missing record, and seq 40–44 before it as unsealed: without the tail no checkpoint vouches for them', async () => {
      const lines = clean.filter((l, i) => !(l.startsWith('{"event"') && i > lineOf(44)));
      const r = await verify('truncated-after-44', lines);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.throughSeq]), [['unsealed', 40, 44], ['truncated', 45, undefined]]);
      assert.equal(r.firstBadSeq, 40);
    });
    it('names seq 40 as the first bad record when record 42 was also rewritten (chain recomputed): the cut hid the edit', async () => {
      const lines = clean.filter((l, i) => !(l.startsWith('{"event"') && i > lineOf(44)));
      let prev = JSON.parse(lines[lineOf(42)] as string).prev as string;
      for (let seq = 42; seq < 45; seq++) {
        const i = lineOf(seq);
        lines[i] = recordBytes(seq, prev, extractBody(lines[i] as string).replace('invoice-42.pdf', 'invoice-24.pdf'));
        prev = sha256Hasher.leaf(lines[i] as string);
      }
      const r = await verify('truncated-after-44-edited-42', lines);
      assert.deepEqual([r.firstBadSeq, r.damage[0]?.kind, r.damage[0]?.throughSeq], [40, 'unsealed', 44]);
    });
  });

  describe('when a record is edited and the next one deleted to hide it', () => {
    it('names seq 40 as unsealed before the deletion at 41: nothing left names record 40\'s original hash', async () => {
      const lines = [...clean];
      const i = lineOf(40);
      lines[i] = recordBytes(40, JSON.parse(lines[i] as string).prev, extractBody(lines[i] as string).replace('invoice-40.pdf', 'invoice-04.pdf'));
      const r = await verify('edited-40-deleted-41', lines.filter((_, j) => j !== lineOf(41)));
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['unsealed', 40], ['deleted', 41]]);
      assert.equal(r.firstBadSeq, 40);
    });
  });

  describe('whatever is done to the records from one seq on (property)', () => {
    it('never names a first bad seq after the first record changed: every record before it is vouched for by a signed root', async () => {
      /** Rewrites record `seq` and, for some attacks, the ones after it; returns the lines. */
      const attacks: Record<string, (seq: number) => string[]> = {
        'edited in place': (seq) => clean.map((l, i) => (i === lineOf(seq) ? recordBytes(seq, JSON.parse(l).prev, extractBody(l).replace('"n":', '"m":')) : l)),
        deleted: (seq) => clean.filter((_, i) => i !== lineOf(seq)),
        'edited, and the next deleted': (seq) =>
          clean.map((l, i) => (i === lineOf(seq) ? recordBytes(seq, JSON.parse(l).prev, extractBody(l).replace('"n":', '"m":')) : l)).filter((_, i) => i !== lineOf(seq + 1)),
        'edited with the chain recomputed, the tail cut after it': (seq) => {
          const lines = clean.filter((l, i) => !(l.startsWith('{"event"') && i > lineOf(Math.min(seq + 2, 48))));
          let prev = JSON.parse(lines[lineOf(seq)] as string).prev as string;
          for (let s = seq; lineOf(s, lines) >= 0; s++) {
            const i = lineOf(s, lines);
            lines[i] = recordBytes(s, prev, s === seq ? extractBody(lines[i] as string).replace('"n":', '"m":') : extractBody(lines[i] as string));
            prev = sha256Hasher.leaf(lines[i] as string);
          }
          return lines;
        },
        'swapped with the next': (seq) => {
          const lines = [...clean];
          [lines[lineOf(seq)], lines[lineOf(seq + 1)]] = [lines[lineOf(seq + 1)] as string, lines[lineOf(seq)] as string];
          return lines;
        },
      };
      let n = 0;
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...Object.keys(attacks)), fc.integer({ min: 0, max: 48 }), async (attack, seq) => {
          const r = await verify(`property-${n++}`, (attacks[attack] as (seq: number) => string[])(seq));
          assert.equal(r.ok, false);
          assert.ok(r.firstBadSeq !== null && r.firstBadSeq <= seq, `${attack} at ${seq}: first bad seq ${r.firstBadSeq}: ${JSON.stringify(r.damage)}`);
        }),
        { numRuns: 60 },
      );
    });
  });

  describe('when forged records follow the last record with a checkpoint line the key never signed', () => {
    it('names seq 50, the first forged record, as unsealed besides the forged checkpoint', async () => {
      const lines = [...clean];
      let prev = sha256Hasher.leaf(lines[lineOf(49)] as string);
      for (let seq = 50; seq < 55; seq++) {
        lines.push(recordBytes(seq, prev, extractBody(clean[lineOf(seq - 50)] as string)));
        prev = sha256Hasher.leaf(lines.at(-1) as string);
      }
      const c = JSON.parse(clean.at(-1) as string).checkpoint;
      lines.push(JSON.stringify({ checkpoint: { ...c, size: 55 } }));
      const r = await verify('forged-tail-forged-checkpoint', lines);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.throughSeq ?? d.checkpointSize]), [['unsealed', 50, 54], ['checkpoint-forged', null, 55]]);
      assert.equal(r.firstBadSeq, 50);
    });
  });

  describe('when the tail and its checkpoint are both cut (a rollback)', () => {
    it('names seq 40 against the checkpoint the auditor kept', async () => {
      const witness = parseCheckpoint(JSON.parse(clean.at(-1) as string).checkpoint);
      const lines = clean.slice(0, lineOf(39) + 2); // through seq 39 and its checkpoint at 40
      const r = await verify('rolled-back-to-40', lines, witness);
      assert.equal(r.firstBadSeq, 40);
      assert.equal(r.damage[0]?.kind, 'rolled-back');
    });
  });

  describe('when a checkpoint root is changed', () => {
    it('reports the checkpoint at size 20 as forged', async () => {
      const lines = clean.map((l) => {
        if (!l.startsWith('{"checkpoint"')) return l;
        const c = JSON.parse(l).checkpoint;
        if (c.size === 20) c.root = '11'.repeat(32);
        return JSON.stringify({ checkpoint: c });
      });
      const r = await verify('forged-checkpoint-20', lines);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.checkpointSize]), [['checkpoint-forged', 20]]);
    });
  });

  describe('when the export holds two checkpoints of size 20, both signed by the key, with different roots', () => {
    it('names a fork (rolled-back) in seq 10–19, not records the others vouch for as rewritten', async () => {
      const key = loadSigningKey(dir);
      const other = checkpointJson(signCheckpoint(key.privateKey, { size: 20, root: 'ab'.repeat(32), time: '2026-11-25T12:00:20.000Z', keyId: key.keyId }));
      const lines = [...clean];
      lines.splice(lineOf(19) + 2, 0, JSON.stringify({ checkpoint: other }));
      const r = await verify('two-signed-roots-at-20', lines);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.throughSeq, d.checkpointSize]), [['rolled-back', 10, 19, 20]]);
      assert.equal(r.sealed, 50);
    });
  });

  describe('when a record is rewritten, the chain recomputed and every checkpoint re-signed by another key', () => {
    it('reports all five checkpoints as forged and none as valid', async () => {
      const other = generateSigningKey();
      const lines = [...clean];
      let prev = JSON.parse(lines[lineOf(12)] as string).prev as string;
      for (let seq = 12; seq < 50; seq++) {
        const i = lineOf(seq);
        lines[i] = recordBytes(seq, prev, extractBody(lines[i] as string).replace('invoice-12.pdf', 'invoice-99.pdf'));
        prev = sha256Hasher.leaf(lines[i] as string);
      }
      // Re-sign with the attacker's key (roots left as they were: the attacker cannot make our key sign).
      for (let i = 0; i < lines.length; i++) {
        if (!(lines[i] as string).startsWith('{"checkpoint"')) continue;
        const c = parseCheckpoint(JSON.parse(lines[i] as string).checkpoint);
        lines[i] = JSON.stringify({ checkpoint: checkpointJson(signCheckpoint(other.privateKey, { ...c, keyId: keyIdOf(other.publicKey) })) });
      }
      const r = await verify('resigned-by-another-key', lines);
      assert.equal(r.ok, false);
      assert.equal(r.damage.filter((d) => d.kind === 'checkpoint-forged').length, 5);
      assert.equal(r.checkpoints.valid, 0);
    });
  });

  describe('when a record line is broken', () => {
    it('reports seq 30 as malformed with its line number, and does not throw', async () => {
      const lines = [...clean];
      const i = lineOf(30);
      lines[i] = '{"event": this is not json';
      const r = await verify('broken-line-30', lines);
      assert.equal(r.firstBadSeq, 30);
      assert.equal(r.damage[0]?.kind, 'malformed');
      assert.equal(r.damage[0]?.line, i + 1);
    });
  });

  describe('when a line that is no record is inserted before seq 41', () => {
    it('names it as malformed at seq 41 and its line, and the checkpoint at 50 vouches for seq 40 (regression: seq 40 was reported unsealed)', async () => {
      // (A line longer than 1 MiB is refused outright: see 'when a line is longer than any record can be'.)
      for (const junk of ['not json', '{"event":{"a":1}}']) {
        const lines = [...clean];
        lines.splice(lineOf(41), 0, junk);
        const r = await verify(`junk-before-41-${junk.length}`, lines);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.line]), [['malformed', 41, lineOf(41) + 1]]);
      }
    });
  });

  describe('when the checkpoint lines are dropped and the chain recomputed around an edit', () => {
    it('refuses every record as unsealed: nothing the key signed vouches for them', async () => {
      const records = clean.filter((l) => l.startsWith('{"event"'));
      const forged: string[] = [clean[0] as string];
      let prev = '0'.repeat(64);
      for (const [seq, line] of records.entries()) {
        const body = extractBody(line).replace('invoice-7.pdf', 'invoice-70.pdf');
        const bytes = recordBytes(seq, prev, body);
        forged.push(bytes);
        prev = sha256Hasher.leaf(bytes);
      }
      const r = await verify('forged-no-checkpoints', forged);
      assert.equal(r.ok, false);
      assert.equal(r.verified, 50);
      assert.equal(r.sealed, 0);
      assert.deepEqual([r.damage[0]?.kind, r.firstBadSeq, r.damage[0]?.throughSeq], ['unsealed', 0, 49]);
    });
  });

  describe('when the export is cut right after a checkpoint line', () => {
    it('passes what the checkpoint seals (a prefix is all an export can prove without a later checkpoint)', async () => {
      const r = await verify('cut-at-checkpoint-30', clean.slice(0, lineOf(29) + 2));
      assert.equal(r.ok, true, JSON.stringify(r.damage));
      assert.equal(r.sealed, 30);
    });
  });

  describe('when the export is cut between two checkpoints', () => {
    it('reports the records after the last checkpoint as unsealed', async () => {
      const r = await verify('cut-at-33', clean.slice(0, lineOf(32) + 1));
      assert.deepEqual([r.ok, r.damage[0]?.kind, r.firstBadSeq, r.damage[0]?.throughSeq], [false, 'unsealed', 30, 32]);
    });
  });

  describe('when an export ends between two checkpoints with a seal line', () => {
    let sealed: string[];
    /** Checkpoints of the log exported: at 40 (the seal's) and 50; and at 40 of another history signed by the same key. */
    let at40: SignedCheckpoint;
    let at50: SignedCheckpoint;
    let forkAt40: SignedCheckpoint;
    before(async () => {
      const d = mkdtempSync(join(tmpdir(), 'corral-audit-seal-'));
      const log = await openAuditLog({ stateDir: d, checkpointEvery: 10 });
      for (let i = 0; i < 50; i++) await log.append(sampleEvent(i));
      await log.checkpoint();
      sealed = [];
      for await (const line of exportJsonl(log.store, log.keyId, { from: 0, to: 33 })) sealed.push(line);
      publicKeyOfSealed = log.publicKey;
      at40 = (await log.store.checkpointFor(40, true)) as SignedCheckpoint;
      at50 = (await log.store.checkpointFor(50, true)) as SignedCheckpoint;
      await log.close();
      const forkDir = join(d, 'fork');
      mkdirSync(forkDir);
      for (const f of ['audit-signing-key.pem', 'audit-signing-key.pub.pem']) copyFileSync(join(d, f), join(forkDir, f));
      const fork = await openAuditLog({ stateDir: forkDir, checkpointEvery: 10 });
      for (let i = 0; i < 40; i++) await fork.append(sampleEvent(i < 35 ? i : 1000 + i));
      forkAt40 = (await fork.store.checkpointFor(40, true)) as SignedCheckpoint;
      await fork.close();
      rmSync(d, { recursive: true, force: true });
    });
    let publicKeyOfSealed: KeyObject;
    const verifySealed = (name: string, lines: string[], witness?: SignedCheckpoint) => verifyExportFile(write(name, lines), publicKeyOfSealed, witness);

    it('seals all 33 records with the checkpoint at 40 and the consistency proof', async () => {
      assert.match(sealed.at(-1) as string, /^\{"seal":\{"size":33,"checkpoint":\{.*"size":40/);
      const r = await verifySealed('sealed-33', sealed);
      assert.equal(r.ok, true, JSON.stringify(r.damage));
      assert.equal(r.sealed, 33);
    });
    it('reports records rewritten after the last checkpoint when the proof does not lead to the signed root', async () => {
      const seal = JSON.parse(sealed.at(-1) as string) as { seal: { consistency: string[] } };
      seal.seal.consistency[0] = 'ab'.repeat(32);
      const r = await verifySealed('sealed-bad-proof', [...sealed.slice(0, -1), JSON.stringify(seal)]);
      assert.deepEqual([r.ok, r.damage[0]?.kind, r.firstBadSeq], [false, 'edited', 30]);
    });
    it('names the first missing record when records before the seal line were cut, after the records it leaves unsealed', async () => {
      const r = await verifySealed('sealed-cut', [...sealed.slice(0, -3), sealed.at(-1) as string]);
      assert.deepEqual([r.ok, ...r.damage.map((d) => [d.kind, d.seq])], [false, ['unsealed', 30], ['truncated', 31]]);
    });
    it('refuses a seal whose checkpoint is smaller than the records it would seal', async () => {
      const seal = JSON.parse(sealed.at(-1) as string) as { seal: { checkpoint: unknown; consistency: string[] } };
      seal.seal.checkpoint = JSON.parse(sealed.find((l) => l.startsWith('{"checkpoint"') && l.includes('"size":30'))!).checkpoint;
      seal.seal.consistency = [];
      const r = await verifySealed('sealed-smaller', [...sealed.slice(0, -1), JSON.stringify(seal)]);
      assert.deepEqual([r.ok, r.damage[0]?.kind, r.sealed], [false, 'edited', 30]);
    });
    it('reports a seal line that repeats a member as the seal\'s damage, and the records it would seal as unsealed: a reader taking the first "size" would see a seal for 50 records (regression: passed)', async () => {
      const twice = (sealed.at(-1) as string).replace('{"seal":{"size":33,', '{"seal":{"size":50,"size":33,');
      const r = await verifySealed('sealed-size-twice', [...sealed.slice(0, -1), twice]);
      assert.deepEqual([r.ok, ...r.damage.map((d) => [d.kind, d.seq, d.line])], [false, ['unsealed', 30, undefined], ['checkpoint-forged', null, sealed.length]]);
    });
    /** `sealed` with record `seq` edited in place (its body changed, its seq and prev kept). */
    const editedAt = (seq: number, lines = sealed) => lines.map((l, i) => (i === lineOf(seq, lines) ? recordBytes(seq, JSON.parse(l).prev, extractBody(l).replace('"n":', '"m":')) : l));
    it('names seq 31 as edited, not seq 32, and the seal vouches for seq 30 (regression: "seq 32 was edited", and seq 30–31 unsealed)', async () => {
      const r = await verifySealed('sealed-edit-31', editedAt(31));
      assert.deepEqual([r.firstBadSeq, ...r.damage.map((d) => [d.kind, d.seq])], [31, ['edited', 31]]);
    });
    it('names seq 31 as deleted, and the seal vouches for seq 30 (regression: seq 30 unsealed)', async () => {
      const r = await verifySealed('sealed-delete-31', sealed.filter((_, i) => i !== lineOf(31, sealed)));
      assert.deepEqual([r.firstBadSeq, ...r.damage.map((d) => [d.kind, d.seq])], [31, ['deleted', 31]]);
    });
    it('never names a first bad seq after the first record changed, whatever is done to the records from one seq on', async () => {
      const attacks: Record<string, (seq: number) => string[]> = {
        'edited in place': (seq) => editedAt(seq),
        deleted: (seq) => sealed.filter((_, i) => i !== lineOf(seq, sealed)),
        'edited, and the next deleted': (seq) => editedAt(seq).filter((_, i) => i !== lineOf(seq + 1, sealed)),
        'edited, and the next edited too': (seq) => editedAt(seq + 1, editedAt(seq)),
        'swapped with the next': (seq) => {
          const lines = [...sealed];
          [lines[lineOf(seq, sealed)], lines[lineOf(seq + 1, sealed)]] = [lines[lineOf(seq + 1, sealed)] as string, lines[lineOf(seq, sealed)] as string];
          return lines;
        },
      };
      for (const [attack, lines] of Object.entries(attacks)) {
        for (let seq = 0; seq <= 31; seq++) {
          const r = await verifySealed(`sealed-${attack.replaceAll(' ', '-')}-${seq}`, lines(seq));
          assert.ok(!r.ok && r.firstBadSeq !== null && r.firstBadSeq <= seq, `${attack} at ${seq}: first bad seq ${r.firstBadSeq}: ${JSON.stringify(r.damage)}`);
        }
      }
    });
    describe('and the auditor kept a checkpoint after its records', () => {
      it('passes when the seal is that very checkpoint: the records are a prefix of the tree witnessed (regression: "rolled back")', async () => {
        const r = await verifySealed('sealed-witnessed', sealed, at40);
        assert.deepEqual([r.ok, r.damage], [true, []]);
      });
      it('names a fork when the key signed another tree of that size than the one the seal extends', async () => {
        assert.notEqual(forkAt40.root, at40.root);
        const r = await verifySealed('sealed-fork-witnessed', sealed, forkAt40);
        assert.deepEqual([r.ok, ...r.damage.map((d) => [d.kind, d.checkpointSize])], [false, ['rolled-back', 40]]);
        assert.match(r.damage[0]?.message as string, /two different trees of 40/);
      });
      it('says the export may have been cut before a later one, not only that the log was rolled back', async () => {
        const r = await verifySealed('sealed-witness-later', sealed, at50);
        assert.deepEqual([r.ok, ...r.damage.map((d) => [d.kind, d.seq, d.checkpointSize])], [false, ['rolled-back', 33, 50]]);
        assert.match(r.damage[0]?.message as string, /export was cut before it/);
      });
    });
    it('refuses a seal signed by another key', async () => {
      const seal = JSON.parse(sealed.at(-1) as string) as { seal: { checkpoint: Record<string, unknown> } };
      const other = generateSigningKey();
      const c = parseCheckpoint(seal.seal.checkpoint);
      seal.seal.checkpoint = checkpointJson(signCheckpoint(other.privateKey, { size: c.size, root: c.root, time: c.time, keyId: keyIdOf(other.publicKey) }));
      const r = await verifySealed('sealed-other-key', [...sealed.slice(0, -1), JSON.stringify(seal)]);
      assert.equal(r.ok, false);
      assert.ok(r.damage.some((d) => d.kind === 'checkpoint-forged'));
    });
  });

  describe('when a checkpoint line repeats a member, the first with another value', () => {
    it('reports that checkpoint line as damage and seq 40–49 it sealed as unsealed: a reader taking the first "time" would see a time the key never signed (regression: passed)', async () => {
      const lines = [...clean];
      const i = lines.findIndex((l) => l.startsWith('{"checkpoint"') && l.includes('"size":50,'));
      lines[i] = (lines[i] as string).replace('"time":"', '"time":"2020-01-01T00:00:00.000Z","time":"');
      const r = await verify('checkpoint-time-twice', lines);
      assert.deepEqual([r.ok, r.checkpoints, ...r.damage.map((d) => [d.kind, d.seq, d.throughSeq, d.line])], [false, { total: 4, valid: 4 }, ['unsealed', 40, 49, undefined], ['checkpoint-forged', null, undefined, i + 1]]);
    });
    it('reports a checkpoint line with a member the exporter never writes, or spaces, as damage too', async () => {
      for (const [name, change] of [
        ['extra-member', (l: string) => l.replace('{"checkpoint":{', '{"checkpoint":{"note":"x",')],
        ['spaced', (l: string) => l.replace('{"checkpoint":{', '{"checkpoint": {')],
      ] as const) {
        const lines = clean.map((l) => (l.startsWith('{"checkpoint"') && l.includes('"size":50,') ? change(l) : l));
        const r = await verify(`checkpoint-${name}`, lines);
        assert.deepEqual([r.ok, r.damage.map((d) => d.kind)], [false, ['unsealed', 'checkpoint-forged']], name);
      }
    });
  });

  describe('when the header names another signing key than the trusted one', () => {
    it('reports the header as damage at line 1 when its key id was changed (regression: passed)', async () => {
      const header = (clean[0] as string).replace(/"keyId":"[0-9a-f]{32}"/, `"keyId":"${'0'.repeat(32)}"`);
      const r = await verify('header-other-key', [header, ...clean.slice(1)]);
      assert.deepEqual([r.ok, r.verified, ...r.damage.map((d) => [d.kind, d.seq, d.line])], [false, 50, ['checkpoint-forged', null, 1]]);
    });
    it('fails an export of no records verified with another key than the one it names (regression: "ok: no records verified")', async () => {
      const r = await verifyExportFile(write('header-only', [clean[0] as string]), generateSigningKey().publicKey);
      assert.deepEqual([r.ok, ...r.damage.map((d) => [d.kind, d.line])], [false, ['checkpoint-forged', 1]]);
    });
  });

  describe('when the header repeats a member, the first with another value', () => {
    it('refuses the export with AUDIT_EXPORT_MALFORMED naming line 1: a reader taking the first "start" would see a whole log, not one starting at seq 30 (regression: passed as starting at 30)', async () => {
      const log = await openAuditLog({ stateDir: dir });
      const partial: string[] = [];
      for await (const line of exportJsonl(log.store, log.keyId, { from: 30 })) partial.push(line);
      await log.close();
      const header = (partial[0] as string).replace(',"start":{', `,"start":{"size":0,"lastHash":"${'0'.repeat(64)}","frontier":[]},"start":{`);
      assert.equal(JSON.parse(header).export.start.size, 30);
      await assert.rejects(verify('header-start-twice', [header, ...partial.slice(1)]), { code: 'AUDIT_EXPORT_MALFORMED', line: 1 });
    });
    it('refuses a header without a key id with AUDIT_EXPORT_MALFORMED naming line 1 (regression: passed, its key id read as "undefined")', async () => {
      const header = JSON.parse(clean[0] as string);
      delete header.export.keyId;
      await assert.rejects(verify('header-no-key-id', [JSON.stringify(header), ...clean.slice(1)]), { code: 'AUDIT_EXPORT_MALFORMED', line: 1 });
    });
  });

  describe('when a header member holds a value JSON can give that String() cannot print (an object whose toString is no function)', () => {
    it('refuses the export with AUDIT_EXPORT_MALFORMED naming line 1, never a TypeError, whatever JSON each member holds (property) (regression: {"format":{"toString":1}} ended verify with a stack trace)', async () => {
      const header = JSON.parse(clean[0] as string).export as Record<string, unknown>;
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('format', 'keyId', 'start'), hostileJson, async (member, value) => {
          const line = JSON.stringify({ export: { ...header, [member]: value } });
          fc.pre(line !== clean[0]);
          await assert.rejects(verifyExportFile(write('header-hostile', [line, ...clean.slice(1)]), publicKey), (e: Error & { code?: string; line?: number }) => e.code === 'AUDIT_EXPORT_MALFORMED' && e.line === 1);
        }),
        { numRuns: 50 },
      );
    });
  });

  describe('when a crafted export holds 200,000 broken checkpoint lines', () => {
    it(`reports the first ${MAX_LISTED_CHECKPOINTS} and counts the rest, instead of overflowing the stack or keeping a report the size of the file`, async () => {
      const r = await verify('200k-broken-checkpoints', [...clean, ...Array.from({ length: 200_000 }, () => '{"checkpoint":0}')]);
      const forged = r.damage.filter((d) => d.kind === 'checkpoint-forged');
      assert.equal(forged.length, MAX_LISTED_CHECKPOINTS + 1);
      assert.match(forged.at(-1)!.message, new RegExp(`^${200_000 - MAX_LISTED_CHECKPOINTS} more checkpoints are forged or cannot be read`));
      assert.deepEqual([r.ok, r.verified, r.sealed], [false, 50, 50]);
    });
  });

  describe('when a crafted export holds 20,000 well-formed checkpoint lines with bad signatures', () => {
    const c = () => JSON.parse(clean.at(-1) as string).checkpoint;
    const forged = () => Array.from({ length: 20_000 }, () => JSON.stringify({ checkpoint: { ...c(), signature: `${'A'.repeat(85)}A==` } }));
    it(`checks at most ${MAX_FORGED_CHECKED} of their signatures besides the 5 good ones before them, and reports the rest as not checked (regression: each took a signature check, ~0.1–0.4 ms: minutes for a few MB)`, async () => {
      const [r, checks] = await countingSignatureChecks(() => verify('20k-forged-checkpoints', [...clean, ...forged()]));
      assert.ok(checks <= 5 + MAX_FORGED_CHECKED, `${checks} signatures were checked`);
      assert.ok(r.checkpoints.total <= 5 + MAX_FORGED_CHECKED, `${r.checkpoints.total} checkpoints were checked`);
      assert.deepEqual([r.ok, r.verified, r.sealed, r.checkpoints.valid], [false, 50, 50, 5]);
      const listed = r.damage.filter((d) => d.kind === 'checkpoint-forged');
      assert.equal(listed.length, MAX_LISTED_CHECKPOINTS + 1);
      assert.match(listed.at(-1)!.message, new RegExp(`^${20_000 - MAX_LISTED_CHECKPOINTS} more checkpoints are forged or cannot be read, or were not checked`));
    });
    it(`checks at most ${MAX_FORGED_CHECKED} signatures when they come before the first record, and then none of the checkpoints after them: every record is unsealed`, async () => {
      const [r, checks] = await countingSignatureChecks(() => verify('20k-forged-checkpoints-first', [clean[0] as string, ...forged(), ...clean.slice(1)]));
      assert.ok(checks <= MAX_FORGED_CHECKED, `${checks} signatures were checked`);
      assert.deepEqual([r.ok, r.verified, r.sealed, r.checkpoints.valid], [false, 50, 0, 0]);
      assert.ok(r.damage.some((d) => d.kind === 'unsealed' && d.seq === 0 && d.throughSeq === 49));
    });
  });

  describe('when the export repeats its checkpoint lines, more of them than records', () => {
    it('passes, checking the signature of each distinct checkpoint once (regression: the copies past one per record line before them were reported as forged checkpoints, "not read")', async () => {
      const [r, checks] = await countingSignatureChecks(() => verify('20k-repeated-checkpoints', [...clean, ...Array.from({ length: 20_000 }, () => clean.at(-1) as string)]));
      assert.equal(r.ok, true, JSON.stringify(r.damage.slice(0, 3)));
      assert.deepEqual([r.verified, r.sealed, r.checkpoints.valid], [50, 50, 20_005]);
      assert.equal(checks, 5);
    });
  });

  describe('when a crafted export alternates 2,000 junk lines with checkpoint lines of growing sizes and bad signatures', () => {
    it(`checks at most ${MAX_FORGED_CHECKED} bad signatures besides the 5 good ones, and reports the rest as not checked (regression: each junk line let one more checkpoint be checked, ~0.1–0.4 ms each: 100 MB took 80 s)`, async () => {
      const c = JSON.parse(clean.at(-1) as string).checkpoint;
      const junk = Array.from({ length: 2000 }, (_, i) => ['x', JSON.stringify({ checkpoint: { ...c, size: 51 + i, signature: `${'A'.repeat(85)}A==` } })]).flat();
      const r = await verify('junk-and-forged-checkpoints', [...clean, ...junk]);
      assert.ok(r.checkpoints.total <= 5 + MAX_FORGED_CHECKED, `${r.checkpoints.total} checkpoints were checked`);
      assert.deepEqual([r.ok, r.verified, r.sealed, r.checkpoints.valid], [false, 50, 50, 5]);
      const listed = r.damage.filter((d) => d.kind === 'checkpoint-forged');
      assert.equal(listed.length, MAX_LISTED_CHECKPOINTS + 1);
      assert.match(listed.at(-1)!.message, new RegExp(`^${2000 - MAX_LISTED_CHECKPOINTS} more checkpoints are forged or cannot be read, or were not checked`));
    });
  });

  describe('when blank lines sit between records or at the end', () => {
    it('passes: a blank line holds no record and changes none', async () => {
      const lines = [...clean];
      lines.splice(lineOf(5), 0, '');
      const r = await verify('blank-lines', [...lines, '', '']);
      assert.equal(r.ok, true, JSON.stringify(r.damage));
      assert.equal(r.verified, 50);
    });
  });

  describe('when a line is longer than any record can be', () => {
    it('refuses the export with AUDIT_EXPORT_MALFORMED naming the line, without reading it into memory', async () => {
      const lines = [...clean];
      const i = lineOf(12);
      lines[i] = `{"event":"${'x'.repeat(3 * 1024 * 1024)}"}`;
      await assert.rejects(verify('huge-line-12', lines), { code: 'AUDIT_EXPORT_MALFORMED', line: i + 1 });
    });
    it('refuses an export with a 1 TiB line (sparse) after record 12 with AUDIT_EXPORT_MALFORMED naming it, once 1 MiB of it is read (regression: the line was read to its end, in both passes)', { timeout: 120_000 }, async () => {
      const file = join(dir, 'one-tib-line-after-12.jsonl');
      const head = clean.slice(0, lineOf(12) + 1);
      writeFileSync(file, `${head.join('\n')}\n{"event":`);
      truncateSync(file, 2 ** 40);
      try {
        await assert.rejects(verifyExportFile(file, publicKey), (e: Error & { code?: string; line?: number }) => e.code === 'AUDIT_EXPORT_MALFORMED' && e.line === head.length + 1 && /longer than 1048576 bytes/.test(e.message));
      } finally {
        rmSync(file);
      }
    });
    it('refuses a file of one 1 TiB line (sparse) with AUDIT_EXPORT_MALFORMED naming line 1 once it has read 1 MiB of it (regression: it read the whole line first)', { timeout: 120_000 }, async () => {
      const file = join(dir, 'one-tib-line.jsonl');
      writeFileSync(file, '{"export":');
      truncateSync(file, 2 ** 40);
      try {
        await assert.rejects(verifyExportFile(file, publicKey), { code: 'AUDIT_EXPORT_MALFORMED', line: 1 });
      } finally {
        rmSync(file);
      }
    });
    it('refuses a header line that long with AUDIT_EXPORT_MALFORMED', async () => {
      await assert.rejects(verify('huge-header', ['x'.repeat(3 * 1024 * 1024), ...clean.slice(1)]), { code: 'AUDIT_EXPORT_MALFORMED', line: 1 });
    });
    it('refuses a checkpoint line that long with AUDIT_EXPORT_MALFORMED naming its line', async () => {
      const lines = [...clean];
      const i = lines.findIndex((l) => l.startsWith('{"checkpoint"') && l.includes('"size":20,'));
      lines[i] = (lines[i] as string).replace('"keyId":"', `"keyId":"${'0'.repeat(2 * 1024 * 1024)}`);
      await assert.rejects(verify('huge-checkpoint-20', lines), { code: 'AUDIT_EXPORT_MALFORMED', line: i + 1 });
    });
  });

  describe('when a crafted export holds 300,000 broken record lines after the first', () => {
    it('parses no more of them than the records kept to diagnose the first break, and counts the rest (regression: it parsed each one, ~15 µs a line: minutes for a few MB)', async () => {
      const lines = [...clean, ...Array.from({ length: 300_000 }, () => '{"event":x')];
      const parse = JSON.parse;
      let parsed = 0;
      JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
        parsed++;
        return parse(text, reviver);
      }) as typeof JSON.parse;
      let r: Awaited<ReturnType<typeof verifyExportFile>>;
      try {
        r = await verify('300k-broken-records', lines);
      } finally {
        JSON.parse = parse;
      }
      assert.deepEqual([r.firstBadSeq, r.damage[0]?.kind, r.damage[0]?.line, r.records], [50, 'malformed', clean.length + 1, 300_050]);
      assert.ok(parsed < 100_000 + 2 * clean.length, `JSON.parse ran ${parsed} times`);
    });
  });

  describe('when the bytes around the lines change', () => {
    const bytes = (text: string) => {
      const file = join(dir, `bytes-${text.length}.jsonl`);
      writeFileSync(file, text);
      return file;
    };
    it('passes CRLF line endings and a last line without one: a record holds no raw CR or LF', async () => {
      for (const text of [`${clean.join('\r\n')}\r\n`, clean.join('\n')]) assert.equal((await verifyExportFile(bytes(text), publicKey)).ok, true);
    });
    it('refuses lines ended by CR alone with AUDIT_EXPORT_MALFORMED naming line 1 and saying so, however long the file (regression: "not JSON", or "longer than 1048576 bytes")', async () => {
      const small = `${clean.join('\r')}\r`;
      const large = `${[...clean, ...Array.from({ length: 3000 }, () => clean[lineOf(7)] as string)].join('\r')}\r`;
      for (const text of [small, large]) {
        await assert.rejects(verifyExportFile(bytes(text), publicKey), (e: Error & { code?: string; line?: number }) => e.code === 'AUDIT_EXPORT_MALFORMED' && e.line === 1 && /carriage return/.test(e.message));
      }
    });
    it('refuses a byte order mark before the header with AUDIT_EXPORT_MALFORMED (the exporter writes none), saying so', async () => {
      await assert.rejects(verifyExportFile(bytes(`\ufeff${clean.join('\n')}\n`), publicKey), (e: Error & { code?: string; line?: number }) => e.code === 'AUDIT_EXPORT_MALFORMED' && e.line === 1 && /byte-order mark/.test(e.message));
    });
    it('reports a NUL byte in record 20 as malformed at its line', async () => {
      const lines = [...clean];
      lines[lineOf(20)] = (lines[lineOf(20)] as string).replace('invoice-20', 'invoice-\u000020');
      const r = await verify('nul-in-20', lines);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.line]), [['malformed', 20, lineOf(20) + 1]]);
    });
  });

  describe('when bytes of a line are not UTF-8', () => {
    // Record 5 holds U+FFFD, which a lenient decoder also makes of a byte that is not UTF-8 (0xff).
    let lines: string[];
    let key: KeyObject;
    before(async () => {
      const stateDir = join(dir, 'utf8');
      const log = await openAuditLog({ stateDir, checkpointEvery: 10 });
      for (let i = 0; i < 12; i++) await log.append({ ...sampleEvent(i), details: { note: i === 5 ? 'scan\ufffd.pdf' : 'scan.pdf' } });
      await log.checkpoint();
      lines = [];
      for await (const line of exportJsonl(log.store, log.keyId)) lines.push(line);
      key = log.publicKey;
      await log.close();
    });
    const withByte = (at: 'record' | 'header') => {
      const text = Buffer.from(`${lines.join('\n')}\n`);
      // In the header, a character of the key id, which the header only names.
      const [i, end] = at === 'record' ? [text.indexOf('\ufffd'), text.indexOf('\ufffd') + 3] : [text.indexOf('"keyId":"') + 9, text.indexOf('"keyId":"') + 10];
      const file = join(dir, `not-utf8-${at}.jsonl`);
      writeFileSync(file, Buffer.concat([text.subarray(0, i), Buffer.from([0xff]), text.subarray(end)]));
      return file;
    };
    it('reports seq 5 as malformed at its line: the file is not the bytes the key signed, though it decodes to them', async () => {
      const r = await verifyExportFile(withByte('record'), key);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.line]), [['malformed', 5, lines.findIndex((l) => l.includes('\ufffd')) + 1]]);
    });
    it('refuses such a header with AUDIT_EXPORT_MALFORMED naming line 1', async () => {
      await assert.rejects(verifyExportFile(withByte('header'), key), { code: 'AUDIT_EXPORT_MALFORMED', line: 1 });
    });
    it('reports such a checkpoint line as that checkpoint\'s damage, not as an unreadable record 10 that stops the records after it being verified', async () => {
      const text = Buffer.from(`${lines.join('\n')}\n`);
      const at = text.indexOf('"size":10,') + 1;
      const file = join(dir, 'not-utf8-checkpoint.jsonl');
      writeFileSync(file, Buffer.concat([text.subarray(0, at), Buffer.from([0xff]), text.subarray(at + 1)]));
      const r = await verifyExportFile(file, key);
      const line = lines.findIndex((l) => l.startsWith('{"checkpoint"') && l.includes('"size":10,')) + 1;
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.line]), [['checkpoint-forged', null, line]]);
      assert.deepEqual([r.verified, r.sealed], [12, 12]);
    });
  });

  describe('when a partial export\'s header gives another tree than the one signed where it starts', () => {
    it('names seq 30, where the export starts, and the header: not a range of records "30–29"', async () => {
      const log = await openAuditLog({ stateDir: dir });
      const partial: string[] = [];
      for await (const line of exportJsonl(log.store, log.keyId, { from: 30 })) partial.push(line);
      await log.close();
      const header = JSON.parse(partial[0] as string);
      header.export.start.frontier[0] = 'ab'.repeat(32);
      const at30 = clean.find((l) => l.startsWith('{"checkpoint"') && l.includes('"size":30,')) as string;
      const r = await verify('partial-30-bad-frontier', [JSON.stringify(header), at30, ...partial.slice(1)]);
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.throughSeq, d.checkpointSize]), [['edited', 30, undefined, 30]]);
      assert.match(r.damage[0]?.message as string, /header/);
    });
  });

  describe('when the auditor kept a checkpoint from before the export starts', () => {
    it('refuses with AUDIT_BAD_ARGUMENT: nothing in the export shows the log extends it (a fork would pass)', async () => {
      // The same key signed another history: the checkpoint kept at 20 is of that fork.
      const forkDir = join(dir, 'fork');
      mkdirSync(forkDir);
      for (const f of ['audit-signing-key.pem', 'audit-signing-key.pub.pem']) copyFileSync(join(dir, f), join(forkDir, f));
      const fork = await openAuditLog({ stateDir: forkDir, checkpointEvery: 10 });
      for (let i = 0; i < 20; i++) await fork.append(sampleEvent(1000 + i));
      const kept = await fork.store.checkpointFor(20, true);
      await fork.close();
      const log = await openAuditLog({ stateDir: dir });
      const partial: string[] = [];
      for await (const line of exportJsonl(log.store, log.keyId, { from: 30 })) partial.push(line);
      await log.close();
      assert.deepEqual((await verify('forked-full', clean, kept)).damage.map((d) => d.kind), ['rolled-back']);
      await assert.rejects(verify('forked-from-30', partial, kept), { code: 'AUDIT_BAD_ARGUMENT' });
    });
  });

  describe('when the file is not an export', () => {
    it('refuses a broken header with AUDIT_EXPORT_MALFORMED naming line 1', async () => {
      await assert.rejects(verify('broken-header', ['not json', ...clean.slice(1)]), { code: 'AUDIT_EXPORT_MALFORMED', line: 1 });
    });
    it('refuses an empty file with AUDIT_EXPORT_MALFORMED', async () => {
      const file = join(dir, 'empty.jsonl');
      writeFileSync(file, '');
      await assert.rejects(verifyExportFile(file, publicKey), { code: 'AUDIT_EXPORT_MALFORMED' });
    });
    it('refuses a device with AUDIT_BAD_ARGUMENT: what is read twice must be a regular file (a pipe would be empty the second time, its records reported missing)', async () => {
      await assert.rejects(verifyExportFile('/dev/null', publicKey), { code: 'AUDIT_BAD_ARGUMENT' });
    });
    it('refuses a missing file with AUDIT_EXPORT_MALFORMED', async () => {
      await assert.rejects(verifyExportFile(join(dir, 'nope.jsonl'), publicKey), { code: 'AUDIT_EXPORT_MALFORMED' });
    });
    it('refuses a missing public key file with AUDIT_KEY_UNAVAILABLE', () => {
      assert.throws(() => loadPublicKeyFile(join(dir, 'nope.pem')), { code: 'AUDIT_KEY_UNAVAILABLE' });
    });
  });
});

/** The canonical event text inside a record line (between "event": and ,"prev"). */
function extractBody(line: string): string {
  return line.slice('{"event":'.length, line.lastIndexOf(',"prev":"'));
}
