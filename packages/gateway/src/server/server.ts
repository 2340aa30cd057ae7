// The gateway's WebSocket server, speaking the OpenClaw gateway protocol:
// `connect.challenge` → `connect` → hello-ok, then requests dispatched to
// registered methods by role and scope, events with a per-connection
// sequence, and ticks. A bad frame closes only its own connection.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PROTOCOL_VERSION, missingScopeErrorShape } from '@openclaw/gateway-protocol';
import { printable, tokenKeyId, type Identity } from '@corral/identity';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { GatewayError, type WireError } from '../errors.ts';
import { checkConnectParams, parseClientFrame, responseError, responseOk, type ConnectParams, type HelloOk, type RequestFrame } from '../protocol/frames.ts';
import { CLOSE, HANDSHAKE_TIMEOUT_MS, MAX_BUFFERED_BYTES, MAX_IN_FLIGHT, MAX_PREAUTH_FRAMES, MAX_PREAUTH_PAYLOAD_BYTES, TICK_INTERVAL_MS } from '../protocol/limits.ts';
import { AGENT_SCOPES, hasScope, type OperatorScope, type Role } from '../protocol/scopes.ts';
import { Connection, type Peer } from './connection.ts';
import type { DeviceTokens } from './device-tokens.ts';
import { authenticateConnect, busyFailure, declaredCaps } from './handshake.ts';
import { badInboundLimits, FrameScanner, INBOUND_LIMITS, inboundBudgets, InboundMeter, type InboundBudgets, type InboundLimits, type InboundRefusal, type PeerKind } from './inbound-budget.ts';
import { PrincipalBacklog } from './principal-backlog.ts';
import { ThrottledLog } from './throttled-log.ts';
import { TokenBucket } from './token-bucket.ts';
import { UnaskedAnswers } from './unasked-answers.ts';
import { hostAllowed, originAllowed, type PublicAddress } from './addressed.ts';
import { ClientAddresses } from '../http/client-address.ts';

export const GATEWAY_VERSION = '0.1.0';

/**
 * Bounds on sockets, so that no one without the token can hold the gateway
 * (slow-loris: one header byte a second kept a socket ~81 s under Node's
 * defaults; ~20,000 of them used up every file descriptor).
 * - Every socket counts toward MAX_CONNECTIONS: the 1,000-node bench
 *   (bench/nodes.bench.ts) with room to spare, well under the usual 20,000
 *   descriptors a process may open.
 * - A socket that has not completed the handshake (an HTTP request, or a
 *   WebSocket before hello-ok) also counts toward MAX_UNAUTHENTICATED. Past
 *   either cap the oldest such socket is closed to make room — one still
 *   sending its headers before one that sent them — so a flood of slow
 *   sockets delays a real client by at most one eviction, never keeps it
 *   out; only authenticated connections (they hold the token) can fill the
 *   total, and a newcomer is refused only then. An agent token is no gateway
 *   token: one agent holds at most MAX_AGENT_CONNECTIONS.
 * - One address (an IPv6 /64) other than 127.0.0.1 and ::1 holds at most
 *   MAX_UNAUTHENTICATED_PER_ADDRESS unauthenticated sockets: past it, its
 *   newcomer closes its own oldest, so a flood from one host never closes
 *   another host's handshake (it closed every one older than the flood's
 *   last MAX_UNAUTHENTICATED sockets).
 * - Behind the operator's reverse proxy every client arrives from the proxy's
 *   address. A trusted proxy's socket (clientAddresses) is counted toward the
 *   per-address cap of the client it forwards for, once its request head
 *   says who that is, and again at each request of a keep-alive socket: one
 *   client's flood through the proxy closes its own oldest, never another's
 *   (every client shared the proxy's MAX_UNAUTHENTICATED_PER_ADDRESS). Until
 *   its head arrives it holds only a place under MAX_UNAUTHENTICATED and the
 *   headers deadline, as loopback's sockets do: a proxy opens a socket for
 *   a client it is about to name, and a proxy that stalls is still cut off.
 * - Headers must arrive within HEADERS_TIMEOUT_MS, a whole request within
 *   REQUEST_TIMEOUT_MS; an idle keep-alive socket closes after
 *   KEEP_ALIVE_TIMEOUT_MS; a WebSocket must send `connect` within the
 *   handshake timeout.
 */
export const MAX_CONNECTIONS = 4_096;
export const MAX_UNAUTHENTICATED = 256;
/** Room for the 50 nodes at once the 1,000-node bench connects from one address. */
export const MAX_UNAUTHENTICATED_PER_ADDRESS = 64;
/** Connections one agent may hold: an agent token is no gateway token, and must not let its holder fill MAX_CONNECTIONS. */
export const MAX_AGENT_CONNECTIONS = 16;
/**
 * Connects one paired node device may make at once, then one every
 * NODE_RECONNECT_EVERY_MS: each accepted connect writes gateway.db twice (a
 * device token, the declared surface) and closes the device's previous
 * connection, and a node's key in a loop made a hundred a second. A node
 * reconnecting after a network fault, with its backoff, never comes near it.
 */
export const NODE_RECONNECTS_BURST = 10;
export const NODE_RECONNECT_EVERY_MS = 3_000;
/** Lines of the log one connection's refused or failed requests may write (ThrottledLog); its `closed` line says how many after the last. */
export { LOG_REFUSALS_BURST, LOG_REFUSALS_PER_SECOND } from './throttled-log.ts';
/**
 * Pongs the gateway may owe one peer, written but not yet taken by its
 * socket: a peer that sends ping after ping without reading the pongs is
 * closed (1008). The bound is ws's own (maxPendingAutoPongs), where ws cut
 * such a peer off with no close code and nothing in the log.
 */
export const MAX_PENDING_PONGS = 60;
/** What the gateway logs a ws error as: a message past its size (ws closes 1009), one in too many fragments (1008); ws's other WS_ERR_* are frames that break RFC 6455 (1002, 1007). */
function wsErrorCode(code: string): 'GATEWAY_FRAME_TOO_LARGE' | 'GATEWAY_RATE_LIMITED' | 'GATEWAY_FRAME_INVALID' {
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') return 'GATEWAY_FRAME_TOO_LARGE';
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return 'GATEWAY_RATE_LIMITED';
  return 'GATEWAY_FRAME_INVALID';
}
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** What a method handler gets besides its params. */
export interface MethodContext {
  connection: Connection;
  peer: Peer;
  server: GatewayServer;
}

/** A method the gateway serves: the role allowed to call it, the scopes it needs, its params check, its handler. */
export interface MethodSpec {
  role: Role;
  /** Every one is required (operators only). */
  scopes?: readonly OperatorScope[];
  /** Upstream's validator for the params, when it has one. */
  validate?: ((data: unknown) => boolean) & { errors?: unknown };
  /** Returns the response payload, or throws GatewayError whose `wire` is sent. */
  handler: (params: unknown, context: MethodContext) => unknown;
}

/** A line for the gateway's log: refusals and protocol faults with their codes; never a token or key. */
export interface GatewayLogEntry {
  event: 'connected' | 'refused' | 'protocol-error' | 'closed' | 'handler-failed';
  connId: string;
  code?: string;
  role?: Role;
  deviceId?: string;
  remoteAddress?: string;
  /** For GATEWAY_METHOD_UNKNOWN: the method asked for (at most 100 characters). */
  method?: string;
  /** Lines of this connection's refused or failed requests left out of the log before this one (LOG_REFUSALS_BURST). */
  suppressed?: number;
  /** Why the gateway cut a peer off, in a few fixed words (a ping flood, an unfinished handshake evicted to make room). */
  reason?: string;
  /** The peer's address group (addressGroup): what the caps on unfinished handshakes count by. */
  addressGroup?: string;
  /** For an answer to a request the gateway never sent (unaskedAnswer): how many this connection has sent. */
  count?: number;
}

/** A genuine device that asked to connect as a node before an operator paired it, or a paired one that declared commands no operator approved. */
export interface PairingRequest {
  /** What an operator approves or rejects it by (it names this device and this command surface). */
  requestId: string;
  deviceId: string;
  displayName: string;
  platform: string;
  commands: string[];
  caps: string[];
  remoteAddress: string;
}

export interface GatewayServerOptions {
  /** The shared gateway token every connection must present. Required. */
  token: string;
  identity: Identity;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 18789; 0 picks a free port. */
  port?: number;
  tickIntervalMs?: number;
  handshakeTimeoutMs?: number;
  /** An operator's largest frame (default 25 MiB), and the most any other kind of peer gets by default; `inboundLimits` sets each kind's. */
  maxPayload?: number;
  /** What each kind of peer may send after hello-ok: its largest frame, its byte and frame budgets over time, and how long it may be held off past them (defaults INBOUND_LIMITS). */
  inboundLimits?: Partial<Record<PeerKind, Partial<InboundLimits>>>;
  /** What one connection may leave unread before it is cut off (default 50 MiB), and one agent's or one device's connections together (PrincipalBacklog). */
  maxBufferedBytes?: number;
  /** Requests one connection may have in flight; one agent, MAX_AGENT_CONNECTIONS times as many across its connections, closed ones included. */
  maxInFlight?: number;
  log?: (entry: GatewayLogEntry) => void;
  /** Told of every refusal and protocol fault the log is (its `event` and `code`), those a log budget leaves out included: the gateway's metrics count them. */
  onRefusal?: (event: 'refused' | 'protocol-error', code: string | undefined) => void;
  /** Issues paired nodes a device token in hello-ok and accepts it on reconnect (without it, only the shared token is accepted). */
  deviceTokens?: DeviceTokens;
  /** HTTP requests that are not WebSocket upgrades. */
  http?: (request: IncomingMessage, response: ServerResponse) => void;
  /** Where people reach the gateway through the operator's reverse proxy (Gateway's publicUrl): its Host and Origin are taken for upgrades too. */
  publicAddress?: PublicAddress;
  now?: () => number;
  /** Sockets open at once (default MAX_CONNECTIONS); see MAX_CONNECTIONS for how the cap is kept. */
  maxConnections?: number;
  /** Sockets open at once that have not completed the handshake (default MAX_UNAUTHENTICATED, at most maxConnections). */
  maxUnauthenticated?: number;
  /** Of those, from one address or IPv6 /64 (default MAX_UNAUTHENTICATED_PER_ADDRESS, at most maxUnauthenticated). */
  maxUnauthenticatedPerAddress?: number;
  /** Who sent a request: its socket's peer, or the client a trusted proxy forwards for (default: the peer). The per-address cap counts a trusted proxy's sockets by that client. */
  clientAddresses?: ClientAddresses;
  /** An HTTP request's headers must arrive within this (default 10 s). */
  headersTimeoutMs?: number;
  /** A whole HTTP request must arrive within this (default 30 s, at least headersTimeoutMs). */
  requestTimeoutMs?: number;
  /** An idle keep-alive HTTP socket is closed after this (default 5 s). */
  keepAliveTimeoutMs?: number;
}

interface Settings {
  token: string;
  tickIntervalMs: number;
  handshakeTimeoutMs: number;
  /** The largest frame of any kind of peer: what ws buffers at most. */
  maxPayload: number;
  maxBufferedBytes: number;
  maxInFlight: number;
  maxConnections: number;
  maxUnauthenticated: number;
  maxUnauthenticatedPerAddress: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export class GatewayServer {
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #identity: Identity;
  readonly #settings: Settings;
  readonly #inboundLimits: Readonly<Record<PeerKind, Readonly<InboundLimits>>>;
  readonly #methods = new Map<string, MethodSpec>();
  readonly #connections = new Set<Connection>();
  readonly #listeners = { ready: new Set<(c: Connection) => void>(), closed: new Set<(c: Connection) => void>() };
  readonly #pairingListeners = new Set<(request: PairingRequest) => void>();
  /** The log as given; #log counts each refusal before writing it. */
  readonly #write: (entry: GatewayLogEntry) => void;
  readonly #onRefusal: (event: 'refused' | 'protocol-error', code: string | undefined) => void;
  readonly #deviceTokens: DeviceTokens | undefined;
  readonly #publicAddress: PublicAddress | undefined;
  readonly #clientAddresses: ClientAddresses;
  readonly #now: () => number;
  readonly #startedAt: number;
  #tick: NodeJS.Timeout | undefined;
  #tickSoon: NodeJS.Immediate | undefined;
  /** Every open socket, and, oldest first, those not yet authenticated and those still sending their request headers. */
  readonly #sockets = new Set<Socket>();
  /** Each with its address group (addressGroup): its peer's, or the client's its trusted proxy last forwarded for. */
  readonly #unauthenticated = new Map<Socket, string>();
  /** The unauthenticated sockets of each address group, oldest first to join it; a trusted proxy's socket joins once its request head is read. */
  readonly #unauthenticatedFrom = new Map<string, Set<Socket>>();
  readonly #sendingHeaders = new Set<Socket>();
  readonly #socketOf = new WeakMap<Connection, Socket>();
  /** The WebSocket connection on each upgraded socket. */
  readonly #connectionOf = new WeakMap<Socket, Connection>();
  readonly #meterOf = new WeakMap<Connection, InboundMeter>();
  /** What an authenticated connection may still write to the log of its requests' refusals and failures, and how many it was not let. */
  readonly #refusalLogOf = new WeakMap<Connection, ThrottledLog>();
  /** Answers each authenticated connection sent to requests it was never sent (unaskedAnswer). */
  readonly #unaskedOf = new WeakMap<Connection, UnaskedAnswers>();
  /** Lines of WebSocket upgrades refused for their Host or Origin, all together: any web page the user opens can send them. */
  readonly #upgradeRefusals: ThrottledLog;
  /** The connects each paired node device may still make at once (NODE_RECONNECTS_BURST). */
  readonly #reconnects = new Map<string, TokenBucket>();
  /** Lines of node connects refused for coming too fast, all together: one device in a loop would write one for each. */
  readonly #reconnectRefusals: ThrottledLog;
  /**
   * Requests of each agent still being served, on its open connections and
   * on those it has closed: a handler goes on after its connection closes
   * (a node.invoke waits for its node up to its timeout), so a bound per
   * connection alone let an agent pile up requests by closing and reconnecting.
   */
  readonly #agentInFlight = new Map<string, number>();
  /** What each agent's connections may send together (InboundBudgets), while it has a connection not gone. */
  readonly #agentInbound = new Map<string, { budgets: InboundBudgets; connections: number }>();
  /** The connections of each agent and each device, gone or not, and what they may leave unread together. */
  readonly #backlogs = new Map<string, PrincipalBacklog>();

  private constructor(http: Server, wss: WebSocketServer, options: GatewayServerOptions, settings: Settings, inboundLimits: Record<PeerKind, InboundLimits>) {
    this.#http = http;
    this.#wss = wss;
    this.#identity = options.identity;
    this.#settings = settings;
    this.#inboundLimits = inboundLimits;
    this.#write = options.log ?? (() => {});
    this.#onRefusal = options.onRefusal ?? (() => {});
    this.#deviceTokens = options.deviceTokens;
    this.#publicAddress = options.publicAddress;
    this.#clientAddresses = options.clientAddresses ?? new ClientAddresses(undefined);
    this.#now = options.now ?? Date.now;
    this.#upgradeRefusals = new ThrottledLog(this.#write, this.#now);
    this.#reconnectRefusals = new ThrottledLog(this.#write, this.#now);
    this.#startedAt = this.#now();
    // Upstream's method-scopes table puts `health` under operator.read: a connection granted no scopes learns nothing.
    this.method('health', { role: 'operator', scopes: ['operator.read'], handler: () => ({ ok: true, ts: this.#now() }) });
  }

  /**
   * Starts listening. Throws GATEWAY_CONFIG_INVALID for a missing token or
   * bad limits; the listen error (EADDRINUSE…) as GATEWAY_CONFIG_INVALID with its cause.
   */
  static async start(options: GatewayServerOptions): Promise<GatewayServer> {
    if (typeof options.token !== 'string' || options.token.length < 16) throw new GatewayError('GATEWAY_CONFIG_INVALID', 'the gateway token is required and must be at least 16 characters');
    const maxUnauthenticated = options.maxUnauthenticated ?? Math.min(MAX_UNAUTHENTICATED, options.maxConnections ?? MAX_CONNECTIONS);
    const inboundLimits = {} as Record<PeerKind, InboundLimits>;
    for (const kind of ['operator', 'agent', 'node'] as const) {
      const given = options.inboundLimits?.[kind] ?? {};
      const maxPayload = given.maxPayload ?? (kind === 'operator' ? (options.maxPayload ?? INBOUND_LIMITS.operator.maxPayload) : Math.min(INBOUND_LIMITS[kind].maxPayload, options.maxPayload ?? Infinity));
      inboundLimits[kind] = {
        maxPayload,
        bytesPerSecond: given.bytesPerSecond ?? INBOUND_LIMITS[kind].bytesPerSecond,
        burstBytes: given.burstBytes ?? Math.max(INBOUND_LIMITS[kind].burstBytes, 2 * maxPayload),
        framesPerSecond: given.framesPerSecond ?? INBOUND_LIMITS[kind].framesPerSecond,
        burstFrames: given.burstFrames ?? INBOUND_LIMITS[kind].burstFrames,
        maxHeldOffMs: given.maxHeldOffMs ?? INBOUND_LIMITS[kind].maxHeldOffMs,
      };
      const bad = badInboundLimits(inboundLimits[kind]);
      if (bad !== undefined) throw new GatewayError('GATEWAY_CONFIG_INVALID', `inboundLimits.${kind}.${bad} must be a positive integer${bad === 'burstBytes' ? ' at least maxPayload' : ''}`);
    }
    const settings: Settings = {
      token: options.token,
      tickIntervalMs: options.tickIntervalMs ?? TICK_INTERVAL_MS,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
      maxPayload: Math.max(...Object.values(inboundLimits).map((limits) => limits.maxPayload)),
      maxBufferedBytes: options.maxBufferedBytes ?? MAX_BUFFERED_BYTES,
      maxInFlight: options.maxInFlight ?? MAX_IN_FLIGHT,
      maxConnections: options.maxConnections ?? MAX_CONNECTIONS,
      maxUnauthenticated,
      maxUnauthenticatedPerAddress: options.maxUnauthenticatedPerAddress ?? Math.min(MAX_UNAUTHENTICATED_PER_ADDRESS, maxUnauthenticated),
      headersTimeoutMs: options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS,
      requestTimeoutMs: options.requestTimeoutMs ?? Math.max(REQUEST_TIMEOUT_MS, options.headersTimeoutMs ?? 0),
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? KEEP_ALIVE_TIMEOUT_MS,
    };
    for (const [name, value] of Object.entries(settings)) {
      if (name !== 'token' && (!Number.isSafeInteger(value) || (value as number) < 1)) throw new GatewayError('GATEWAY_CONFIG_INVALID', `${name} must be a positive integer`);
    }
    if (settings.maxUnauthenticated > settings.maxConnections) throw new GatewayError('GATEWAY_CONFIG_INVALID', 'maxUnauthenticated must not exceed maxConnections');
    if (settings.maxUnauthenticatedPerAddress > settings.maxUnauthenticated) throw new GatewayError('GATEWAY_CONFIG_INVALID', 'maxUnauthenticatedPerAddress must not exceed maxUnauthenticated');
    if (settings.headersTimeoutMs > settings.requestTimeoutMs) throw new GatewayError('GATEWAY_CONFIG_INVALID', 'headersTimeoutMs must not exceed requestTimeoutMs');
    const fallback = options.http ?? ((_req: IncomingMessage, res: ServerResponse) => res.writeHead(426, { 'content-type': 'text/plain' }).end('upgrade required\n'));
    const http = createServer(
      {
        headersTimeout: settings.headersTimeoutMs,
        requestTimeout: settings.requestTimeoutMs,
        keepAliveTimeout: settings.keepAliveTimeoutMs,
        // Node checks the two timeouts above only this often (30 s by default).
        connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(settings.headersTimeoutMs / 4))),
      },
      fallback,
    );
    // Pings are answered by the gateway (#accept), which bounds the pongs it owes and logs the peer it cuts off for them.
    const wss = new WebSocketServer({
      server: http,
      maxPayload: settings.maxPayload,
      perMessageDeflate: false,
      autoPong: false,
      verifyClient: ({ origin, req }, done) => server.#verifyUpgrade(req, origin, done),
    });
    const server = new GatewayServer(http, wss, options, settings, inboundLimits);
    http.on('connection', (socket: Socket) => server.#admit(socket));
    http.on('request', (request: IncomingMessage) => server.#headRead(request));
    http.on('upgrade', (request: IncomingMessage) => server.#headRead(request));
    wss.on('connection', (socket, request) => server.#accept(socket, request));
    // ws re-emits the HTTP server's errors; the listen promise below reports them.
    wss.on('error', () => {});
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 18789;
    await new Promise<void>((resolve, reject) => {
      http.once('error', (error: NodeJS.ErrnoException) => reject(new GatewayError('GATEWAY_CONFIG_INVALID', `the gateway could not listen on ${host}:${port}: ${listenFailure(error, host, port)}`, { cause: error })));
      http.listen(port, host, () => resolve());
    });
    // Each tick waits for the reads of its turn of the event loop (timers run before them): a pong that
    // arrived while the loop was held up is read before its peer is judged by it.
    server.#tick = setInterval(() => {
      // Not unref'd: an unref'd immediate lets the loop wait for I/O first, up to the next tick.
      server.#tickSoon ??= setImmediate(() => {
        server.#tickSoon = undefined;
        server.#sendTicks();
      });
    }, settings.tickIntervalMs);
    server.#tick.unref();
    return server;
  }

  get port(): number {
    return (this.#http.address() as AddressInfo).port;
  }

  get host(): string {
    return (this.#http.address() as AddressInfo).address;
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `ws://${host}:${this.port}`;
  }

  get identity(): Identity {
    return this.#identity;
  }

  /** Registers (or replaces) a method. */
  method(name: string, spec: MethodSpec): void {
    this.#methods.set(name, spec);
  }

  /** The methods served, for hello-ok's `features.methods`. */
  methods(): string[] {
    return [...this.#methods.keys()].sort();
  }

  /** Authenticated connections. */
  connections(): Connection[] {
    return [...this.#connections].filter((c) => c.phase === 'ready');
  }

  /** Called when a connection completes its handshake, and when an authenticated connection closes. */
  on(event: 'ready' | 'closed', listener: (connection: Connection) => void): void {
    this.#listeners[event].add(listener);
  }

  /** Called when a genuine but unpaired node connects (it is refused with NOT_PAIRED and retries). */
  onPairingRequest(listener: (request: PairingRequest) => void): void {
    this.#pairingListeners.add(listener);
  }

  /** Sends an event to every authenticated connection the filter accepts. */
  broadcast(event: string, payload: unknown, filter: (peer: Peer) => boolean = () => true): void {
    for (const connection of this.#connections) if (connection.phase === 'ready' && filter(connection.peer!)) connection.event(event, payload);
  }

  /**
   * Called by a method's handler when an authenticated peer answered a
   * request the gateway never sent it (`method`, e.g. a node's
   * node.invoke.result for an invoke id it was not sent, or sent another
   * node), which the handler then ignores. The first of each
   * UNASKED_ANSWERS_LOG_WINDOW_MS is logged (GATEWAY_FRAME_OUT_OF_ORDER) with
   * how many the connection has sent, never what it sent; past its allowance
   * (UNASKED_ANSWERS_BURST) the connection is closed (1008): forging answers
   * is no mistake an honest peer keeps making.
   */
  unaskedAnswer(connection: Connection, method: string): void {
    const peer = connection.peer;
    if (peer === undefined || connection.phase === 'closed') return;
    const answers = this.#unaskedOf.get(connection) ?? new UnaskedAnswers(this.#now);
    this.#unaskedOf.set(connection, answers);
    const verdict = answers.add();
    if (!verdict.log) return;
    const reason = verdict.tooMany ? 'too many answers to requests it was not sent' : 'answer to a request it was not sent';
    this.#log({ event: 'refused', connId: connection.id, code: 'GATEWAY_FRAME_OUT_OF_ORDER', role: peer.role, ...(peer.deviceId ? { deviceId: peer.deviceId } : {}), method, reason, count: verdict.count, ...(verdict.suppressed > 0 ? { suppressed: verdict.suppressed } : {}) });
    if (verdict.tooMany) connection.close(CLOSE.policyViolation, reason);
  }

  /** Tells every client the gateway is stopping, closes every connection, and stops listening. */
  async close(): Promise<void> {
    clearInterval(this.#tick);
    clearImmediate(this.#tickSoon);
    for (const connection of this.#connections) {
      connection.event('shutdown', { reason: 'gateway stopping' });
      connection.close(CLOSE.goingAway, 'gateway stopping');
    }
    const deadline = Date.now() + 2_000;
    while ([...this.#connections].some((c) => c.socket.readyState !== c.socket.CLOSED) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const connection of this.#connections) connection.socket.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeAllConnections();
    await closed;
  }

  /**
   * Refuses a WebSocket upgrade sent over loopback to a name that is not
   * loopback (DNS rebinding: 421, as the HTTP API answers it), and one a web
   * page of another origin asked for (403). Neither is a peer of the
   * gateway's; their lines share one budget (ThrottledLog).
   */
  #verifyUpgrade(request: IncomingMessage, origin: string | undefined, done: (result: boolean, code?: number, message?: string) => void): void {
    const host = request.headers.host;
    const pub = this.#publicAddress;
    const refusal = !hostAllowed(request.socket.localAddress, host, pub) ? { status: 421, reason: 'host not loopback' } : !originAllowed(origin, host, pub) ? { status: 403, reason: 'origin not the gateway\'s' } : undefined;
    if (refusal === undefined) return done(true);
    this.#upgradeRefusals.line(this.#counted({ event: 'refused', connId: '-', code: 'GATEWAY_UPGRADE_REFUSED', reason: refusal.reason, addressGroup: addressGroup(this.#clientAddresses.of(request)) }));
    done(false, refusal.status, refusal.status === 421 ? 'Misdirected Request' : 'Forbidden');
  }

  /**
   * A new socket: counted, and room made for it by closing its own address's
   * oldest unauthenticated socket, or else the oldest of all, when a cap is
   * reached; refused only when authenticated connections alone fill maxConnections.
   */
  #admit(socket: Socket): void {
    const group = addressGroup(socket.remoteAddress ?? '');
    // A trusted proxy's socket joins the group of the client it forwards for once its request head says who (#headRead).
    const forwarded = this.#clientAddresses.trusts(socket.remoteAddress ?? '');
    const madeRoom = !forwarded && this.#makeRoomIn(group);
    if (!madeRoom && this.#unauthenticated.size >= this.#settings.maxUnauthenticated) this.#evictOne('too many unfinished handshakes');
    if (this.#sockets.size >= this.#settings.maxConnections && !this.#evictOne('too many connections')) {
      this.#log({ event: 'refused', connId: '-', code: 'GATEWAY_BUSY', reason: 'too many connections', addressGroup: group, remoteAddress: socket.remoteAddress ?? '' });
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    this.#unauthenticated.set(socket, group);
    if (!forwarded) this.#join(socket, group);
    this.#sendingHeaders.add(socket);
    socket.once('close', () => this.#forget(socket));
  }

  /**
   * A request head has arrived on `request`'s socket: it no longer sends its
   * headers, and a trusted proxy's unauthenticated socket now counts as the
   * client this request is forwarded for, room made in that client's group.
   */
  #headRead(request: IncomingMessage): void {
    const socket = request.socket as Socket;
    this.#sendingHeaders.delete(socket);
    const was = this.#unauthenticated.get(socket);
    if (was === undefined || !this.#clientAddresses.trusts(socket.remoteAddress ?? '')) return;
    const group = addressGroup(this.#clientAddresses.of(request));
    this.#leaveGroup(socket, was);
    this.#makeRoomIn(group);
    this.#unauthenticated.set(socket, group);
    this.#join(socket, group);
  }

  /**
   * Closes the oldest unauthenticated socket of `group` when the group holds
   * its cap (maxUnauthenticatedPerAddress). Returns whether it did. Loopback
   * is every client of this machine at once (nodes, operators, the console,
   * the HTTP API's callers): there the cap for all is the one that applies,
   * as one local client could otherwise reset another's requests.
   */
  #makeRoomIn(group: string): boolean {
    const own = isLoopback(group) ? undefined : this.#unauthenticatedFrom.get(group);
    if (own === undefined || own.size < this.#settings.maxUnauthenticatedPerAddress) return false;
    this.#evict(own.values().next().value!, 'too many unfinished handshakes from its address');
    return true;
  }

  #join(socket: Socket, group: string): void {
    // Read now: an eviction may have emptied and dropped the group's set.
    this.#unauthenticatedFrom.set(group, (this.#unauthenticatedFrom.get(group) ?? new Set()).add(socket));
  }

  #leaveGroup(socket: Socket, group: string): void {
    const own = this.#unauthenticatedFrom.get(group);
    own?.delete(socket);
    if (own?.size === 0) this.#unauthenticatedFrom.delete(group);
  }

  /** Closes the oldest socket still sending its headers, else the oldest other unauthenticated one. Returns whether there was one. */
  #evictOne(reason: string): boolean {
    const victim = this.#sendingHeaders.values().next().value ?? this.#unauthenticated.keys().next().value;
    if (victim === undefined) return false;
    this.#evict(victim, reason);
    return true;
  }

  /**
   * Closes an unauthenticated socket to make room, saying why in the log. A
   * WebSocket waiting for its `connect` is told so too: closed 1013 (try
   * again later), its socket cut off once the close frame is written (at the
   * latest 2 s later, Connection.close); a socket still in HTTP has no close
   * code, and is cut off at once. Either leaves the counts at once.
   */
  #evict(victim: Socket, reason: string): void {
    const connection = this.#connectionOf.get(victim);
    // A WebSocket's address is the client a trusted proxy forwards for (#accept); a socket still in HTTP, its peer.
    const remoteAddress = connection?.remoteAddress ?? victim.remoteAddress ?? '';
    this.#log({ event: 'refused', connId: connection?.id ?? '-', code: 'GATEWAY_BUSY', reason, addressGroup: this.#unauthenticated.get(victim) ?? addressGroup(remoteAddress), remoteAddress });
    this.#forget(victim);
    if (connection === undefined || connection.phase === 'closed') return void victim.destroy();
    connection.close(CLOSE.tryAgainLater, 'gateway busy: too many unfinished handshakes');
    victim.pause();
    victim.end(() => victim.destroy());
  }

  #forget(socket: Socket): void {
    this.#sockets.delete(socket);
    this.#sendingHeaders.delete(socket);
    this.#leaveUnauthenticated(socket);
  }

  /** No longer one a newcomer may displace: authenticated, or gone. */
  #leaveUnauthenticated(socket: Socket): void {
    const group = this.#unauthenticated.get(socket);
    if (group === undefined) return;
    this.#unauthenticated.delete(socket);
    this.#leaveGroup(socket, group);
  }

  #accept(socket: WebSocket, request: IncomingMessage): void {
    const { nonce, ts } = this.#identity.nodes.challenge();
    // Behind a trusted proxy, the client it forwards for: what the log and a node's address name.
    const remoteAddress = this.#clientAddresses.of(request);
    const connection = new Connection(socket, nonce, remoteAddress, this.#settings.maxBufferedBytes);
    this.#connections.add(connection);
    this.#socketOf.set(connection, request.socket as Socket);
    this.#connectionOf.set(request.socket as Socket, connection);

    // Bytes are counted on the raw socket as they arrive, after ws has taken
    // each read, so a frame past its limit is cut off while it arrives rather
    // than buffered and parsed. Before hello-ok a peer may send at most 64 KiB
    // a frame, and little more in all; after it, what its kind of peer may
    // (#accepted puts the meter under those limits). A read past the peer's
    // budget pauses its socket (ws's pause, which ws's own flow control
    // respects) until the budget has refilled: TCP slows the peer, its bytes
    // wait in the kernel, and no other connection waits on it. A pause lasts
    // one read (at most 64 KiB) over the refill rate; a peer that goes away
    // meanwhile is noticed once what it sent before is read (at once when its
    // socket is reset), and a run of pauses lasts at most its kind's
    // maxHeldOffMs before the peer is cut off. The limits hold until the
    // socket is gone, also once the gateway has closed the connection: ws
    // reads on, for the peer's close frame, and would otherwise take and
    // buffer whatever came until the socket is cut off (Connection.close).
    const raw = request.socket as Socket;
    const meter = new InboundMeter(this.#inboundLimits.operator, this.#now);
    const scanner = new FrameScanner();
    this.#meterOf.set(connection, meter);
    let preauthBytes = 0;
    let preauthFrames = 0;
    let pendingPongs = 0;
    let cutOff = false;
    let resumeTimer: NodeJS.Timeout | undefined;
    /** Closes a peer that sent more than is allowed before hello-ok, and reads nothing more from it: the close frame is flushed, then the socket is destroyed. */
    const refusePreauth = (code: 'GATEWAY_FRAME_TOO_LARGE' | 'GATEWAY_RATE_LIMITED', closeCode: number, reason: string): void => {
      cutOff = true;
      this.#log({ event: 'protocol-error', connId: connection.id, code, remoteAddress });
      connection.close(closeCode, reason);
      raw.pause();
      raw.end(() => raw.destroy());
    };
    // Before hello-ok a peer has one frame to send, connect, and a pong or so: past MAX_PREAUTH_FRAMES of any kind it is
    // cut off, so that a peer without the token cannot have the gateway handle 20,000 empty frames (128 KiB) on every
    // connection it opens (a frame costs what several KiB of JSON cost to parse; see FRAME_COST_BYTES).
    const countFrame = (): void => {
      if (connection.peer !== undefined || cutOff || ++preauthFrames <= MAX_PREAUTH_FRAMES) return;
      refusePreauth('GATEWAY_RATE_LIMITED', CLOSE.policyViolation, 'too many frames before hello-ok');
    };
    const countBytes = (chunk: Buffer): void => {
      if (cutOff) return;
      // Fragments of a message are frames too, though ws tells of none but the message (FrameScanner).
      const continuations = scanner.continuations(chunk);
      if (connection.peer === undefined && continuations > 0) {
        preauthFrames += continuations;
        if (preauthFrames > MAX_PREAUTH_FRAMES) return refusePreauth('GATEWAY_RATE_LIMITED', CLOSE.policyViolation, 'too many frames before hello-ok');
      }
      meter.continued(continuations);
      const refusal = meter.arrived(chunk.length);
      // Authenticated (hello-ok sent), whether or not closed since: its kind's limits.
      if (connection.peer !== undefined) {
        if (refusal !== undefined) {
          cutOff = true;
          return this.#refuseInbound(connection, raw, refusal);
        }
        if (meter.holdMs > 0) {
          socket.pause();
          clearTimeout(resumeTimer);
          resumeTimer = setTimeout(() => {
            if (connection.phase !== 'closed') socket.resume();
          }, meter.holdMs);
        }
        return;
      }
      preauthBytes += chunk.length;
      if (preauthBytes > 2 * MAX_PREAUTH_PAYLOAD_BYTES + 1024) refusePreauth('GATEWAY_FRAME_TOO_LARGE', CLOSE.tooBig, 'frame too large before hello-ok');
    };
    raw.on('data', countBytes);
    const handshakeTimer = setTimeout(() => {
      if (connection.phase === 'ready' || connection.phase === 'closed') return;
      this.#log({ event: 'refused', connId: connection.id, code: 'GATEWAY_HANDSHAKE_TIMEOUT', remoteAddress });
      connection.close(CLOSE.policyViolation, 'handshake timeout');
    }, this.#settings.handshakeTimeoutMs);
    handshakeTimer.unref();

    socket.on('message', (data: RawData, isBinary: boolean) => {
      countFrame();
      this.#onMessage(connection, data, isBinary);
    });
    socket.on('pong', (data: Buffer) => {
      countFrame();
      meter.delivered(data.length);
      connection.pong(data);
    });
    socket.on('ping', (data: Buffer) => {
      countFrame();
      meter.delivered(data.length);
      if (cutOff || connection.phase === 'closed' || socket.readyState !== socket.OPEN) return;
      // A peer that does not read its pongs, or sends pings faster than they are written, is cut off, saying why.
      if (pendingPongs >= MAX_PENDING_PONGS) {
        cutOff = true;
        this.#log({ event: 'refused', connId: connection.id, code: 'GATEWAY_RATE_LIMITED', reason: 'ping flood', addressGroup: addressGroup(remoteAddress), ...(connection.peer ? { role: connection.peer.role } : {}) });
        connection.close(CLOSE.policyViolation, 'too many pings');
        raw.pause();
        raw.end(() => raw.destroy());
        return;
      }
      pendingPongs += 1;
      socket.pong(data, false, () => void (pendingPongs -= 1));
    });
    socket.on('error', (error: Error & { code?: unknown }) => {
      // ws found a frame that breaks RFC 6455 (an unknown opcode, an unmasked frame, bad UTF-8, too many fragments)
      // and has closed the connection with its code: the log says so, naming ws's reason (a fixed code, nothing the peer sent).
      if (typeof error.code === 'string' && error.code.startsWith('WS_ERR_') && connection.phase !== 'closed') {
        this.#log({ event: 'protocol-error', connId: connection.id, code: wsErrorCode(error.code), reason: error.code.slice(0, 64), addressGroup: addressGroup(remoteAddress) });
      }
      connection.close(CLOSE.protocolError, 'protocol error');
    });
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      clearTimeout(resumeTimer);
      raw.off('data', countBytes);
      // Its challenge goes with it: those kept are then only those of open connections (NodeRegistry.release).
      this.#identity.nodes.release(nonce);
      const wasReady = connection.peer !== undefined;
      connection.phase = 'closed';
      this.#connections.delete(connection);
      if (wasReady) {
        const suppressed = this.#refusalLogOf.get(connection)?.suppressed ?? 0;
        // Why the gateway ended it, when it did (a slow consumer, a node replaced by its newer connection, a revoked pairing).
        const reason = connection.closedBecause;
        this.#log({ event: 'closed', connId: connection.id, role: connection.peer!.role, ...(connection.peer!.deviceId ? { deviceId: connection.peer!.deviceId } : {}), ...(reason !== undefined ? { reason } : {}), ...(suppressed > 0 ? { suppressed } : {}) });
        this.#guard(connection, () => {
          for (const listener of this.#listeners.closed) listener(connection);
        });
      }
    });
    connection.event('connect.challenge', { nonce, ts });
  }

  #onMessage(connection: Connection, data: RawData, isBinary: boolean): void {
    if (connection.phase === 'closed') return;
    if (isBinary) return this.#fault(connection, 'GATEWAY_FRAME_INVALID', CLOSE.protocolError, 'text frames only');
    const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    this.#meterOf.get(connection)?.delivered(bytes);
    if (connection.phase !== 'ready' && bytes > MAX_PREAUTH_PAYLOAD_BYTES) return this.#fault(connection, 'GATEWAY_FRAME_TOO_LARGE', CLOSE.tooBig, 'frame too large before hello-ok');
    let frame: RequestFrame;
    try {
      frame = parseClientFrame(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8'));
    } catch (error) {
      const code = error instanceof GatewayError ? error.code : 'GATEWAY_FRAME_INVALID';
      return this.#fault(connection, code, CLOSE.protocolError, code === 'GATEWAY_FRAME_OUT_OF_ORDER' ? 'unexpected frame' : 'invalid frame');
    }
    if (connection.phase === 'challenge') return this.#guard(connection, () => this.#connect(connection, frame));
    if (connection.phase === 'connecting' || frame.method === 'connect') {
      connection.send(responseError(frame.id, { code: 'INVALID_REQUEST', message: 'connect is only valid as the first request' }));
      return this.#fault(connection, 'GATEWAY_FRAME_OUT_OF_ORDER', CLOSE.protocolError, 'unexpected connect');
    }
    void this.#dispatch(connection, frame);
  }

  #connect(connection: Connection, frame: RequestFrame): void {
    if (frame.method !== 'connect') {
      connection.send(responseError(frame.id, { code: 'INVALID_REQUEST', message: 'the first request must be connect' }));
      return this.#fault(connection, 'GATEWAY_FRAME_OUT_OF_ORDER', CLOSE.protocolError, 'first request must be connect');
    }
    connection.phase = 'connecting';
    let peer: Peer;
    let params: ConnectParams | undefined;
    try {
      params = checkConnectParams(frame.params);
      peer = authenticateConnect(params, { nonce: connection.nonce, token: this.#settings.token, identity: this.#identity, remoteAddress: connection.remoteAddress, now: this.#now(), ...(this.#deviceTokens ? { deviceTokens: this.#deviceTokens } : {}) });
    } catch (error) {
      const failure = error instanceof GatewayError ? error : (busyFailure(error) ?? new GatewayError('GATEWAY_INTERNAL', 'connect failed', { cause: error }));
      const wire: WireError = failure.wire ?? { code: 'INVALID_REQUEST', message: failure.code === 'GATEWAY_FRAME_INVALID' ? 'invalid connect params' : 'connect failed' };
      this.#log({ event: 'refused', connId: connection.id, code: failure.code, remoteAddress: connection.remoteAddress });
      connection.send(responseError(frame.id, wire));
      if (failure.code === 'GATEWAY_NOT_PAIRED' && params?.device) this.#announceRequest(connection, params.device.id, params);
      connection.close(CLOSE.policyViolation, wire.message);
      return;
    }
    // Refused before anything of the connect is written; its device proved itself, so no one else's connects count here.
    if (peer.role === 'node' && peer.deviceId !== undefined && !this.#reconnectAllowed(peer.deviceId)) {
      this.#reconnectRefusals.line(this.#counted({ event: 'refused', connId: connection.id, code: 'GATEWAY_RATE_LIMITED', reason: 'reconnecting too fast', role: peer.role, deviceId: peer.deviceId, remoteAddress: connection.remoteAddress }));
      connection.send(responseError(frame.id, { code: 'UNAVAILABLE', message: 'reconnecting too fast: try again later', retryable: true, retryAfterMs: NODE_RECONNECT_EVERY_MS }));
      connection.close(CLOSE.tryAgainLater, 'reconnecting too fast');
      return;
    }
    const agentToken = params?.auth?.agentRuntimeIdentityToken;
    if (agentToken !== undefined) {
      void this.#verifyAgent(connection, frame, peer, agentToken);
      return;
    }
    this.#accepted(connection, frame, peer);
  }

  /** Takes one of `deviceId`'s connects (NODE_RECONNECTS_BURST); whether there was one. Kept for paired devices only: others are refused before. */
  #reconnectAllowed(deviceId: string): boolean {
    const connects = this.#reconnects.get(deviceId) ?? new TokenBucket(1000 / NODE_RECONNECT_EVERY_MS, NODE_RECONNECTS_BURST, this.#now);
    this.#reconnects.set(deviceId, connects);
    return connects.take();
  }

  /**
   * Whether the agent token a connection was opened with still stands and
   * has not run out: agentTokenStands, and the token unexpired. Checked as
   * each request arrives. Reads identity.db; throws what it throws.
   */
  agentTokenAlive(agent: NonNullable<Peer['agent']>): boolean {
    return this.agentTokenStands(agent) && this.#now() < agent.expiresAtMs;
  }

  /**
   * Whether the agent token a connection was opened with has not been taken
   * back: its agent active, of the token's generation, and its signing key
   * still published. Checked again by a command before anything is sent or
   * released for it (NodeInvoker): the kill switch may be pulled while a
   * request waits for a decision, a record or an approval. A token that only
   * ran out meanwhile takes nothing back from a request made while it was
   * good (an approval may take longer than a token lives). Reads
   * identity.db; throws what it throws.
   */
  agentTokenStands(agent: NonNullable<Peer['agent']>): boolean {
    const current = this.#identity.agents.find(agent.id);
    return current !== undefined && current.status === 'active' && current.tokenGeneration === agent.tokenGeneration && this.#identity.keys.isPublished(agent.keyId);
  }

  /** An operator connection that carries a Corral agent token acts as that agent; a token that does not verify refuses the connection. */
  async #verifyAgent(connection: Connection, frame: RequestFrame, peer: Peer, token: string): Promise<void> {
    try {
      if (peer.role !== 'operator') throw new GatewayError('GATEWAY_AGENT_TOKEN_INVALID', 'agent tokens are for operator connections');
      const claims = await this.#identity.verifyToken(token);
      peer.agent = { id: claims.sub, name: claims.agent, tokenGeneration: claims.gen, expiresAtMs: claims.exp * 1000, keyId: tokenKeyId(token)! };
      // An agent asks for what it runs, never pairs nodes, resolves approvals or administers.
      peer.scopes = peer.scopes.filter((scope) => AGENT_SCOPES.includes(scope));
    } catch (error) {
      // A store too busy to check the token has refused nothing: the agent retries.
      const busy = busyFailure(error);
      this.#log({ event: 'refused', connId: connection.id, code: busy?.code ?? 'GATEWAY_AGENT_TOKEN_INVALID', remoteAddress: connection.remoteAddress });
      connection.send(responseError(frame.id, busy?.wire ?? { code: 'INVALID_REQUEST', message: 'unauthorized: agent identity token rejected', details: { code: 'AUTH_UNAUTHORIZED' } }));
      connection.close(busy ? CLOSE.tryAgainLater : CLOSE.policyViolation, busy ? 'busy' : 'unauthorized');
      return;
    }
    if (connection.phase !== 'connecting') return;
    if (this.connections().filter((c) => c.peer!.agent?.id === peer.agent!.id).length >= MAX_AGENT_CONNECTIONS) {
      this.#log({ event: 'refused', connId: connection.id, code: 'GATEWAY_BUSY', remoteAddress: connection.remoteAddress });
      connection.send(responseError(frame.id, { code: 'UNAVAILABLE', message: 'too many connections for this agent', retryable: true }));
      connection.close(CLOSE.policyViolation, 'too many connections');
      return;
    }
    this.#guard(connection, () => this.#accepted(connection, frame, peer));
  }

  /**
   * Runs what one connection's frame set off: an exception from the gateway's
   * own state (a store that cannot be written, a listener's fault) closes that
   * connection (1011), never the gateway with every other connection.
   */
  #guard(connection: Connection, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#log({ event: 'handler-failed', connId: connection.id, code: error instanceof GatewayError ? error.code : 'GATEWAY_INTERNAL' });
      connection.close(CLOSE.internal, 'internal error');
    }
  }

  #accepted(connection: Connection, frame: RequestFrame, peer: Peer): void {
    // One live connection per node device: a reconnect replaces the old one.
    if (peer.role === 'node') {
      for (const other of this.#connections) {
        if (other !== connection && other.phase === 'ready' && other.peer?.role === 'node' && other.peer.deviceId === peer.deviceId) other.close(CLOSE.policyViolation, 'replaced by a newer connection');
      }
    }
    connection.peer = peer;
    connection.phase = 'ready';
    this.#joinBacklog(connection, peer);
    this.#refusalLogOf.set(connection, new ThrottledLog(this.#write, this.#now));
    const raw = this.#socketOf.get(connection);
    if (raw !== undefined) this.#leaveUnauthenticated(raw);
    const limits = this.#inboundLimits[peerKind(peer)];
    this.#meterOf.get(connection)?.limit(limits, peer.agent !== undefined ? this.#agentBudgets(connection, peer.agent.id, limits) : undefined);
    const hello: HelloOk = {
      type: 'hello-ok',
      protocol: peer.protocol,
      server: { version: GATEWAY_VERSION, connId: connection.id },
      features: { methods: this.methods(), events: ['connect.challenge', 'tick', 'shutdown', 'node.invoke.request', 'node.invoke.cancel', 'node.pair.requested', 'node.pair.resolved', 'exec.approval.requested', 'exec.approval.resolved', 'corral.invoke.release'] },
      snapshot: { presence: [], health: {}, stateVersion: { presence: 0, health: 0 }, uptimeMs: Math.max(0, this.#now() - this.#startedAt), authMode: 'token' },
      // A paired node gets a device token to reconnect with (upstream's auth.deviceToken).
      auth: { role: peer.role, scopes: [...peer.scopes], ...(peer.role === 'node' && peer.deviceId && this.#deviceTokens ? this.#deviceTokens.issue(peer.deviceId, peer.role) : {}) },
      // The largest frame this peer may send: its kind's, not the largest of any kind.
      policy: { maxPayload: limits.maxPayload, maxBufferedBytes: this.#settings.maxBufferedBytes, tickIntervalMs: this.#settings.tickIntervalMs },
    };
    connection.send(responseOk(frame.id, hello));
    this.#log({ event: 'connected', connId: connection.id, role: peer.role, ...(peer.deviceId ? { deviceId: peer.deviceId } : {}), remoteAddress: connection.remoteAddress });
    for (const listener of this.#listeners.ready) listener(connection);
    // Admitted with the commands an operator approved; what it declared beyond them waits as a request.
    if (peer.role === 'node' && peer.deviceId) this.#announceRequest(connection, peer.deviceId, { client: peer.client, commands: peer.commands, caps: peer.caps });
  }

  /** The budgets `connection` draws on with the other connections of its agent, kept until the agent has none not gone. */
  #agentBudgets(connection: Connection, agentId: string, limits: InboundLimits): InboundBudgets {
    const shared = this.#agentInbound.get(agentId) ?? { budgets: inboundBudgets(limits, this.#now), connections: 0 };
    shared.connections += 1;
    this.#agentInbound.set(agentId, shared);
    connection.socket.once('close', () => {
      if (--shared.connections === 0 && this.#agentInbound.get(agentId) === shared) this.#agentInbound.delete(agentId);
    });
    return shared.budgets;
  }

  /**
   * Puts a connection under its principal's backlog: an agent's (its token is
   * its credential, whatever device it shows), else its device's. A
   * connection of the shared token and no device is a principal of its own.
   */
  #joinBacklog(connection: Connection, peer: Peer): void {
    const principal = peer.agent !== undefined ? `agent:${peer.agent.id}` : peer.deviceId !== undefined ? `device:${peer.deviceId}` : undefined;
    if (principal === undefined) return;
    const backlog = this.#backlogs.get(principal) ?? new PrincipalBacklog(this.#settings.maxBufferedBytes);
    this.#backlogs.set(principal, backlog);
    backlog.add(connection);
    connection.backlog = backlog;
    connection.socket.once('close', () => {
      if (backlog.delete(connection) && this.#backlogs.get(principal) === backlog) this.#backlogs.delete(principal);
    });
  }

  /** Tells the pairing listeners about the device's current pairing request, if it has one. */
  #announceRequest(connection: Connection, deviceId: string, declared: { client: ConnectParams['client']; commands?: string[]; caps?: string[] }): void {
    const requestId = this.#identity.nodes.find(deviceId)?.surfaceRequest?.requestId;
    if (requestId === undefined) return;
    const request: PairingRequest = {
      requestId,
      deviceId,
      displayName: printable(declared.client.displayName ?? deviceId.slice(0, 12), 200),
      platform: printable(declared.client.platform, 64),
      commands: [...new Set(declared.commands ?? [])],
      caps: declaredCaps(declared.caps),
      remoteAddress: connection.remoteAddress,
    };
    for (const listener of this.#pairingListeners) listener(request);
  }

  /**
   * Serves one request. An exception from the gateway's own state on the way
   * to the handler (an identity store that cannot be read while an agent's
   * token is checked) answers that request with a retryable internal error,
   * and nothing runs; it never leaves as a rejection nobody handles, which
   * stopped the gateway with every other connection.
   */
  async #dispatch(connection: Connection, frame: RequestFrame): Promise<void> {
    try {
      await this.#serve(connection, frame);
    } catch (error) {
      // The agent's token checked against an identity store another process holds: try again.
      const busy = busyFailure(error);
      this.#logRequest(connection, { event: 'handler-failed', connId: connection.id, code: busy?.code ?? (error instanceof GatewayError ? error.code : 'GATEWAY_INTERNAL') });
      connection.send(responseError(frame.id, busy?.wire ?? { code: 'UNAVAILABLE', message: 'internal error', retryable: true }));
    }
  }

  async #serve(connection: Connection, frame: RequestFrame): Promise<void> {
    const peer = connection.peer!;
    if (peer.agent && !this.agentTokenAlive(peer.agent)) {
      // The token this connection was opened with has died since (the agent was suspended, even if
      // resumed, the token expired, or the key that signed it was cut off): the connection goes with it.
      this.#log({ event: 'refused', connId: connection.id, code: 'GATEWAY_AGENT_TOKEN_INVALID', remoteAddress: connection.remoteAddress });
      connection.send(responseError(frame.id, { code: 'INVALID_REQUEST', message: 'unauthorized: agent identity token no longer valid; reconnect with a new one', details: { code: 'AUTH_UNAUTHORIZED' } }));
      return void connection.close(CLOSE.policyViolation, 'unauthorized');
    }
    const spec = this.#methods.get(frame.method);
    if (!spec) {
      this.#logRequest(connection, { event: 'refused', connId: connection.id, code: 'GATEWAY_METHOD_UNKNOWN', role: peer.role, method: frame.method.slice(0, 100) });
      return void connection.send(responseError(frame.id, { code: 'INVALID_REQUEST', message: `unknown method: ${frame.method.slice(0, 100)}` }));
    }
    if (spec.role !== peer.role) {
      this.#logRequest(connection, { event: 'refused', connId: connection.id, code: 'GATEWAY_ROLE_FORBIDDEN', role: peer.role, ...(peer.deviceId ? { deviceId: peer.deviceId } : {}) });
      return void connection.send(responseError(frame.id, { code: 'FORBIDDEN', message: `unauthorized role: ${peer.role}` }));
    }
    for (const scope of spec.scopes ?? []) {
      if (!hasScope(peer.scopes, scope)) {
        this.#logRequest(connection, { event: 'refused', connId: connection.id, code: 'GATEWAY_SCOPE_MISSING', role: peer.role });
        return void connection.send(responseError(frame.id, missingScopeErrorShape({ missingScope: scope, requiredScopes: [...(spec.scopes ?? [])] }) as WireError));
      }
    }
    const params = frame.params ?? {};
    if (spec.validate && !spec.validate(params)) return void connection.send(responseError(frame.id, { code: 'INVALID_REQUEST', message: `invalid ${frame.method} params` }));
    if (connection.inFlight >= this.#settings.maxInFlight) return void connection.send(responseError(frame.id, { code: 'UNAVAILABLE', message: 'too many requests in flight', retryable: true, retryAfterMs: 100 }));
    // As many as its open connections could hold at once, however many it opened and closed.
    const agentId = peer.agent?.id;
    if (agentId !== undefined && (this.#agentInFlight.get(agentId) ?? 0) >= MAX_AGENT_CONNECTIONS * this.#settings.maxInFlight) {
      this.#logRequest(connection, { event: 'refused', connId: connection.id, code: 'GATEWAY_BUSY', role: peer.role });
      return void connection.send(responseError(frame.id, { code: 'UNAVAILABLE', message: 'too many requests in flight for this agent', retryable: true, retryAfterMs: 100 }));
    }
    connection.inFlight += 1;
    if (agentId !== undefined) this.#agentInFlight.set(agentId, (this.#agentInFlight.get(agentId) ?? 0) + 1);
    try {
      const payload = await spec.handler(params, { connection, peer, server: this });
      connection.send(responseOk(frame.id, payload ?? {}));
    } catch (thrown) {
      // A write to an identity store another process holds (a CLI command) refused nothing: the caller tries again.
      const error = busyFailure(thrown) ?? thrown;
      if (error instanceof GatewayError && error.code === 'GATEWAY_BUSY') this.#logRequest(connection, { event: 'handler-failed', connId: connection.id, code: error.code });
      if (error instanceof GatewayError && error.wire) {
        connection.send(responseError(frame.id, error.wire));
        // A node whose pairing was revoked while it stayed connected is told so, then cut off.
        if (error.code === 'GATEWAY_DEVICE_REVOKED') {
          this.#log({ event: 'refused', connId: connection.id, code: error.code, role: peer.role, ...(peer.deviceId ? { deviceId: peer.deviceId } : {}) });
          connection.close(CLOSE.policyViolation, 'device pairing was revoked');
        }
      } else {
        this.#logRequest(connection, { event: 'handler-failed', connId: connection.id, code: error instanceof GatewayError ? error.code : 'GATEWAY_INTERNAL' });
        connection.send(responseError(frame.id, { code: 'UNAVAILABLE', message: 'internal error', retryable: true }));
      }
    } finally {
      connection.inFlight -= 1;
      if (agentId !== undefined) {
        const left = this.#agentInFlight.get(agentId)! - 1;
        if (left === 0) this.#agentInFlight.delete(agentId);
        else this.#agentInFlight.set(agentId, left);
      }
    }
  }

  /**
   * Logs the refusal or failure of one request of an authenticated
   * connection, within its budget (LOG_REFUSALS_BURST): a peer sending
   * request after request to be refused would otherwise have the gateway
   * write a line for each, at once, as fast as it is answered. Past the
   * budget the line is counted, and the count goes with the next one logged.
   */
  #logRequest(connection: Connection, entry: GatewayLogEntry): void {
    const lines = this.#refusalLogOf.get(connection);
    if (lines === undefined) return this.#log(entry);
    lines.line(this.#counted(entry));
  }

  /** Writes a line of the log, counting it first when it is a refusal or a protocol fault. */
  #log(entry: GatewayLogEntry): void {
    this.#write(this.#counted(entry));
  }

  /** Counts `entry` when it is a refusal or a protocol fault (onRefusal), every one, whether or not its line is written; returns it. */
  #counted(entry: GatewayLogEntry): GatewayLogEntry {
    if (entry.event === 'refused' || entry.event === 'protocol-error') this.#onRefusal(entry.event, entry.code);
    return entry;
  }

  /**
   * Closes a connection that sent a frame past its kind's largest (1009) or
   * went on sending past its budget for longer than its kind's maxHeldOffMs
   * (1008), and reads nothing more from it: the close frame is flushed, then
   * the socket is destroyed. A connection the gateway closed already keeps
   * the close code it was given; only its socket goes.
   */
  #refuseInbound(connection: Connection, raw: Socket, refusal: InboundRefusal): void {
    const peer = connection.peer!;
    const code = refusal === 'frame-too-large' ? 'GATEWAY_FRAME_TOO_LARGE' : 'GATEWAY_RATE_LIMITED';
    this.#log({ event: 'refused', connId: connection.id, code, role: peer.role, ...(peer.deviceId ? { deviceId: peer.deviceId } : {}), remoteAddress: connection.remoteAddress });
    if (refusal === 'frame-too-large') connection.close(CLOSE.tooBig, `frame larger than ${this.#inboundLimits[peerKind(peer)].maxPayload} bytes`);
    else connection.close(CLOSE.policyViolation, 'rate limited: sent past its byte or frame budget');
    raw.pause();
    raw.end(() => raw.destroy());
  }

  #fault(connection: Connection, code: GatewayError['code'], closeCode: number, reason: string): void {
    this.#log({ event: 'protocol-error', connId: connection.id, code, remoteAddress: connection.remoteAddress });
    connection.close(closeCode, reason);
  }

  /**
   * Every tick interval: a `tick` event to each authenticated connection, and a
   * WebSocket ping; a peer that did not answer the previous ping is cut off,
   * unless the gateway held it off since (its pong waits behind the frames
   * it is held to; how long it may be held off is bounded on its own). Runs
   * after the reads of its turn of the event loop (see start), so that a
   * gateway held up past a tick does not take pongs it has not read yet for
   * silence, and cut every peer off.
   */
  #sendTicks(): void {
    const ts = this.#now();
    for (const connection of this.#connections) {
      if (connection.phase !== 'ready') continue;
      if (!connection.alive && !this.#meterOf.get(connection)?.heldOffSince(ts - this.#settings.tickIntervalMs)) {
        this.#log({ event: 'closed', connId: connection.id, code: 'GATEWAY_TIMEOUT', role: connection.peer!.role });
        connection.phase = 'closed';
        connection.socket.terminate();
        continue;
      }
      try {
        connection.ping();
      } catch {
        // closing already
      }
      connection.event('tick', { ts });
    }
  }
}

export { PROTOCOL_VERSION };

/** Whose limits a peer sends under: an operator connection acting as an agent is an agent. */
export function peerKind(peer: Peer): PeerKind {
  return peer.agent !== undefined ? 'agent' : peer.role;
}

/**
 * The group a peer's address counts in toward MAX_UNAUTHENTICATED_PER_ADDRESS:
 * an IPv4 address (also one mapped into IPv6), or the first 64 bits of an IPv6
 * address, since one host is commonly given a whole /64.
 */
export function addressGroup(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('%')[0]!.toLowerCase().split('::');
  const groups = (text: string | undefined): string[] => (text ? text.split(':') : []);
  const expanded = tail === undefined ? groups(head) : [...groups(head), ...Array<string>(Math.max(0, 8 - groups(head).length - groups(tail).length)).fill('0'), ...groups(tail)];
  return expanded.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':') + '::/64';
}

/**
 * Whether an address group (addressGroup) is the loopback address every local
 * client comes from by default: 127.0.0.1, or ::1 — counted as its /64, ::/64,
 * which holds no other address a remote peer can have.
 */
function isLoopback(group: string): boolean {
  return group === '127.0.0.1' || group === '0:0:0:0::/64';
}

/** Why listening failed, in words a person can act on. */
function listenFailure(error: NodeJS.ErrnoException, host: string, port: number): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return `EADDRINUSE: port ${port} on ${host} is in use`;
    case 'EACCES':
      return `EACCES: this user may not listen on port ${port}`;
    case 'EADDRNOTAVAIL':
      return `EADDRNOTAVAIL: ${host} is not an address of this machine`;
    default:
      return `${error.code ?? 'error'}: ${error.message.slice(0, 200)}`;
  }
}
