// The reference the log's throughput target was set against: a plain batched insert
// with a hash chain, in one process — SQLite in WAL mode with
// synchronous=FULL (each commit fsynced, as the log's), the same page size,
// 2,000 rows per transaction, each row the SHA-256 of its predecessor's hash
// and its body. No checks, no canonicalising, no Merkle tree, no threads, no
// promises: what the log does beyond this is its price. Speaks writer.ts's
// protocol: says "ready", waits for "go", inserts for `warmMs` then
// `durationMs` more, prints the two windows' counts (window.ts).
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { canonicalEvent, normalizeEvent } from '../src/record/event.ts';
import { sampleEvent } from '../test/fixtures.ts';
import { Windows } from './window.ts';

const BATCH = 2000;
const config = JSON.parse(process.argv[2] ?? '{}') as { dir: string; warmMs: number; durationMs: number };
const db = new DatabaseSync(join(config.dir, 'plain.db'));
db.exec('PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL');
db.exec('CREATE TABLE records (seq INTEGER PRIMARY KEY, prev BLOB NOT NULL, hash BLOB NOT NULL, body TEXT NOT NULL)');
const insert = db.prepare('INSERT INTO records VALUES (?, ?, ?, ?)');
const bodies = Array.from({ length: 64 }, (_, i) => canonicalEvent(normalizeEvent(sampleEvent(i))));
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
let prev = Buffer.alloc(32);
let seq = 0;
const windows = new Windows(config.warmMs, config.durationMs);
while (windows.open()) {
  db.exec('BEGIN IMMEDIATE');
  for (let i = 0; i < BATCH; i++, seq++) {
    const body = bodies[seq % 64]!;
    const hash = createHash('sha256').update(prev).update(body).digest();
    insert.run(seq, prev, hash, body);
    prev = hash;
  }
  db.exec('COMMIT');
  windows.count(BATCH);
}
const counts = windows.result();
db.close();
process.stdout.write(`${JSON.stringify(counts)}\n`);
process.exit(0);
