// How many audit records each node may cause on its own word (a refused
// report, containers it says it stopped, runs it asks to be authorized):
// budgets per node that refill over time, one for the runs it asks to be
// authorized and one for everything else, so that neither starves the other.
// Past one, what the node asked for is refused and its record dropped; the
// drops are counted and written as one summary record per node a window,
// never one record each.
import type { AuditEventInput } from '@corral/audit';
import { GatewayError } from '../errors.ts';
import { TokenBucket } from '../server/token-bucket.ts';

export interface NodeAuditLimits {
  /** Records, other than run authorizations, the budget refills by each second. */
  perSecond: number;
  /** Records, other than run authorizations, the budget holds when full. */
  burst: number;
  /** How long after its first drop a node's summary record is written (ms). */
  summaryAfterMs: number;
  /** The budget of `corral.run.authorize` alone (default NODE_AUDIT_LIMITS.runs). */
  runs?: { perSecond: number; burst: number };
}

/** The action whose records draw on the run budget: a run a node asks to be authorized. */
export const RUN_AUTHORIZE_ACTION = 'corral.run.authorize';

/**
 * - runs: a Corral node under a busy upstream gateway asks to authorize each
 *   run it is sent (one decision record, a second only when a human is
 *   asked) and reports it (one more, bounded by the runs authorized, so
 *   never budgeted). 200 a second is a node's 32 runs at once (MAX_RUNS
 *   in packages/node) each done in 160 ms, back to back, more than agents
 *   working through one host ask for; 2,000 at once holds ten seconds of
 *   twice that. At ~400 records a second it is under 1 % of what one SQLite log
 *   appends and 4 % of a PostgreSQL log's 10,000/s target, and bounds a
 *   node at 17 million runs a day instead of as many as it can send.
 * - everything else a node says on its own word (reports of runs this
 *   gateway never authorized, containers it stopped) needs few records:
 *   600 at once and 20 a second keep far ahead of a node stopping every
 *   container of a suspended agent, and bound a flood to about 1.7 million
 *   records a day a node. A flood of either leaves the other's budget whole.
 */
export const NODE_AUDIT_LIMITS: Readonly<NodeAuditLimits> = { perSecond: 20, burst: 600, summaryAfterMs: 60_000, runs: { perSecond: 200, burst: 2_000 } };

/** The action of the summary record: how many records of a node were dropped, by action, since when. */
export const DROPPED_ACTION = 'node.audit.dropped';

/** The refusal of what a node asked past its budget: GATEWAY_RATE_LIMITED, wire UNAVAILABLE, retryable. */
export function rateLimited(message: string): GatewayError {
  return new GatewayError('GATEWAY_RATE_LIMITED', message, { wire: { code: 'UNAVAILABLE', message, retryable: true, retryAfterMs: 1_000, details: { code: 'RATE_LIMITED' } } });
}

interface Bucket {
  /** Records other than run authorizations. */
  budget: TokenBucket;
  /** Run authorizations. */
  runs: TokenBucket;
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
   * Whether `nodeId` may cause one more record of `action` now, from the run
   * budget for RUN_AUTHORIZE_ACTION and from the other for any other action.
   * When not, the drop is counted toward the node's next summary record, and
   * the caller refuses what the node asked for and writes nothing.
   */
  admit(nodeId: string, action: string): boolean {
    const now = this.#now();
    let bucket = this.#buckets.get(nodeId);
    if (bucket === undefined) {
      const runs = this.#limits.runs ?? NODE_AUDIT_LIMITS.runs!;
      bucket = { budget: new TokenBucket(this.#limits.perSecond, this.#limits.burst, this.#now), runs: new TokenBucket(runs.perSecond, runs.burst, this.#now), dropped: new Map(), since: 0, timer: undefined };
      this.#buckets.set(nodeId, bucket);
    }
    if ((action === RUN_AUTHORIZE_ACTION ? bucket.runs : bucket.budget).take()) return true;
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
