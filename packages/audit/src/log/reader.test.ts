import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { sampleEvent } from '../../test/fixtures.ts';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { generateSigningKey } from '../checkpoint/key.ts';
import type { AuditStore } from '../store/store.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { openAuditLog } from './audit-log.ts';
import { MAX_LISTED_CHECKPOINTS } from '../verify/verifier.ts';
import { readRecord, verifyStore } from './reader.ts';
import { checkedEvent } from '../record/event.ts';
import { recordBytes } from '../record/envelope.ts';
import { sha256Hasher } from '../merkle/hasher.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A closed log of 25 records (checkpoints at 10, 20, 25) whose file then had `statements` run on it. */
async function tampered(statements: string) {
  const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-reader-'));
  dirs.push(stateDir);
  const log = await openAuditLog({ stateDir, checkpointEvery: 10 });
  for (let i = 0; i < 25; i++) await log.append(sampleEvent(i));
  const { publicKey } = log;
  await log.close();
  const db = new DatabaseSync(join(stateDir, 'audit.db'));
  db.exec(statements);
  db.close();
  return { store: new SqliteStore({ path: join(stateDir, 'audit.db'), create: false }), publicKey };
}

describe('verifyStore', () => {
  describe('when a checkpoint row holds a size that is no integer (a schema rewritten without its primary key)', () => {
    // Without INTEGER PRIMARY KEY, SQLite keeps whatever type is written: text, a fraction, bytes.
    const foreign = `BEGIN; ALTER TABLE audit_checkpoints RENAME TO old;
      CREATE TABLE audit_checkpoints (size, root BLOB NOT NULL, time TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL);
      INSERT INTO audit_checkpoints SELECT * FROM old; DROP TABLE old; COMMIT;`;
    const edit = `UPDATE audit_records SET body = replace(body, 'invoice-3.pdf', 'invoice-8.pdf') WHERE seq = 3;`;
    for (const size of ["'ten'", '12.5', "x'0a'"]) {
      it(`reports a row of size ${size} as checkpoint-forged and still names seq 3 as edited (it aborted with AUDIT_CHECKPOINT_MALFORMED)`, async () => {
        const { store, publicKey } = await tampered(`${foreign} ${edit} INSERT INTO audit_checkpoints SELECT ${size}, root, time, key_id, signature FROM audit_checkpoints WHERE size = 20;`);
        try {
          const report = await verifyStore(store, publicKey);
          assert.deepEqual(report.damage.map((d) => [d.kind, d.seq]), [['edited', 3], ['checkpoint-forged', null]]);
          assert.equal(report.firstBadSeq, 3);
        } finally {
          await store.close();
        }
      });
    }
  });
});

describe('verifyStore on a log with 200,000 checkpoints (a one-shot writer signs one per run)', () => {
  it('reports on them instead of overflowing the stack', async () => {
    const checkpoints: SignedCheckpoint[] = Array.from({ length: 200_000 }, (_, i) => ({ size: i + 1, root: 'ab'.repeat(32), time: '2026-01-01T00:00:00.000Z', keyId: 'cd'.repeat(16), signature: `${'A'.repeat(86)}==` }));
    // Only what verifyStore asks of a store whose records are gone: the head, the checkpoints, rows outside it.
    const store = {
      where: 'test',
      head: async () => ({ size: 0, lastHash: '0'.repeat(64), frontier: [], checkpointSize: 200_000, checkpointTime: 0 }),
      checkpoints: async () => checkpoints,
      checkpointFor: async (n: number) => checkpoints[n - 1] ?? null,
      outside: async () => ({ before: null, beyond: null }),
      async *scanChain() {},
    } as unknown as AuditStore;
    const report = await verifyStore(store, generateSigningKey().publicKey);
    assert.equal(report.ok, false);
    const forged = report.damage.filter((d) => d.kind === 'checkpoint-forged');
    assert.equal(forged.length, MAX_LISTED_CHECKPOINTS + 1);
    assert.match(forged.at(-1)!.message, new RegExp(`^${200_000 - MAX_LISTED_CHECKPOINTS} more checkpoints are forged`));
  });
});

describe('verifyStore on a live log broken at seq 0 and 150,000 records after it', () => {
  it('reads no record past the 100,000 kept to diagnose the break, and counts the rest (regression: every record to the end was read and hashed)', async () => {
    const total = 150_000;
    let bodies = 0;
    const store = {
      where: 'test',
      head: async () => ({ size: total, lastHash: '0'.repeat(64), frontier: [], checkpointSize: 0, checkpointTime: 0 }),
      checkpoints: async () => [],
      checkpointFor: async () => null,
      outside: async () => ({ before: null, beyond: null }),
      async *scanChain(from: number, to: number) {
        for (let first = from; first < Math.min(to, total); first += 10_000) {
          const rows: unknown[][] = [];
          for (let seq = first; seq < Math.min(first + 10_000, to, total); seq++) {
            // Seq 0 names a predecessor that is not the genesis: the chain breaks at once.
            const row: unknown[] = [seq, 'ab'.repeat(32), 'cd'.repeat(32)];
            Object.defineProperty(row, 3, { get: () => (bodies++, '{}') });
            rows.push(row);
          }
          yield rows;
        }
      },
    } as unknown as AuditStore;
    const report = await verifyStore(store, generateSigningKey().publicKey);
    assert.deepEqual([report.ok, report.firstBadSeq, report.records], [false, 0, total]);
    assert.ok(bodies <= 100_001, `${bodies} record bodies were read`);
  });
});

describe('readRecord', () => {
  describe('when a record sits beyond the head of a log of 25 (a row no append made, hashed to pass its own leaf check)', () => {
    it("refuses seq 25 with AUDIT_NOT_FOUND, as verify counts it no part of the log (regression: show printed it as the log's record)", async () => {
      const { store } = await tampered('');
      try {
        const db = new DatabaseSync(store.where);
        const prev = Buffer.from((db.prepare('SELECT hash FROM audit_records WHERE seq = 24').get() as { hash: Uint8Array }).hash).toString('hex');
        const { body, timeMs } = checkedEvent(sampleEvent(99));
        const hash = sha256Hasher.leaf(recordBytes(25, prev, body));
        db.prepare('INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body) VALUES (25, ?, ?, ?, ?, ?)').run(timeMs, Buffer.from(prev, 'hex'), Buffer.from(hash, 'hex'), new Uint8Array(0), body);
        db.close();
        assert.equal((await readRecord(store, 24)).seq, 24);
        await assert.rejects(readRecord(store, 25), { code: 'AUDIT_NOT_FOUND' });
      } finally {
        await store.close();
      }
    });
  });
});
