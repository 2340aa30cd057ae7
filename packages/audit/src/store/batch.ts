// What a writer asks a store to append, and how a store turns that into a
// batch under its append lock: the hash chain, the tree's new right edge, and
// a signed checkpoint when one is due. Both stores build batches with this one
// function, from the head they read under their lock.
import type { KeyObject } from 'node:crypto';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { signCheckpoint } from '../checkpoint/sign.ts';
import { CompactRange } from '../merkle/compact-range.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { recordBytes } from '../record/envelope.ts';
import type { LogHead, StoredRecord } from './store.ts';

/** Most records a store commits in one transaction; requests beyond wait for the next. */
export const MAX_TRANSACTION = 16_384;

/** When the batch seals a checkpoint: every `every` records (`due`), also after `intervalMs` (`timer`), or whenever records are unsealed (`now`). */
export type Seal = 'due' | 'timer' | 'now';

/** Events to append, already canonical, in order. */
export interface AppendRequest {
  /** Canonical JSON (RFC 8785) of each event. */
  bodies: string[];
  /** Each event's time, ms since the epoch (for --since/--until). */
  timesMs: number[];
  seal: Seal;
}

/** What a store needs to append: the checkpoint-signing key and the checkpoint policy. */
export interface WriterConfig {
  privateKey: KeyObject;
  keyId: string;
  /** Sign a checkpoint at least every this many records. */
  every: number;
  /** …and when records have waited this long unsealed, in ms. */
  intervalMs: number;
  /**
   * SQLite: append on the calling thread and start no thread (see
   * OpenAuditLogOptions.oneShot). PostgreSQL always appends on the calling
   * thread and ignores it.
   */
  oneShot?: boolean;
}

/** The outcome of one durable append: where its records landed. */
export interface AppendResult {
  /** Seq of the request's first record (the log's size before it). */
  firstSeq: number;
  /** The predecessor hash of the first record. */
  prev: string;
  /** Leaf hash of each record, in request order. */
  hashes: string[];
  checkpoint: SignedCheckpoint | null;
}

/** A batch as a store writes it in one transaction. */
export interface Batch {
  records: StoredRecord[];
  /** The head after the batch. */
  head: LogHead;
  checkpoint: SignedCheckpoint | null;
}

/** Builds the batch for `request` on `head` (read under the store's append lock); `nowMs` is the wall clock then. */
export function buildBatch(head: LogHead, request: AppendRequest, config: WriterConfig, nowMs: number): { batch: Batch; result: AppendResult } {
  const range = new CompactRange(sha256Hasher, head.size, head.frontier);
  const { bodies, timesMs } = request;
  const records: StoredRecord[] = new Array(bodies.length);
  // Filled by push: a pre-sized array has holes as far as V8 knows, and the writer thread's postMessage then copies it member by member.
  const hashes: string[] = [];
  let prev = head.lastHash;
  for (let i = 0; i < bodies.length; i++) {
    const seq = range.size;
    const body = bodies[i] as string;
    const hash = sha256Hasher.leaf(recordBytes(seq, prev, body));
    records[i] = { seq, prev, body, hash, nodes: range.append(hash), timeMs: timesMs[i] as number };
    hashes.push(hash);
    prev = hash;
  }
  const next: LogHead = { size: range.size, lastHash: prev, frontier: range.hashes, checkpointSize: head.checkpointSize, checkpointTimeMs: head.checkpointTimeMs };
  const unsealed = next.size - head.checkpointSize;
  const due =
    unsealed > 0 &&
    (request.seal === 'now' || unsealed >= config.every || (request.seal === 'timer' && nowMs - head.checkpointTimeMs >= config.intervalMs));
  let checkpoint: SignedCheckpoint | null = null;
  if (due) {
    checkpoint = signCheckpoint(config.privateKey, { size: next.size, root: range.root(), time: new Date(nowMs).toISOString(), keyId: config.keyId });
    next.checkpointSize = next.size;
    next.checkpointTimeMs = nowMs;
  }
  return { batch: { records, head: next, checkpoint }, result: { firstSeq: head.size, prev: head.lastHash, hashes, checkpoint } };
}

const SEAL_STRENGTH: Record<Seal, number> = { due: 0, timer: 1, now: 2 };

/**
 * Several requests as one (group commit): their events in order, sealed the
 * strongest way any of them asked.
 */
export function mergeRequests(requests: readonly AppendRequest[]): AppendRequest {
  if (requests.length === 1) return requests[0] as AppendRequest;
  let seal: Seal = 'due';
  for (const r of requests) if (SEAL_STRENGTH[r.seal] > SEAL_STRENGTH[seal]) seal = r.seal;
  return { bodies: requests.flatMap((r) => r.bodies), timesMs: requests.flatMap((r) => r.timesMs), seal };
}

/** The share of a merged request's result that belongs to each of `requests`; the checkpoint, if any, is every one's. */
export function splitResult(result: AppendResult, requests: readonly AppendRequest[]): AppendResult[] {
  if (requests.length === 1) return [result];
  let offset = 0;
  return requests.map((r) => {
    const n = r.bodies.length;
    const part: AppendResult = {
      firstSeq: result.firstSeq + offset,
      prev: offset === 0 ? result.prev : (result.hashes[offset - 1] as string),
      hashes: result.hashes.slice(offset, offset + n),
      checkpoint: result.checkpoint,
    };
    offset += n;
    return part;
  });
}
