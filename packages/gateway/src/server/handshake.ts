// The `connect` request: protocol range, shared token, device proof, role
// and scopes (docs/gateway/protocol/handshake.md and auth.md upstream).
// Guard clauses in the order the protocol states them; each refusal carries
// upstream's detail code for the client and a GatewayError code for the log.
import { createHash, timingSafeEqual } from 'node:crypto';
import { MIN_CLIENT_PROTOCOL_VERSION, MIN_NODE_PROTOCOL_VERSION, PROTOCOL_VERSION } from '@openclaw/gateway-protocol';
import { buildPairingConnectErrorDetails, buildPairingConnectErrorMessage } from '@openclaw/gateway-protocol/connect-error-details';
import { IdentityError, printable, verifyDeviceProof, type Identity } from '@corral/identity';
import { GatewayError } from '../errors.ts';
import type { ConnectParams } from '../protocol/frames.ts';
import { grantScopes, type Role } from '../protocol/scopes.ts';
import type { Peer } from './connection.ts';
import type { DeviceTokens } from './device-tokens.ts';

/**
 * Authenticates one `connect`: the shared gateway token, a device token
 * (`auth.deviceToken`) issued to the device whose proof follows, or — for an
 * operator connection — a Corral agent token (`auth.agentRuntimeIdentityToken`,
 * verified by the server before the connection is accepted), so an agent
 * needs no shared token and cannot reconnect as the operator with it.
 * Returns the peer, or throws GatewayError with `wire` set to what the client
 * is told. `nonce` is this connection's challenge.
 */
export function authenticateConnect(
  params: ConnectParams,
  context: { nonce: string; token: string; identity: Identity; remoteAddress: string; now: number; deviceTokens?: DeviceTokens },
): Peer {
  const role = roleOf(params.role);
  const protocol = negotiate(params, role);
  const presented = params.auth?.token ?? params.auth?.password;
  // A device token stands in for the shared token only with a device proof for that same device (checked below).
  const deviceToken = params.auth?.deviceToken ?? params.auth?.token;
  const byDeviceToken = params.device !== undefined && deviceToken !== undefined && context.deviceTokens?.verify(params.device.id, role, deviceToken) === true;
  const agentToken = params.auth?.agentRuntimeIdentityToken;
  const byAgentToken = role === 'operator' && typeof agentToken === 'string' && agentToken !== '';
  if ((presented === undefined || presented === '') && !byDeviceToken) {
    if (byAgentToken) return peerOf(params, role, protocol, undefined, context);
    throw refusal('GATEWAY_AUTH_TOKEN_MISMATCH', 'unauthorized: gateway token missing', { code: 'AUTH_TOKEN_MISSING', canRetryWithDeviceToken: false, recommendedNextStep: 'update_auth_configuration' });
  }
  if (!byDeviceToken && !sameSecret(presented ?? '', context.token)) {
    throw refusal('GATEWAY_AUTH_TOKEN_MISMATCH', 'unauthorized: gateway token mismatch', { code: 'AUTH_TOKEN_MISMATCH', canRetryWithDeviceToken: false, recommendedNextStep: 'update_auth_credentials' });
  }
  if (role === 'node' && params.device === undefined) {
    throw refusal('GATEWAY_DEVICE_REQUIRED', 'device identity required', { code: 'DEVICE_IDENTITY_REQUIRED' });
  }
  let deviceId: string | undefined;
  if (params.device !== undefined) {
    // The token the device signed: `auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? ""`.
    const signedToken = params.auth?.token ?? params.auth?.deviceToken ?? params.auth?.bootstrapToken ?? '';
    const client = {
      id: params.client.id,
      mode: params.client.mode,
      ...(params.client.platform !== undefined ? { platform: params.client.platform } : {}),
      ...(params.client.deviceFamily !== undefined ? { deviceFamily: params.client.deviceFamily } : {}),
      ...(params.client.displayName !== undefined ? { displayName: params.client.displayName } : {}),
    };
    try {
      if (role === 'node') {
        deviceId = context.identity.nodes.authenticate({ device: params.device, client, role, scopes: params.scopes ?? [], token: signedToken, commands: params.commands ?? [] }, context.nonce).deviceId;
      } else {
        // The id the proof was checked for, as nodes.authenticate does for a node.
        deviceId = verifyDeviceProof(params.device, {
          clientId: client.id,
          clientMode: client.mode,
          role,
          scopes: params.scopes ?? [],
          token: signedToken,
          ...(client.platform !== undefined ? { platform: client.platform } : {}),
          ...(client.deviceFamily !== undefined ? { deviceFamily: client.deviceFamily } : {}),
          expectedNonce: context.nonce,
          now: context.now,
        }).deviceId;
      }
    } catch (error) {
      throw deviceRefusal(error, params.device.id, pairingRequestOf(context.identity, params.device.id), role);
    }
  }
  return peerOf(params, role, protocol, deviceId, context);
}

function peerOf(params: ConnectParams, role: Role, protocol: number, deviceId: string | undefined, context: { now: number; remoteAddress: string }): Peer {
  return {
    role,
    scopes: grantScopes(role, params.scopes),
    deviceId,
    // What the client says of itself reaches operators' terminals and pages (node lists, pairing requests): no control characters.
    client: {
      ...params.client,
      ...(params.client.displayName !== undefined ? { displayName: printable(params.client.displayName, 200) } : {}),
      platform: printable(params.client.platform, 64),
    },
    commands: role === 'node' ? [...new Set(params.commands ?? [])] : [],
    caps: declaredCaps(params.caps),
    protocol,
    connectedAt: context.now,
    remoteAddress: context.remoteAddress,
  };
}

/**
 * The caps a client declared, each once, without those holding a control or
 * format character: they reach operators' lists too, and one cleaned could
 * read as another cap (`corral.invoke.release` and a zero-width space), so it
 * is dropped.
 */
export function declaredCaps(caps: readonly string[] | undefined): string[] {
  return [...new Set(caps ?? [])].filter((cap) => printable(cap, cap.length) === cap);
}

function roleOf(role: string | undefined): Role {
  if (role === undefined || role === 'operator') return 'operator';
  if (role === 'node') return 'node';
  throw refusal('GATEWAY_ROLE_INVALID', 'unknown role', undefined);
}

/** Operators must include the current protocol; nodes (client mode node) may use one version older. */
function negotiate(params: ConnectParams, role: Role): number {
  const floor = role === 'node' && params.client.mode === 'node' ? MIN_NODE_PROTOCOL_VERSION : MIN_CLIENT_PROTOCOL_VERSION;
  const version = Math.min(params.maxProtocol, PROTOCOL_VERSION);
  if (version < floor || version < params.minProtocol) {
    throw refusal('GATEWAY_PROTOCOL_UNSUPPORTED', 'protocol mismatch', { code: 'PROTOCOL_MISMATCH', expectedProtocol: PROTOCOL_VERSION });
  }
  return version;
}

const DEVICE_DETAIL: Record<string, string> = {
  IDENTITY_DEVICE_PUBLIC_KEY_INVALID: 'DEVICE_AUTH_PUBLIC_KEY_INVALID',
  IDENTITY_DEVICE_ID_MISMATCH: 'DEVICE_AUTH_DEVICE_ID_MISMATCH',
  IDENTITY_DEVICE_SIGNATURE_EXPIRED: 'DEVICE_AUTH_SIGNATURE_EXPIRED',
  IDENTITY_DEVICE_NONCE_REQUIRED: 'DEVICE_AUTH_NONCE_REQUIRED',
  IDENTITY_DEVICE_NONCE_MISMATCH: 'DEVICE_AUTH_NONCE_MISMATCH',
  IDENTITY_DEVICE_SIGNATURE_INVALID: 'DEVICE_AUTH_SIGNATURE_INVALID',
};

/** The id an operator approves the pairing of `deviceId` by: its surface request's, else its device id (also when the store cannot be read now). */
function pairingRequestOf(identity: Identity, deviceId: string): string {
  try {
    return identity.nodes.find(deviceId)?.surfaceRequest?.requestId ?? deviceId;
  } catch {
    // The store failed for the refusal being answered too: that refusal says so, not this lookup.
    return deviceId;
  }
}

/** `requestId` is the node's pairing request, which an operator approves by that id. */
function deviceRefusal(error: unknown, deviceId: string, requestId: string, role: Role): GatewayError {
  if (!(error instanceof IdentityError)) return new GatewayError('GATEWAY_INTERNAL', 'device check failed', { cause: error, wire: { code: 'UNAVAILABLE', message: 'device check failed', retryable: true } });
  if (error.code === 'IDENTITY_NODE_NOT_PAIRED') {
    const details = buildPairingConnectErrorDetails({ reason: 'not-paired', requestId, deviceId, requestedRole: role, recommendedNextStep: 'wait_then_retry', retryable: true, pauseReconnect: false });
    return new GatewayError('GATEWAY_NOT_PAIRED', 'the node waits for an operator to pair it', { cause: error, wire: { code: 'NOT_PAIRED', message: buildPairingConnectErrorMessage('not-paired'), details, retryable: true } });
  }
  if (error.code === 'IDENTITY_NODE_PENDING_FULL') {
    // Not NOT_PAIRED: nothing was recorded, so there is no request to announce or approve. Retryable: room is made as operators decide, or as waiting requests go stale.
    const message = 'too many devices already wait to be paired: try again later, or ask an operator to pair or reject the waiting ones';
    return new GatewayError('GATEWAY_PAIRING_FULL', 'a new device was refused: the pending pairing requests are full', { cause: error, wire: { code: 'UNAVAILABLE', message, retryable: true, details: { code: 'PAIRING_PENDING_FULL', recommendedNextStep: 'wait_then_retry', retryable: true, pauseReconnect: false } } });
  }
  if (error.code === 'IDENTITY_NODE_REVOKED') {
    return new GatewayError('GATEWAY_DEVICE_REVOKED', 'the node was unpaired', { cause: error, wire: { code: 'NOT_PAIRED', message: 'device pairing was revoked', details: { code: 'PAIRING_REQUIRED', reason: 'revoked', recommendedNextStep: 'review_auth_configuration' } } });
  }
  if (error.code === 'IDENTITY_NODE_SURFACE_INVALID') return new GatewayError('GATEWAY_PARAMS_INVALID', error.message, { cause: error, wire: { code: 'INVALID_REQUEST', message: error.message } });
  if (error.code === 'IDENTITY_STORE_BUSY') return storeBusy(error);
  // A store that cannot be read (damaged) checked nothing: the node is asked to retry, as for any fault of the
  // gateway's own, never told its device was refused (a DEVICE_AUTH_* refusal stops a node for good).
  if (error.code === 'IDENTITY_STORE_FAILED') return new GatewayError('GATEWAY_INTERNAL', 'the identity store cannot be read', { cause: error, wire: { code: 'UNAVAILABLE', message: 'device check failed', retryable: true } });
  const detail = DEVICE_DETAIL[error.code] ?? 'DEVICE_AUTH_INVALID';
  return new GatewayError('GATEWAY_DEVICE_AUTH_INVALID', 'device authentication failed', { cause: error, wire: { code: 'INVALID_REQUEST', message: 'device authentication failed', details: { code: detail } } });
}

/**
 * The identity store held by another process past its busy timeout: nothing
 * was checked, so nothing is refused for good — the peer is asked to retry
 * (a refusal of its device would make a node give up).
 */
export function storeBusy(error: IdentityError): GatewayError {
  return new GatewayError('GATEWAY_BUSY', 'the identity store is busy', { cause: error, wire: { code: 'UNAVAILABLE', message: 'the gateway is busy: try again shortly', retryable: true, retryAfterMs: 1_000 } });
}

/** GATEWAY_BUSY (see storeBusy) for identity's IDENTITY_STORE_BUSY; undefined for anything else. */
export function busyFailure(error: unknown): GatewayError | undefined {
  return error instanceof IdentityError && error.code === 'IDENTITY_STORE_BUSY' ? storeBusy(error) : undefined;
}

function refusal(code: GatewayError['code'], message: string, details: Record<string, unknown> | undefined): GatewayError {
  return new GatewayError(code, message, { wire: { code: 'INVALID_REQUEST', message, ...(details ? { details } : {}) } });
}

/** Constant-time comparison of two secrets of any length (compares their SHA-256). */
export function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a, 'utf8').digest();
  const y = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(x, y);
}
