// The one request-body reader: JSON objects only, size-capped while it
// arrives, with every failure a GATEWAY_PARAMS_INVALID (never a parser's own error).
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.ts';

/**
 * Decodes strictly (RFC 8259 §8.1: JSON exchanged between systems is UTF-8):
 * a byte sequence that is not UTF-8 is refused, never read as U+FFFD, which
 * would let a name, reason or password arrive other than it was sent. A byte
 * order mark is kept, so JSON.parse refuses it as before.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Default body limit; the policy routes allow more. */
export const MAX_BODY_BYTES = 16 * 1024;

/**
 * Reads the body as a JSON object (`{}` when empty, unless `required`).
 * Throws GATEWAY_PARAMS_INVALID for a body too large, not sent as
 * application/json, not UTF-8, not JSON, or not an object, and for none when `required`.
 */
export async function readJson(request: IncomingMessage, limit: number = MAX_BODY_BYTES, required = false): Promise<Record<string, unknown>> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > limit) throw new GatewayError('GATEWAY_PARAMS_INVALID', `the body is larger than ${limit} bytes`);
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new GatewayError('GATEWAY_PARAMS_INVALID', `the body is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  // Any page can send a bodiless POST here (a form without fields, a no-cors fetch): where that must not count, a body is required.
  if (size === 0 && required) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body must be a JSON object sent as application/json');
  if (size === 0) return {};
  // A browser sends application/json across sites only after a preflight this
  // gateway never grants: requiring it stops forms on other sites posting here (a signed-out sign-in included).
  if (!/^application\/json\s*(;|$)/i.test(String(request.headers['content-type'] ?? ''))) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body must be sent as application/json');
  let text: string;
  try {
    text = UTF8.decode(Buffer.concat(chunks));
  } catch (error) {
    throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body is not UTF-8', { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body is not JSON', { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body is not a JSON object');
  return value as Record<string, unknown>;
}
