// The audit log as the gateway sees it: every append it makes (its append
// wrapper in gateway.ts), counted by outcome and timed until durable. The
// audit package itself knows nothing of metrics.
import { Counter, Histogram, type Registry } from 'prom-client';
import { DURATION_BUCKETS, secondsSince } from './durations.ts';
import { counting } from './counting.ts';

export class AuditMetrics {
  readonly #ok: { inc(): void };
  readonly #failed: { inc(): void };
  readonly #latency: { observe(seconds: number): void };

  constructor(registry: Registry) {
    const appends = new Counter({ name: 'corral_audit_appends_total', help: 'Records the gateway appended to the audit log, by outcome (ok: durable; error: the log refused it, and what it recorded failed closed).', labelNames: ['outcome'], registers: [registry] });
    this.#ok = counting(appends.labels('ok'));
    this.#failed = counting(appends.labels('error'));
    this.#latency = new Histogram({ name: 'corral_audit_append_duration_seconds', help: 'How long one audit append takes until its record is durable (or refused).', buckets: [...DURATION_BUCKETS], registers: [registry] });
  }

  /** Runs one append, counting and timing it; resolves or rejects as it does. */
  async append<T>(run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const record = await run();
      this.#ok.inc();
      return record;
    } catch (error) {
      this.#failed.inc();
      throw error;
    } finally {
      this.#latency.observe(secondsSince(started));
    }
  }
}
