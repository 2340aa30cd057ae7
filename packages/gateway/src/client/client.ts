// A client of the OpenClaw gateway protocol, for operators (the CLI) and
// nodes (`corral node run`): waits for `connect.challenge`, signs the device
// proof with packages/identity's scheme, sends `connect`, and then correlates
// requests with responses and hands events to listeners.
import { randomUUID } from 'node:crypto';
import { PROTOCOL_VERSION } from '@openclaw/gateway-protocol';
import { signDeviceAuth, type DeviceIdentity } from '@corral/identity';
import WebSocket from 'ws';
import { GatewayError, type WireError } from '../errors.ts';
import { acceptsHelloOk, parseServerFrame, type ConnectParams, type HelloOk } from '../protocol/frames.ts';

export interface GatewayClientOptions {
  /** `ws://host:port`. */
  url: string;
  /** The shared gateway token. */
  token?: string;
  /** A device token a gateway issued this device in hello-ok (`auth.deviceToken`): reconnects without the shared token. */
  deviceToken?: string;
  role: 'operator' | 'node';
  scopes?: string[];
  /** Signs the device proof when given (required for role node). */
  device?: DeviceIdentity;
  client?: { id?: ConnectParams['client']['id']; mode?: ConnectParams['client']['mode']; displayName?: string; version?: string; platform?: string; deviceFamily?: string };
  commands?: string[];
  caps?: string[];
  /** A Corral agent token: the operator connection then acts as that agent (`auth.agentRuntimeIdentityToken`). */
  agentToken?: string;
  minProtocol?: number;
  maxProtocol?: number;
  /** Default 15 s for the handshake, 30 s a request. */
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/**
 * Events a gateway may send between its challenge and hello-ok, held until
 * the client exists to hand them on: at most this many, of at most this many
 * characters in all. More is no gateway following the protocol, and holding
 * it would grow this process without bound until the handshake timed out.
 */
const MAX_EARLY_EVENTS = 64;
const MAX_EARLY_CHARS = 1024 * 1024;

type Pending = { resolve: (payload: unknown) => void; reject: (error: GatewayError) => void; timer: NodeJS.Timeout };

export class GatewayClient {
  readonly hello: HelloOk;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #socket: WebSocket;
  readonly #pending: Map<string, Pending>;
  readonly #listeners = new Map<string, Set<(payload: unknown, seq: number | undefined) => void>>();
  readonly #requestTimeoutMs: number;
  readonly #any = new Set<(event: string, payload: unknown) => void>();
  #lastHeard = Date.now();
  /**
   * Events held until the caller can listen: it attaches listeners once
   * connect() resolves, after the frame that resolved it was handled. Those
   * that came before hello-ok, and any after it until then, are delivered on
   * the next turn of the event loop, in order; null once they were.
   */
  #held: Array<{ event: string; payload: unknown; seq: number | undefined }> | null;

  private constructor(socket: WebSocket, hello: HelloOk, pending: Map<string, Pending>, closed: Promise<{ code: number; reason: string }>, requestTimeoutMs: number, early: Array<{ event: string; payload: unknown; seq: number | undefined }>) {
    this.#held = early;
    setImmediate(() => {
      const held = this.#held ?? [];
      this.#held = null;
      for (const e of held) this.#emit(e.event, e.payload, e.seq);
    });
    this.#socket = socket;
    this.hello = hello;
    this.#pending = pending;
    this.closed = closed;
    this.#requestTimeoutMs = requestTimeoutMs;
  }

  /**
   * Opens a connection and completes the handshake. Throws GATEWAY_REQUEST_FAILED
   * with `wire` set when the gateway refuses (`wire.code` NOT_PAIRED,
   * INVALID_REQUEST with details.code AUTH_TOKEN_MISMATCH…), GATEWAY_CONNECTION_CLOSED,
   * GATEWAY_TIMEOUT, GATEWAY_FRAME_INVALID.
   */
  static connect(options: GatewayClientOptions): Promise<GatewayClient> {
    const socket = new WebSocket(options.url, { perMessageDeflate: false, maxPayload: 32 * 1024 * 1024 });
    const pending = new Map<string, Pending>();
    let client: GatewayClient | undefined;
    const early: Array<{ event: string; payload: unknown; seq: number | undefined }> = [];
    let earlyChars = 0;
    let challenged = false;
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      socket.once('close', (code, reason) => {
        for (const [, p] of pending) {
          clearTimeout(p.timer);
          p.reject(new GatewayError('GATEWAY_CONNECTION_CLOSED', `the connection closed (${code})`));
        }
        pending.clear();
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
    return new Promise<GatewayClient>((resolve, reject) => {
      const fail = (error: GatewayError): void => {
        clearTimeout(timer);
        reject(error);
        socket.terminate();
      };
      const timer = setTimeout(() => fail(new GatewayError('GATEWAY_TIMEOUT', 'no hello-ok in time')), options.connectTimeoutMs ?? 15_000);
      const connectId = randomUUID();
      const onError = (error: Error): void => fail(new GatewayError('GATEWAY_CONNECTION_CLOSED', 'the connection failed', { cause: error }));
      const onClose = (code: number): void => fail(new GatewayError('GATEWAY_CONNECTION_CLOSED', `the gateway closed the connection (${code})`));
      socket.on('error', onError);
      socket.once('close', onClose);
      socket.on('message', (data, isBinary) => {
        let frame;
        let text: string;
        try {
          if (isBinary) throw new GatewayError('GATEWAY_FRAME_INVALID', 'binary frame');
          text = data.toString();
          frame = parseServerFrame(text);
        } catch (error) {
          return fail(error as GatewayError);
        }
        if (frame.type === 'event') {
          if (client) client.#lastHeard = Date.now();
          if (frame.event === 'connect.challenge' && !client) {
            // Answered once, as upstream's client does: each answer is a signed device proof, and a gateway
            // sending challenge after challenge had this client sign and queue a connect for every one.
            if (challenged) return;
            challenged = true;
            const challenge = frame.payload as { nonce?: unknown; ts?: unknown } | undefined;
            if (typeof challenge?.nonce !== 'string' || !Number.isSafeInteger(challenge.ts)) return fail(new GatewayError('GATEWAY_FRAME_INVALID', 'bad challenge'));
            socket.send(JSON.stringify({ type: 'req', id: connectId, method: 'connect', params: connectParams(options, challenge.nonce, challenge.ts as number) }));
            return;
          }
          if (client) client.#deliver(frame.event, frame.payload, frame.seq);
          else {
            earlyChars += text.length;
            if (early.length === MAX_EARLY_EVENTS || earlyChars > MAX_EARLY_CHARS) {
              return fail(new GatewayError('GATEWAY_FRAME_INVALID', `the gateway sent more than ${MAX_EARLY_EVENTS} events or ${MAX_EARLY_CHARS} characters of them before hello-ok`));
            }
            early.push({ event: frame.event, payload: frame.payload, seq: frame.seq });
          }
          return;
        }
        if (frame.id === connectId && !client) {
          if (!frame.ok) return fail(new GatewayError('GATEWAY_REQUEST_FAILED', `connect refused: ${frame.error?.code ?? 'error'}`, { wire: (frame.error ?? { code: 'UNAVAILABLE', message: 'refused' }) as WireError }));
          if (!acceptsHelloOk(frame.payload)) return fail(new GatewayError('GATEWAY_FRAME_INVALID', 'hello-ok does not match the protocol schema'));
          clearTimeout(timer);
          socket.off('error', onError);
          socket.on('error', () => {});
          socket.off('close', onClose);
          client = new GatewayClient(socket, frame.payload, pending, closed, options.requestTimeoutMs ?? 30_000, early);
          client.#watchSilence(frame.payload.policy.tickIntervalMs);
          resolve(client);
          return;
        }
        if (client) client.#lastHeard = Date.now();
        const waiting = pending.get(frame.id);
        if (!waiting) return;
        pending.delete(frame.id);
        clearTimeout(waiting.timer);
        if (frame.ok) waiting.resolve(frame.payload);
        else waiting.reject(new GatewayError('GATEWAY_REQUEST_FAILED', `request failed: ${frame.error?.code ?? 'error'}`, { wire: (frame.error ?? { code: 'UNAVAILABLE', message: 'failed' }) as WireError }));
      });
    });
  }

  /** Sends a request; resolves with the payload. Throws GATEWAY_REQUEST_FAILED (`wire` holds the error), GATEWAY_TIMEOUT, GATEWAY_CONNECTION_CLOSED. */
  request(method: string, params?: unknown, options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.#socket.readyState !== WebSocket.OPEN) return Promise.reject(new GatewayError('GATEWAY_CONNECTION_CLOSED', 'the connection is closed'));
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new GatewayError('GATEWAY_TIMEOUT', `${method} got no answer in time`));
      }, options.timeoutMs ?? this.#requestTimeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#socket.send(JSON.stringify(params === undefined ? { type: 'req', id, method } : { type: 'req', id, method, params }));
    });
  }

  /** Listens for an event (`tick`, `node.invoke.request`, …). */
  on(event: string, listener: (payload: unknown, seq: number | undefined) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Closes the connection and waits for it to end. */
  async close(): Promise<void> {
    if (this.#socket.readyState === WebSocket.OPEN || this.#socket.readyState === WebSocket.CONNECTING) this.#socket.close(1000, 'bye');
    const timer = setTimeout(() => this.#socket.terminate(), 2_000);
    await this.closed;
    clearTimeout(timer);
  }

  /** A gateway silent for more than two tick intervals is gone: close with 4000 (as upstream's client does), so a caller can reconnect. */
  #watchSilence(tickIntervalMs: number): void {
    if (!Number.isSafeInteger(tickIntervalMs) || tickIntervalMs <= 0) return;
    this.#socket.on('ping', () => (this.#lastHeard = Date.now()));
    // Judged after the reads of the event loop's turn (timers run before them): what arrived while this process was
    // held up (a long task, a machine that did not schedule it, a laptop asleep) counts before the gateway is taken for gone.
    let judging: NodeJS.Immediate | undefined;
    const timer = setInterval(() => {
      judging ??= setImmediate(() => {
        judging = undefined;
        if (Date.now() - this.#lastHeard <= 2 * tickIntervalMs) return;
        clearInterval(timer);
        this.#socket.close(4000, 'tick timeout');
        setTimeout(() => this.#socket.terminate(), 1_000).unref();
      });
    }, Math.max(50, Math.floor(tickIntervalMs / 2)));
    timer.unref();
    void this.closed.then(() => {
      clearInterval(timer);
      clearImmediate(judging);
    });
  }

  /** Listens for every event, with its name. */
  onAny(listener: (event: string, payload: unknown) => void): () => void {
    this.#any.add(listener);
    return () => this.#any.delete(listener);
  }

  #deliver(event: string, payload: unknown, seq: number | undefined): void {
    if (this.#held) this.#held.push({ event, payload, seq });
    else this.#emit(event, payload, seq);
  }

  #emit(event: string, payload: unknown, seq: number | undefined): void {
    for (const listener of this.#listeners.get(event) ?? []) listener(payload, seq);
    for (const listener of this.#any) listener(event, payload);
  }
}

/** The `connect` params for these options and this challenge; signs the v3 device proof when a device is given. */
export function connectParams(options: GatewayClientOptions, nonce: string, challengeTs: number): ConnectParams {
  const role = options.role;
  const scopes = options.scopes ?? [];
  const client: ConnectParams['client'] = {
    id: options.client?.id ?? (role === 'node' ? 'node-host' : 'cli'),
    version: options.client?.version ?? '0.1.0',
    platform: options.client?.platform ?? process.platform,
    mode: options.client?.mode ?? (role === 'node' ? 'node' : 'cli'),
    ...(options.client?.displayName !== undefined ? { displayName: options.client.displayName } : {}),
    ...(options.client?.deviceFamily !== undefined ? { deviceFamily: options.client.deviceFamily } : {}),
  };
  const params: ConnectParams = {
    minProtocol: options.minProtocol ?? PROTOCOL_VERSION,
    maxProtocol: options.maxProtocol ?? PROTOCOL_VERSION,
    client,
    role,
    scopes,
    caps: options.caps ?? [],
    ...(role === 'node' ? { commands: options.commands ?? [] } : {}),
    auth: { ...(options.token !== undefined ? { token: options.token } : {}), ...(options.deviceToken !== undefined ? { deviceToken: options.deviceToken } : {}), ...(options.agentToken !== undefined ? { agentRuntimeIdentityToken: options.agentToken } : {}) },
  };
  if (options.device) {
    const signedAt = challengeTs;
    const signature = signDeviceAuth(options.device.privateKeyPem, {
      deviceId: options.device.deviceId,
      clientId: client.id,
      clientMode: client.mode,
      role,
      scopes,
      signedAtMs: signedAt,
      // What the gateway checks the signature with: auth.token ?? auth.deviceToken.
      token: options.token ?? options.deviceToken ?? '',
      nonce,
      platform: client.platform,
      ...(client.deviceFamily !== undefined ? { deviceFamily: client.deviceFamily } : {}),
    });
    params.device = { id: options.device.deviceId, publicKey: options.device.publicKey, signature, signedAt, nonce };
  }
  return params;
}
