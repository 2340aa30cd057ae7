import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { openAuditLog } from '../log/audit-log.ts';
import { verifyStore } from '../log/reader.ts';
import { syncWal } from './sqlite-wal-sync.ts';
import { sampleEvent } from '../../test/fixtures.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'corral-audit-walsync-'));
  dirs.push(dir);
  return dir;
}

describe('writing back the write-ahead log (syncWal)', () => {
  it('does nothing when the database has no write-ahead log: SQLite removes it only once copied into the file and synced', () => {
    const path = join(freshDir(), 'audit.db');
    const db = new DatabaseSync(path);
    db.exec('CREATE TABLE t (x)');
    db.close();
    assert.equal(existsSync(`${path}-wal`), false);
    syncWal(path);
  });
  it('writes back a log a commit with synchronous=NORMAL left unsynced', () => {
    const path = join(freshDir(), 'audit.db');
    const db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    assert.equal(existsSync(`${path}-wal`), true);
    syncWal(path);
    db.close();
  });
});

describe('when writing back the write-ahead log fails (EIO injected into every fdatasync)', () => {
  const CHILD = join(import.meta.dirname, '../../test/fsync-failure-child.ts');
  const stateDir = freshDir();
  const run = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=fdatasync', '-e', 'inject=fdatasync:error=EIO', process.execPath, CHILD, stateDir], { encoding: 'utf8', timeout: 60_000 });
  it('acknowledges none of the appends the writer thread committed, a later lone one neither, and reads no head', () => {
    assert.equal(run.status, 0, `${run.error ?? ''}${run.stderr}`);
    const seen = JSON.parse(run.stdout) as { batch: string[]; lone: string; head: string; close: string };
    assert.equal(seen.batch.length, 1, `every append ended alike: ${seen.batch.join(' | ')}`);
    assert.match(seen.batch[0]!, /^AUDIT_STORE_UNAVAILABLE: .*writing its write-ahead log to disk failed \(EIO.*acknowledges no more/);
    assert.equal(seen.lone, seen.batch[0], 'the lone append is refused with the same error, not committed on the calling thread');
    assert.match(seen.head, /^AUDIT_STORE_UNAVAILABLE: .*EIO/);
    assert.match(seen.close, /^AUDIT_STORE_UNAVAILABLE: /, 'closing says so too: its final checkpoint could not be sealed');
  });
  it('leaves a log that opens and verifies once the disk works again', async () => {
    const log = await openAuditLog({ stateDir });
    try {
      const report = await verifyStore(log.store, log.publicKey);
      assert.equal(report.ok, true, JSON.stringify(report.damage));
      assert.equal((await log.append(sampleEvent(41))).seq, (await log.store.head()).size - 1);
    } finally {
      await log.close();
    }
  });
});
