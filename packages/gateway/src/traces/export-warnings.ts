// A collector that is down or slow never hurts a governed run: spans it does
// not take are dropped, and the gateway's log says so at most once a
// minute, with a code and a count, never the endpoint or a header (an API
// key may be in either).
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** A line of the gateway's log: spans the collector did not take. */
export interface TraceLogEntry {
  event: 'traces-export-failed';
  /** Why, in a word: the network's error code (ECONNREFUSED), HTTP_<status>, or EXPORT_FAILED. */
  code: string;
  /** Spans dropped since the last such line, these included. */
  dropped: number;
}

/** At most one line a minute. */
export const EXPORT_WARNING_EVERY_MS = 60_000;
/** ExportResultCode.SUCCESS (@opentelemetry/core). */
const SUCCESS = 0;

type Done = Parameters<SpanExporter['export']>[1];

export class ExportWarnings implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #log: ((line: TraceLogEntry) => void) | undefined;
  readonly #now: () => number;
  #lastLine = -Infinity;
  #dropped = 0;

  constructor(inner: SpanExporter, log: ((line: TraceLogEntry) => void) | undefined, now: () => number = Date.now) {
    this.#inner = inner;
    this.#log = log;
    this.#now = now;
  }

  export(spans: ReadableSpan[], done: Done): void {
    this.#inner.export(spans, (result) => {
      if (result.code !== SUCCESS) this.#failed(spans.length, result.error);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }

  #failed(spans: number, error: unknown): void {
    this.#dropped += spans;
    if (this.#now() - this.#lastLine < EXPORT_WARNING_EVERY_MS) return;
    this.#lastLine = this.#now();
    const dropped = this.#dropped;
    this.#dropped = 0;
    this.#log?.({ event: 'traces-export-failed', code: failureCode(error), dropped });
  }
}

/** The failure's code alone: its message may quote the endpoint, and with it credentials. */
function failureCode(error: unknown): string {
  const failed = error as { code?: unknown; cause?: { code?: unknown } } | undefined;
  if (typeof failed?.code === 'number') return `HTTP_${failed.code}`;
  for (const code of [failed?.code, failed?.cause?.code]) if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,39}$/.test(code)) return code;
  return 'EXPORT_FAILED';
}
