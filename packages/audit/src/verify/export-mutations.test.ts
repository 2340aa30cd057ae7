// Verifying an export offline against any one mutation of a clean export of
// 12 records (checkpoints at 4, 8 and 12), as an auditor handed a hostile
// file would meet it: verification refuses the file with a coded error, or
// reports damage starting where the records first differ, or passes only a
// file whose records are, byte for byte, the ones the key signed.
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { sampleEvent } from '../../test/fixtures.ts';
import { checkpointJson, parseCheckpoint } from '../checkpoint/checkpoint.ts';
import { generateSigningKey, keyIdOf } from '../checkpoint/key.ts';
import { signCheckpoint } from '../checkpoint/sign.ts';
import { AuditError } from '../errors.ts';
import { exportJsonl } from '../export/jsonl.ts';
import { verifyExportFile } from '../io/export-file.ts';
import { openAuditLog } from '../log/audit-log.ts';
import type { VerifyReport } from './report.ts';

const EVERY = 4;
let dir: string;
let clean: string[];
/** An export of another log (its own key) whose records differ from `clean` from seq 5 on. */
let foreign: string[];
let publicKey: KeyObject;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-audit-mutations-'));
  const exported = async (stateDir: string, event: (i: number) => ReturnType<typeof sampleEvent>) => {
    const log = await openAuditLog({ stateDir, checkpointEvery: EVERY });
    for (let i = 0; i < 12; i++) await log.append(event(i));
    const lines: string[] = [];
    for await (const line of exportJsonl(log.store, log.keyId)) lines.push(line);
    const key = log.publicKey;
    await log.close();
    return { lines, key };
  };
  ({ lines: clean, key: publicKey } = await exported(join(dir, 'log'), sampleEvent));
  ({ lines: foreign } = await exported(join(dir, 'other'), (i) => sampleEvent(i === 5 ? 105 : i)));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const isSigned = (l: string) => l.startsWith('{"checkpoint"') || l.startsWith('{"seal"');
/** The record lines of an export's text, as the verifier reads them (after the header; LF or CRLF; blank lines hold none). */
const recordLines = (text: string) => text.split(/\r?\n/).slice(1).filter((l) => l !== '' && !isSigned(l));
const text = (lines: string[], eol = '\n') => Buffer.from(`${lines.join(eol)}${eol}`);
const checkpointLines = () => clean.flatMap((l, i) => (l.startsWith('{"checkpoint"') ? [i] : []));
const withCheckpoint = (i: number, change: (c: ReturnType<typeof parseCheckpoint>) => Record<string, unknown>) => {
  const lines = [...clean];
  lines[i] = JSON.stringify({ checkpoint: change(parseCheckpoint(JSON.parse(clean[i] as string).checkpoint)) });
  return lines;
};

/** A mutated export: its bytes, shown by name when a case fails. */
interface Mutated {
  name: string;
  bytes: Buffer;
}
const named = ([name, bytes]: [string, Buffer]): Mutated => ({ name, bytes, [fc.toStringMethod]: () => name }) as Mutated;

/** Every mutation the property draws from. */
function mutation(): fc.Arbitrary<Mutated> {
  const whole = text(clean);
  const line = fc.integer({ min: 0, max: clean.length - 1 });
  const checkpoint = fc.constantFrom(...checkpointLines());
  const other = generateSigningKey();
  return fc
    .oneof(
    fc.tuple(fc.nat(whole.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]): [string, Buffer] => {
      const b = Buffer.from(whole);
      b[at] = (b[at] as number) ^ x;
      return [`byte ${at} xor ${x}`, b];
    }),
    line.map((i): [string, Buffer] => [`line ${i + 1} dropped`, text(clean.filter((_, j) => j !== i))]),
    line.map((i): [string, Buffer] => [`line ${i + 1} duplicated`, text(clean.flatMap((l, j) => (j === i ? [l, l] : [l])))]),
    fc.tuple(line, line).map(([i, j]): [string, Buffer] => {
      const lines = [...clean];
      [lines[i], lines[j]] = [lines[j] as string, lines[i] as string];
      return [`lines ${i + 1} and ${j + 1} swapped`, text(lines)];
    }),
    fc.nat(whole.length - 1).map((at): [string, Buffer] => [`cut at byte ${at}`, whole.subarray(0, at)]),
    fc.string({ minLength: 1, maxLength: 40 }).map((g): [string, Buffer] => [`garbage ${JSON.stringify(g)} appended`, Buffer.concat([whole, Buffer.from(g)])]),
    fc.constantFrom('\r\n', '\r').map((eol): [string, Buffer] => [`lines ended by ${JSON.stringify(eol)}`, text(clean, eol)]),
    fc.constant<[string, Buffer]>(['a byte order mark before the header', Buffer.concat([Buffer.from('\ufeff'), whole])]),
    fc.integer({ min: 1, max: 5 }).map((k): [string, Buffer] => [`${k} blank lines appended`, Buffer.concat([whole, Buffer.from('\n'.repeat(k))])]),
    fc.tuple(line, fc.integer({ min: 1, max: 16 })).map(([i, j]): [string, Buffer] => {
      const lines = [...clean];
      lines.splice(i, 0, foreign[j] as string);
      return [`line ${j + 1} of another log's export inserted before line ${i + 1}`, text(lines)];
    }),
    fc.tuple(line, fc.integer({ min: 1, max: 16 })).map(([i, j]): [string, Buffer] => {
      const lines = [...clean];
      lines[i] = foreign[j] as string;
      return [`line ${i + 1} replaced by line ${j + 1} of another log's export`, text(lines)];
    }),
    checkpoint.map((i): [string, Buffer] => [
      `checkpoint line ${i + 1} re-signed by another key`,
      text(withCheckpoint(i, (c) => checkpointJson(signCheckpoint(other.privateKey, { ...c, keyId: keyIdOf(other.publicKey) })))),
    ]),
    checkpoint.map((i): [string, Buffer] => [`checkpoint line ${i + 1} with its time changed, its signature kept`, text(withCheckpoint(i, (c) => checkpointJson({ ...c, time: '2026-11-25T13:00:00.000Z' })))]),
    fc.tuple(checkpoint, checkpoint).map(([i, j]): [string, Buffer] => {
      const lines = [...clean];
      lines[j] = clean[Math.min(i, j)] as string;
      return [`checkpoint line ${j + 1} replaced by the one at line ${Math.min(i, j) + 1}`, text(lines)];
    }),
    )
    .map(named);
}

describe('verifying an export offline', () => {
  describe('when one record line is changed (every record but the last)', () => {
    const lineOf = (seq: number) => clean.findIndex((l) => l.endsWith(`"seq":${seq},"v":1}`));
    const attacks: [string, (lines: string[], i: number) => void, string][] = [
      ['edited', (lines, i) => void (lines[i] = (lines[i] as string).replace(/"n":(\d+)/, '"n":1$1')), 'edited'],
      ['cut in the middle', (lines, i) => void (lines[i] = (lines[i] as string).slice(0, 100)), 'malformed'],
      ['dropped', (lines, i) => void lines.splice(i, 1), 'deleted'],
      ['repeated', (lines, i) => void lines.splice(i, 0, lines[i] as string), 'inserted'],
      [
        'swapped with the next record',
        (lines, i) => {
          const j = lineOf(Number(/"seq":(\d+),"v":1\}$/.exec(lines[i] as string)?.[1]) + 1);
          [lines[i], lines[j]] = [lines[j] as string, lines[i] as string];
        },
        'reordered',
      ],
    ];
    for (const [what, attack, kind] of attacks) {
      it(`names the record ${what} as the first bad seq, ${kind}, and nothing else: a later checkpoint vouches for the records before it`, async () => {
        for (let seq = 0; seq < 11; seq++) {
          const lines = [...clean];
          attack(lines, lineOf(seq));
          const file = join(dir, `one-${kind}-${seq}.jsonl`);
          writeFileSync(file, text(lines));
          const r = await verifyExportFile(file, publicKey);
          assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [[kind, seq]], `seq ${seq}: ${JSON.stringify(r.damage)}`);
        }
      });
    }
  });

  describe('after any one mutation of a clean export (property)', () => {
    it('refuses the file with AUDIT_EXPORT_MALFORMED, or names a first bad seq from the last checkpoint that vouches for the records before it through the first record that changed, or passes only the records the key signed', async () => {
      const signed = recordLines(text(clean).toString('latin1'));
      let n = 0;
      await fc.assert(
        fc.asyncProperty(mutation(), async ({ name, bytes }) => {
          const file = join(dir, `mutated-${n++}.jsonl`);
          writeFileSync(file, bytes);
          let r: VerifyReport;
          try {
            r = await verifyExportFile(file, publicKey);
          } catch (error) {
            assert.ok(error instanceof AuditError && error.code === 'AUDIT_EXPORT_MALFORMED' && error.line === 1, `${name}: ${String(error)}`);
            return;
          }
          const read = recordLines(bytes.toString('latin1'));
          let changed = 0;
          while (changed < signed.length && read[changed] === signed[changed]) changed++;
          const same = changed === signed.length && read.length === signed.length;
          // Cut right after its header or one of its checkpoint lines, an export is a shorter export that verifies
          // (docs/audit.md: only a checkpoint kept from before shows that records are missing after it).
          const kept = bytes.toString('latin1');
          const lines = kept.replace(/\n$/, '').split('\n');
          const shorter = changed === read.length && (lines.length === 1 || lines.at(-1)!.startsWith('{"checkpoint"'));
          if (r.ok) return assert.ok(same || shorter, `${name} passed`);
          if (same) return assert.ok(r.damage.length > 0, name);
          const first = r.firstBadSeq;
          // The last checkpoint left in the file before the first changed record vouches for the records
          // before it; a record repeated or brought in may claim a seq it vouches for, and be named by it.
          const claimed = Number(/"seq":(\d+),"v":1\}$/.exec(read[changed] ?? '')?.[1] ?? changed);
          let vouched = 0;
          for (const [k, at] of checkpointLines().entries()) {
            const size = (k + 1) * EVERY;
            if (kept.includes(clean[at] as string) && size <= Math.min(changed, claimed)) vouched = size;
          }
          assert.ok(first !== null && first <= changed && first >= vouched, `${name}: first bad seq ${first}, records first differ at ${changed}: ${JSON.stringify(r.damage)}`);
        }),
        { numRuns: 400 },
      );
    });
  });
});
