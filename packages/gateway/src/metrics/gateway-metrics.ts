// One gateway's metrics, in a registry of its own (tests run many gateways
// in one process; prom-client's global registry would mix them), exposed
// with the process's at GET /metrics (docs/http-api.md). No metric or label
// holds a token, an argv, an environment value, policy text or a path.
import { Registry } from 'prom-client';
import { AuditMetrics } from './audit-metrics.ts';
import { InvokeMetrics } from './invoke-metrics.ts';
import { processRegistry } from './process-registry.ts';
import { ProtocolMetrics } from './protocol-metrics.ts';
import { registerStateGauges, type GatewayState } from './state-gauges.ts';

export class GatewayMetrics {
  readonly #registry = new Registry();
  /** The gateway's and the process's, merged at the first scrape. */
  #exposed: Registry | undefined;
  readonly invoke = new InvokeMetrics(this.#registry);
  readonly audit = new AuditMetrics(this.#registry);
  readonly protocol = new ProtocolMetrics(this.#registry);

  /** Adds the gauges read at each scrape, once the gateway's parts exist. */
  watch(state: GatewayState): void {
    registerStateGauges(this.#registry, state);
  }

  /** The Prometheus text exposition of every metric, with its content type. Throws what a gauge's read throws (a store that cannot be read now). */
  async exposition(): Promise<{ contentType: string; text: string }> {
    this.#exposed ??= Registry.merge([this.#registry, processRegistry()]);
    return { contentType: this.#exposed.contentType, text: await this.#exposed.metrics() };
  }
}
