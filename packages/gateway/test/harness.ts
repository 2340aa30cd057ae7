// Test helpers: a gateway on loopback in a temp state directory, and a raw
// WebSocket peer that lets a test send anything, including bad frames.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identity } from '@corral/identity';
import WebSocket from 'ws';
import { Gateway, GatewayClient, GatewayServer, type GatewayLogEntry, type GatewayServerOptions } from '../src/index.ts';

export interface TestGateway {
  server: GatewayServer;
  identity: Identity;
  token: string;
  stateDir: string;
  log: GatewayLogEntry[];
  stop(): Promise<void>;
}

export async function startTestGateway(options: Partial<GatewayServerOptions> & { stateDir?: string } = {}): Promise<TestGateway> {
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'corral-gw-'));
  const identity = Identity.open(stateDir);
  const token = options.token ?? randomBytes(24).toString('base64url');
  const log: GatewayLogEntry[] = [];
  const server = await GatewayServer.start({ port: 0, ...options, token, identity, log: (e) => log.push(e) });
  return {
    server,
    identity,
    token,
    stateDir,
    log,
    async stop() {
      await server.close();
      identity.close();
      if (!options.stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** A whole Gateway (policies, audit log, HTTP API) on a fresh state directory, with an administrator connected to it. */
export interface AdminGateway {
  stateDir: string;
  gw: Gateway;
  admin: GatewayClient;
}

/** Starts a gateway on a new state directory named `prefix…`, and connects an operator with operator.admin. */
export async function startAdminGateway(prefix: string, token: string): Promise<AdminGateway> {
  const stateDir = mkdtempSync(join(tmpdir(), prefix));
  const gw = await Gateway.start({ stateDir, token, port: 0 });
  const admin = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  return { stateDir, gw, admin };
}

/** Closes what startAdminGateway started and removes its state directory. */
export async function closeAdminGateway({ stateDir, gw, admin }: AdminGateway): Promise<void> {
  await admin.close();
  await gw.close();
  rmSync(stateDir, { recursive: true, force: true });
}

/** A peer that speaks raw frames. */
export class RawPeer {
  readonly socket: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #frames: Array<Record<string, unknown>> = [];
  readonly #waiters: Array<(f: Record<string, unknown>) => void> = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.on('error', () => {});
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      const waiter = this.#waiters.shift();
      if (waiter) waiter(frame);
      else this.#frames.push(frame);
    });
  }

  static open(url: string): Promise<RawPeer> {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  /** The next frame, or a rejection after `ms`. */
  next(ms = 3_000): Promise<Record<string, unknown>> {
    const ready = this.#frames.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no frame in time')), ms);
      this.#waiters.push((f) => {
        clearTimeout(timer);
        resolve(f);
      });
    });
  }

  /** Frames until one matches. */
  async until(match: (f: Record<string, unknown>) => boolean, ms = 3_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const frame = await this.next(Math.max(1, deadline - Date.now()));
      if (match(frame)) return frame;
    }
  }

  send(value: unknown): void {
    this.socket.send(typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value));
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close();
    const timer = setTimeout(() => this.socket.terminate(), 1_000);
    await this.closed;
    clearTimeout(timer);
  }
}
