// Verifying an export offline, given only the public key: each attack on the
// file is a named mutation of one clean export of 50 records.
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sampleEvent } from '../../test/fixtures.ts';
import { checkpointJson, parseCheckpoint } from '../checkpoint/checkpoint.ts';
import { generateSigningKey, keyIdOf } from '../checkpoint/key.ts';
import { signCheckpoint } from '../checkpoint/sign.ts';
import { exportJsonl } from '../export/jsonl.ts';
import { verifyExportFile } from '../io/export-file.ts';
import { loadPublicKeyFile } from '../io/key-file.ts';
import { openAuditLog } from '../log/audit-log.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { recordBytes } from '../record/envelope.ts';

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
const lineOf = (seq: number) => clean.findIndex((l) => l.includes(`"seq":${seq},"v":1}`) && l.startsWith('{"event"'));
function write(name: string, lines: string[]): string {
  const file = join(dir, `${name}.jsonl`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
const verify = (name: string, lines: string[], witness?: Parameters<typeof verifyExportFile>[2]) => verifyExportFile(write(name, lines), publicKey, witness);

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
    });
  });

  describe('when the export drops a record', () => {
    it('names seq 41 as the first bad record, deleted', async () => {
      const lines = clean.filter((_, i) => i !== lineOf(41));
      const r = await verify('deleted-record-41', lines);
      assert.equal(r.firstBadSeq, 41);
      assert.equal(r.damage[0]?.kind, 'deleted');
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
    });
  });

  describe('when the tail is cut but its checkpoint kept', () => {
    it('names seq 45 as the first missing record', async () => {
      const lines = clean.filter((l, i) => !(l.startsWith('{"event"') && i > lineOf(44)));
      const r = await verify('truncated-after-44', lines);
      assert.equal(r.firstBadSeq, 45);
      assert.equal(r.damage[0]?.kind, 'truncated');
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

  describe('when the file is not an export', () => {
    it('refuses a broken header with AUDIT_EXPORT_MALFORMED naming line 1', async () => {
      await assert.rejects(verify('broken-header', ['not json', ...clean.slice(1)]), { code: 'AUDIT_EXPORT_MALFORMED', line: 1 });
    });
    it('refuses an empty file with AUDIT_EXPORT_MALFORMED', async () => {
      const file = join(dir, 'empty.jsonl');
      writeFileSync(file, '');
      await assert.rejects(verifyExportFile(file, publicKey), { code: 'AUDIT_EXPORT_MALFORMED' });
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
