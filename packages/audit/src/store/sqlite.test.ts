import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { openAuditLog } from '../log/audit-log.ts';
import { verifyStore } from '../log/reader.ts';
import { sampleEvent } from '../../test/fixtures.ts';
import { storeSuite } from '../../test/store.suite.ts';
import { SqliteStore } from './sqlite.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

storeSuite({
  name: 'SQLite',
  async fresh() {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-sqlite-'));
    dirs.push(stateDir);
    const dbPath = join(stateDir, 'audit.db');
    return {
      options: { stateDir },
      async sql(statement: string) {
        const db = new DatabaseSync(dbPath);
        try {
          db.exec(statement);
        } finally {
          db.close();
        }
      },
      blob: (hex: string) => `X'${hex}'`,
      async plantForeign() {
        writeFileSync(dbPath, 'this is not a database, it is a shopping list\n'.repeat(200));
      },
    };
  },
});

describe('two writers on one SQLite file', () => {
  it('interleave without a gap or a fork: a batch built on a stale head is rebuilt', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-sqlite-two-'));
    dirs.push(stateDir);
    const a = await openAuditLog({ stateDir });
    const b = await openAuditLog({ stateDir });
    const seqs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const [x, y] = await Promise.all([a.append(sampleEvent(2 * i)), b.append(sampleEvent(2 * i + 1))]);
      seqs.push(x.seq, y.seq);
    }
    assert.deepEqual(seqs.sort((p, q) => p - q), Array.from({ length: 40 }, (_, i) => i));
    await a.close();
    const report = await verifyStore(b.store, b.publicKey);
    assert.equal(report.ok, true, JSON.stringify(report.damage));
    assert.equal(report.verified, 40);
    await b.close();
  });
});

describe('when pages of the SQLite file are overwritten', () => {
  it('verify reports the records it cannot read as malformed instead of crashing', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-sqlite-corrupt-'));
    dirs.push(stateDir);
    const log = await openAuditLog({ stateDir });
    await Promise.all(Array.from({ length: 3000 }, (_, i) => log.append(sampleEvent(i))));
    const { publicKey } = log;
    await log.close();
    const fd = openSync(join(stateDir, 'audit.db'), 'r+');
    writeSync(fd, Buffer.alloc(16_384, 0x5a), 0, 16_384, 400_000);
    closeSync(fd);
    const store = new SqliteStore({ path: join(stateDir, 'audit.db'), create: false });
    try {
      const report = await verifyStore(store, publicKey);
      assert.equal(report.ok, false);
      assert.equal(report.damage[0]?.kind, 'malformed', JSON.stringify(report.damage));
      assert.ok((report.firstBadSeq ?? -1) > 0, 'the records before the broken page still verify');
    } finally {
      await store.close();
    }
  });
});
