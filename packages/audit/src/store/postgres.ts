// The scale-out store: PostgreSQL through `pg`. Several writers (processes,
// machines) append to one log: each batch takes the head row FOR UPDATE, so
// sequence numbers and the hash chain stay gapless and linear; a commit is
// acknowledged once PostgreSQL has made it durable (synchronous_commit on).
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { postgresWhere } from './postgres-where.ts';
import { from as copyFrom } from 'pg-copy-streams';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { nodeKey } from '../merkle/prover.ts';
import type { NodeId } from '../merkle/tree.ts';
import { GENESIS_PREV } from '../record/envelope.ts';
import { MAX_TRANSACTION, buildBatch, mergeRequests, splitResult, type AppendRequest, type AppendResult, type WriterConfig } from './batch.ts';
import { chainRowFromTuple, checkpointFromRow, hashesToBytes, headFromRow, recordFromRow, spanFromRow, treeNodesFromRow, type Row } from './codec.ts';
import { STORE_FORMAT, nodeLocation, type AuditStore, type ChainRow, type LogHead, type LogMeta, type SeqSpan, type StoredRecord } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_meta (id INTEGER PRIMARY KEY CHECK (id = 1), format INTEGER NOT NULL, key_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, last_hash BYTEA NOT NULL, frontier BYTEA NOT NULL, checkpoint_size BIGINT NOT NULL, checkpoint_time BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_records (seq BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, prev BYTEA NOT NULL, hash BYTEA NOT NULL, nodes BYTEA NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_checkpoints (size BIGINT PRIMARY KEY, root BYTEA NOT NULL, time TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL);
`;
/** Advisory lock key that serialises schema creation between writers. */
const INIT_LOCK = 0x636f7272616c;
const HEAD_SQL = 'SELECT size, last_hash, frontier, checkpoint_size, checkpoint_time FROM audit_head WHERE id = 1';

export interface PostgresStoreOptions {
  /** postgres://user@host:port/database */
  url: string;
  /** Connections kept (default 4). */
  poolSize?: number;
}

type WaitingAppend = { request: AppendRequest; resolve: (r: AppendResult) => void; reject: (e: unknown) => void };

export class PostgresStore implements AuditStore {
  readonly kind = 'postgres' as const;
  readonly where: string;
  readonly #pool: pg.Pool;
  #writer: WriterConfig | null = null;
  /** Requests waiting for the transaction under way to end; the next one takes them all (group commit). */
  #waiting: WaitingAppend[] = [];
  #committing = false;

  private constructor(pool: pg.Pool, where: string) {
    this.#pool = pool;
    this.where = where;
  }

  /**
   * Connects (and checks the connection works).
   * @throws AuditError AUDIT_STORE_UNAVAILABLE naming host and database, never the password.
   */
  static async connect(options: PostgresStoreOptions): Promise<PostgresStore> {
    const where = postgresWhere(options.url);
    const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 4 });
    pool.on('error', () => {});
    const store = new PostgresStore(pool, where);
    await store.#run(async (c) => c.query('SELECT 1'));
    return store;
  }

  async #run<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw new AuditError('AUDIT_STORE_UNAVAILABLE', `cannot connect to the audit log at ${this.where}: ${(error as Error).message}`, { cause: error });
    }
    try {
      return await work(client);
    } catch (error) {
      if (error instanceof AuditError) throw error;
      const code = (error as { code?: string }).code;
      if (code === '42P01' || code === '42703') throw new AuditError('AUDIT_STORE_FOREIGN', `${this.where} does not hold a Corral audit log: ${(error as Error).message}`, { cause: error });
      throw new AuditError('AUDIT_STORE_UNAVAILABLE', `audit log ${this.where}: ${(error as Error).message}`, { cause: error });
    } finally {
      client.release();
    }
  }

  async #tx<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#run(async (client) => {
      await client.query('BEGIN');
      try {
        const out = await work(client);
        await client.query('COMMIT');
        return out;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  async init(meta: LogMeta): Promise<LogMeta> {
    return this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [INIT_LOCK]);
      const existing = await readMeta(c, this.where);
      if (existing) return existing;
      await c.query(SCHEMA);
      await c.query('INSERT INTO audit_meta (id, format, key_id, created_at) VALUES (1, $1, $2, $3)', [meta.format, meta.keyId, meta.createdAt]);
      await c.query("INSERT INTO audit_head VALUES (1, 0, decode($1, 'hex'), ''::bytea, 0, 0)", [GENESIS_PREV]);
      return meta;
    });
  }

  async readMeta(): Promise<LogMeta | null> {
    return this.#run((c) => readMeta(c, this.where));
  }

  async head(): Promise<LogHead> {
    return this.#run(async (c) => headFromRow((await c.query(HEAD_SQL)).rows[0] as Row | undefined, this.where));
  }

  async tip(): Promise<{ head: LogHead; last: StoredRecord | null; beyond: boolean }> {
    return this.#run(async (c) => {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const head = headFromRow((await c.query(HEAD_SQL)).rows[0] as Row | undefined, this.where);
        const rows = (await c.query('SELECT seq, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = $1 OR seq = $2', [head.size - 1, head.size])).rows as Row[];
        const last = rows.find((r) => Number(r.seq) === head.size - 1);
        return { head, last: last ? recordFromRow(last, this.where) : null, beyond: rows.some((r) => Number(r.seq) === head.size) };
      } finally {
        await c.query('COMMIT').catch(() => {});
      }
    });
  }

  async openWriter(config: WriterConfig): Promise<void> {
    if (this.#writer) throw new AuditError('AUDIT_BAD_ARGUMENT', `${this.where} already has a writer`);
    this.#writer = config;
  }

  append(request: AppendRequest): Promise<AppendResult> {
    if (!this.#writer) return Promise.reject(new AuditError('AUDIT_CLOSED', `the audit log ${this.where} is not open for writing`));
    return new Promise((resolve, reject) => {
      this.#waiting.push({ request, resolve, reject });
      if (!this.#committing) void this.#commitWaiting();
    });
  }

  async #commitWaiting(): Promise<void> {
    this.#committing = true;
    while (this.#waiting.length > 0) {
      let n = 0;
      for (let records = 0; n < this.#waiting.length && records < MAX_TRANSACTION; n++) records += (this.#waiting[n] as WaitingAppend).request.bodies.length;
      const jobs = this.#waiting.splice(0, n);
      const requests = jobs.map((j) => j.request);
      try {
        const parts = splitResult(await this.#appendOne(mergeRequests(requests)), requests);
        jobs.forEach((j, i) => j.resolve(parts[i] as AppendResult));
      } catch (error) {
        for (const j of jobs) j.reject(error);
      }
    }
    this.#committing = false;
  }

  /**
   * One append transaction in as few round trips as the protocol allows:
   * BEGIN with the head's row lock; the rows, the new head and any checkpoint
   * in one statement (or COPY, then one); COMMIT.
   */
  async #appendOne(request: AppendRequest): Promise<AppendResult> {
    const config = this.#writer;
    if (!config) throw new AuditError('AUDIT_CLOSED', `the audit log ${this.where} is closed`);
    return this.#run(async (c) => {
      try {
        const begun = (await c.query(`BEGIN; ${HEAD_SQL} FOR UPDATE`)) as unknown as pg.QueryResult[];
        const { batch, result } = buildBatch(headFromRow((begun[1] as pg.QueryResult).rows[0] as Row | undefined, this.where), request, config, Date.now());
        const rs = batch.records;
        const small = rs.length < COPY_FROM;
        if (!small) await copyRecords(c, rs);
        const h = batch.head;
        const k = batch.checkpoint;
        // Nothing appended and nothing sealed (a timer found nothing due): leave the head row alone.
        if (rs.length > 0 || k) {
          await c.query({
            // Named: each connection parses and plans it once, not once per batch.
            name: small ? 'corral-append-rows' : 'corral-append-head',
            text: small ? APPEND_ROWS : APPEND_HEAD,
            values: [h.size, h.lastHash, hashesToBytes(h.frontier), h.checkpointSize, h.checkpointTimeMs, k?.size ?? null, k?.root ?? null, k?.time ?? null, k?.keyId ?? null, k?.signature ?? null, ...(small ? unnestArgs(rs) : [])],
          });
        }
        await c.query('COMMIT');
        return result;
      } catch (error) {
        await c.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  async record(seq: number): Promise<StoredRecord | null> {
    return this.#run(async (c) => {
      const r = await c.query('SELECT seq, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = $1', [seq]);
      return r.rows[0] ? recordFromRow(r.rows[0] as Row, this.where) : null;
    });
  }

  async *scan(from: number, to: number, batch = 5000): AsyncIterable<StoredRecord[]> {
    let next = from;
    while (next < to) {
      const rows = await this.#run(async (c) => (await c.query('SELECT seq, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT $3', [next, to, batch])).rows as Row[]);
      if (rows.length === 0) return;
      const out = rows.map((r) => recordFromRow(r, this.where));
      yield out;
      next = (out[out.length - 1] as StoredRecord).seq + 1;
    }
  }

  async *scanChain(from: number, to: number, batch = 10_000): AsyncIterable<ChainRow[]> {
    let next = from;
    while (next < to) {
      const rows = await this.#run(
        async (c) =>
          (await c.query({ text: "SELECT seq, encode(prev, 'hex'), encode(hash, 'hex'), body FROM audit_records WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT $3", values: [next, to, batch], rowMode: 'array' }))
            .rows as unknown[][],
      );
      if (rows.length === 0) return;
      const out = rows.map((r) => chainRowFromTuple(r, this.where));
      yield out;
      next = (out[out.length - 1] as ChainRow)[0] + 1;
    }
  }

  async checkpointFor(size: number, exact: boolean): Promise<SignedCheckpoint | null> {
    const sql = exact ? 'SELECT size, root, time, key_id, signature FROM audit_checkpoints WHERE size = $1' : 'SELECT size, root, time, key_id, signature FROM audit_checkpoints WHERE size >= $1 ORDER BY size LIMIT 1';
    return this.#run(async (c) => {
      const r = (await c.query(sql, [size])).rows[0] as Row | undefined;
      return r ? checkpointFromRow(r, this.where) : null;
    });
  }

  async outside(size: number): Promise<{ before: SeqSpan | null; beyond: SeqSpan | null }> {
    return this.#run(async (c) => {
      const r = (
        await c.query(
          'SELECT count(*) FILTER (WHERE seq < 0) AS n, min(seq) FILTER (WHERE seq < 0) AS lo, max(seq) FILTER (WHERE seq < 0) AS hi, count(*) FILTER (WHERE seq >= $1) AS bn, min(seq) FILTER (WHERE seq >= $1) AS blo, max(seq) FILTER (WHERE seq >= $1) AS bhi FROM audit_records WHERE seq < 0 OR seq >= $1',
          [size],
        )
      ).rows[0] as Row | undefined;
      return { before: spanFromRow(r), beyond: spanFromRow(r && { n: r.bn, lo: r.blo, hi: r.bhi }) };
    });
  }

  async seqRangeForTime(sinceMs: number, untilMs: number): Promise<{ from: number; to: number } | null> {
    return this.#run(async (c) => {
      const r = (await c.query('SELECT min(seq) AS lo, max(seq) AS hi FROM audit_records WHERE time_ms >= $1 AND time_ms <= $2', [sinceMs, untilMs])).rows[0] as Row;
      return r.lo === null ? null : { from: Number(r.lo), to: Number(r.hi) + 1 };
    });
  }

  async checkpoints(): Promise<SignedCheckpoint[]> {
    return this.#run(async (c) =>
      ((await c.query('SELECT size, root, time, key_id, signature FROM audit_checkpoints ORDER BY size')).rows as Row[]).map((r) => checkpointFromRow(r, this.where)),
    );
  }

  async nodes(ids: NodeId[]): Promise<Map<string, string>> {
    const seqs = [...new Set(ids.map((id) => nodeLocation(id).seq))];
    const rows = await this.#run(async (c) => (await c.query('SELECT seq, hash, nodes FROM audit_records WHERE seq = ANY($1::bigint[])', [seqs])).rows as Row[]);
    const bySeq = new Map(rows.map((r) => [Number(r.seq), r]));
    const out = new Map<string, string>();
    for (const id of ids) {
      const { seq, offset } = nodeLocation(id);
      const row = bySeq.get(seq);
      if (!row) throw new AuditError('AUDIT_NOT_FOUND', `tree node ${nodeKey(id)} is not in the log (record ${seq} missing)`);
      const stored = treeNodesFromRow(row, this.where);
      const hash = offset < 0 ? stored.hash : stored.nodes[offset];
      if (hash === undefined) throw new AuditError('AUDIT_STORE_FOREIGN', `record ${seq} lacks tree node ${nodeKey(id)}`);
      out.set(nodeKey(id), hash);
    }
    return out;
  }

  async bytesOnDisk(): Promise<number | null> {
    return this.#run(async (c) => {
      const r = await c.query(
        "SELECT pg_total_relation_size('audit_records') + pg_total_relation_size('audit_checkpoints') + pg_total_relation_size('audit_head') + pg_total_relation_size('audit_meta') AS n",
      );
      return Number((r.rows[0] as Row).n);
    });
  }

  /** For tests of tampering and concurrency: run SQL directly. */
  async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.#run(async (c) => (await c.query(sql, params)).rows as Row[]);
  }

  async close(): Promise<void> {
    this.#writer = null;
    await this.#pool.end().catch(() => {});
  }
}

/** Batches at least this large are written with COPY; smaller ones with one INSERT (fewer round trips). */
const COPY_FROM = 128;

/** Inserting a small batch inside the head's UPDATE statement: parameters $11–$16 are the columns as arrays. */
const INSERT_UNNEST = `rows AS (
  INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body)
  SELECT s, t, decode(p, 'hex'), decode(h, 'hex'), decode(n, 'hex'), b
  FROM unnest($11::bigint[], $12::bigint[], $13::text[], $14::text[], $15::text[], $16::text[]) AS x(s, t, p, h, n, b))`;

/** The new head and any checkpoint: parameters $1–$5 the head, $6–$10 the checkpoint (NULL when none). */
const APPEND_HEAD = `WITH checkpoint AS (
  INSERT INTO audit_checkpoints (size, root, time, key_id, signature)
  SELECT $6::bigint, decode($7, 'hex'), $8, $9, $10 WHERE $6::bigint IS NOT NULL)
UPDATE audit_head SET size = $1, last_hash = decode($2, 'hex'), frontier = $3, checkpoint_size = $4, checkpoint_time = $5 WHERE id = 1`;
/** The same with a small batch's rows inserted in the statement. */
const APPEND_ROWS = APPEND_HEAD.replace('WITH ', `WITH ${INSERT_UNNEST}, `);

function unnestArgs(rs: readonly StoredRecord[]): unknown[] {
  return [rs.map((r) => r.seq), rs.map((r) => r.timeMs), rs.map((r) => r.prev), rs.map((r) => r.hash), rs.map((r) => r.nodes.join('')), rs.map((r) => r.body)];
}

/**
 * Writes records with COPY: on the server about four times cheaper per row
 * than a multi-row INSERT (measured here: 2,000 rows in ~35 ms against ~150 ms).
 * Text format: bytea as \\x<hex>; the canonical JSON body holds no raw control
 * characters (RFC 8785 escapes them), so only its backslashes need doubling.
 */
async function copyRecords(client: pg.PoolClient, records: readonly StoredRecord[]): Promise<void> {
  let text = '';
  for (const r of records) text += `${r.seq}\t${r.timeMs}\t\\\\x${r.prev}\t\\\\x${r.hash}\t\\\\x${r.nodes.join('')}\t${r.body.replaceAll('\\', '\\\\')}\n`;
  const stream = client.query(copyFrom('COPY audit_records (seq, time_ms, prev, hash, nodes, body) FROM STDIN'));
  await pipeline(Readable.from([text]), stream);
}

async function readMeta(c: pg.PoolClient, where: string): Promise<LogMeta | null> {
  const has = await c.query("SELECT to_regclass('audit_meta') IS NOT NULL AS present");
  if (!(has.rows[0] as Row).present) return null;
  const r = (await c.query('SELECT format, key_id, created_at FROM audit_meta WHERE id = 1')).rows[0] as Row | undefined;
  if (!r) throw new AuditError('AUDIT_STORE_FOREIGN', `${where} has an empty audit_meta table`);
  if (Number(r.format) !== STORE_FORMAT) throw new AuditError('AUDIT_STORE_FOREIGN', `${where} is an audit log of format ${String(r.format)}; this Corral reads format ${STORE_FORMAT}`);
  return { format: Number(r.format), keyId: String(r.key_id), createdAt: String(r.created_at) };
}
