// Writing one batch into an open SQLite audit database, inside the caller's
// transaction, with prepared multi-row inserts.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import type { LogHead, StoredRecord } from './store.ts';

const ROW = '(?, ?, unhex(?), unhex(?), unhex(?), ?)';
const ROWS_PER_INSERT = 64;

/** A batch as written: records, the head after them, and a checkpoint when one was signed. */
export interface Batch {
  records: StoredRecord[];
  head: LogHead;
  checkpoint?: SignedCheckpoint;
}

export class BatchWriter {
  readonly #db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) this.#stmts.set(sql, (s = this.#db.prepare(sql)));
    return s;
  }

  /** Inserts the batch's rows, updates the head, adds the checkpoint (inside a transaction). */
  write(batch: Batch): void {
    const records = batch.records;
    let i = 0;
    if (records.length >= ROWS_PER_INSERT) {
      const many = this.#stmt(`INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body) VALUES ${Array(ROWS_PER_INSERT).fill(ROW).join(',')}`);
      const args: (string | number)[] = [];
      for (; i + ROWS_PER_INSERT <= records.length; i += ROWS_PER_INSERT) {
        args.length = 0;
        for (let j = i; j < i + ROWS_PER_INSERT; j++) {
          const r = records[j] as StoredRecord;
          args.push(r.seq, r.timeMs, r.prev, r.hash, r.nodes.join(''), r.body);
        }
        many.run(...args);
      }
    }
    const one = this.#stmt(`INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body) VALUES ${ROW}`);
    for (; i < records.length; i++) {
      const r = records[i] as StoredRecord;
      one.run(r.seq, r.timeMs, r.prev, r.hash, r.nodes.join(''), r.body);
    }
    const h = batch.head;
    this.#stmt('UPDATE audit_head SET size = ?, last_hash = unhex(?), frontier = unhex(?), checkpoint_size = ?, checkpoint_time = ? WHERE id = 1').run(
      h.size,
      h.lastHash,
      h.frontier.join(''),
      h.checkpointSize,
      h.checkpointTimeMs,
    );
    if (batch.checkpoint) {
      const c = batch.checkpoint;
      this.#stmt('INSERT INTO audit_checkpoints (size, root, time, key_id, signature) VALUES (?, unhex(?), ?, ?, ?)').run(c.size, c.root, c.time, c.keyId, c.signature);
    }
  }
}
