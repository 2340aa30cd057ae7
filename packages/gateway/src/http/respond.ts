// How every HTTP answer leaves the gateway: JSON with `cache-control:
// no-store`, and the same security headers on everything (static files too).
import type { ServerResponse } from 'node:http';

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  // No inline script or style; base-uri and form-action do not fall back to default-src.
  'content-security-policy': "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  // frame-ancestors for browsers that predate it: the approve button is never shown inside another site's frame.
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // A page of another site that opens the console keeps no handle on its window: it could send it to a look-alike page of its own.
  'cross-origin-opener-policy': 'same-origin',
};

/** What a route hands back; `body` undefined sends no body. */
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string | string[]>;
}

export function reply(status: number, body?: unknown, headers?: Record<string, string | string[]>): Reply {
  return { status, ...(body !== undefined ? { body } : {}), ...(headers ? { headers } : {}) };
}

/** The error shape of the API: `{error, message?, code?, issues?, retryAfterS?}`; a wait is said in a Retry-After header too, which HTTP clients read. */
export function failure(status: number, error: string, extra: { message?: string; code?: string; issues?: unknown[]; retryAfterS?: number } = {}): Reply {
  return reply(status, { error, ...extra }, extra.retryAfterS !== undefined ? { 'retry-after': String(extra.retryAfterS) } : undefined);
}

export function send(response: ServerResponse, answer: Reply): void {
  if (response.headersSent) return void response.end();
  const headers: Record<string, string | string[]> = { ...SECURITY_HEADERS, 'cache-control': 'no-store', ...answer.headers };
  if (answer.body === undefined) return void response.writeHead(answer.status, headers).end();
  response.writeHead(answer.status, { 'content-type': 'application/json', ...headers }).end(`${JSON.stringify(answer.body)}\n`);
}
