// Frames of the OpenClaw gateway protocol, checked with upstream's own
// schemas and validators (`@openclaw/gateway-protocol`, pinned 2026.9.1).
// Every inbound frame is parsed once into a fresh object, validated, and used
// only in that form; no exception from JSON.parse or a validator escapes.
import {
  HelloOkSchema,
  formatValidationErrors,
  validateConnectParams,
  validateRequestFrame,
  type ConnectParams,
  type HelloOk,
  type RequestFrame,
} from '@openclaw/gateway-protocol';
import { isGatewayEventFrame, isGatewayResponseFrame, type EventFrame, type ResponseFrame } from '@openclaw/gateway-protocol/frame-guards';
import { Compile } from 'typebox/compile';
import { GatewayError, type WireError } from '../errors.ts';
import { MAX_FRAME_DEPTH } from './limits.ts';

export type { ConnectParams, EventFrame, HelloOk, RequestFrame, ResponseFrame };


const helloOkCheck = Compile(HelloOkSchema);

/** Parses frame text as JSON. Throws GATEWAY_FRAME_INVALID for anything that is not a JSON object. */
export function parseJson(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new GatewayError('GATEWAY_FRAME_INVALID', 'the frame is not JSON', { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new GatewayError('GATEWAY_FRAME_INVALID', 'the frame is not a JSON object');
  return value as Record<string, unknown>;
}

/**
 * Whether JSON `text` opens an object or array more than `max` levels down
 * (the outermost is level 1), read from the text before it is parsed: a deep
 * value is never built, and the scan costs a fraction of the parse (a walk of
 * the parsed value cost more than the parse for a frame of many small objects).
 * Brackets inside strings are skipped. Says nothing of whether `text` is JSON.
 */
function nestsDeeper(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: on to its closing quote, past escaped characters.
      for (i += 1; i < text.length; i += 1) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i += 1;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth -= 1;
  }
  return false;
}

/**
 * A client's frame as the gateway receives it: only `req` frames are valid
 * from a client. Throws GATEWAY_FRAME_INVALID (bad JSON or shape, or nested
 * deeper than MAX_FRAME_DEPTH) or GATEWAY_FRAME_OUT_OF_ORDER (a `res` or
 * `event` frame, which a client never sends).
 */
export function parseClientFrame(text: string): RequestFrame {
  // Before it is parsed: validators, handlers and what writes it back out (JSON.stringify) recurse.
  if (nestsDeeper(text, MAX_FRAME_DEPTH)) throw new GatewayError('GATEWAY_FRAME_INVALID', `the frame nests deeper than ${MAX_FRAME_DEPTH} levels`);
  const value = parseJson(text);
  if (value.type === 'res' || value.type === 'event') throw new GatewayError('GATEWAY_FRAME_OUT_OF_ORDER', `a client does not send ${String(value.type)} frames`);
  if (!validateRequestFrame(value)) throw new GatewayError('GATEWAY_FRAME_INVALID', `invalid request frame: ${formatValidationErrors(validateRequestFrame.errors)}`);
  return value;
}

/** Validates `connect` params with upstream's ConnectParams schema (closed object). Throws GATEWAY_FRAME_INVALID. */
export function checkConnectParams(params: unknown): ConnectParams {
  if (!validateConnectParams(params)) throw new GatewayError('GATEWAY_FRAME_INVALID', `invalid connect params: ${formatValidationErrors(validateConnectParams.errors)}`);
  return params;
}

/** A server's frame as a client receives it: `res` or `event`. Throws GATEWAY_FRAME_INVALID. */
export function parseServerFrame(text: string): ResponseFrame | EventFrame {
  const value = parseJson(text);
  if (isGatewayResponseFrame(value) || isGatewayEventFrame(value)) return value;
  throw new GatewayError('GATEWAY_FRAME_INVALID', 'not a response or event frame');
}

/** Whether a hello-ok payload matches upstream's HelloOk schema exactly (what Corral's gateway sends). */
export function isHelloOk(value: unknown): value is HelloOk {
  return helloOkCheck.Check(value);
}

/**
 * Whether a peer's hello-ok is acceptable: it matches the schema except for
 * fields a newer gateway added (upstream 2026.9.6 sends fields the 2026.9.1
 * schema does not list). Every field the schema requires is still checked.
 */
export function acceptsHelloOk(value: unknown): value is HelloOk {
  if (helloOkCheck.Check(value)) return true;
  const errors = [...helloOkCheck.Errors(value)];
  return errors.length > 0 && errors.every((e) => e.keyword === 'additionalProperties');
}

export function responseOk(id: string, payload: unknown): string {
  return JSON.stringify({ type: 'res', id, ok: true, payload });
}

export function responseError(id: string, error: WireError): string {
  return JSON.stringify({ type: 'res', id, ok: false, error });
}

export function eventFrame(event: string, payload: unknown, seq?: number): string {
  return JSON.stringify(seq === undefined ? { type: 'event', event, payload } : { type: 'event', event, payload, seq });
}
