// Spans a collector does not take are said in the gateway's log at most
// once a minute: the first failure at once, the next ones counted and said
// with the first line after the minute. Exported for real, by the OTLP
// exporter, to a loopback port nothing listens on; the minute is a clock
// the test moves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { EXPORT_WARNING_EVERY_MS, ExportWarnings, type TraceLogEntry } from './export-warnings.ts';
import { freePort } from '../../../../scripts/testing/free-port.ts';

/** `count` finished spans. */
function spans(count: number): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] }).getTracer('test');
  for (let i = 0; i < count; i++) tracer.startSpan('s').end();
  return memory.getFinishedSpans();
}

describe('when exports to the collector keep failing', () => {
  it('writes one line at the first failure, none within the minute, then one counting every span dropped since', async () => {
    const lines: TraceLogEntry[] = [];
    let now = 1_000_000;
    const exporter = new ExportWarnings(new OTLPTraceExporter({ url: `http://127.0.0.1:${await freePort()}/v1/traces`, timeoutMillis: 300 }), (line) => lines.push(line), () => now);
    const failed = (batch: ReadableSpan[]) => new Promise<number>((resolve) => exporter.export(batch, (result) => resolve(result.code)));
    assert.notEqual(await failed(spans(2)), 0);
    assert.deepEqual(lines, [{ event: 'traces-export-failed', code: 'ECONNREFUSED', dropped: 2 }]);
    now += EXPORT_WARNING_EVERY_MS / 2;
    await failed(spans(3));
    now += EXPORT_WARNING_EVERY_MS / 2 - 1;
    await failed(spans(4));
    assert.equal(lines.length, 1, 'nothing more within the minute');
    now += 1;
    await failed(spans(5));
    assert.deepEqual(lines.at(-1), { event: 'traces-export-failed', code: 'ECONNREFUSED', dropped: 3 + 4 + 5 });
    await exporter.shutdown();
  });
});
