import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { sampleEvent } from '../../test/fixtures.ts';
import { signCheckpoint } from '../checkpoint/sign.ts';
import { loadSigningKey } from '../io/key-file.ts';
import { openAuditLog, type AuditLog } from './audit-log.ts';
import { openAuditReader } from './open-reader.ts';
import { verifyStore } from './reader.ts';
import { storedRootAt } from './stored-root.ts';
import { GENESIS_PREV } from '../record/envelope.ts';
import type { VerifyReport } from '../verify/report.ts';

let dir: string;
let log: AuditLog;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-audit-parallel-'));
  log = await openAuditLog({ stateDir: dir, checkpointEvery: 64 });
  await Promise.all(Array.from({ length: 1000 }, (_, i) => log.append(sampleEvent(i))));
  await log.checkpoint();
});
after(async () => {
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('verifying on two threads', () => {
  it('gives the same report as verifying on one', async () => {
    const parallel = await verifyStore(log.store, log.publicKey, null, { parallelFrom: 100 });
    const sequential = await verifyStore(log.store, log.publicKey, null, { parallelFrom: Infinity });
    assert.equal(parallel.ok, true);
    assert.deepEqual(parallel, sequential);
  });
  describe('when the witness is of a fork signed by the same key', () => {
    it('names the fork as rolled-back whether the witness falls in the first half or the second', async () => {
      // The first thread verifies seq 0–499, the second 500–999.
      const key = loadSigningKey(dir);
      const witness = async (size: number, forked: boolean) =>
        signCheckpoint(key.privateKey, { size, root: forked ? 'ab'.repeat(32) : await storedRootAt(log.store, size), time: '2026-11-26T00:00:00.000Z', keyId: key.keyId });
      for (const size of [300, 700]) {
        const r = await verifyStore(log.store, log.publicKey, await witness(size, true), { parallelFrom: 100 });
        assert.deepEqual(r.damage.map((d) => [d.kind, d.checkpointSize]), [['rolled-back', size]]);
        assert.equal((await verifyStore(log.store, log.publicKey, await witness(size, false), { parallelFrom: 100 })).ok, true);
      }
    });
  });
  describe('when a record in the second half is edited', () => {
    it('still names seq 900 as edited', async () => {
      const db = new DatabaseSync(join(dir, 'audit.db'));
      db.exec(`UPDATE audit_records SET body = replace(body, 'invoice-900.pdf', 'invoice-009.pdf') WHERE seq = 900`);
      db.close();
      const r = await verifyStore(log.store, log.publicKey, null, { parallelFrom: 100 });
      assert.equal(r.firstBadSeq, 900);
      assert.equal(r.damage[0]?.kind, 'edited');
    });
  });
  describe('when the stored tree nodes at the split point are forged', () => {
    it('falls back to one thread, which verifies every record and names record 499, whose stored nodes were forged, as tree-altered (it passed the log)', async () => {
      // Record 499 holds the level-1… nodes ending at leaf 499; break a node the second thread would start from.
      const db = new DatabaseSync(join(dir, 'audit.db'));
      db.exec(`UPDATE audit_records SET body = replace(body, 'invoice-009.pdf', 'invoice-900.pdf') WHERE seq = 900`);
      db.exec(`UPDATE audit_records SET nodes = zeroblob(length(nodes)) WHERE seq = 499`);
      db.close();
      const r = await verifyStore(log.store, log.publicKey, null, { parallelFrom: 100 });
      assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['tree-altered', 499]]);
      assert.deepEqual([r.verified, r.sealed], [1000, 1000]);
    });
  });
});

describe('verifying on the calling thread', () => {
  it('lets the event loop run between batches of records, so that a gateway verifying its log still answers', async () => {
    const bigDir = mkdtempSync(join(tmpdir(), 'corral-audit-turns-'));
    const big = await openAuditLog({ stateDir: bigDir });
    try {
      await Promise.all(Array.from({ length: 25_000 }, (_, i) => big.append(sampleEvent(i))));
      let turns = 0;
      const timer = setInterval(() => turns++, 0);
      try {
        assert.equal((await verifyStore(big.store, big.publicKey, null, { parallelFrom: Infinity })).verified, 25_000);
      } finally {
        clearInterval(timer);
      }
      assert.ok(turns >= 2, `the event loop ran ${turns} times while 25,000 records were verified`);
    } finally {
      await big.close();
      rmSync(bigDir, { recursive: true, force: true });
    }
  });
});

describe('a verification thread whose slice is damaged', () => {
  it('stops at the first break, which the sequential pass diagnoses (regression: it read its slice to the end)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-parallel-damaged-'));
    try {
      const small = await openAuditLog({ stateDir, checkpointEvery: 64 });
      await Promise.all(Array.from({ length: 500 }, (_, i) => small.append(sampleEvent(i))));
      const publicKeyPem = small.publicKeyPem;
      await small.close();
      const path = join(stateDir, 'audit.db');
      const db = new DatabaseSync(path);
      db.exec("UPDATE audit_records SET body = replace(body, 'invoice-', 'invoicf-') WHERE seq = 10");
      db.close();
      const job = { path, publicKeyPem, from: 0, to: 500, start: { size: 0, lastHash: GENESIS_PREV, frontier: [] }, checkpoints: [], partial: true };
      const worker = new Worker(new URL('./verify-worker.ts', import.meta.url), { workerData: job });
      const { report } = await new Promise<{ report: VerifyReport }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      assert.equal(report.ok, false);
      assert.ok(report.records <= 11, `the thread read ${report.records} of the slice's 500 records`);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe("verifying on two threads a log whose head's frontier was edited (the records and their stored nodes left alone)", () => {
  it('names it as tree-altered, as one thread does (regression: both passed it)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-audit-parallel-head-'));
    try {
      const small = await openAuditLog({ stateDir, checkpointEvery: 64 });
      await Promise.all(Array.from({ length: 300 }, (_, i) => small.append(sampleEvent(i))));
      await small.close();
      const db = new DatabaseSync(join(stateDir, 'audit.db'));
      db.exec(`UPDATE audit_head SET frontier = unhex('${'ee'.repeat(32)}' || substr(hex(frontier), 65))`);
      db.close();
      await assert.rejects(openAuditLog({ stateDir }), { code: 'AUDIT_CHAIN_BROKEN' }, 'a writer refuses it');
      const r = await openAuditReader({ stateDir });
      try {
        for (const parallelFrom of [100, Infinity]) {
          const report = await verifyStore(r.store, r.publicKey(), null, { parallelFrom });
          assert.deepEqual(report.damage.map((d) => [d.kind, d.seq]), [['tree-altered', null]], `parallelFrom ${parallelFrom}`);
          assert.match(report.damage[0]!.message, /the subtree of seq 0–255 \(level 8\)/);
          assert.equal(report.verified, 300);
        }
      } finally {
        await r.close();
      }
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
