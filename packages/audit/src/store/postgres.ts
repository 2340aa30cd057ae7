// The scale-out store: PostgreSQL through `pg`. Several writers (processes,
// machines) append to one log: each batch takes the head row FOR UPDATE, so
// sequence numbers and the hash chain stay gapless and linear; a commit is
// acknowledged once PostgreSQL has made it durable (synchronous_commit on).
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { connectRefused, INSUFFICIENT_PRIVILEGE, refuseHiddenLog, refuseUnprivileged } from './postgres-privileges.ts';
import { refuseAltered, refuseShadowed, refuseStray, SCHEMA } from './postgres-schema.ts';
import { urlTimeouts } from './postgres-url.ts';
import { postgresWhere } from './postgres-where.ts';
import { from as copyFrom } from 'pg-copy-streams';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { nodeKey } from '../merkle/prover.ts';
import type { NodeId } from '../merkle/tree.ts';
import { GENESIS_PREV } from '../record/envelope.ts';
import { MAX_TRANSACTION, buildBatch, type Batch, mergeRequests, splitResult, type AppendRequest, type AppendResult, type WriterConfig } from './batch.ts';
import { chainRowFromTuple, checkpointFromRow, hashesToBytes, headFromRow, recordFromRow, spanFromRow, treeNodesFromRow, type Row } from './codec.ts';
import { STORE_FORMAT, nodeLocation, type AuditStore, type ChainRow, type LogHead, type LogMeta, type SeqSpan, type StoredRecord } from './store.ts';

/** Advisory lock key that serialises schema creation between writers. */
const INIT_LOCK = 0x636f7272616c;
const HEAD_SQL = 'SELECT size, last_hash, frontier, checkpoint_size, checkpoint_time FROM audit_head WHERE id = 1';
/** The schema of the log's tables as the search path finds them, else the one a writer would create them in. */
const LOG_SCHEMA_SQL = `SELECT coalesce((SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass('audit_meta')), current_schema()) AS schema`;
/**
 * What every session must be, whatever the database or role makes the default. Acknowledged means durable:
 * synchronous_commit = off is overridden (its other values all wait for the local flush, and are kept). And
 * READ COMMITTED, which appends and the log's creation rely on: a statement that waited for the head's row
 * lock (or the creation lock) reads what its holder committed; under REPEATABLE READ or SERIALIZABLE a writer
 * that waited fails ('could not serialize access'), and one that waited to create the log finds it empty.
 */
const SESSION_SQL = "SET default_transaction_isolation = 'read committed'; SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'";
/**
 * SQLSTATEs that say the tables are not the ones a writer made: one missing
 * (42P01), a column missing (42703), or of another type, so that an operator
 * or a function the statement uses does not apply to it (42883, 42804).
 */
const FOREIGN_SCHEMA = new Set(['42P01', '42703', '42883', '42804']);

export interface PostgresStoreOptions {
  /**
   * postgres://user@host:port/database. Its parameters `connect_timeout`
   * (seconds, as libpq) and `statement_timeout` (ms) override the defaults
   * (TIMEOUT_DEFAULTS); those and `sslmode` are checked (urlTimeouts).
   */
  url: string;
  /** Connections kept (default 4). */
  poolSize?: number;
}

/**
 * How long a connection attempt, and a statement, may take before it fails
 * with AUDIT_STORE_UNAVAILABLE: an unreachable or silent server fails appends
 * in seconds instead of holding them. A session idle inside a transaction
 * for the statement timeout is ended by the server (its client is gone: it
 * must not hold the head's lock from every other writer).
 */
export const TIMEOUT_DEFAULTS = { connectMs: 5_000, statementMs: 15_000 } as const;

/** How long past the server's statement timeout the client waits for an answer before it gives the connection up (the server, or the network to it, is gone). */
const ANSWER_GRACE_MS = 2_000;

/**
 * How a store that found its server unreachable tries again: after a
 * connection attempt fails, the next is allowed only after a pause, which
 * doubles from `firstMs` with each failure up to `maxMs`, each pause drawn at
 * random between half of that and all of it (so writers that lost the server
 * together do not all come back at the same instant). Until then every append
 * and read fails at once with AUDIT_STORE_UNAVAILABLE, without connecting;
 * then the first caller tests the server, one at a time, while the others
 * keep failing at once: it is back once a round trip with it completes (a
 * new connection made, or a statement answered on one the pool kept, which
 * may have gone silent since its last answer). A server that is back is used
 * again at most `maxMs` after it is back (by the first caller after that).
 * Only a final seal (closing the log) and learning whether a commit happened
 * try the server whenever they come: each is one call, not a stream of them.
 */
export const RECONNECT_BACKOFF = { firstMs: 250, maxMs: 5_000 } as const;

/**
 * Whether the server is known to be unreachable (its last connection attempt
 * failed), and when, and by whom, it is tried again (RECONNECT_BACKOFF).
 */
class Reachability {
  /** Connection attempts failed in a row since the server was last reached; 0 when it is up as far as known. */
  #failures = 0;
  /** When the next attempt may go, while #failures > 0 (ms since the epoch). */
  #retryAt = 0;
  /** A caller is testing whether the server is back. */
  #probing = false;
  #lastError: unknown = undefined;

  /** While the server is known down and no attempt may go now: how long until one may (ms). Else undefined. */
  refusing(now: number): number | undefined {
    if (this.#failures === 0) return undefined;
    if (this.#probing || now < this.#retryAt) return Math.max(0, this.#retryAt - now);
    return undefined;
  }

  /** The last failure to connect, for the error of a caller refused at once. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /**
   * Lets a caller connect: true when it is the one testing a server known to
   * be down (refusing() said it may go), which it must report with reached()
   * or failed(); false when the server is up as far as known.
   */
  admit(): boolean {
    if (this.#failures === 0) return false;
    this.#probing = true;
    return true;
  }

  /** The server is known down: its last connection attempt, or test, failed. */
  get down(): boolean {
    return this.#failures > 0;
  }

  /** A round trip with the server completed (a connection made, or a statement answered): the server is up. */
  reached(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#lastError = undefined;
  }

  /**
   * A connection attempt, or the test of a pooled connection (#test),
   * failed. The pause grows only for the first failure and for each attempt
   * on a server already known down — its test (`probe`) or a caller that
   * tries it whatever the pause (`always`) — never for the
   * other attempts that were under way when it went down. Only the test's own
   * end lets the next caller test the server: a seal's attempt failing while
   * the test is under way does not.
   */
  failed(error: unknown, probe: boolean, always: boolean, now: number): void {
    this.#lastError = error;
    if (this.#failures > 0 && !probe && !always) return;
    if (probe) this.#probing = false;
    this.#failures++;
    const ceiling = Math.min(RECONNECT_BACKOFF.maxMs, RECONNECT_BACKOFF.firstMs * 2 ** Math.min(this.#failures - 1, 20));
    this.#retryAt = now + ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** A test of the server ended without saying whether it is up (it waited for a free connection of the pool). */
  inconclusive(probe: boolean): void {
    if (probe) this.#probing = false;
  }
}

/**
 * Most records waiting for the transaction under way, past which appends are
 * refused at once (AUDIT_STORE_UNAVAILABLE) rather than queued: with the server
 * slow or gone, memory stays bounded. Four full transactions.
 */
export const MAX_WAITING = 4 * MAX_TRANSACTION;

type WaitingAppend = { request: AppendRequest; resolve: (r: AppendResult) => void; reject: (e: unknown) => void };

export class PostgresStore implements AuditStore {
  readonly kind = 'postgres' as const;
  /**
   * Where the log's database is, without its schema (as witness files were
   * named before they were kept one per schema: see openWitness).
   */
  readonly database: string;
  /** Where the log is, its database and schema (postgresWhere), never the user or password. */
  #where: string;
  readonly #pool: pg.Pool;
  readonly #poolSize: number;
  readonly #url: string;
  readonly #reachability = new Reachability();
  /**
   * Connections the pool made that no caller has had yet: making one is a
   * round trip with the server. One handed out again from the pool's idle
   * ones proves nothing of it: the network may have gone silent since its
   * last answer.
   */
  readonly #unused: WeakSet<pg.PoolClient>;
  #writer: WriterConfig | null = null;
  /** Requests waiting for the transaction under way to end; the next one takes them all (group commit). */
  #waiting: WaitingAppend[] = [];
  /** Records in #waiting. */
  #waitingRecords = 0;
  #committing = false;
  /** The head this writer's last transaction left, and whether no other writer wrote between its last two. */
  #last: LogHead | null = null;
  #alone = false;
  /** Transactions committed each way since connecting (for tests and diagnostics). */
  readonly commits = { guarded: 0, locked: 0 };

  private constructor(pool: pg.Pool, poolSize: number, where: string, unused: WeakSet<pg.PoolClient>, url: string) {
    this.#pool = pool;
    this.#url = url;
    this.#unused = unused;
    this.#poolSize = poolSize;
    this.database = where;
    this.#where = where;
  }

  get where(): string {
    return this.#where;
  }

  /**
   * Connects (and checks the connection works).
   * @throws AuditError AUDIT_BAD_ARGUMENT for a URL parameter Corral reads that is not what it must be (urlTimeouts);
   *   AUDIT_STORE_UNAVAILABLE naming host and database, never the password.
   */
  static async connect(options: PostgresStoreOptions): Promise<PostgresStore> {
    const where = postgresWhere(options.url);
    const timeouts = urlTimeouts(options.url);
    const connectMs = timeouts.connectMs ?? TIMEOUT_DEFAULTS.connectMs;
    const statementMs = timeouts.statementMs ?? TIMEOUT_DEFAULTS.statementMs;
    const poolSize = options.poolSize ?? 4;
    const pool = new pg.Pool({
      connectionString: options.url,
      max: poolSize,
      connectionTimeoutMillis: connectMs,
      // Parameters in the URL override these three.
      statement_timeout: statementMs,
      idle_in_transaction_session_timeout: statementMs,
      query_timeout: statementMs + ANSWER_GRACE_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // A connection that fails is given up (see #run); its error reaches the
    // query that was using it, if any. Without a listener, an error on a
    // connection checked out between two queries (an admin's
    // pg_terminate_backend, a server restart) would end the process.
    pool.on('error', () => {});
    const unused = new WeakSet<pg.PoolClient>();
    pool.on('connect', (client) => {
      client.on('error', () => {});
      unused.add(client);
      // Queued before the caller's first statement; should it fail, so does that.
      client.query(SESSION_SQL).catch(() => {});
    });
    const store = new PostgresStore(pool, poolSize, where, unused, options.url);
    const schema = await store.#run(async (c) => ((await c.query(LOG_SCHEMA_SQL)).rows[0] as { schema: string | null }).schema);
    // Two logs in two schemas of one database are two logs: their messages, and their witnesses, tell them apart.
    if (schema !== null) store.#where = postgresWhere(options.url, schema);
    return store;
  }

  /**
   * Runs `work` on a connection of the pool. While the server is known down
   * (RECONNECT_BACKOFF), fails at once, connecting to nothing, unless this
   * caller is the one to test whether it is back, or `always` (learning
   * whether a commit happened, which keeps its own pauses: see #settle; a
   * final seal: see finalSeal). Such a caller handed a connection the pool
   * kept tests it with a round trip first (#test); only a connection made,
   * or a statement answered, says the server is reached.
   * @throws AuditError AUDIT_STORE_UNAVAILABLE (nothing of `work` was done
   *   when it is a connection that failed), or what `work` throws, coded.
   */
  async #run<T>(work: (client: pg.PoolClient) => Promise<T>, always = false): Promise<T> {
    const reachability = this.#reachability;
    const waitMs = always ? undefined : reachability.refusing(Date.now());
    if (waitMs !== undefined) throw this.#unreachable(waitMs);
    const probe = !always && reachability.admit();
    // A pool with every connection in use queues the caller: a timeout then says nothing of the server.
    const queued = this.#pool.idleCount === 0 && this.#pool.totalCount >= this.#poolSize;
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      if (queued) reachability.inconclusive(probe);
      else reachability.failed(error, probe, always, Date.now());
      if ((error as { code?: string }).code === INSUFFICIENT_PRIVILEGE) throw this.#connectRefused(error);
      throw new AuditError(
        'AUDIT_STORE_UNAVAILABLE',
        `cannot connect to the audit log at ${this.where}: ${(error as Error).message}; check that PostgreSQL is running and reachable there and that the URL's host, port, database and user are right`,
        { cause: error },
      );
    }
    if (this.#unused.delete(client)) reachability.reached();
    else if (probe || (always && reachability.down)) await this.#test(client, probe, always);
    let failed = false;
    let error: unknown;
    try {
      return await work(client);
    } catch (e) {
      failed = true;
      error = e;
    } finally {
      // A connection whose work failed is closed, not kept: it may be dead or
      // still busy with a statement that timed out, and closing it ends any
      // transaction it had open (the server rolls it back). Before the error
      // is made: learning what a refused role lacks takes a connection.
      client.release(failed ? true : undefined);
    }
    if (error instanceof AuditError) throw error;
    if ((error as { code?: string }).code === INSUFFICIENT_PRIVILEGE) throw await this.#denied(error);
    if (FOREIGN_SCHEMA.has(String((error as { code?: string }).code))) throw new AuditError('AUDIT_STORE_FOREIGN', `${this.where} does not hold a Corral audit log: ${(error as Error).message}`, { cause: error });
    throw new AuditError('AUDIT_STORE_UNAVAILABLE', `audit log ${this.where}: ${(error as Error).message}`, { cause: error });
  }

  /**
   * Tests a server known down on a connection the pool had kept (see #unused),
   * with a statement it must answer before the connection is used: one that
   * goes unanswered (the network dropped it silently) is a failed attempt.
   * An error the server sent is an answer: it is up.
   * @throws AuditError AUDIT_STORE_UNAVAILABLE (the connection is closed) when it failed.
   */
  async #test(client: pg.PoolClient, probe: boolean, always: boolean): Promise<void> {
    const reachability = this.#reachability;
    try {
      await client.query('SELECT 1');
      reachability.reached();
    } catch (error) {
      client.release(true);
      if (error instanceof pg.DatabaseError) reachability.reached();
      else reachability.failed(error, probe, always, Date.now());
      throw new AuditError('AUDIT_STORE_UNAVAILABLE', `the audit log at ${this.where} did not answer on a pooled connection: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * The error for a statement the server refused for a privilege the role
   * lacks (one revoked since the log was opened): names every GRANT missing,
   * learnt on a connection of its own (the failed one may be in an aborted
   * transaction); the server's own words when that cannot be learnt.
   */
  async #denied(error: unknown): Promise<AuditError> {
    const fallback = new AuditError('AUDIT_STORE_UNAVAILABLE', `audit log ${this.where}: ${(error as Error).message}: grant the role the privileges it lacks there`, { cause: error });
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch {
      return fallback;
    }
    try {
      await refuseUnprivileged(client, this.where, this.#writer !== null, error);
      return fallback;
    } catch (refusal) {
      return refusal instanceof AuditError ? refusal : fallback;
    } finally {
      client.release();
    }
  }

  /** The error for a connection refused for want of CONNECT on the database (SQLSTATE 42501), naming the GRANT. */
  #connectRefused(error: unknown): AuditError {
    return connectRefused(error, this.where, this.#url, process.env.PGUSER ?? pg.defaults.user ?? '');
  }

  /** The error of a caller refused at once while the server is known down; nothing was written. */
  #unreachable(waitMs: number): AuditError {
    const last = this.#reachability.lastError;
    // The server answered, refusing the role: what it lacks is the news, not when it is tried again.
    if ((last as { code?: string } | undefined)?.code === INSUFFICIENT_PRIVILEGE) return this.#connectRefused(last);
    return new AuditError(
      'AUDIT_STORE_UNAVAILABLE',
      `the audit log at ${this.where} is unreachable (${(last as Error | undefined)?.message ?? 'its server did not answer'}); ${waitMs > 0 ? `it is tried again in ${Math.ceil(waitMs)} ms` : 'it is being tried again'}. Nothing was written: retry later`,
      { cause: last },
    );
  }

  async #tx<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    // On failure #run closes the connection, which rolls the transaction back.
    return this.#run(async (client) => {
      await client.query('BEGIN');
      const out = await work(client);
      await client.query('COMMIT');
      return out;
    });
  }

  async init(meta: LogMeta): Promise<LogMeta> {
    await this.#run((c) => refuseEncoding(c, this.where));
    // A log already there is read without the lock: any role that can connect can take an advisory lock and keep it.
    const existing = await this.readMeta();
    if (existing) return existing;
    return this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [INIT_LOCK]);
      const raced = await readMeta(c, this.where);
      if (raced) return raced;
      await refuseHiddenLog(c, this.where, true);
      await refuseStray(c, this.where);
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
    return this.#run(async (c) => onlyHead((await c.query(HEAD_SQL)).rows as Row[], this.where));
  }

  async tip(): Promise<{ head: LogHead; last: StoredRecord | null; beyond: boolean }> {
    return this.#run(async (c) => {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const head = onlyHead((await c.query(HEAD_SQL)).rows as Row[], this.where);
      const rows = (await c.query('SELECT seq, time_ms, prev, hash, nodes, body FROM audit_records WHERE seq = $1 OR seq = $2', [head.size - 1, head.size])).rows as Row[];
      await c.query('COMMIT');
      const last = rows.find((r) => Number(r.seq) === head.size - 1);
      return { head, last: last ? recordFromRow(last, this.where) : null, beyond: rows.some((r) => Number(r.seq) === head.size) };
    });
  }

  async openWriter(config: WriterConfig): Promise<void> {
    if (this.#writer) throw new AuditError('AUDIT_BAD_ARGUMENT', `${this.where} already has a writer`);
    // Refused now, naming every GRANT missing, rather than at the first append with the server's words.
    await this.#run((c) => refuseUnprivileged(c, this.where, true));
    this.#writer = config;
  }

  append(request: AppendRequest): Promise<AppendResult> {
    if (!this.#writer) return Promise.reject(new AuditError('AUDIT_CLOSED', `the audit log ${this.where} is not open for writing`));
    // The server is known down and not to be tried yet: fail now rather than wait in the queue to fail.
    // A final seal (closing the log, an explicit checkpoint: one call, no records) tries the server itself.
    const waitMs = finalSeal(request) ? undefined : this.#reachability.refusing(Date.now());
    if (waitMs !== undefined) return Promise.reject(this.#unreachable(waitMs));
    if (request.bodies.length > 0 && this.#waitingRecords + request.bodies.length > MAX_WAITING) {
      return Promise.reject(
        new AuditError('AUDIT_STORE_UNAVAILABLE', `${this.#waitingRecords} records already wait for the audit log at ${this.where}, which is slow or unreachable: nothing was written; retry later`),
      );
    }
    this.#waitingRecords += request.bodies.length;
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
      for (const r of requests) this.#waitingRecords -= r.bodies.length;
      try {
        const parts = splitResult(await this.#appendOne(mergeRequests(requests), requests.some(finalSeal)), requests);
        jobs.forEach((j, i) => j.resolve(parts[i] as AppendResult));
      } catch (error) {
        for (const j of jobs) j.reject(error);
      }
    }
    this.#committing = false;
  }

  /**
   * One append. A writer that wrote the head itself last time, and found no
   * other writer between its last two transactions, bets it is still alone:
   * it builds the batch on the head it wrote and sends it as one statement
   * that takes the head's row lock and writes only if the head is still that
   * one (one round trip instead of three: p50 0.5–0.7 against 0.9–1.2 ms a
   * commit here). When the head has moved (another writer appended), the
   * statement writes nothing and the batch is built again under the lock.
   */
  async #appendOne(request: AppendRequest, always: boolean): Promise<AppendResult> {
    const config = this.#writer;
    if (!config) throw new AuditError('AUDIT_CLOSED', `the audit log ${this.where} is closed`);
    const last = this.#alone ? this.#last : null;
    // Batches for COPY, and a timer's request with nothing to append, take the lock: neither gains from the bet.
    if (last && request.bodies.length > 0 && request.bodies.length < COPY_FROM) {
      const written = await this.#appendGuarded(last, request, config, always);
      if (written) return written;
      this.#alone = false;
    }
    return this.#appendLocked(request, config, always);
  }

  /** The batch built on `last`, written only if the head is still `last`; null when it is not (nothing written). */
  async #appendGuarded(last: LogHead, request: AppendRequest, config: WriterConfig, always: boolean): Promise<AppendResult | null> {
    const { batch, result } = buildBatch(last, request, config, Date.now());
    // Set once the statement is sent: from then on a failure leaves the outcome to be learnt (#settle).
    let sent = false;
    const written = await this.#run(async (c) => {
      try {
        sent = true;
        const r = await c.query({
          name: 'corral-append-guarded',
          text: APPEND_GUARDED,
          values: [...headArgs(batch), ...rowArgs(batch.records), last.size, last.lastHash, last.checkpointSize, last.checkpointTimeMs],
        });
        return r.rowCount === 1;
      } catch (error) {
        // A row already at one of these seqs: the locked path reads the head again and says what is wrong.
        if ((error as { code?: string }).code === UNIQUE_VIOLATION) return false;
        // Refused before it ran (a privilege revoked since the log opened): nothing of it was written.
        if ((error as { code?: string }).code === INSUFFICIENT_PRIVILEGE) sent = false;
        this.#last = null;
        throw error;
      }
    }, always).catch((error: unknown) => (sent ? this.#settle(batch, error) : Promise.reject(error)));
    if (!written) return null;
    this.commits.guarded++;
    this.#last = batch.head;
    return result;
  }

  /** BEGIN with the head's row lock; the rows, the new head and any checkpoint in one statement (or COPY, then one); COMMIT. */
  async #appendLocked(request: AppendRequest, config: WriterConfig, always: boolean): Promise<AppendResult> {
    // Set once COMMIT is sent: from then on a failure leaves the outcome to be learnt (#settle).
    let sent = null as { batch: Batch; result: AppendResult } | null;
    return this.#run(async (c) => {
      try {
        const begun = (await c.query(`BEGIN; ${HEAD_SQL} FOR UPDATE`)) as unknown as pg.QueryResult[];
        const head = onlyHead((begun[1] as pg.QueryResult).rows as Row[], this.where);
        const { batch, result } = buildBatch(head, request, config, Date.now());
        const rs = batch.records;
        if (rs.length >= COPY_FROM) await copyRecords(c, rs);
        const inline = rs.length > 0 && rs.length < COPY_FROM;
        // Nothing appended and nothing sealed (a timer found nothing due): leave the head row alone.
        if (rs.length > 0 || batch.checkpoint) {
          await c.query({
            // Named: each connection parses and plans it once, not once per batch.
            name: inline ? 'corral-append-rows' : 'corral-append-head',
            text: inline ? APPEND_ROWS : APPEND_HEAD,
            values: [...headArgs(batch), ...(inline ? rowArgs(rs) : [])],
          });
        }
        sent = { batch, result };
        await c.query('COMMIT');
        this.commits.locked++;
        this.#alone = this.#last !== null && sameHead(head, this.#last);
        this.#last = batch.head;
        return result;
      } catch (error) {
        // #run closes the connection, which rolls back whatever was not committed.
        this.#alone = false;
        this.#last = null;
        // Under the head's lock, every seq from the head on is free unless a row no append made sits there.
        if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
          throw new AuditError('AUDIT_CHAIN_BROKEN', `refusing to append to the audit log at ${this.where}: a record exists beyond its head, at a seq this append would take; run 'corral audit verify'`, { cause: error });
        }
        throw error;
      }
    }, always).catch(async (error: unknown) => {
      if (!sent) throw error;
      await this.#settle(sent.batch, error);
      return sent.result;
    });
  }

  /**
   * After a commit was sent and its answer never came (the connection
   * dropped, the server restarted, the answer timed out): learns whether the
   * batch is in the log. Takes the head's row lock first, so a transaction
   * still holding it — this batch's, if the server is still finishing it —
   * has ended; then the batch is in the log if its last record is (each
   * record's hash commits to its seq, its predecessor and its body, so the
   * last one's commits to every record of the batch: another writer that
   * built on the same head may have begun its batch with the same event), or,
   * for a batch of no records, if its signed checkpoint is. Either way the
   * next append reads the head again under the lock (never builds on the head
   * it had).
   * @returns true when the batch was committed.
   * @throws AuditError AUDIT_STORE_UNAVAILABLE when it was not (nothing of it
   *   was written); AUDIT_COMMIT_UNKNOWN when the store could not be asked.
   */
  async #settle(batch: Batch, error: unknown): Promise<true> {
    this.#alone = false;
    this.#last = null;
    const first = batch.records[0];
    const last = batch.records.at(-1);
    const checkpoint = batch.checkpoint;
    const records = `${batch.records.length} record${batch.records.length === 1 ? '' : 's'}${first ? ` from ${first.seq}` : ''}`;
    let lastError = error;
    const giveUpAt = Date.now() + SETTLE_WITHIN_MS;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        const pause = SETTLE_BACKOFF_MS * 2 ** (attempt - 1);
        if (Date.now() + pause >= giveUpAt) break;
        await new Promise((r) => setTimeout(r, pause));
      }
      let committed: boolean;
      try {
        committed = await this.#run(async (c) => {
          await c.query(`BEGIN; ${HEAD_SQL} FOR UPDATE`);
          let found: boolean;
          if (last) {
            const row = (await c.query('SELECT hash FROM audit_records WHERE seq = $1', [last.seq])).rows[0] as Row | undefined;
            found = Buffer.isBuffer(row?.hash) && row.hash.toString('hex') === last.hash;
          } else if (checkpoint) {
            const row = (await c.query('SELECT signature FROM audit_checkpoints WHERE size = $1', [checkpoint.size])).rows[0] as Row | undefined;
            found = row?.signature === checkpoint.signature;
          } else found = true; // nothing to write: nothing lost
          await c.query('ROLLBACK');
          return found;
        }, true);
      } catch (e) {
        lastError = e;
        continue;
      }
      if (committed) return true;
      throw new AuditError('AUDIT_STORE_UNAVAILABLE', `the audit log at ${this.where} did not commit ${records} (${(error as Error).message}): none of them was written`, { cause: error });
    }
    throw new AuditError(
      'AUDIT_COMMIT_UNKNOWN',
      `the audit log at ${this.where} lost its connection while committing ${records}, and could not learn whether they were written: ${(lastError as Error).message}`,
      { cause: lastError },
    );
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
          (await c.query({ text: "SELECT seq, encode(prev, 'hex'), encode(hash, 'hex'), body, time_ms, encode(nodes, 'hex') FROM audit_records WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT $3", values: [next, to, batch], rowMode: 'array' }))
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

/**
 * How long #settle keeps asking the store whether a commit happened (long
 * enough for a server restart), pausing 250 ms, then twice as long each time;
 * an attempt under way when that time is up runs to its own timeouts.
 */
const SETTLE_WITHIN_MS = 3_000;
const SETTLE_BACKOFF_MS = 250;

/** A request that only seals what is unsealed (closing the log, an explicit checkpoint): it may test a server known down itself. */
function finalSeal(request: AppendRequest): boolean {
  return request.bodies.length === 0 && request.seal === 'now';
}

/** Batches at least this large are written with COPY; smaller ones with one INSERT (fewer round trips). */
const COPY_FROM = 128;

/**
 * The statement that writes a batch: the new head ($1–$5) and any checkpoint
 * ($6–$10, NULL when none); with `rows`, a small batch's rows as well
 * ($11–$15, see rowArgs). `guarded` is for outside a transaction: it writes
 * only if the head is still the one the batch was built on ($16–$19). Its
 * guard takes the head's row lock first (after another writer's commit,
 * PostgreSQL checks the condition again on the row that writer left), and
 * every write depends on the guard's row.
 */
function appendStatement(rows: boolean, guarded: boolean): string {
  const ifGuard = guarded ? ' AND EXISTS (SELECT 1 FROM guard)' : '';
  const parts: string[] = [];
  if (guarded) {
    parts.push(`guard AS (
  SELECT 1 FROM audit_head WHERE id = 1 AND size = $16 AND last_hash = decode($17, 'hex') AND checkpoint_size = $18 AND checkpoint_time = $19 FOR UPDATE)`);
  }
  if (rows) {
    parts.push(`rows AS (
  INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body)
  SELECT $11::bigint + o - 1, t::bigint, substring($13::bytea FROM o::int * 32 - 31 FOR 32), substring($13::bytea FROM o::int * 32 + 1 FOR 32), coalesce(decode(n, 'hex'), ''), b
  FROM unnest(string_to_array($12, ','), string_to_array($14, ','), string_to_array($15, E'\\n')) WITH ORDINALITY AS x(t, n, b, o)${guarded ? ' WHERE EXISTS (SELECT 1 FROM guard)' : ''})`);
  }
  parts.push(`checkpoint AS (
  INSERT INTO audit_checkpoints (size, root, time, key_id, signature)
  SELECT $6::bigint, decode($7, 'hex'), $8, $9, $10 WHERE $6::bigint IS NOT NULL${ifGuard})`);
  return `WITH ${parts.join(',\n')}
UPDATE audit_head SET size = $1, last_hash = decode($2, 'hex'), frontier = $3, checkpoint_size = $4, checkpoint_time = $5 WHERE id = 1${ifGuard}`;
}
const APPEND_HEAD = appendStatement(false, false);
const APPEND_ROWS = appendStatement(true, false);
const APPEND_GUARDED = appendStatement(true, true);
const UNIQUE_VIOLATION = '23505';

function headArgs({ head: h, checkpoint: k }: Batch): unknown[] {
  return [h.size, h.lastHash, hashesToBytes(h.frontier), h.checkpointSize, h.checkpointTimeMs, k?.size ?? null, k?.root ?? null, k?.time ?? null, k?.keyId ?? null, k?.signature ?? null];
}

function sameHead(a: LogHead, b: LogHead): boolean {
  return a.size === b.size && a.lastHash === b.lastHash && a.checkpointSize === b.checkpointSize && a.checkpointTimeMs === b.checkpointTimeMs;
}

/**
 * A small batch's rows as five parameters, none of which needs escaping (a
 * text array would escape every quote of every body, most of what a guarded
 * append allocated): the first seq; the times, comma-separated; the first
 * record's predecessor and every record's hash, 32 bytes each, as one bytea
 * (each record's predecessor is the hash before its own); each record's tree
 * nodes in hex, comma-separated; the bodies, one per line — canonical JSON
 * holds no raw control characters (RFC 8785 escapes them), which is checked.
 * (PostgreSQL splits an empty string into no elements: a lone record without
 * tree nodes gets none from the coalesce.)
 */
function rowArgs(rs: readonly StoredRecord[]): unknown[] {
  let times = '';
  let hashes = (rs[0] as StoredRecord).prev;
  let nodes = '';
  let bodies = '';
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i] as StoredRecord;
    if (r.body.includes('\n')) throw new AuditError('AUDIT_EVENT_INVALID', `record ${r.seq} is not canonical JSON: it holds a raw line feed`);
    const sep = i === 0 ? '' : ',';
    times += sep + r.timeMs;
    hashes += r.hash;
    nodes += sep + r.nodes.join('');
    bodies += (i === 0 ? '' : '\n') + r.body;
  }
  return [(rs[0] as StoredRecord).seq, times, Buffer.from(hashes, 'hex'), nodes, bodies];
}

/**
 * Writes records with COPY: on the server about four times cheaper per row
 * than a multi-row INSERT (measured here: 2,000 rows in ~35 ms against ~150 ms).
 * Text format: bytea as \\x<hex>; the canonical JSON body holds no raw control
 * characters (RFC 8785 escapes them), so only its backslashes need doubling.
 */
async function copyRecords(client: pg.PoolClient, records: readonly StoredRecord[]): Promise<void> {
  const stream = client.query(copyFrom('COPY audit_records (seq, time_ms, prev, hash, nodes, body) FROM STDIN'));
  await pipeline(Readable.from(copyText(records)), stream);
}

/**
 * Characters of COPY text handed to the connection at a time. A transaction
 * holds up to MAX_TRANSACTION records of up to MAX_EVENT_BYTES each (1 GiB):
 * built as one string, a batch of more than ~8,200 events of 64 KiB passed
 * V8's longest string (~512 MiB) and the whole commit failed.
 */
export const COPY_CHUNK = 1 << 20;

/**
 * The COPY text of `records` (one line per row, see copyRecords), in pieces
 * of whole rows of at least `chunk` characters each but the last; a row is
 * never split. The pieces are one COPY in one transaction: should any fail,
 * nothing of the batch is written.
 */
export function* copyText(records: readonly StoredRecord[], chunk = COPY_CHUNK): Generator<string> {
  let text = '';
  for (const r of records) {
    text += `${r.seq}\t${r.timeMs}\t\\\\x${r.prev}\t\\\\x${r.hash}\t\\\\x${r.nodes.join('')}\t${r.body.replaceAll('\\', '\\\\')}\n`;
    if (text.length >= chunk) {
      yield text;
      text = '';
    }
  }
  if (text !== '') yield text;
}

/**
 * The head from the rows HEAD_SQL read: a log has one. A second (its primary
 * key dropped) would make the head whichever row the server returns first.
 * @throws AuditError AUDIT_STORE_FOREIGN as headFromRow, or when there is more than one.
 */
function onlyHead(rows: Row[], where: string): LogHead {
  if (rows.length > 1) throw new AuditError('AUDIT_STORE_FOREIGN', `${where}: audit_head holds ${rows.length} rows for the log's head where a Corral audit log has one (its primary key was dropped), so which is the log's head is not known: restore audit_head from a backup`);
  return headFromRow(rows[0], where);
}

/** Server encodings that keep every character an event may hold: UTF8, and SQL_ASCII, which stores the bytes it is sent. */
const ENCODINGS: ReadonlySet<string> = new Set(['UTF8', 'SQL_ASCII']);

/**
 * Refuses to write to a database whose encoding cannot hold every character
 * an event may (LATIN1, WIN1252…): a commit holding one it cannot encode
 * fails, and with it every append that shares the commit, however often retried.
 * @throws AuditError AUDIT_STORE_FOREIGN naming the encoding.
 */
async function refuseEncoding(c: pg.PoolClient, where: string): Promise<void> {
  const encoding = ((await c.query("SELECT current_setting('server_encoding') AS encoding")).rows[0] as Row).encoding;
  if (typeof encoding === 'string' && ENCODINGS.has(encoding)) return;
  throw new AuditError(
    'AUDIT_STORE_FOREIGN',
    `${where} is a database of encoding ${String(encoding)}, which cannot hold every character an audit event may: create the log in a database made WITH ENCODING 'UTF8'`,
  );
}

/**
 * The meta row, once the log's tables are known to be one set (a name the
 * search path finds in two schemas is refused, not resolved to the first) and
 * still as a writer creates them.
 * @throws AuditError AUDIT_STORE_FOREIGN
 */
async function readMeta(c: pg.PoolClient, where: string): Promise<LogMeta | null> {
  await refuseShadowed(c, where);
  const has = await c.query("SELECT to_regclass('audit_meta') IS NOT NULL AS present");
  if (!(has.rows[0] as Row).present) {
    await refuseHiddenLog(c, where, false);
    return null;
  }
  await refuseUnprivileged(c, where, false);
  const r = (await c.query('SELECT format, key_id, created_at FROM audit_meta WHERE id = 1')).rows[0] as Row | undefined;
  if (!r) throw new AuditError('AUDIT_STORE_FOREIGN', `${where} has an empty audit_meta table`);
  if (Number(r.format) !== STORE_FORMAT) throw new AuditError('AUDIT_STORE_FOREIGN', `${where} is an audit log of format ${String(r.format)}; this Corral reads format ${STORE_FORMAT}`);
  await refuseAltered(c, where);
  return { format: Number(r.format), keyId: String(r.key_id), createdAt: String(r.created_at) };
}
