/**
 * The closed set of reasons the gateway refuses or fails. A forged thing
 * (wrong token, a device proof that does not verify) and a refused thing
 * (a genuine peer that lacks a scope, a node not yet paired) have different
 * codes. No message ever holds a token, key or secret.
 */
export type GatewayErrorCode =
  // ---- frames
  /** A frame that is not JSON, not a known frame shape, or not valid for its method. */
  | 'GATEWAY_FRAME_INVALID'
  /** A frame larger than the limit of its phase (64 KiB before hello-ok) or, after it, of its kind of peer (server/inbound-budget.ts). */
  | 'GATEWAY_FRAME_TOO_LARGE'
  /** A peer that sent more than its byte budget over time allows (server/inbound-budget.ts), or a node that caused more audit records than its budget (exec/node-audit-budget.ts). */
  | 'GATEWAY_RATE_LIMITED'
  /** A frame the protocol does not allow at this point (anything but `connect` first, a second `connect`, a client `res`). */
  | 'GATEWAY_FRAME_OUT_OF_ORDER'
  // ---- handshake
  /** No `connect` before the handshake deadline. */
  | 'GATEWAY_HANDSHAKE_TIMEOUT'
  /** The client's protocol range does not include one this gateway speaks. */
  | 'GATEWAY_PROTOCOL_UNSUPPORTED'
  /** The shared token is missing or wrong. */
  | 'GATEWAY_AUTH_TOKEN_MISMATCH'
  /** The device proof does not verify (bad key, id, signature, stale, other nonce). */
  | 'GATEWAY_DEVICE_AUTH_INVALID'
  /** A node connected without a device proof. */
  | 'GATEWAY_DEVICE_REQUIRED'
  /** A genuine device waiting for an operator to pair it. */
  | 'GATEWAY_NOT_PAIRED'
  /** A genuine device seen for the first time while as many as Corral keeps already wait to be paired: not recorded, told to try again later. */
  | 'GATEWAY_PAIRING_FULL'
  /** A device whose pairing was revoked. */
  | 'GATEWAY_DEVICE_REVOKED'
  /** An agent identity token (`auth.agentRuntimeIdentityToken`) that does not verify, or on a node connection. */
  | 'GATEWAY_AGENT_TOKEN_INVALID'
  /** A role other than operator or node. */
  | 'GATEWAY_ROLE_INVALID'
  // ---- requests
  /** A method this gateway does not serve. */
  | 'GATEWAY_METHOD_UNKNOWN'
  /** The method is for the other role (a node calling operator methods, or the reverse). */
  | 'GATEWAY_ROLE_FORBIDDEN'
  /** The connection lacks a scope the method needs. */
  | 'GATEWAY_SCOPE_MISSING'
  /** Params do not match the method's schema. */
  | 'GATEWAY_PARAMS_INVALID'
  /** Too many requests in flight on one connection. */
  | 'GATEWAY_BUSY'
  /** A handler failed unexpectedly. */
  | 'GATEWAY_INTERNAL'
  /** A console session that ended before its request was done (its login changed or removed, signed out): nothing was done. */
  | 'GATEWAY_SESSION_ENDED'
  // ---- governed commands and approvals
  /** Policy denied the command (or could not be asked: then it is denied too). */
  | 'GATEWAY_POLICY_DENIED'
  | 'GATEWAY_APPROVAL_NOT_FOUND'
  /** The approval's expiry passed before it was resolved or used; or its receipt has lapsed (or is not valid yet). */
  | 'GATEWAY_APPROVAL_EXPIRED'
  /** The approval was already resolved (or used, for allow-once); or the node already took its receipt. */
  | 'GATEWAY_APPROVAL_RESOLVED'
  /** The approval (or its receipt) is for a different action, node or run than the one presented: never replayable. */
  | 'GATEWAY_APPROVAL_MISMATCH'
  /** The approval is still pending: there is no grant of it to revoke (deny it instead). */
  | 'GATEWAY_APPROVAL_PENDING'
  /** The approver is the human whose request the approval is for: an approval asks for someone else's eyes. */
  | 'GATEWAY_APPROVAL_OWN_REQUEST'
  /** An approval receipt that is malformed, signed with another key, or whose signature does not verify. */
  | 'GATEWAY_RECEIPT_INVALID'
  /** A compare-and-swap on the policy set kept losing to other changes. */
  | 'GATEWAY_CONFLICT'
  // ---- client side
  /** The connection closed, or could not be opened. */
  | 'GATEWAY_CONNECTION_CLOSED'
  /** The peer answered a request with an error. */
  | 'GATEWAY_REQUEST_FAILED'
  /** A request got no answer in time. */
  | 'GATEWAY_TIMEOUT'
  /** Start-up configuration is missing or wrong (no token, bad bind address). */
  | 'GATEWAY_CONFIG_INVALID'
  /** The OpenTelemetry environment variables ask for traces in a way the gateway cannot send them (a malformed endpoint or headers, a protocol other than http/json): the message names the variable, never its value. */
  | 'GATEWAY_TRACING_INVALID'
  /** `publicUrl` is not an absolute http(s) origin the gateway can be reached at (https unless its host is loopback; no credentials, path, query or fragment), or the console's OIDC redirectUri is not its callback. */
  | 'GATEWAY_PUBLIC_URL_INVALID'
  /** An entry of `trustedProxies` is not an IP address or an address block (`10.0.0.0/8`, `fd00::/8`) short of every address. */
  | 'GATEWAY_TRUSTED_PROXY_INVALID'
  /** Logged, never thrown: a trusted proxy sent an X-Forwarded-For that is not a list of addresses; the request is taken as from the proxy itself. */
  | 'GATEWAY_FORWARDED_INVALID'
  /** The gateway's own state, `gateway.db`, cannot be opened or used (a directory in its place, not a database, unreadable): the message names the file and what to do. */
  | 'GATEWAY_STORE_FAILED';

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: GatewayErrorCode;
  /**
   * The protocol error shape on the wire: on the client side the peer's error
   * (GATEWAY_REQUEST_FAILED); on the server side what a handler wants sent.
   */
  readonly wire: WireError | undefined;

  constructor(code: GatewayErrorCode, message: string, options: { cause?: unknown; wire?: WireError } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.wire = options.wire;
  }
}

/** The protocol's error shape: `{ code, message, details?, retryable?, retryAfterMs? }`. */
export interface WireError {
  code: string;
  message: string;
  details?: unknown;
  retryable?: boolean;
  retryAfterMs?: number;
}
