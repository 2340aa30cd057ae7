// The protocol server's refusals and connections (server/server.ts tells of
// each): what a flood, a wrong token or a misbehaving node looks like from
// outside, counted in full where the log keeps to its budget.
import { Counter, type Registry } from 'prom-client';
import type { GatewayErrorCode } from '../errors.ts';
import type { PeerKind } from '../server/inbound-budget.ts';
import { counting } from './counting.ts';

/** The codes the server refuses connections, frames and requests with; any other reads `other`, so the label stays bounded whatever a log line says. */
const REFUSAL_CODES: ReadonlySet<string> = new Set([
  'GATEWAY_FRAME_INVALID',
  'GATEWAY_FRAME_TOO_LARGE',
  'GATEWAY_RATE_LIMITED',
  'GATEWAY_FRAME_OUT_OF_ORDER',
  'GATEWAY_HANDSHAKE_TIMEOUT',
  'GATEWAY_PROTOCOL_UNSUPPORTED',
  'GATEWAY_AUTH_TOKEN_MISMATCH',
  'GATEWAY_DEVICE_AUTH_INVALID',
  'GATEWAY_DEVICE_REQUIRED',
  'GATEWAY_NOT_PAIRED',
  'GATEWAY_PAIRING_FULL',
  'GATEWAY_DEVICE_REVOKED',
  'GATEWAY_AGENT_TOKEN_INVALID',
  'GATEWAY_ROLE_INVALID',
  'GATEWAY_METHOD_UNKNOWN',
  'GATEWAY_ROLE_FORBIDDEN',
  'GATEWAY_SCOPE_MISSING',
  'GATEWAY_PARAMS_INVALID',
  'GATEWAY_BUSY',
  'GATEWAY_INTERNAL',
  'GATEWAY_UPGRADE_REFUSED',
] satisfies ReadonlyArray<GatewayErrorCode | 'GATEWAY_UPGRADE_REFUSED'>);

const PEER_KINDS: readonly PeerKind[] = ['operator', 'agent', 'node'];

export class ProtocolMetrics {
  readonly #refusals: Counter<'event' | 'code'>;
  readonly #accepted = {} as Record<PeerKind, { inc(): void }>;

  constructor(registry: Registry) {
    this.#refusals = new Counter({ name: 'corral_protocol_refusals_total', help: 'WebSocket upgrades, handshakes, frames and requests the gateway refused (event refused), and connections it closed for breaking the protocol (event protocol-error), by code.', labelNames: ['event', 'code'], registers: [registry] });
    const accepted = new Counter({ name: 'corral_connections_accepted_total', help: 'Protocol connections that completed the handshake, by role (operator, agent, node).', labelNames: ['role'], registers: [registry] });
    for (const kind of PEER_KINDS) this.#accepted[kind] = counting(accepted.labels(kind));
  }

  /** A refusal or a protocol fault the server logs (or would, past its log budget). */
  readonly refused = (event: 'refused' | 'protocol-error', code: string | undefined): void => {
    this.#refusals.labels(event, code !== undefined && REFUSAL_CODES.has(code) ? code : 'other').inc();
  };

  /** A connection that completed its handshake as `kind`. */
  accepted(kind: PeerKind): void {
    this.#accepted[kind].inc();
  }
}
