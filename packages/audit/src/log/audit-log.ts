// The API other packages call: open a log, append events (acknowledged only
// once durable, batched by group commit), close (seals a checkpoint).
import type { KeyObject } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { publicKeyPem } from '../checkpoint/key.ts';
import { verifyCheckpointSignature } from '../checkpoint/verify.ts';
import { AuditError } from '../errors.ts';
import { loadOrCreateSigningKey, type SigningKey } from '../io/key-file.ts';
import { advanceWitness } from '../io/witness-file.ts';
import { CompactRange, frontierNodes } from '../merkle/compact-range.ts';
import { verifyConsistency } from '../merkle/consistency.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { consistencyProof, nodeKey } from '../merkle/prover.ts';
import { recordBytes } from '../record/envelope.ts';
import { checkedEvent, type AuditEventInput } from '../record/event.ts';
import { SqliteStore } from '../store/sqlite.ts';
import type { Seal } from '../store/batch.ts';
import { STORE_FORMAT, type AuditStore } from '../store/store.ts';
import { LogRecord, type AuditRecord } from './audit-record.ts';
import { openWitness } from './witness.ts';

export const DB_FILE = 'audit.db';

export interface OpenAuditLogOptions {
  /** State directory: holds the signing key, the witness, and (without postgresUrl) audit.db. */
  stateDir: string;
  /** Use this PostgreSQL database instead of SQLite (several writers may share it). */
  postgresUrl?: string;
  /** Sign a checkpoint at least every this many records (default 1000). */
  checkpointEvery?: number;
  /** …and when records have waited this long unsealed, in ms (default 10 000). */
  checkpointIntervalMs?: number;
  /**
   * For a process that appends a few records and exits (`corral run`): open
   * without starting threads, so open → append → close costs a few
   * milliseconds instead of a thread start. Appends are as durable (each is
   * acknowledged after its fsync) and close() seals a checkpoint as always;
   * but commits run on this thread, blocking its event loop for each fsync,
   * so a process that appends steadily should leave it off. SQLite only;
   * PostgreSQL ignores it (it starts no thread either way). Default false.
   */
  oneShot?: boolean;
  /** Clock for events given without a time, for tests. */
  now?: () => Date;
}

/** When a log signs a checkpoint unless told otherwise: every this many records, or once records have waited this long. */
export const CHECKPOINT_DEFAULTS = { every: 1000, intervalMs: 10_000 } as const;

interface Pending {
  body: string;
  timeMs: number;
  resolve: (r: AuditRecord) => void;
  reject: (e: unknown) => void;
}

/**
 * Opens (creating on first use) the audit log of a state directory: SQLite
 * `audit.db` there, or the PostgreSQL database at `postgresUrl`. The signing
 * key is created on first use as `audit-signing-key.pem` (0600).
 *
 * Refuses a log signed by another key, a foreign database, a log that is
 * behind the checkpoint this state directory witnessed (a rollback), and a
 * log whose tip was tampered with (checkTip).
 *
 * @throws AuditError AUDIT_KEY_UNAVAILABLE, AUDIT_STORE_FOREIGN,
 *   AUDIT_STORE_UNAVAILABLE, AUDIT_ROLLED_BACK, AUDIT_CHAIN_BROKEN.
 */
export async function openAuditLog(options: OpenAuditLogOptions): Promise<AuditLog> {
  if (typeof options.stateDir !== 'string' || options.stateDir === '') throw new AuditError('AUDIT_BAD_ARGUMENT', 'openAuditLog needs a stateDir');
  const every = options.checkpointEvery ?? CHECKPOINT_DEFAULTS.every;
  const intervalMs = options.checkpointIntervalMs ?? CHECKPOINT_DEFAULTS.intervalMs;
  if (!(every >= 1) || !(intervalMs >= 1)) throw new AuditError('AUDIT_BAD_ARGUMENT', 'checkpointEvery and checkpointIntervalMs must be positive');
  mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  const key = loadOrCreateSigningKey(options.stateDir);
  const store: AuditStore = options.postgresUrl ? await (await import('../store/postgres.ts')).PostgresStore.connect({ url: options.postgresUrl }) : new SqliteStore({ path: join(options.stateDir, DB_FILE) });
  try {
    const meta = await store.init({ format: STORE_FORMAT, keyId: key.keyId, createdAt: new Date().toISOString() });
    if (meta.keyId !== key.keyId) {
      throw new AuditError('AUDIT_KEY_UNAVAILABLE', `the audit log at ${store.where} is signed by key ${meta.keyId}, but the key at ${key.path} is ${key.keyId}`);
    }
    const witnessFile = await openWitness(options.stateDir, store);
    await checkTip(store, key.publicKey);
    await store.openWriter({ privateKey: key.privateKey, keyId: key.keyId, every, intervalMs, oneShot: options.oneShot === true });
    return new AuditLog(store, key, witnessFile, options);
  } catch (error) {
    await store.close();
    throw error;
  }
}

/**
 * Refuses to extend a log whose tip was tampered with: its last record does
 * not match its head, or the head's frontier (the right edge of the tree,
 * every new checkpoint's root is built on it) is not the one the records
 * stored as they were appended, or is not a tree that extends the last
 * checkpoint the head says was signed (that checkpoint gone or not signed by
 * `publicKey` too). The frontier and the nodes at its edge, edited together,
 * agree with each other; only a signed root tells them from the records'.
 * Costs a few indexed reads whatever the log's size: the last record, the
 * O(log n) stored nodes at the frontier and in the consistency proof from the
 * checkpoint to the head, the checkpoint, and one signature check.
 * @throws AuditError AUDIT_CHAIN_BROKEN.
 */
async function checkTip(store: AuditStore, publicKey: KeyObject): Promise<void> {
  const { head, last, beyond } = await store.tip();
  const broken = (why: string) => new AuditError('AUDIT_CHAIN_BROKEN', `refusing to append to the audit log at ${store.where}: ${why}; run 'corral audit verify'`);
  if (beyond) throw broken(`a record ${head.size} exists beyond the head`);
  if (head.size === 0) return;
  if (!last) throw broken(`its last record ${head.size - 1} is missing`);
  if (last.hash !== head.lastHash || sha256Hasher.leaf(recordBytes(last.seq, last.prev, last.body)) !== last.hash) throw broken(`its last record ${head.size - 1} does not match the chain`);
  // Else the writer would sign checkpoints over a tree other than its records' (and then be refused as rolled back).
  const ids = frontierNodes(head.size);
  const stored = await store.nodes(ids).catch((error: unknown) => {
    if (error instanceof AuditError && error.code === 'AUDIT_NOT_FOUND') throw broken(error.message);
    throw error;
  });
  if (head.frontier.length !== ids.length || ids.some((id, i) => stored.get(nodeKey(id)) !== head.frontier[i])) {
    throw broken("its head's frontier (the right edge of its Merkle tree) is not the one its records hold, so the head was altered; restore audit_head from a backup");
  }
  if (head.checkpointSize === 0) return;
  const signed = await store.checkpointFor(head.checkpointSize, true).catch((error: unknown) => {
    if (error instanceof AuditError && error.code === 'AUDIT_CHECKPOINT_MALFORMED') throw broken(`its last checkpoint cannot be read: ${error.message}`);
    throw error;
  });
  if (!signed) throw broken(`the checkpoint its head says was signed last, at size ${head.checkpointSize}, is gone`);
  if (signed.size > head.size) throw broken(`its head says a checkpoint was signed at size ${signed.size}, beyond its ${head.size} records`);
  try {
    verifyCheckpointSignature(publicKey, signed);
  } catch {
    throw broken(`its last checkpoint, at size ${signed.size}, is not validly signed by its key`);
  }
  // The tree the writer builds on must be the signed one, grown: equal roots when no record came since.
  const root = new CompactRange(sha256Hasher, head.size, head.frontier).root();
  try {
    const proof = await consistencyProof(sha256Hasher, (ids) => store.nodes(ids), signed.size, head.size);
    verifyConsistency(sha256Hasher, signed.size, head.size, proof, signed.root, root);
  } catch (error) {
    if (!(error instanceof AuditError && ['AUDIT_PROOF_MISMATCH', 'AUDIT_PROOF_MALFORMED', 'AUDIT_NOT_FOUND'].includes(error.code))) throw error;
    throw broken(
      `its head's frontier (the right edge of its Merkle tree, which every new checkpoint's root is built on) is not a tree that extends the checkpoint signed at size ${signed.size}: the head and the tree nodes its records stored were altered; restore the log from a backup`,
    );
  }
}

/**
 * Most appends handed to the store in one request. Small enough that the
 * store starts on the first ones while later ones are still being checked
 * and canonicalised; the store commits every request waiting for it in one
 * transaction, so this does not bound the batch (group commit happens there).
 */
const REQUEST_SIZE = 256;

export class AuditLog {
  readonly store: AuditStore;
  readonly #key: SigningKey;
  readonly #witnessFile: string;
  readonly #now: () => Date;
  readonly #timer: NodeJS.Timeout;
  #queue: Pending[] = [];
  #flushScheduled = false;
  /** Requests the store has not answered yet. */
  readonly #inflight = new Set<Promise<unknown>>();
  /** The checkpoint interval may have passed: the next request checks it under the lock. */
  #timerDue = false;
  #closed = false;
  #pendingWitness: SignedCheckpoint | null = null;
  #witnessWrittenAt = 0;
  #witnessWritten: Promise<void> = Promise.resolve();

  constructor(store: AuditStore, key: SigningKey, witnessFile: string, options: OpenAuditLogOptions) {
    this.store = store;
    this.#key = key;
    this.#witnessFile = witnessFile;
    const intervalMs = options.checkpointIntervalMs ?? CHECKPOINT_DEFAULTS.intervalMs;
    this.#now = options.now ?? (() => new Date());
    this.#timer = setInterval(() => this.#sealIfDue(), Math.max(50, Math.floor(intervalMs / 4)));
    this.#timer.unref();
  }

  /** Id of the key that signs this log's checkpoints. */
  get keyId(): string {
    return this.#key.keyId;
  }

  /** The checkpoint-signing public key (SPKI PEM) an auditor takes away. */
  get publicKeyPem(): string {
    return publicKeyPem(this.#key.publicKey);
  }

  get publicKey() {
    return this.#key.publicKey;
  }

  /**
   * Appends one event. Resolves with the record (its seq and hashes) once it
   * is durably committed; concurrent appends share one commit.
   *
   * @throws AuditError AUDIT_EVENT_INVALID (bad event), AUDIT_CLOSED, or the
   *   store's error when the commit failed (then nothing of the batch was
   *   written, and the same log may append it again), or AUDIT_COMMIT_UNKNOWN
   *   when whether the commit happened cannot be known now: its answer was
   *   lost, or the disk failed making it durable (see AuditStore.append).
   */
  append(input: AuditEventInput): Promise<AuditRecord> {
    if (this.#closed) return Promise.reject(new AuditError('AUDIT_CLOSED', 'the audit log is closed'));
    let body: string;
    let timeMs: number;
    try {
      ({ body, timeMs } = checkedEvent(input, this.#now));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ body, timeMs, resolve, reject });
      if (this.#queue.length >= REQUEST_SIZE) this.#flush();
      else if (!this.#flushScheduled) {
        // Appends issued by the same task share a request; requests that reach
        // the store while it commits share the next commit (group commit), so
        // nothing is held back here waiting for company.
        this.#flushScheduled = true;
        queueMicrotask(() => {
          this.#flushScheduled = false;
          this.#flush();
        });
      }
    });
  }

  /** Signs a checkpoint now if records were appended since the last one; returns it (or null). */
  async checkpoint(): Promise<SignedCheckpoint | null> {
    await this.#settle();
    const c = await this.#send([], 'now');
    this.#flushWitness();
    await this.#witnessWritten;
    return c;
  }

  /** Waits for pending appends, seals a final checkpoint, and closes the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      await this.#settle();
      await this.#send([], 'now');
      this.#flushWitness();
      await this.#witnessWritten;
    } finally {
      await this.store.close();
    }
  }

  async #settle(): Promise<void> {
    while (this.#queue.length > 0 || this.#inflight.size > 0) {
      this.#flush();
      await Promise.allSettled(this.#inflight);
    }
  }

  /** Hands the queued appends to the store. */
  #flush(): void {
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#send(batch, 'due').catch(() => {}); // each append's promise carries the error
  }

  #sealIfDue(): void {
    if (this.#closed) return;
    if (this.#queue.length > 0 || this.#inflight.size > 0) this.#timerDue = true;
    else this.#send([], 'timer').catch(() => {});
  }

  /** One transaction: the batch's records, the new head, and a checkpoint when one is due. */
  #send(batch: Pending[], seal: Seal): Promise<SignedCheckpoint | null> {
    if (seal === 'due' && this.#timerDue) seal = 'timer';
    this.#timerDue = false;
    // Filled by push, not pre-sized: a pre-sized array has holes as far as V8
    // knows, and postMessage then copies it member by member, as an object.
    const bodies: string[] = [];
    const timesMs: number[] = [];
    for (const p of batch) {
      bodies.push(p.body);
      timesMs.push(p.timeMs);
    }
    const done = this.store.append({ bodies, timesMs, seal }).then(
      (result) => {
        for (let i = 0; i < batch.length; i++) {
          const p = batch[i]!;
          const seq = result.firstSeq + i;
          const prev = i === 0 ? result.prev : result.hashes[i - 1]!;
          p.resolve(new LogRecord(seq, prev, result.hashes[i]!, p.body));
        }
        if (result.checkpoint) this.#pendingWitness = result.checkpoint;
        // Under heavy appending, keep the witness at most a second behind.
        if (Date.now() - this.#witnessWrittenAt >= 1000) this.#flushWitness();
        return result.checkpoint;
      },
      (error: unknown) => {
        for (const p of batch) p.reject(error);
        throw error;
      },
    );
    this.#inflight.add(done);
    const settled = () => void this.#inflight.delete(done);
    done.then(settled, settled);
    return done;
  }

  /** Writes the newest checkpoint as the witness, after any write still under way (off this thread); `#witnessWritten` settles once it is. */
  #flushWitness(): void {
    const c = this.#pendingWitness;
    this.#pendingWitness = null;
    if (!c) return;
    this.#witnessWrittenAt = Date.now();
    // The witness is an extra safeguard kept beside the log: failing to
    // write it must not turn an acknowledged, durable append into an error.
    // `corral audit verify` writes it again.
    this.#witnessWritten = this.#witnessWritten.then(() => advanceWitness(this.#witnessFile, c)).catch(() => undefined);
  }

}
