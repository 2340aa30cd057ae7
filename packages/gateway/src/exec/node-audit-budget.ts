// How many audit records each node may cause on its own word (a refused
// report, containers it says it stopped, runs it asks to be authorized):
// a budget per node that refills over time. Past it, what the node asked
// for is refused and its record dropped; the drops are counted and written
// as one summary record per node a window, never one record each.
import type { AuditEventInput } from '@corral/audit';
import { GatewayError } from '../errors.ts';
import { TokenBucket } from '../server/token-bucket.ts';

export interface NodeAuditLimits {
  /** Records the budget refills by each second. */
  perSecond: number;
  /** Records the budget holds when full. */
  burst: number;
  /** How long after its first drop a node's summary record is written (ms). */
  summaryAfterMs: number;
}

/**
 * A node serving an upstream gateway asks to authorize each run (one or two
 * records) and reports it (one, bounded by the runs authorized): 600 at once
 * and 20 a second keep far ahead of 32 runs at once, and bound a flood to
 * about 1.7 million records a day a node instead of as many as it can send.
 */
export const NODE_AUDIT_LIMITS: Readonly<NodeAuditLimits> = { perSecond: 20, burst: 600, summaryAfterMs: 60_000 };

/** The action of the summary record: how many records of a node were dropped, by action, since when. */
export const DROPPED_ACTION = 'node.audit.dropped';

/** The refusal of what a node asked past its budget: GATEWAY_RATE_LIMITED, wire UNAVAILABLE, retryable. */
export function rateLimited(message: string): GatewayError {
  return new GatewayError('GATEWAY_RATE_LIMITED', message, { wire: { code: 'UNAVAILABLE', message, retryable: true, retryAfterMs: 1_000, details: { code: 'RATE_LIMITED' } } });
}

interface Bucket {
  budget: TokenBucket;
  /** Drops not yet summarized, by action; their first at `since`. */
  dropped: Map<string, number>;
  since: number;
  timer: NodeJS.Timeout | undefined;
}

export class NodeAuditBudget {
  readonly #limits: Readonly<NodeAuditLimits>;
  readonly #append: (event: AuditEventInput) => Promise<unknown>;
  readonly #now: () => number;
  /** One a node that caused a record: nodes that may are paired ones, whose number pairing bounds. */
  readonly #buckets = new Map<string, Bucket>();

  /** `append` writes the summary records (the audit log's append). */
  constructor(append: (event: AuditEventInput) => Promise<unknown>, limits: Readonly<NodeAuditLimits> = NODE_AUDIT_LIMITS, now: () => number = Date.now) {
    this.#append = append;
    this.#limits = limits;
    this.#now = now;
  }

  /**
   * Whether `nodeId` may cause one more record of `action` now. When not, the
   * drop is counted toward the node's next summary record, and the caller
   * refuses what the node asked for and writes nothing.
   */
  admit(nodeId: string, action: string): boolean {
    const now = this.#now();
    let bucket = this.#buckets.get(nodeId);
    if (bucket === undefined) this.#buckets.set(nodeId, (bucket = { budget: new TokenBucket(this.#limits.perSecond, this.#limits.burst, this.#now), dropped: new Map(), since: 0, timer: undefined }));
    if (bucket.budget.take()) return true;
    if (bucket.dropped.size === 0) {
      bucket.since = now;
      bucket.timer = setTimeout(() => void this.flush(nodeId), this.#limits.summaryAfterMs);
      bucket.timer.unref();
    }
    bucket.dropped.set(action, (bucket.dropped.get(action) ?? 0) + 1);
    return false;
  }

  /**
   * Writes the node's summary record of the drops not yet summarized, if any.
   * A summary the log refuses is dropped too (its count is lost, never retried
   * into a flood of its own).
   */
  async flush(nodeId: string): Promise<void> {
    const bucket = this.#buckets.get(nodeId);
    if (bucket === undefined || bucket.dropped.size === 0) return;
    clearTimeout(bucket.timer);
    const byAction = Object.fromEntries([...bucket.dropped].sort(([a], [b]) => a.localeCompare(b)));
    const dropped = [...bucket.dropped.values()].reduce((n, c) => n + c, 0);
    const since = bucket.since;
    bucket.dropped = new Map();
    bucket.timer = undefined;
    await this.#append({
      actor: { kind: 'service', id: 'gateway' },
      action: DROPPED_ACTION,
      resource: { kind: 'node', id: nodeId },
      node: nodeId,
      outcome: { status: 'failure', detail: 'rate-limited' },
      details: { dropped, byAction, sinceMs: since, untilMs: this.#now() },
    }).catch(() => undefined);
  }

  /** Writes every pending summary (the gateway is stopping). */
  async flushAll(): Promise<void> {
    await Promise.all([...this.#buckets.keys()].map((nodeId) => this.flush(nodeId)));
  }
}
