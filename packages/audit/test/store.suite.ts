// The one behaviour suite every store passes (SQLite and PostgreSQL run it).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { signCheckpoint } from '../src/checkpoint/sign.ts';
import { generateSigningKey, keyIdOf } from '../src/checkpoint/key.ts';
import { exportJsonl } from '../src/export/jsonl.ts';
import { verifyExportFile } from '../src/io/export-file.ts';
import { readWitness, witnessPath as witnessFile } from '../src/io/witness-file.ts';
import { postgresWhere } from '../src/store/postgres-where.ts';
import { openAuditLog, type AuditLog, type OpenAuditLogOptions } from '../src/log/audit-log.ts';
import { openAuditReader } from '../src/log/open-reader.ts';
import { proveConsistency, proveInclusion, readRecord, verifyStore } from '../src/log/reader.ts';
import { verifyConsistency } from '../src/merkle/consistency.ts';
import { sha256Hasher } from '../src/merkle/hasher.ts';
import { verifyInclusion } from '../src/merkle/inclusion.ts';
import { recordBytes } from '../src/record/envelope.ts';
import { refInclusion, refRoot } from './reference-merkle.ts';
import { sampleEvent } from './fixtures.ts';

/** What a store's test file provides to the suite. */
export interface StoreHarness {
  name: string;
  /** Options for a fresh, empty log (its own state dir and database). */
  fresh(): Promise<{ options: OpenAuditLogOptions; sql: (statement: string) => Promise<void>; blob: (hex: string) => string; plantForeign: () => Promise<void> }>;
}

/** The witness file of the log these options open (a PostgreSQL log of these tests is in the schema public). */
function witnessPath(stateDir: string, postgresUrl?: string): string {
  return witnessFile(stateDir, postgresUrl ? postgresWhere(postgresUrl, 'public') : undefined);
}

export function storeSuite(h: StoreHarness): void {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()?.();
  });

  async function setup(extra: Partial<OpenAuditLogOptions> = {}) {
    const f = await h.fresh();
    const options = { ...f.options, ...extra };
    const log = await openAuditLog(options);
    cleanups.push(() => log.close());
    return { ...f, options, log };
  }
  async function filled(n: number, extra: Partial<OpenAuditLogOptions> = {}) {
    const s = await setup({ checkpointEvery: 10, ...extra });
    for (let i = 0; i < n; i++) await s.log.append(sampleEvent(i));
    await s.log.checkpoint();
    return s;
  }
  const report = (log: AuditLog) => verifyStore(log.store, log.publicKey);

  describe(`the ${h.name} store`, () => {
    describe('when the log is empty', () => {
      it('verifies with no records and no damage', async () => {
        const { log } = await setup();
        const r = await report(log);
        assert.equal(r.ok, true);
        assert.equal(r.records, 0);
      });
      it('has no record 0', async () => {
        const { log } = await setup();
        await assert.rejects(readRecord(log.store, 0), { code: 'AUDIT_NOT_FOUND' });
      });
    });

    describe('appending', () => {
      it('acknowledges records 0, 1, 2 chained by predecessor hash', async () => {
        const { log } = await setup();
        const a = await log.append(sampleEvent(0));
        const b = await log.append(sampleEvent(1));
        const c = await log.append(sampleEvent(2));
        assert.deepEqual([a.seq, b.seq, c.seq], [0, 1, 2]);
        assert.equal(a.prev, '0'.repeat(64));
        assert.equal(b.prev, a.hash);
        assert.equal(c.prev, b.hash);
        assert.equal(sha256Hasher.leaf(c.canonical), c.hash);
        const back = await readRecord(log.store, 1);
        assert.deepEqual(back, b);
        assert.equal(back.canonical, b.canonical);
        assert.deepEqual(b.event, back.event, 'the event an append resolves with is the one stored');
        assert.deepEqual(b.event.resource, sampleEvent(1).resource);
        assert.deepEqual(JSON.parse(JSON.stringify(b)), { seq: 1, prev: a.hash, hash: b.hash, event: b.event, canonical: b.canonical }, 'as JSON, canonical is a member like the others');
      });
      it('stores awkward text byte for byte: backslashes, escapes, tabs, newlines, emoji', async () => {
        const { log } = await setup();
        const details = { path: 'C:\\Users\\a\\b', text: 'line\nbreak\ttab\r\u2028 "quoted" \\n not-a-newline 🐄', nul: '\u0000', many: '\\'.repeat(40) };
        const written = await Promise.all(Array.from({ length: 300 }, (_, i) => log.append({ ...sampleEvent(i), details })));
        const back = await readRecord(log.store, 150);
        assert.deepEqual(back.event.details, details);
        assert.deepEqual(written[150]?.event.details, details);
        assert.equal(back.hash, written[150]?.hash);
        assert.equal((await report(log)).ok, true);
      });
      it('keeps seq gapless when 300 appends race in one process', async () => {
        const { log } = await setup();
        const records = await Promise.all(Array.from({ length: 300 }, (_, i) => log.append(sampleEvent(i))));
        assert.deepEqual(records.map((r) => r.seq).sort((x, y) => x - y), Array.from({ length: 300 }, (_, i) => i));
        assert.equal((await report(log)).ok, true);
      });
      it('refuses an invalid event with AUDIT_EVENT_INVALID and writes nothing', async () => {
        const { log } = await setup();
        await assert.rejects(log.append({ ...sampleEvent(0), action: 'Not A Verb' }), { code: 'AUDIT_EVENT_INVALID' });
        assert.equal((await log.store.head()).size, 0);
      });
      it('refuses appends after close with AUDIT_CLOSED', async () => {
        const f = await h.fresh();
        const log = await openAuditLog(f.options);
        await log.close();
        await assert.rejects(log.append(sampleEvent(0)), { code: 'AUDIT_CLOSED' });
      });
    });

    describe('checkpoints', () => {
      it('are signed every 10 records and on close', async () => {
        const f = await h.fresh();
        const log = await openAuditLog({ ...f.options, checkpointEvery: 10 });
        for (let i = 0; i < 25; i++) await log.append(sampleEvent(i));
        await log.close();
        const reader = await openAuditReader({ stateDir: f.options.stateDir, ...(f.options.postgresUrl ? { postgresUrl: f.options.postgresUrl } : {}) });
        cleanups.push(() => reader.close());
        assert.deepEqual((await reader.store.checkpoints()).map((c) => c.size), [10, 20, 25]);
        const r = await verifyStore(reader.store, reader.publicKey());
        assert.equal(r.ok, true);
        assert.equal(r.sealed, 25);
        assert.equal(readWitness(witnessPath(f.options.stateDir, f.options.postgresUrl))?.size, 25);
      });
      it('are signed after the interval when records wait unsealed', async () => {
        const { log } = await setup({ checkpointEvery: 1000, checkpointIntervalMs: 60 });
        await log.append(sampleEvent(0));
        const deadline = Date.now() + 5000;
        while ((await log.store.checkpoints()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        assert.deepEqual((await log.store.checkpoints()).map((c) => c.size), [1]);
      });
    });

    describe('proofs', () => {
      it('prove every record of 37 is included, matching the reference tree', async () => {
        const { log } = await filled(37);
        const leaves: Buffer[] = [];
        for (let i = 0; i < 37; i++) leaves.push(Buffer.from((await readRecord(log.store, i)).hash, 'hex'));
        for (let seq = 0; seq < 37; seq++) {
          const p = await proveInclusion(log.store, seq);
          verifyInclusion(sha256Hasher, seq, p.treeSize, p.leafHash, p.proof, p.root);
          assert.deepEqual(p.proof, refInclusion(seq, leaves.slice(0, p.treeSize)).map((b) => b.toString('hex')));
          assert.equal(p.root, refRoot(leaves.slice(0, p.treeSize)).toString('hex'));
        }
      });
      it('prove each checkpoint extends every earlier one', async () => {
        const { log } = await filled(37);
        const sizes = (await log.store.checkpoints()).map((c) => c.size);
        for (const a of sizes) for (const b of sizes.filter((s) => s >= a)) {
          const p = await proveConsistency(log.store, a, b);
          verifyConsistency(sha256Hasher, a, b, p.proof, p.root1, p.root2);
        }
      });
      it('name AUDIT_NOT_FOUND for a consistency proof to a size never signed', async () => {
        const { log } = await filled(12);
        await assert.rejects(proveConsistency(log.store, 10, 11), { code: 'AUDIT_NOT_FOUND' });
      });
    });

    describe('verify', () => {
      it('passes an untouched log of 45 records', async () => {
        const { log } = await filled(45);
        const r = await report(log);
        assert.equal(r.ok, true, JSON.stringify(r.damage));
        assert.equal(r.verified, 45);
        assert.equal(r.sealed, 45);
      });
      it('passes a live log while appends keep landing (what the head moved on to cover was appended, not inserted)', async () => {
        const { log } = await filled(10);
        let appending = true;
        const appends = (async () => {
          for (let i = 0; i < 40; i++) await Promise.all(Array.from({ length: 50 }, (_, k) => log.append(sampleEvent(i * 50 + k))));
          appending = false;
        })();
        const reports: Awaited<ReturnType<typeof report>>[] = [];
        // Each report reads on this thread without leaving it; the appends' acknowledgements need a turn of the event loop between them.
        for (; appending; await new Promise((r) => setTimeout(r, 5))) reports.push(await report(log));
        await appends;
        assert.ok(reports.length > 1);
        assert.deepEqual(reports.filter((r) => !r.ok).map((r) => JSON.stringify(r.damage)), []);
      });
      describe('when a record is edited in the database', () => {
        it('names seq 7 as edited', async () => {
          const { log, sql } = await filled(30);
          await sql(`UPDATE audit_records SET body = replace(body, 'invoice-7.pdf', 'invoice-X.pdf') WHERE seq = 7`);
          const r = await report(log);
          assert.equal(r.ok, false);
          assert.equal(r.firstBadSeq, 7);
          assert.equal(r.damage[0]?.kind, 'edited');
        });
      });
      describe("when a record's time index (time_ms) is edited in the database", () => {
        it('names seq 9 as misindexed, its stored and its event time, and verifies every record (regression: verify passed it, and export --since left the record out)', async () => {
          const { log, sql } = await filled(30);
          await sql('UPDATE audit_records SET time_ms = 0 WHERE seq = 9');
          const r = await report(log);
          assert.equal(r.ok, false);
          assert.equal(r.firstBadSeq, 9);
          assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['misindexed', 9]]);
          assert.match(r.damage[0]!.message, /1970-01-01T00:00:00\.000Z.*2026-11-25T12:00:09\.000Z/);
          assert.deepEqual([r.verified, r.sealed], [30, 30]);
        });
        it('names each of seq 0, 17 and 29 when their times are moved by 1 ms, earlier and later', async () => {
          const { log, sql } = await filled(30);
          await sql('UPDATE audit_records SET time_ms = time_ms - 1 WHERE seq IN (0, 29)');
          await sql('UPDATE audit_records SET time_ms = time_ms + 1 WHERE seq = 17');
          const r = await report(log);
          assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['misindexed', 0], ['misindexed', 17], ['misindexed', 29]]);
        });
      });
      describe('when a record is deleted from the database', () => {
        it('names seq 5 as deleted', async () => {
          const { log, sql } = await filled(30);
          await sql('DELETE FROM audit_records WHERE seq = 5');
          const r = await report(log);
          assert.equal(r.firstBadSeq, 5);
          assert.equal(r.damage[0]?.kind, 'deleted');
        });
      });
      describe('when two records swap places', () => {
        it('names seq 3 as reordered', async () => {
          const { log, sql, blob } = await filled(30);
          const a = await log.store.record(3);
          const b = await log.store.record(4);
          await sql('DELETE FROM audit_records WHERE seq IN (3, 4)');
          const put = (seq: number, r: NonNullable<typeof a>) =>
            sql(`INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body) VALUES (${seq}, ${r.timeMs}, ${blob(r.prev)}, ${blob(r.hash)}, ${blob(r.nodes.join(''))}, '${r.body.replaceAll("'", "''")}')`);
          await put(3, b as NonNullable<typeof a>);
          await put(4, a as NonNullable<typeof a>);
          const r = await report(log);
          assert.equal(r.firstBadSeq, 3);
          assert.equal(r.damage[0]?.kind, 'reordered');
        });
      });
      describe('when a forged record is inserted and the rest renumbered', () => {
        it('names seq 5 as inserted', async () => {
          const { log, sql, blob } = await filled(30);
          const before = (await log.store.record(4))!;
          await sql('UPDATE audit_records SET seq = -seq - 1 WHERE seq >= 5');
          await sql('UPDATE audit_records SET seq = -seq WHERE seq < 0');
          const body = (await log.store.record(6))!.body.replace('invoice-5', 'invoice-forged');
          const hash = sha256Hasher.leaf(recordBytes(5, before.hash, body));
          await sql(`INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body) VALUES (5, 0, ${blob(before.hash)}, ${blob(hash)}, ${blob('')}, '${body}')`);
          const r = await report(log);
          assert.equal(r.firstBadSeq, 5);
          assert.equal(r.damage[0]?.kind, 'inserted');
        });
      });
      describe('when the tail is cut off', () => {
        it('names seq 20 as the first missing record', async () => {
          const { log, sql } = await filled(30);
          await sql('DELETE FROM audit_records WHERE seq >= 20');
          const r = await report(log);
          assert.equal(r.firstBadSeq, 20);
          assert.equal(r.damage[0]?.kind, 'truncated');
        });
      });
      describe('when a record is rewritten and the chain after it recomputed (but not re-signed)', () => {
        it('names seq 13 within a two-record range from the tree nodes stored at append time', async () => {
          const { log, sql, blob } = await filled(30);
          let prev = (await log.store.record(12))!.hash;
          for (let seq = 13; seq < 30; seq++) {
            const r = (await log.store.record(seq))!;
            const body = seq === 13 ? r.body.replace('invoice-13.pdf', 'invoice-31.pdf') : r.body;
            const hash = sha256Hasher.leaf(recordBytes(seq, prev, body));
            await sql(`UPDATE audit_records SET body = '${body}', prev = ${blob(prev)}, hash = ${blob(hash)} WHERE seq = ${seq}`);
            prev = hash;
          }
          await sql(`UPDATE audit_head SET last_hash = ${blob(prev)}`);
          const r = await report(log);
          assert.equal(r.ok, false);
          const d = r.damage[0]!;
          assert.equal(d.kind, 'edited');
          assert.ok((d.seq as number) <= 13 && 13 <= (d.throughSeq as number) && (d.throughSeq as number) - (d.seq as number) <= 1, JSON.stringify(d));
        });
      });
      describe('when a checkpoint is forged', () => {
        it('reports the checkpoint at size 10', async () => {
          const { log, sql, blob } = await filled(30);
          await sql(`UPDATE audit_checkpoints SET root = ${blob('00'.repeat(32))} WHERE size = 10`);
          const r = await report(log);
          assert.equal(r.ok, false);
          assert.deepEqual(r.damage.map((d) => [d.kind, d.checkpointSize]), [['checkpoint-forged', 10]]);
        });
      });
      describe('when records are rewritten and every checkpoint re-signed with another key', () => {
        it('reports every checkpoint as forged', async () => {
          const { log, sql } = await filled(20);
          await sql(`UPDATE audit_records SET body = replace(body, 'invoice-3.pdf', 'invoice-Y.pdf') WHERE seq = 3`);
          const other = generateSigningKey();
          const cps = await log.store.checkpoints();
          for (const c of cps) {
            const s = signCheckpoint(other.privateKey, { ...c, keyId: keyIdOf(other.publicKey) });
            await sql(`UPDATE audit_checkpoints SET key_id = '${s.keyId}', signature = '${s.signature}' WHERE size = ${c.size}`);
          }
          const r = await report(log);
          assert.equal(r.damage.filter((d) => d.kind === 'checkpoint-forged').length, cps.length);
          assert.equal(r.firstBadSeq, 3);
        });
      });
      describe('when the log is rolled back to an earlier state', () => {
        it('reports rolled-back against the witness and the writer refuses to reopen it', async () => {
          const f = await h.fresh();
          const log = await openAuditLog({ ...f.options, checkpointEvery: 10 });
          for (let i = 0; i < 30; i++) await log.append(sampleEvent(i));
          await log.close();
          const witness = readWitness(witnessPath(f.options.stateDir, f.options.postgresUrl));
          assert.equal(witness?.size, 30);
          await f.sql('DELETE FROM audit_records WHERE seq >= 20');
          await f.sql('DELETE FROM audit_checkpoints WHERE size > 20');
          await f.sql('UPDATE audit_head SET size = 20');
          const reader = await openAuditReader({ stateDir: f.options.stateDir, ...(f.options.postgresUrl ? { postgresUrl: f.options.postgresUrl } : {}) });
          cleanups.push(() => reader.close());
          const r = await verifyStore(reader.store, reader.publicKey(), witness);
          assert.equal(r.firstBadSeq, 20);
          assert.equal(r.damage[0]?.kind, 'rolled-back');
          await assert.rejects(openAuditLog(f.options), { code: 'AUDIT_ROLLED_BACK' });
        });
      });
    });

    describe('verify and the writer, against the tree nodes kept beside the records (the head\'s frontier, each record\'s stored nodes)', () => {
      /** A closed log of 25 records signed at 10, 20 and 25: its head's frontier is the subtrees of seq 0–15, 16–23 and 24. */
      async function closed25() {
        const f = await h.fresh();
        const log = await openAuditLog({ ...f.options, checkpointEvery: 10 });
        for (let i = 0; i < 25; i++) await log.append(sampleEvent(i));
        const head = await log.store.head();
        const r23 = (await log.store.record(23))!;
        await log.close();
        assert.equal(head.frontier.length, 3);
        assert.equal(r23.nodes.length, 3, 'record 23 completes the subtrees of seq 22–23, 20–23 and 16–23');
        const forged = 'ee'.repeat(32);
        const readerOf = async () => {
          const reader = await openAuditReader({ stateDir: f.options.stateDir, ...(f.options.postgresUrl ? { postgresUrl: f.options.postgresUrl } : {}) });
          cleanups.push(() => reader.close());
          return verifyStore(reader.store, reader.publicKey());
        };
        return {
          ...f,
          head,
          r23,
          forged,
          verify: readerOf,
          /** Sets the head's frontier hash of seq 16–23. */
          editFrontier: () => f.sql(`UPDATE audit_head SET frontier = ${f.blob([head.frontier[0], forged, head.frontier[2]].join(''))}`),
          /** Sets record 23's stored node of seq 16–23 (level 3). */
          editNodes: () => f.sql(`UPDATE audit_records SET nodes = ${f.blob([r23.nodes[0], r23.nodes[1], forged].join(''))} WHERE seq = 23`),
          /** Opens a writer; closes it should it open (it would then sign a checkpoint over what it built on). */
          reopen: () => openAuditLog(f.options).then((reopened) => reopened.close()),
          dropWitness: () => rmSync(witnessPath(f.options.stateDir, f.options.postgresUrl)),
        };
      }
      const kinds = (r: { damage: { kind: string; seq: number | null }[] }) => r.damage.map((d) => [d.kind, d.seq]);

      it('passes the untouched log, and a writer opens it', async () => {
        const t = await closed25();
        const r = await t.verify();
        assert.equal(r.ok, true, JSON.stringify(r.damage));
        await t.reopen();
      });
      it("reports the head's frontier edited alone as tree-altered, naming the subtree of seq 16–23, the head's hash and the records' (regression: verify passed it); the writer refuses", async () => {
        const t = await closed25();
        await t.editFrontier();
        const r = await t.verify();
        assert.deepEqual(kinds(r), [['tree-altered', null]]);
        assert.ok(r.damage[0]!.message.includes(`holds ${t.forged} for the subtree of seq 16–23 (level 3), but the records make ${t.head.frontier[1]}`), r.damage[0]!.message);
        assert.match(r.damage[0]!.message, /restore audit_head from a backup/);
        t.dropWitness();
        await assert.rejects(t.reopen(), { code: 'AUDIT_CHAIN_BROKEN', message: /frontier/ });
      });
      it("reports record 23's stored node of seq 16–23 edited alone as tree-altered at seq 23 (regression: verify passed it); the writer refuses", async () => {
        const t = await closed25();
        await t.editNodes();
        const r = await t.verify();
        assert.deepEqual(kinds(r), [['tree-altered', 23]]);
        assert.ok(r.damage[0]!.message.includes(`level 3 (the subtree of seq 16–23) is ${t.forged}, but the records make ${t.r23.nodes[2]}`), r.damage[0]!.message);
        assert.deepEqual([r.verified, r.sealed], [25, 25], 'the records themselves verify');
        t.dropWitness();
        await assert.rejects(t.reopen(), { code: 'AUDIT_CHAIN_BROKEN', message: /frontier/ });
      });
      it("reports a stored node no frontier holds (record 7's, seq 0–7) at seq 7; a writer, which builds on none of it, opens", async () => {
        const t = await closed25();
        const r7 = (await (async () => {
          const reader = await openAuditReader({ stateDir: t.options.stateDir, ...(t.options.postgresUrl ? { postgresUrl: t.options.postgresUrl } : {}) });
          cleanups.push(() => reader.close());
          return reader.store.record(7);
        })())!;
        await t.sql(`UPDATE audit_records SET nodes = ${t.blob([r7.nodes[0], r7.nodes[1], t.forged].join(''))} WHERE seq = 7`);
        assert.deepEqual(kinds(await t.verify()), [['tree-altered', 7]]);
        await t.reopen();
      });
      it("reports the head's frontier and record 23's node edited together, consistently, as both (regression: verify passed them, and the writer signed its next checkpoint over a tree its records do not make)", async () => {
        const t = await closed25();
        await t.editFrontier();
        await t.editNodes();
        const r = await t.verify();
        assert.deepEqual(kinds(r), [['tree-altered', 23], ['tree-altered', null]]);
      });
      it('refuses to open that log with AUDIT_CHAIN_BROKEN: its frontier is not the tree signed at 25', async () => {
        const t = await closed25();
        await t.editFrontier();
        await t.editNodes();
        t.dropWitness(); // else the witness, whose root the edited nodes no longer make, refuses it first (AUDIT_ROLLED_BACK)
        await assert.rejects(t.reopen(), { code: 'AUDIT_CHAIN_BROKEN', message: /extends the checkpoint signed at size 25/ });
        assert.deepEqual(kinds(await t.verify()), [['tree-altered', 23], ['tree-altered', null]], 'the writer signed nothing');
      });
      it('refuses to open that log with AUDIT_CHAIN_BROKEN when records 20–24 came after the last checkpoint (its frontier does not extend the tree signed at 20)', async () => {
        const t = await closed25();
        await t.sql('DELETE FROM audit_checkpoints WHERE size = 25');
        await t.sql('UPDATE audit_head SET checkpoint_size = 20');
        t.dropWitness();
        await t.editFrontier();
        await t.editNodes();
        await assert.rejects(t.reopen(), { code: 'AUDIT_CHAIN_BROKEN', message: /extends the checkpoint signed at size 20/ });
      });
      it('refuses to open a log whose last checkpoint, the one its head names, is gone or forged', async () => {
        const t = await closed25();
        t.dropWitness();
        await t.sql(`UPDATE audit_checkpoints SET root = ${t.blob(t.forged)} WHERE size = 25`);
        await assert.rejects(t.reopen(), { code: 'AUDIT_CHAIN_BROKEN', message: /not validly signed/ });
        await t.sql('DELETE FROM audit_checkpoints WHERE size = 25');
        await assert.rejects(t.reopen(), { code: 'AUDIT_CHAIN_BROKEN', message: /at size 25, is gone/ });
      });
    });

    describe('rows outside the head', () => {
      it('outside() finds none in an untouched log', async () => {
        const { log } = await filled(25);
        assert.deepEqual(await log.store.outside(25), { before: null, beyond: null });
      });
      it('outside() finds rows below seq 0 and at or beyond the head, up to 2^53 - 1', async () => {
        const { log, sql } = await filled(25);
        await sql('INSERT INTO audit_records SELECT -1, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 3');
        await sql('INSERT INTO audit_records SELECT -7, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 3');
        await sql(`INSERT INTO audit_records SELECT ${Number.MAX_SAFE_INTEGER}, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 3`);
        assert.deepEqual(await log.store.outside(25), { before: { first: -7, last: -1, count: 2 }, beyond: { first: Number.MAX_SAFE_INTEGER, last: Number.MAX_SAFE_INTEGER, count: 1 } });
        assert.deepEqual((await log.store.outside(20)).beyond, { first: 20, last: Number.MAX_SAFE_INTEGER, count: 6 });
      });
    });

    describe('verify, when rows lie outside the head', () => {
      it('names a row at seq -1 as inserted there', async () => {
        const { log, sql } = await filled(25);
        await sql('INSERT INTO audit_records SELECT -1, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 3');
        const r = await report(log);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['inserted', -1]]);
      });
      it('names a row at seq 2^53 - 1 as inserted there', async () => {
        const { log, sql } = await filled(25);
        await sql(`INSERT INTO audit_records SELECT ${Number.MAX_SAFE_INTEGER}, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 3`);
        const r = await report(log);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['inserted', Number.MAX_SAFE_INTEGER]]);
      });
      it('names a row at seq 30 beyond a head of 25 as inserted at 30, not seq 25–29 as deleted', async () => {
        const { log, sql } = await filled(25);
        await sql('INSERT INTO audit_records SELECT 30, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = 3');
        const r = await report(log);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['inserted', 30]]);
        assert.equal(r.firstBadSeq, 30);
      });
      it('names a head moved back behind records a signed checkpoint covers as rolled-back at seq 20', async () => {
        const { log, sql } = await filled(25);
        await sql('UPDATE audit_head SET size = 20');
        const r = await report(log);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.checkpointSize]), [['rolled-back', 20, 25]]);
      });
      it('names records beyond the head that no checkpoint signs as inserted', async () => {
        const { log, sql } = await filled(20);
        await log.append(sampleEvent(20));
        await log.append(sampleEvent(21));
        await sql('UPDATE audit_head SET size = 20');
        const r = await report(log);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['inserted', 20]]);
      });
    });

    describe('verify, when the checkpoint the head names is deleted', () => {
      it('reports checkpoint-deleted at size 25', async () => {
        const { log, sql } = await filled(25);
        await sql('DELETE FROM audit_checkpoints WHERE size = 25');
        const r = await report(log);
        assert.equal(r.ok, false);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq, d.checkpointSize]), [['checkpoint-deleted', null, 25]]);
      });
    });

    describe('rows that are not what a writer puts there', () => {
      it('refuse a record row whose hash is 2 bytes with AUDIT_RECORD_MALFORMED naming seq 7', async () => {
        const { log, sql, blob } = await filled(25);
        await sql(`UPDATE audit_records SET hash = ${blob('0102')} WHERE seq = 7`);
        await assert.rejects(log.store.record(7), { code: 'AUDIT_RECORD_MALFORMED', seq: 7, message: /audit_records row seq 7: column hash/ });
        await assert.rejects(readRecord(log.store, 7), { code: 'AUDIT_RECORD_MALFORMED' });
      });
      it('verify reports that record as malformed at seq 7 and goes on', async () => {
        const { log, sql, blob } = await filled(25);
        await sql(`UPDATE audit_records SET hash = ${blob('0102')} WHERE seq = 7`);
        const r = await report(log);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.seq]), [['malformed', 7]]);
        assert.equal(r.records, 25);
      });
      it('refuse a checkpoint row whose root is 1 byte with AUDIT_CHECKPOINT_MALFORMED naming size 10; verify reports it as checkpoint-forged', async () => {
        const { log, sql, blob } = await filled(25);
        await sql(`UPDATE audit_checkpoints SET root = ${blob('00')} WHERE size = 10`);
        await assert.rejects(log.store.checkpoints(), { code: 'AUDIT_CHECKPOINT_MALFORMED', checkpointSize: 10, message: /audit_checkpoints row size 10: column root/ });
        const r = await report(log);
        assert.deepEqual(r.damage.map((d) => [d.kind, d.checkpointSize]), [['checkpoint-forged', 10]]);
        assert.deepEqual([r.checkpoints.total, r.checkpoints.valid, r.sealed], [3, 2, 25]);
      });
      it('refuse a head row whose last_hash is 1 byte with AUDIT_STORE_FOREIGN naming the column', async () => {
        const f = await h.fresh();
        const log = await openAuditLog(f.options);
        await log.append(sampleEvent(0));
        await log.close();
        await f.sql(`UPDATE audit_head SET last_hash = ${f.blob('00')}`);
        const reader = await openAuditReader({ stateDir: f.options.stateDir, ...(f.options.postgresUrl ? { postgresUrl: f.options.postgresUrl } : {}) });
        cleanups.push(() => reader.close());
        await assert.rejects(reader.store.head(), { code: 'AUDIT_STORE_FOREIGN', message: /audit_head row is corrupt: column last_hash/ });
        await assert.rejects(verifyStore(reader.store, reader.publicKey()), { code: 'AUDIT_STORE_FOREIGN' });
      });
    });

    describe('reopening a damaged log to append', () => {
      it('refuses with AUDIT_CHAIN_BROKEN when the last record was edited', async () => {
        const f = await h.fresh();
        const log = await openAuditLog(f.options);
        for (let i = 0; i < 5; i++) await log.append(sampleEvent(i));
        await log.close();
        await f.sql(`UPDATE audit_records SET body = replace(body, 'invoice-4.pdf', 'invoice-Z.pdf') WHERE seq = 4`);
        await assert.rejects(openAuditLog(f.options), { code: 'AUDIT_CHAIN_BROKEN' });
      });
      it("refuses with AUDIT_CHAIN_BROKEN when the head's frontier was edited (regression: it opened, signed its next checkpoint over a tree other than its records', and was then refused as rolled back)", async () => {
        const f = await h.fresh();
        const log = await openAuditLog(f.options);
        for (let i = 0; i < 25; i++) await log.append(sampleEvent(i));
        const { frontier } = await log.store.head();
        await log.close();
        assert.equal(frontier.length, 3); // 16 + 8 + 1
        await f.sql(`UPDATE audit_head SET frontier = ${f.blob(['00'.repeat(32), ...frontier.slice(1)].join(''))}`);
        // Closed should it open: a checkpoint is then signed over the edited frontier.
        await assert.rejects(openAuditLog(f.options).then((reopened) => reopened.close()), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'AUDIT_CHAIN_BROKEN');
          assert.match(e.message, /frontier/);
          return true;
        });
      });
      it('refuses with AUDIT_CHAIN_BROKEN when a record sits beyond the head', async () => {
        const f = await h.fresh();
        const log = await openAuditLog(f.options);
        for (let i = 0; i < 5; i++) await log.append(sampleEvent(i));
        await log.close();
        await f.sql('UPDATE audit_head SET size = 4');
        rmSync(witnessPath(f.options.stateDir, f.options.postgresUrl)); // else the witness reports a rollback first
        await assert.rejects(openAuditLog(f.options), { code: 'AUDIT_CHAIN_BROKEN' });
      });
    });

    describe('bad input', () => {
      it('refuses a foreign database with AUDIT_STORE_FOREIGN', async () => {
        const f = await h.fresh();
        await f.plantForeign();
        await assert.rejects(openAuditLog(f.options), { code: 'AUDIT_STORE_FOREIGN' });
      });
      it('refuses a log signed by another key with AUDIT_KEY_UNAVAILABLE', async () => {
        const f = await h.fresh();
        const log = await openAuditLog(f.options);
        await log.append(sampleEvent(0));
        await log.close();
        rmSync(join(f.options.stateDir, 'audit-signing-key.pem'));
        rmSync(witnessPath(f.options.stateDir, f.options.postgresUrl));
        const other = mkdtempSync(join(tmpdir(), 'corral-audit-other-'));
        cleanups.push(() => rmSync(other, { recursive: true, force: true }));
        if (!f.options.postgresUrl) return; // SQLite: the database lives in the state dir; covered below.
        await assert.rejects(openAuditLog({ ...f.options, stateDir: other }), { code: 'AUDIT_KEY_UNAVAILABLE' });
      });
      it('refuses, when reading, a signing key other than the one the log was created with, naming both key ids', async () => {
        const f = await h.fresh();
        const log = await openAuditLog(f.options);
        await log.append(sampleEvent(0));
        await log.close();
        const other = generateSigningKey();
        writeFileSync(join(f.options.stateDir, 'audit-signing-key.pem'), other.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
        const reader = await openAuditReader({ stateDir: f.options.stateDir, ...(f.options.postgresUrl ? { postgresUrl: f.options.postgresUrl } : {}) });
        cleanups.push(() => reader.close());
        assert.throws(() => reader.publicKey(), (e: Error & { code?: string }) => e.code === 'AUDIT_KEY_UNAVAILABLE' && e.message.includes(log.keyId) && e.message.includes(keyIdOf(other.publicKey)));
      });
      it('refuses a missing signing key when reading with AUDIT_KEY_UNAVAILABLE', async () => {
        const f = await h.fresh();
        const log = await openAuditLog(f.options);
        await log.append(sampleEvent(0));
        await log.close();
        rmSync(join(f.options.stateDir, 'audit-signing-key.pem'));
        const reader = await openAuditReader({ stateDir: f.options.stateDir, ...(f.options.postgresUrl ? { postgresUrl: f.options.postgresUrl } : {}) });
        cleanups.push(() => reader.close());
        assert.throws(() => reader.publicKey(), { code: 'AUDIT_KEY_UNAVAILABLE' });
      });
    });

    describe('export', () => {
      it('writes a JSON-lines export that verifies offline with only the public key', async () => {
        const { log, options } = await filled(33);
        const file = join(options.stateDir, 'export.jsonl');
        const lines: string[] = [];
        for await (const l of exportJsonl(log.store, log.keyId)) lines.push(l);
        writeFileSync(file, `${lines.join('\n')}\n`);
        const r = await verifyExportFile(file, log.publicKey);
        assert.equal(r.ok, true, JSON.stringify(r.damage));
        assert.equal(r.verified, 33);
        assert.equal(r.sealed, 33);
      });
      it('writes a partial export (seq 7–24) whose checkpoints still verify', async () => {
        const { log, options } = await filled(33);
        const file = join(options.stateDir, 'part.jsonl');
        const lines: string[] = [];
        for await (const l of exportJsonl(log.store, log.keyId, { from: 7, to: 25 })) lines.push(l);
        writeFileSync(file, `${lines.join('\n')}\n`);
        const r = await verifyExportFile(file, log.publicKey);
        assert.equal(r.ok, true, JSON.stringify(r.damage));
        assert.equal(r.verified, 18);
        assert.equal(r.sealed, 25, 'the seal line (the checkpoint at 30 and the proof from 25 to it) seals seq 20–24');
      });
      it('leaves out the newest records no checkpoint covers yet, and says which', async () => {
        const { log, options } = await filled(33);
        for (let i = 33; i < 36; i++) await log.append(sampleEvent(i));
        const file = join(options.stateDir, 'unsealed.jsonl');
        const lines: string[] = [];
        const left: number[][] = [];
        for await (const l of exportJsonl(log.store, log.keyId, {}, (from, to) => left.push([from, to]))) lines.push(l);
        writeFileSync(file, `${lines.join('\n')}\n`);
        assert.deepEqual(left, [[33, 36]]);
        const r = await verifyExportFile(file, log.publicKey);
        assert.equal(r.ok, true, JSON.stringify(r.damage));
        assert.deepEqual([r.verified, r.sealed], [33, 33]);
      });
    });
  });

  after(async () => {
    while (cleanups.length) await cleanups.pop()?.();
  });
}
