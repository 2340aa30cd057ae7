// Numbers the OpenClaw gateway protocol fixes or advertises
// (docs/gateway/protocol/transport.md; src/gateway/server-constants.ts upstream).

/** Frames before hello-ok are capped at 64 KiB (upstream MAX_PREAUTH_PAYLOAD_BYTES). */
export const MAX_PREAUTH_PAYLOAD_BYTES = 64 * 1024;
/**
 * Frames of any kind (text, ping, pong) a peer may send before hello-ok:
 * Corral's bound, upstream states none. A client sends one, `connect`, and
 * perhaps a ping to keep a slow handshake alive.
 */
export const MAX_PREAUTH_FRAMES = 64;
/** After hello-ok: `policy.maxPayload` (upstream default 25 MiB). */
export const MAX_PAYLOAD_BYTES = 25 * 1024 * 1024;
/**
 * How deep a frame's JSON may nest (Corral's bound; upstream states none).
 * Past it the frame is invalid: the gateway writes what it takes back out
 * (a result to its caller, a record), and JSON.stringify recurses, running
 * out of stack near 4,000 levels, which a 10 KiB frame of brackets reaches.
 * No frame of the protocol comes near it.
 */
export const MAX_FRAME_DEPTH = 128;
/** `policy.maxBufferedBytes` (upstream default 50 MiB): a client slower than this is dropped. */
export const MAX_BUFFERED_BYTES = 50 * 1024 * 1024;
/** `policy.tickIntervalMs` (upstream default 15 s). */
export const TICK_INTERVAL_MS = 15_000;
/** A connection must complete `connect` within this (upstream 15 s). */
export const HANDSHAKE_TIMEOUT_MS = 15_000;
/** Requests one connection may have in flight before new ones get a retryable UNAVAILABLE. */
export const MAX_IN_FLIGHT = 64;

/** WebSocket close codes the gateway uses (RFC 6455 §7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  /** A frame that breaks the protocol: malformed or out of order. */
  protocolError: 1002,
  /** Authentication or policy refusal (upstream closes device-proof failures with 1008). */
  policyViolation: 1008,
  /** A frame over the size limit of its phase. */
  tooBig: 1009,
  internal: 1011,
  /** A store or resource busy for now: reconnect later (IANA-registered 1013). */
  tryAgainLater: 1013,
} as const;
