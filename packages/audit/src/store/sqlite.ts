// The embedded store: one SQLite file (WAL, synchronous=FULL) through Node's
// built-in node:sqlite. Reads run on the caller's thread. Appends run on a
// writer thread with its own connection (sqlite-writer.ts), but for a lone
// append that finds the log idle (sqlite-append-router.ts); a one-shot writer
// appends on the caller's thread only (sqlite-inline-writer.ts). Appends from
// several processes serialise on SQLite's write lock (BEGIN IMMEDIATE); the
// head row carries the chain tip.
import { existsSync, statSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { nodeKey } from '../merkle/prover.ts';
import type { NodeId } from '../merkle/tree.ts';
import { GENESIS_PREV } from '../record/envelope.ts';
import type { AppendRequest, AppendResult, WriterConfig } from './batch.ts';
import { chainRowFromTuple, checkpointFromRow, headFromRow, recordFromRow, spanFromRow, toBytes, type Row } from './codec.ts';
import { BUSY_MS, HEAD_SQL, beginImmediateWithTimers, isBusy, retryWithTimers, sqliteError } from './sqlite-write.ts';
import { SqliteInlineWriter } from './sqlite-inline-writer.ts';
import { SqliteAppendRouter } from './sqlite-append-router.ts';
import { SqliteWriter, type AppendRole } from './sqlite-writer.ts';
import { STORE_FORMAT, nodeLocation, type AuditStore, type ChainRow, type LogHead, type LogMeta, type SeqSpan, type StoredRecord } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_meta (id INTEGER PRIMARY KEY CHECK (id = 1), format INTEGER NOT NULL, key_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL, last_hash BLOB NOT NULL, frontier BLOB NOT NULL, checkpoint_size INTEGER NOT NULL, checkpoint_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit_records (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, prev BLOB NOT NULL, hash BLOB NOT NULL, nodes BLOB NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL, time TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL);
`;

export interface SqliteStoreOptions {
  /** Path of the database file. */
  path: string;
  /** Create the file when missing (writers); readers pass false, and read only: reading never changes the file, its write-ahead log included. */
  create?: boolean;
}

/** Every table, index, view and trigger of `db`, one line each. */
function schemaOf(db: DatabaseSync): string {
  return (db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name').all() as Row[]).map((r) => `${String(r.type)} ${String(r.name)} ${String(r.tbl_name)} ${String(r.sql)}`).join('\n');
}

let expected: string | undefined;

/** schemaOf a log that SCHEMA made. */
function expectedSchema(): string {
  if (expected === undefined) {
    const db = new DatabaseSync(':memory:');
    db.exec(SCHEMA);
    expected = schemaOf(db);
    db.close();
  }
  return expected;
}

export class SqliteStore implements AuditStore {
  readonly kind = 'sqlite' as const;
  readonly where: string;
  readonly #db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  #writer: SqliteAppendRouter | SqliteInlineWriter | null = null;

  /** @throws AuditError AUDIT_STORE_UNAVAILABLE when the file cannot be opened (or is missing and create is false). */
  constructor(options: SqliteStoreOptions) {
    this.where = options.path;
    if (options.create === false && !existsSync(options.path)) {
      throw new AuditError('AUDIT_STORE_UNAVAILABLE', `no audit log at ${options.path}: nothing has recorded to this state directory yet (corral run, corral gateway and corral up do), or the log is in another one`);
    }
    try {
      // A read-write connection folds the write-ahead log into the file as it closes: an auditor's copy would lose what its log held.
      // Waits for other processes' passing locks (BUSY_MS); waiting for the write lock happens in beginImmediateWithTimers(), off the event loop.
      this.#db = new DatabaseSync(options.path, { readOnly: options.create === false, timeout: BUSY_MS });
      this.#db.exec('PRAGMA cache_size = -32768');
    } catch (error) {
      const message = (error as Error).message;
      const code = /not a database|malformed|encrypted/i.test(message) ? 'AUDIT_STORE_FOREIGN' : 'AUDIT_STORE_UNAVAILABLE';
      throw new AuditError(code, `cannot open the audit log at ${options.path}: ${message}`, { cause: error });
    }
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#guard(() => this.#db.prepare(sql));
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /**
   * A statement whose integers come back as bigint: a tampered row may hold
   * one past 2^53 - 1, which node:sqlite otherwise refuses to read at all
   * (ERR_OUT_OF_RANGE) before the row decoder could name the column.
   */
  #rowStmt(sql: string): StatementSync {
    const s = this.#stmt(sql);
    s.setReadBigInts(true);
    return s;
  }

  /** Runs SQLite work, turning "not a database" and missing tables into coded errors. */
  #guard<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw sqliteError(this.where, error);
    }
  }

  /**
   * Turns the file to WAL (a no-op once it is). On a new file SQLite reads it,
   * then upgrades to the write lock, and refuses that upgrade at once, without
   * its busy wait, while another connection holds the write lock: of eight
   * processes opening one new log, one failed "database is locked". Retried
   * with timers for up to BUSY_MS.
   */
  #turnToWal(): Promise<void> {
    const deadline = Date.now() + BUSY_MS;
    return retryWithTimers(() => {
      try {
        this.#db.exec('PRAGMA journal_mode = WAL');
        return true;
      } catch (error) {
        if (!isBusy(error) || Date.now() > deadline) throw sqliteError(this.where, error);
        return false;
      }
    }, 16);
  }

  async init(meta: LogMeta): Promise<LogMeta> {
    // 16 KiB pages: a batch of records is written (and fsynced) in a quarter of
    // the page writes 4 KiB pages take. Only a new, empty file takes it.
    this.#guard(() => this.#db.exec('PRAGMA page_size = 16384'));
    await this.#turnToWal();
    const existing = this.#guard(() => {
      this.#db.exec('PRAGMA synchronous = FULL');
      const found = this.#readMetaSync();
      if (found) return found;
      const tables = this.#db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as Row;
      if (Number(tables.n) > 0) throw new AuditError('AUDIT_STORE_FOREIGN', `${this.where} is a SQLite database but not a Corral audit log`);
      return null;
    });
    if (existing) return existing;
    await beginImmediateWithTimers(this.#db, this.where);
    return this.#guard(() => {
      try {
        const raced = this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'").get();
        if (raced) {
          // Another process created the log between our check and our lock.
          this.#db.exec('COMMIT');
          return this.#readMetaSync() as LogMeta;
        }
        this.#db.exec(SCHEMA);
        this.#db.prepare('INSERT INTO audit_meta (id, format, key_id, created_at) VALUES (1, ?, ?, ?)').run(meta.format, meta.keyId, meta.createdAt);
        this.#db.prepare('INSERT INTO audit_head VALUES (1, 0, ?, ?, 0, 0)').run(toBytes(GENESIS_PREV), Buffer.alloc(0));
        this.#db.exec('COMMIT');
      } catch (error) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw error;
      }
      return meta;
    });
  }

  #readMetaSync(): LogMeta | null {
    const has = this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'").get();
    if (!has) return null;
    // SQLite keeps whatever schema the file says: audit_records rebuilt without its primary key holds two rows of one seq, of which verify reads one and show another.
    if (schemaOf(this.#db) !== expectedSchema()) throw new AuditError('AUDIT_STORE_FOREIGN', `${this.where} holds tables, views, triggers or indexes that are not a Corral audit log's`);
    const row = this.#db.prepare('SELECT format, key_id, created_at FROM audit_meta WHERE id = 1').get() as Row | undefined;
    if (!row) throw new AuditError('AUDIT_STORE_FOREIGN', `${this.where} has an empty audit_meta table`);
    if (row.format !== STORE_FORMAT) throw new AuditError('AUDIT_STORE_FOREIGN', `${this.where} is an audit log of format ${String(row.format)}; this Corral reads format ${STORE_FORMAT}`);
    return { format: Number(row.format), keyId: String(row.key_id), createdAt: String(row.created_at) };
  }

  async readMeta(): Promise<LogMeta | null> {
    return this.#guard(() => {
      const meta = this.#readMetaSync();
      if (!meta) {
        const tables = this.#db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as Row;
        if (Number(tables.n) > 0) throw new AuditError('AUDIT_STORE_FOREIGN', `${this.where} is a SQLite database but not a Corral audit log`);
      }
      return meta;
    });
  }

  #headSync(): LogHead {
    return headFromRow(this.#rowStmt(HEAD_SQL).get() as Row | undefined, this.where);
  }

  async head(): Promise<LogHead> {
    return this.#guard(() => this.#headSync());
  }

  async tip(): Promise<{ head: LogHead; last: StoredRecord | null; beyond: boolean }> {
    return this.#guard(() => {
      this.#db.exec('BEGIN');
      try {
        const head = this.#headSync();
        const get = this.#rowStmt('SELECT seq, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = ?');
        const last = head.size > 0 ? ((get.get(head.size - 1) as Row | undefined) ?? null) : null;
        const beyond = get.get(head.size) !== undefined;
        return { head, last: last ? recordFromRow(last, this.where) : null, beyond };
      } finally {
        this.#db.exec('COMMIT');
      }
    });
  }

  async openWriter(config: WriterConfig): Promise<void> {
    if (this.#writer) throw new AuditError('AUDIT_BAD_ARGUMENT', `${this.where} already has a writer`);
    if (!this.#db.isOpen) throw new AuditError('AUDIT_CLOSED', `the audit log ${this.where} is closed`);
    this.#writer = config.oneShot ? new SqliteInlineWriter(this.#db, this.where, config) : new SqliteAppendRouter(this.#db, this.where, await SqliteWriter.start(this.where, config), config);
  }

  /** How this store's appends are committed (append-share.ts); null before openWriter(). */
  get appendRole(): AppendRole | null {
    if (!this.#writer) return null;
    return this.#writer instanceof SqliteAppendRouter ? this.#writer.role : 'alone';
  }

  /** Where appends that do not commit on the calling thread go (sqlite-append-router.ts); null before openWriter() and for a one-shot writer. */
  get appendLane(): 'thread' | 'direct' | null {
    return this.#writer instanceof SqliteAppendRouter ? this.#writer.lane : null;
  }

  append(request: AppendRequest): Promise<AppendResult> {
    if (!this.#writer) return Promise.reject(new AuditError('AUDIT_CLOSED', `the audit log ${this.where} is not open for writing`));
    return this.#writer.append(request);
  }

  async *scanChain(from: number, to: number, batch = 10_000): AsyncIterable<ChainRow[]> {
    // chainRowFromTuple names a column of the wrong type: a body that is not text, a hash that is not 32 bytes.
    // A hash stored as text holding its very bytes reads the same here (record() refuses it): the bytes, all
    // verification depends on, are the log's; telling the types apart (typeof) costs 5 % of the scan.
    const sql = 'SELECT seq, lower(hex(prev)), lower(hex(hash)), body, time_ms, lower(hex(nodes)) FROM audit_records WHERE seq >= ? AND seq < ? ORDER BY seq LIMIT ?';
    const stmt = this.#stmt(sql);
    stmt.setReturnArrays(true);
    const read = (n: number): unknown[][] => {
      try {
        return stmt.all(next, to, n) as unknown as unknown[][];
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'ERR_OUT_OF_RANGE') throw error;
        // A row holds an integer past 2^53 - 1 (a time_ms set so), which node:sqlite refuses to read as a
        // number: read the batch again with bigints, for chainRowFromTuple to name the row and column.
        const wide = this.#rowStmt(`${sql} -- bigints`);
        wide.setReturnArrays(true);
        return wide.all(next, to, n) as unknown as unknown[][];
      }
    };
    let next = from;
    while (next < to) {
      const rows = this.#guard(() => read(batch));
      if (rows.length === 0) return;
      for (let i = 0; i < rows.length; i++) rows[i] = chainRowFromTuple(rows[i] as unknown[], this.where) as unknown as unknown[];
      yield rows as unknown as ChainRow[];
      next = (rows[rows.length - 1] as unknown as ChainRow)[0] + 1;
    }
  }

  async checkpointFor(size: number, exact: boolean): Promise<SignedCheckpoint | null> {
    return this.#guard(() => {
      const sql = exact ? 'SELECT size, root, time, key_id, signature FROM audit_checkpoints WHERE size = ?' : 'SELECT size, root, time, key_id, signature FROM audit_checkpoints WHERE size >= ? ORDER BY size LIMIT 1';
      const r = this.#rowStmt(sql).get(size) as Row | undefined;
      return r ? checkpointFromRow(r, this.where) : null;
    });
  }

  async record(seq: number): Promise<StoredRecord | null> {
    return this.#guard(() => {
      const row = this.#rowStmt('SELECT seq, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = ?').get(seq) as Row | undefined;
      return row ? recordFromRow(row, this.where) : null;
    });
  }

  async *scan(from: number, to: number, batch = 5000): AsyncIterable<StoredRecord[]> {
    let next = from;
    while (next < to) {
      const rows = this.#guard(() => this.#rowStmt('SELECT seq, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq >= ? AND seq < ? ORDER BY seq LIMIT ?').all(next, to, batch) as Row[]);
      if (rows.length === 0) return;
      const out = rows.map((r) => recordFromRow(r, this.where));
      yield out;
      next = (out[out.length - 1] as StoredRecord).seq + 1;
    }
  }

  async outside(size: number): Promise<{ before: SeqSpan | null; beyond: SeqSpan | null }> {
    return this.#guard(() => {
      const span = (where: string, ...args: number[]) => spanFromRow(this.#rowStmt(`SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM audit_records WHERE ${where}`).get(...args) as Row | undefined);
      return { before: span('seq < 0'), beyond: span('seq >= ?', size) };
    });
  }

  async seqRangeForTime(sinceMs: number, untilMs: number): Promise<{ from: number; to: number } | null> {
    return this.#guard(() => {
      const row = this.#rowStmt('SELECT min(seq) AS lo, max(seq) AS hi FROM audit_records WHERE time_ms >= ? AND time_ms <= ?').get(sinceMs, untilMs) as Row;
      return row.lo === null ? null : { from: Number(row.lo), to: Number(row.hi) + 1 };
    });
  }

  async checkpoints(): Promise<SignedCheckpoint[]> {
    return this.#guard(() =>
      (this.#rowStmt('SELECT size, root, time, key_id, signature FROM audit_checkpoints ORDER BY size').all() as Row[]).map((r) => checkpointFromRow(r, this.where)),
    );
  }

  async nodes(ids: NodeId[]): Promise<Map<string, string>> {
    return this.#guard(() => {
      // One query for all the rows a proof needs (O(log n) of them).
      const seqs = [...new Set(ids.map((id) => nodeLocation(id).seq))];
      const stmt = this.#stmt('SELECT seq, lower(hex(hash)), lower(hex(nodes)) FROM audit_records WHERE seq IN (SELECT value FROM json_each(?))');
      stmt.setReturnArrays(true);
      const rows = stmt.all(JSON.stringify(seqs)) as unknown as [number, string, string][];
      const bySeq = new Map(rows.map((r) => [r[0], r]));
      const out = new Map<string, string>();
      for (const id of ids) {
        const { seq, offset } = nodeLocation(id);
        const row = bySeq.get(seq);
        if (!row) throw new AuditError('AUDIT_NOT_FOUND', `tree node ${nodeKey(id)} is not in the log (record ${seq} missing)`);
        const hash = offset < 0 ? row[1] : row[2].slice(offset * 64, offset * 64 + 64);
        if (hash.length !== 64) throw new AuditError('AUDIT_STORE_FOREIGN', `record ${seq} lacks tree node ${nodeKey(id)}`);
        out.set(nodeKey(id), hash);
      }
      return out;
    });
  }

  async bytesOnDisk(): Promise<number | null> {
    this.#guard(() => this.#db.exec('PRAGMA wal_checkpoint(TRUNCATE)'));
    let total = 0;
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(this.where + suffix)) total += statSync(this.where + suffix).size;
    return total;
  }

  async close(): Promise<void> {
    const writer = this.#writer;
    this.#writer = null;
    await writer?.close();
    if (this.#db.isOpen) this.#db.close();
  }

  /** For tests of tampering: the raw database handle. */
  get database(): DatabaseSync {
    return this.#db;
  }
}
