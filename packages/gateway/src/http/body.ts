// The one request-body reader: JSON objects only, size-capped while it
// arrives, with every failure a GATEWAY_PARAMS_INVALID (never a parser's own error).
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.ts';

/** Default body limit; the policy routes allow more. */
export const MAX_BODY_BYTES = 16 * 1024;

/** Reads the body as a JSON object (`{}` when empty). Throws GATEWAY_PARAMS_INVALID for a body too large, not sent as application/json, not JSON, or not an object. */
export async function readJson(request: IncomingMessage, limit: number = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > limit) throw new GatewayError('GATEWAY_PARAMS_INVALID', `the body is larger than ${limit} bytes`);
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new GatewayError('GATEWAY_PARAMS_INVALID', `the body is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  // A browser sends application/json across sites only after a preflight this
  // gateway never grants: requiring it stops forms on other sites posting here (a signed-out sign-in included).
  if (!/^application\/json\s*(;|$)/i.test(String(request.headers['content-type'] ?? ''))) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body must be sent as application/json');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body is not JSON', { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body is not a JSON object');
  return value as Record<string, unknown>;
}
