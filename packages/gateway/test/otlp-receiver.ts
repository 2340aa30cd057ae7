// A collector's OTLP/HTTP traces receiver on loopback, as the specification
// defines it: POST /v1/traces with an ExportTraceServiceRequest as JSON
// (application/json, ids in hex), answered 200 with an empty
// ExportTraceServiceResponse. It keeps every body as it came (to look for
// what must never be sent) and the spans decoded from it.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server. */
  kind: number;
  /** OTLP's status: code 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  attributes: Record<string, string | number | boolean>;
  /** The resource's attributes (service.name…). */
  resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  /** The traces endpoint: http://127.0.0.1:PORT/v1/traces. */
  endpoint: string;
  bodies: string[];
  headers: IncomingHttpHeaders[];
  spans: ReceivedSpan[];
  /** Resolves once `done` holds of the spans received (within `ms`). */
  until(done: (spans: ReceivedSpan[]) => boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

function attributes(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) out[key] = value.stringValue ?? value.boolValue ?? value.doubleValue ?? Number(value.intValue);
  return out;
}

/** Starts a receiver; `answering: false` takes each request and never answers it (a collector hung). */
export async function otlpReceiver(answering = true): Promise<OtlpReceiver> {
  const bodies: string[] = [];
  const headers: IncomingHttpHeaders[] = [];
  const spans: ReceivedSpan[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (!answering) return;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/v1/traces');
      assert.match(req.headers['content-type'] ?? '', /^application\/json/);
      const body = Buffer.concat(chunks).toString('utf8');
      bodies.push(body);
      headers.push(req.headers);
      const request = JSON.parse(body) as { resourceSpans: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans: Array<{ spans: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; status?: { code?: number; message?: string }; attributes?: KeyValue[] }> }> }> };
      for (const rs of request.resourceSpans) {
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            spans.push({ traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', name: s.name, kind: s.kind, status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' }, attributes: attributes(s.attributes), resource: attributes(rs.resource?.attributes) });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    bodies,
    headers,
    spans,
    async until(done, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (!done(spans)) {
        if (Date.now() > deadline) assert.fail(`the collector did not receive the spans expected within ${ms} ms (${spans.length} received: ${spans.map((s) => s.name).join(', ')})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
