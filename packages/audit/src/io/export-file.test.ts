// Verifying an export file reads it twice (its checkpoints, then its
// records): both readings must be of one file and the same bytes, whatever
// happens to the path or the file in between.
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { appendFileSync, closeSync, mkdtempSync, openSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { sampleEvent } from '../../test/fixtures.ts';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { exportJsonl } from '../export/jsonl.ts';
import { openAuditLog } from '../log/audit-log.ts';
import { LogVerifier } from '../verify/verifier.ts';
import { verifyExportFile } from './export-file.ts';

let dir: string;
let clean: string;
let publicKey: KeyObject;
let n = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-audit-export-file-'));
  const log = await openAuditLog({ stateDir: join(dir, 'log'), checkpointEvery: 10 });
  for (let i = 0; i < 30; i++) await log.append(sampleEvent(i));
  await log.checkpoint();
  const lines: string[] = [];
  for await (const line of exportJsonl(log.store, log.keyId)) lines.push(line);
  clean = `${lines.join('\n')}\n`;
  publicKey = log.publicKey;
  await log.close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

function write(text: string): string {
  const file = join(dir, `export-${++n}.jsonl`);
  writeFileSync(file, text);
  return file;
}

/** The export's last line is the checkpoint at 30: when the verifier takes it, the first reading has read every line. */
const LAST_CHECKPOINT = 30;

/**
 * Verifies `file`, running `change` once the first reading is done (the
 * verifier has taken the export's last checkpoint line) and before the
 * second begins.
 */
async function verifyChangedBetweenReadings(file: string, change: () => void) {
  const take = LogVerifier.prototype.checkpoint;
  let changed = false;
  const hook = mock.method(LogVerifier.prototype, 'checkpoint', function (this: LogVerifier, c: SignedCheckpoint) {
    take.call(this, c);
    if (c.size === LAST_CHECKPOINT && !changed) {
      changed = true;
      change();
    }
  });
  try {
    return await verifyExportFile(file, publicKey);
  } finally {
    hook.mock.restore();
    assert.ok(changed, 'the first reading never took the last checkpoint line');
  }
}

const changedWhileVerified = (why: RegExp) => (e: Error & { code?: string }) => e.code === 'AUDIT_EXPORT_MALFORMED' && /changed while it was verified/.test(e.message) && why.test(e.message);

describe('verifying an export file', () => {
  it('passes the untouched export', async () => {
    const r = await verifyExportFile(write(clean), publicKey);
    assert.equal(r.ok, true, JSON.stringify(r.damage));
    assert.deepEqual([r.verified, r.sealed], [30, 30]);
  });

  describe('when the file changes between its two readings', () => {
    it('refuses with AUDIT_EXPORT_MALFORMED when another file is renamed over it (regression: the second reading read the other file, and its seq 12 was reported edited against the first one\'s checkpoints)', async () => {
      const file = write(clean);
      // Another export in its place: the same records, record 12 edited.
      const other = write(clean.replace('"n":12}', '"n":912}'));
      await assert.rejects(
        verifyChangedBetweenReadings(file, () => renameSync(other, file)),
        changedWhileVerified(/another file/),
      );
    });

    it('refuses with AUDIT_EXPORT_MALFORMED when lines are appended to it (regression: the second reading read them, and seq 30 was reported inserted)', async () => {
      const file = write(clean);
      const extra = clean.split('\n').filter((l) => l.startsWith('{"event"')).slice(0, 3).join('\n');
      await assert.rejects(
        verifyChangedBetweenReadings(file, () => appendFileSync(file, `${extra}\n`)),
        changedWhileVerified(/grew/),
      );
    });

    it('refuses with AUDIT_EXPORT_MALFORMED when a record is rewritten in place, the size kept (regression: the second reading read the new bytes, and seq 12 was reported edited)', async () => {
      const file = write(clean);
      const at = Buffer.from(clean).indexOf('"n":12}');
      assert.ok(at > 0);
      await assert.rejects(
        verifyChangedBetweenReadings(file, () => {
          const fd = openSync(file, 'r+');
          try {
            writeSync(fd, '"n":13}', at);
          } finally {
            closeSync(fd);
          }
        }),
        changedWhileVerified(/bytes/),
      );
    });

    it('refuses with AUDIT_EXPORT_MALFORMED when it is cut short (regression: the second reading stopped at the cut: record 29 was reported malformed, seq 20–28 unsealed)', async () => {
      const file = write(clean);
      await assert.rejects(
        verifyChangedBetweenReadings(file, () => truncateSync(file, Buffer.byteLength(clean) - 400)),
        changedWhileVerified(/shr/),
      );
    });
  });
});

describe('reading the records of an export', () => {
  it('verifies a sound export by its lines\' leaf hashes, parsing none of its record lines (they were all parsed: an export verified at a third of the live log\'s rate)', async () => {
    const parse = mock.method(JSON, 'parse');
    try {
      const r = await verifyExportFile(write(clean), publicKey);
      assert.equal(r.ok, true, JSON.stringify(r.damage));
      const records = parse.mock.calls.filter((c) => typeof c.arguments[0] === 'string' && c.arguments[0].startsWith('{"event"'));
      assert.equal(records.length, 0, `${records.length} record lines were parsed`);
    } finally {
      parse.mock.restore();
    }
  });

  it('reports damage as the parsing reading names it, from the same bytes: a record edited in place is named at its seq', async () => {
    const r = await verifyExportFile(write(clean.replace('"n":12}', '"n":912}')), publicKey);
    assert.equal(r.ok, false);
    assert.equal(r.firstBadSeq, 12);
    assert.equal(r.damage[0]?.kind, 'edited');
  });

  it('refuses with AUDIT_EXPORT_MALFORMED when the file changes between the reading by leaf hash and the parsing one', async () => {
    // The same size: only the bytes read can tell.
    const file = write(clean.replace('"n":12}', '"n":13}'));
    const feed = LogVerifier.prototype.addLeaf;
    let changed = false;
    const hook = mock.method(LogVerifier.prototype, 'addLeaf', function (this: LogVerifier, ...args: Parameters<typeof feed>) {
      feed.apply(this, args);
      if (!changed && !this.clean) {
        // The damaged record is put back: a parsing reading of the file as it is now finds nothing wrong.
        changed = true;
        writeFileSync(file, clean);
      }
    });
    try {
      await assert.rejects(verifyExportFile(file, publicKey), changedWhileVerified(/bytes changed/));
    } finally {
      hook.mock.restore();
    }
    assert.ok(changed, 'the reading by leaf hash never found the damage');
  });
});
