// GET /metrics, once its caller was let in (http/api.ts checks the host and
// the token, as for the API): the Prometheus text exposition, never cached.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SECURITY_HEADERS } from '../http/respond.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';

/** Where the metrics are served. */
export const METRICS_PATH = '/metrics';

/** What the HTTP API serves at METRICS_PATH: a gateway's metrics, and the token a scraper reads them with (none: only the gateway token and sessions may). */
export interface MetricsEndpoint {
  metrics: GatewayMetrics;
  scrapeToken: string | undefined;
}

/** Writes the exposition (headers alone for HEAD). Rejects with what the exposition throws, before anything is written. */
export async function sendMetrics(request: IncomingMessage, response: ServerResponse, metrics: GatewayMetrics): Promise<void> {
  const { contentType, text } = await metrics.exposition();
  response.writeHead(200, { ...SECURITY_HEADERS, 'cache-control': 'no-store', 'content-type': contentType });
  response.end(request.method === 'HEAD' ? undefined : text);
}
