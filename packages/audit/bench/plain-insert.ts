// The reference the log's throughput target was set against: a plain batched insert
// with a hash chain, in one process — SQLite in WAL mode with
// synchronous=FULL (each commit fsynced, as the log's), the same page size,
// 2,000 rows per transaction, each row the SHA-256 of its predecessor's hash
// and its body. No checks, no canonicalising, no Merkle tree, no threads, no
// promises: what the log does beyond this is its price. Speaks writer.ts's
// protocol: says "ready", waits for "go", inserts for `durationMs`, prints
// {"acked": n, "ms": elapsed}.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { canonicalEvent, normalizeEvent } from '../src/record/event.ts';
import { sampleEvent } from '../test/fixtures.ts';

const BATCH = 2000;
const config = JSON.parse(process.argv[2] ?? '{}') as { dir: string; durationMs: number };
const db = new DatabaseSync(join(config.dir, 'plain.db'));
db.exec('PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL');
db.exec('CREATE TABLE records (seq INTEGER PRIMARY KEY, prev BLOB NOT NULL, hash BLOB NOT NULL, body TEXT NOT NULL)');
const insert = db.prepare('INSERT INTO records VALUES (?, ?, ?, ?)');
const bodies = Array.from({ length: 64 }, (_, i) => canonicalEvent(normalizeEvent(sampleEvent(i))));
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
let prev = Buffer.alloc(32);
let seq = 0;
const t0 = performance.now();
while (performance.now() - t0 < config.durationMs) {
  db.exec('BEGIN IMMEDIATE');
  for (let i = 0; i < BATCH; i++, seq++) {
    const body = bodies[seq % 64]!;
    const hash = createHash('sha256').update(prev).update(body).digest();
    insert.run(seq, prev, hash, body);
    prev = hash;
  }
  db.exec('COMMIT');
}
const ms = performance.now() - t0;
db.close();
process.stdout.write(`${JSON.stringify({ acked: seq, ms })}\n`);
process.exit(0);
