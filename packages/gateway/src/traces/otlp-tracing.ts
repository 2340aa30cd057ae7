// The gateway's traces sent to an OpenTelemetry collector: OTLP over HTTP as
// JSON, batched. Imported only when tracing is asked for (gateway.ts), so
// that a gateway without it never loads the SDK. No global provider is
// registered and nothing is instrumented: the only spans are the governed
// path's (TracedMeter), never an HTTP request with its URL and headers.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type IdGenerator } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { InvokeMeter } from '../metrics/invoke-metrics.ts';
import { GATEWAY_VERSION } from '../server/server.ts';
import { ExportWarnings, type TraceLogEntry } from './export-warnings.ts';
import { TracedMeter, type ChosenTraceIds } from './traced-meter.ts';
import type { TracingConfig } from './tracing-config.ts';

/** How long close() gives the last spans to reach the collector: a collector down or slow never holds the gateway's shutdown longer. */
export const CLOSE_FLUSH_MS = 2_000;
/**
 * How long one export may take, tries again included, before it is given up
 * (its spans dropped): a collector answers in milliseconds, and an export in
 * flight when the gateway closes holds its process this long at most.
 */
const EXPORT_TIMEOUT_MS = 2_000;
/** Spans waiting for export at most: past it new ones are dropped, never the gateway slowed. */
const MAX_QUEUED_SPANS = 2_048;

/** The gateway's traces while it runs. */
export interface Tracing {
  /** `inner` (the gateway's metrics) with a span for each node.invoke and each of its steps. */
  traced(inner: InvokeMeter): InvokeMeter;
  /** Sends what is queued, for CLOSE_FLUSH_MS at most, and stops. Never rejects. */
  close(): Promise<void>;
}

/** Starts sending traces as `config` says; an export that fails is written to `log` at most once a minute (ExportWarnings). */
export function startTracing(config: TracingConfig, log: ((line: TraceLogEntry) => void) | undefined): Tracing {
  const ids = new ChosenIds();
  const exporter = new ExportWarnings(new OTLPTraceExporter({ url: config.endpoint, headers: config.headers, timeoutMillis: EXPORT_TIMEOUT_MS }), log);
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_SERVICE_VERSION]: GATEWAY_VERSION })),
    idGenerator: ids,
    spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: MAX_QUEUED_SPANS, scheduledDelayMillis: config.batchDelayMs, exportTimeoutMillis: EXPORT_TIMEOUT_MS })],
  });
  const tracer = provider.getTracer('@corral/gateway', GATEWAY_VERSION);
  return {
    traced: (inner) => new TracedMeter(inner, tracer, ids),
    close: async () => {
      const flushed = provider.shutdown().catch(() => undefined);
      await Promise.race([flushed, sleep(CLOSE_FLUSH_MS, undefined, { ref: false })]);
    },
  };
}

/** The SDK's ids, but a root span's trace id is the one chosen for it (TracedMeter), so that it is its audit records' trace. */
class ChosenIds implements IdGenerator, ChosenTraceIds {
  #next: string | undefined;

  use(traceId: string): void {
    this.#next = traceId;
  }

  generateTraceId(): string {
    const chosen = this.#next;
    this.#next = undefined;
    return chosen ?? randomBytes(16).toString('hex');
  }

  generateSpanId(): string {
    return randomBytes(8).toString('hex');
  }
}
