// One WebSocket connection to the gateway: its phase (waiting for `connect`,
// authenticated), its role and scopes, its own event sequence.
import { randomBytes, randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { ConnectParams } from '../protocol/frames.ts';
import { eventFrame } from '../protocol/frames.ts';
import { CLOSE } from '../protocol/limits.ts';
import type { OperatorScope, Role } from '../protocol/scopes.ts';
import type { PrincipalBacklog } from './principal-backlog.ts';

export type ConnectionPhase = 'challenge' | 'connecting' | 'ready' | 'closed';

/**
 * Pings kept for their answers: a peer the gateway holds off (InboundMeter)
 * is sent one each tick while its pongs wait, unread, behind the frames it
 * sent first; when they are read, an answer to any of the last few counts.
 */
const MAX_UNANSWERED_PINGS = 4;

/** Who is on the other end, once `connect` succeeded. */
export interface Peer {
  role: Role;
  scopes: OperatorScope[];
  /** The verified device id (required for nodes, optional for operators). */
  deviceId: string | undefined;
  client: ConnectParams['client'];
  /**
   * The Corral agent this operator connection acts as, from a verified agent
   * token: its generation (a suspension moves the agent's on) and expiry,
   * which every command checks again, since a connection outlives its token.
   */
  agent?: { id: string; name: string; tokenGeneration: number; expiresAtMs: number; keyId: string };
  /** What a node declared it serves. */
  commands: string[];
  caps: string[];
  protocol: number;
  connectedAt: number;
  remoteAddress: string;
}

export class Connection {
  readonly id = randomUUID();
  readonly socket: WebSocket;
  readonly nonce: string;
  readonly remoteAddress: string;
  phase: ConnectionPhase = 'challenge';
  peer: Peer | undefined;
  inFlight = 0;
  /** What this connection's principal (its agent, its device) may leave unread across its connections; set once authenticated. */
  backlog: PrincipalBacklog | undefined;
  /** Why the gateway closed this connection (close's reason, a few fixed words); undefined while open, or when the peer closed it. */
  closedBecause: string | undefined;
  /** Whether the peer answered the last WebSocket ping (ping, pong). */
  alive = true;
  /** The payloads of the pings not yet answered, oldest first (at most MAX_UNANSWERED_PINGS). */
  #pings: Buffer[] = [];
  #seq = 0;
  readonly #maxBufferedBytes: number;

  constructor(socket: WebSocket, nonce: string, remoteAddress: string, maxBufferedBytes: number) {
    this.socket = socket;
    this.nonce = nonce;
    this.remoteAddress = remoteAddress;
    this.#maxBufferedBytes = maxBufferedBytes;
  }

  /**
   * Sends frame text; drops a peer that lets more than maxBufferedBytes pile
   * up, or whose principal's connections together do (PrincipalBacklog).
   * Returns whether it was sent.
   */
  send(text: string): boolean {
    if (this.phase === 'closed' || this.socket.readyState !== this.socket.OPEN) return false;
    if (this.socket.bufferedAmount > this.#maxBufferedBytes) {
      this.close(CLOSE.policyViolation, 'slow consumer');
      return false;
    }
    if (this.backlog !== undefined && !this.backlog.admit(this)) return false;
    this.socket.send(text);
    return true;
  }

  /** An event with this connection's next sequence number (each socket has its own sequence). */
  event(name: string, payload: unknown): boolean {
    if (this.phase !== 'ready') return this.send(eventFrame(name, payload));
    this.#seq += 1;
    return this.send(eventFrame(name, payload, this.#seq));
  }

  /**
   * Pings the peer with a payload it cannot guess, and counts it not alive
   * until it answers. Only a peer that reads what it is sent can echo the
   * payload (RFC 6455 §5.5.3): a pong of its own making, sent with its pings
   * unread, is no answer. Throws what ws throws for a socket closing.
   */
  ping(): void {
    this.alive = false;
    const payload = randomBytes(8);
    this.#pings = [...this.#pings.slice(1 - MAX_UNANSWERED_PINGS), payload];
    this.socket.ping(payload);
  }

  /**
   * Takes a pong: the peer is alive if it echoes a ping not yet answered.
   * That ping and those before it are answered then (pongs come in the order
   * of their pings): an answer sent again is no answer to a later ping.
   */
  pong(data: Buffer): void {
    const answered = this.#pings.findIndex((payload) => payload.equals(data));
    if (answered === -1) return;
    this.#pings = this.#pings.slice(answered + 1);
    this.alive = true;
  }

  /**
   * Closes (1008) and drops the socket at once, with what it left unread: its
   * close frame would wait behind that, for a peer that reads nothing, while
   * the gateway held it all for the close handshake.
   */
  cutOff(reason: string): void {
    this.close(CLOSE.policyViolation, reason);
    this.socket.terminate();
  }

  close(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.closedBecause = reason.slice(0, 120);
    try {
      this.socket.close(code, reason.slice(0, 120));
    } catch {
      this.socket.terminate();
    }
    // A peer that does not answer the close handshake is cut off.
    setTimeout(() => this.socket.terminate(), 2_000).unref();
  }
}
