// The egress proxy: the only way out of a contained command's network
// namespace. It runs in the Corral process, outside the sandbox; each sandbox
// run gets its own channel, a unix socket bound into the sandbox, with the
// run's allowlist. Every connection attempt becomes a ConnectionRecord.
import { lookup as systemLookup } from 'node:dns/promises';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainError } from '../errors.ts';
import { ResponseReader, type ResponseHead } from './http-response.ts';
import { RefusalBudget } from './refusal-budget.ts';
import { canonicalAddress, checkAddress, checkResolved, matchName, parseHost, type AllowedAddress, type AllowlistRefusal, type Destination } from './allowlist.ts';
import type { EgressRule } from './egress-rule.ts';
import type { SpecialAddressKind } from './special-addresses.ts';

/** One answer of a resolver, as `dns.lookup(name, { all: true })` gives it. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/**
 * Resolves a name to every address it has. `dns.promises.lookup` fits; tests
 * inject a table so that a name can stand for a loopback test server.
 */
export type EgressLookup = (hostname: string, options: { all: true; order: 'verbatim' }) => Promise<readonly ResolvedAddress[]>;

export interface EgressProxyOptions {
  /** The resolver; default `dns.promises.lookup` (the host's getaddrinfo). */
  lookup?: EgressLookup;
  /** Milliseconds to wait for the resolver before answering `dns-failed`; default 5000. */
  dnsTimeoutMs?: number;
  /** Milliseconds to wait for one upstream TCP connection; default 10000. */
  connectTimeoutMs?: number;
  /** Milliseconds a client has to send a complete request head; default 10000. */
  headerTimeoutMs?: number;
  /** Largest request head accepted, in bytes; default 16384. */
  maxHeaderSize?: number;
  /** Client connections one channel holds open at once; beyond, new ones are closed unanswered (and counted in `droppedRecords`). Default 256. */
  maxConnectionsPerChannel?: number;
  /**
   * Resolver calls one channel has under way at once, counting those whose client has gone or
   * whose answer came too late (a call cannot be taken back: it holds one of the host's resolver
   * threads until it returns); beyond, a lookup waits its turn. Default 4; never more than
   * `maxLookups` less one (when that is above 1), so that a command whose names do not answer
   * cannot hold every call the proxy makes and leave other runs' names unresolved.
   */
  maxLookupsPerChannel?: number;
  /**
   * Resolver calls the whole proxy has under way at once, over every channel, counted as
   * `maxLookupsPerChannel` counts them. The default resolver (getaddrinfo) runs on libuv's
   * threadpool, 4 threads unless UV_THREADPOOL_SIZE says otherwise, which the Corral process's file
   * operations and asynchronous hashing share; a name whose DNS does not answer holds its thread
   * until the resolver gives up, well past `dnsTimeoutMs`. Default 2, so that names resolving
   * slowly leave the rest of the process threads to work with.
   */
  maxLookups?: number;
  /**
   * Refused attempts a channel decides in a second once its burst (`refusalBurst`) is spent; past
   * that, every new attempt on the channel waits its turn before it is decided, so that a command
   * sending refused requests as fast as it can neither keeps the proxy's thread busy nor fills its
   * run's record in seconds. One whose client leaves before its turn is never decided: it is
   * counted in `droppedRecords`. Default 20.
   */
  refusalsPerSecond?: number;
  /** Refused attempts a channel decides at once before `refusalsPerSecond` holds it back. Default 100. */
  refusalBurst?: number;
  /** Folder in which the proxy makes its private 0700 folder of sockets; default `os.tmpdir()`. */
  directory?: string;
  /**
   * The host's own addresses, read again for each decision they can change (they change): for
   * every resolved name, and for an IP literal a CIDR rule opens; refused unless a CIDR rule names
   * the address itself, whatever range holds it (a loopback one stays loopback). Default: every
   * address of `os.networkInterfaces()`.
   */
  hostAddresses?: () => Iterable<string>;
}

export interface EgressChannelOptions {
  /** Called once for each connection attempt, when its record is final (refused, failed, or closed). Exceptions are swallowed. */
  onConnection?: (record: ConnectionRecord) => void;
  /**
   * Records `connections()` keeps; default 100000. Beyond it the oldest
   * allowed one is dropped; when none allowed is kept, the oldest refused one
   * that the next refused one to its host repeats (same method, port, address
   * and reason); else the oldest. A command cannot push a refused attempt out of
   * its run's record by making allowed connections, nor by sending one refused
   * request again and again. `onConnection` sees every one.
   */
  maxRecords?: number;
}

/**
 * Why a connection attempt did not go through.
 * - allowlist refusals (403): `not-allowed`, `port-not-allowed`, `private-address`, `bad-address`;
 * - the request itself (400, 431, 408): `bad-request` (also: more requests pipelined than the proxy holds, a
 *   CONNECT pipelined behind an unfinished answer, or a body with a Transfer-Encoding other than `chunked` alone),
 *   `header-too-large`, `header-timeout`; one that follows an
 *   unfinished answer on its connection is not answered: the client is cut off;
 * - the network (502, 504): `dns-failed`, `connect-failed`, `connect-timeout`;
 * - `channel-closed` (503): the run ended while the attempt was under way;
 * - `client-closed` (recorded as 499, answered to nobody): the client went away before the
 *   connection was made, and the attempt was given up.
 */
export type ConnectionRefusal =
  | AllowlistRefusal
  | 'bad-request'
  | 'header-too-large'
  | 'header-timeout'
  | 'dns-failed'
  | 'connect-failed'
  | 'connect-timeout'
  | 'channel-closed'
  | 'client-closed';

/**
 * One connection attempt. Never holds a path, query, header or body: those
 * may carry secrets.
 */
export interface ConnectionRecord {
  /** 1, 2, 3, … within the channel. */
  id: number;
  /**
   * When the request was taken up, ISO-8601: as it arrived, or for a pipelined one when the answers
   * before it were done, or past the channel's refusal budget when its turn came.
   */
  startedAt: string;
  /** `CONNECT` for a tunnel, `HTTP` for a plain-HTTP request forwarded by the proxy. */
  method: 'CONNECT' | 'HTTP';
  /** For `HTTP`: the request method (GET, POST, …). */
  httpMethod?: string;
  /** The host as the client named it, normalised (lower case, no trailing dot, IPv6 canonical without brackets); '' when unreadable. */
  host: string;
  /** The port asked for; 0 when unreadable. */
  port: number;
  /** The address connected to, or the address that was refused or could not be reached. */
  address?: string;
  /** True when the proxy connected upstream. */
  allowed: boolean;
  /** The rule that named the destination (`source` text): for a refused one, the name rule matched before its address was refused. */
  rule?: string;
  /** The CIDR rule that let a name reach a special address. */
  addressRule?: string;
  /** Why it did not go through (absent when allowed). */
  reason?: ConnectionRefusal;
  /** The special range of `address`, when it lies in one. */
  special?: SpecialAddressKind;
  /** The HTTP status answered: the upstream's for plain HTTP, 200 for an open tunnel, or the proxy's own refusal. */
  status?: number;
  /** For an allowed connection that ended abnormally: who ended it (`channel`: the run's channel was closed). */
  aborted?: 'client' | 'upstream' | 'channel';
  /** Bytes written upstream (the tunnelled bytes, or the forwarded request head and body). */
  bytesSent: number;
  /** Bytes read from upstream. */
  bytesReceived: number;
  /** Milliseconds from the request to the end of the connection (so far, while open). */
  durationMs: number;
  /** True while the connection is in progress. */
  open: boolean;
}

/** A run's way out: a unix socket speaking HTTP proxy, with the run's allowlist. */
export interface EgressChannel {
  /** The unix socket to bind into the sandbox (an in-sandbox forwarder connects to it). */
  readonly socketPath: string;
  /** Every connection attempt so far, oldest first (copies). */
  connections(): ConnectionRecord[];
  /**
   * Attempts left out of `connections()`: records dropped because of `maxRecords` (allowed ones
   * first), and attempts never decided because their connection ended first: their client left
   * while they waited their turn (see `refusalsPerSecond`) or behind the answers it had pipelined
   * them after, or was cut off for pipelining too many; and connections closed unread because the
   * channel held `maxConnectionsPerChannel`.
   */
  readonly droppedRecords: number;
  /** Stops accepting, ends every open tunnel and request, removes the socket. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Linux `sun_path` holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

const DEFAULTS = {
  dnsTimeoutMs: 5000,
  connectTimeoutMs: 10_000,
  headerTimeoutMs: 10_000,
  maxHeaderSize: 16_384,
  maxConnectionsPerChannel: 256,
  maxLookupsPerChannel: 4,
  maxLookups: 2,
  refusalsPerSecond: 20,
  refusalBurst: 100,
  maxRecords: 100_000,
} as const;

interface Settings {
  lookup: EgressLookup;
  hostAddresses: () => Iterable<string>;
  dnsTimeoutMs: number;
  connectTimeoutMs: number;
  headerTimeoutMs: number;
  maxHeaderSize: number;
  maxConnectionsPerChannel: number;
  maxLookupsPerChannel: number;
  maxLookups: number;
  refusalsPerSecond: number;
  refusalBurst: number;
  directory: string;
}

/**
 * The egress proxy: one per runner, shared by every sandbox run. Each run
 * opens its own channel with its own rules; no channel sees another's rules,
 * connections or records.
 *
 * Speaks HTTP CONNECT (tunnels, for HTTPS and any other TCP protocol) and
 * plain HTTP with absolute-form requests (`GET http://host:port/path`).
 * Decides with `matchName` / `checkAddress` / `checkResolved`: a name is
 * resolved only when a rule names it, and the proxy connects only to an
 * address it checked, never resolving twice. Nothing is logged.
 */
export class EgressProxy {
  readonly #settings: Settings;
  readonly #channels = new Set<Channel>();
  /** Every channel's resolver calls under way (see maxLookups). */
  readonly #lookups: Slots;
  #directory: Promise<string> | undefined;
  #closing: Promise<void> | undefined;
  #nextSocket = 0;

  /** @throws ContainError `CONTAIN_PROXY_FAILED` naming an unusable option. */
  constructor(options: EgressProxyOptions = {}) {
    this.#settings = readOptions(options);
    this.#lookups = new Slots(this.#settings.maxLookups);
  }

  /**
   * Opens a channel for one run: a fresh unix socket in the proxy's private
   * folder, enforcing `rules` (copied now; later changes to the array do
   * not reach the channel).
   *
   * @throws ContainError `CONTAIN_CLOSED` after close(); `CONTAIN_PROXY_FAILED`
   *   when a rule is not a parsed EgressRule, the socket path would not fit
   *   `sun_path`, or the socket cannot be made.
   */
  async openChannel(rules: readonly EgressRule[], options: EgressChannelOptions = {}): Promise<EgressChannel> {
    if (this.#closing !== undefined) throw new ContainError('CONTAIN_CLOSED', 'the egress proxy is closed');
    const snapshot = snapshotRules(rules);
    const maxRecords = options.maxRecords ?? DEFAULTS.maxRecords;
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 0) throw optionError('maxRecords', 'a whole number, 0 or more');
    if (options.onConnection !== undefined && typeof options.onConnection !== 'function') throw optionError('onConnection', 'a function');

    const directory = await this.#ensureDirectory();
    if (this.#closing !== undefined) throw new ContainError('CONTAIN_CLOSED', 'the egress proxy is closed');
    const socketPath = join(directory, `${++this.#nextSocket}.sock`);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
      throw new ContainError('CONTAIN_PROXY_FAILED', `the channel socket path is ${Buffer.byteLength(socketPath)} bytes, over the ${MAX_SOCKET_PATH_BYTES} a unix socket allows; choose a shorter 'directory'`);
    }
    const channel = new Channel(socketPath, snapshot, this.#settings, this.#lookups, options.onConnection, maxRecords, () => this.#channels.delete(channel));
    this.#channels.add(channel);
    try {
      await channel.listen();
    } catch (cause) {
      await channel.close();
      throw new ContainError('CONTAIN_PROXY_FAILED', 'cannot listen on the channel socket', { cause });
    }
    return channel;
  }

  /** Closes every channel and removes the proxy's folder. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#channels].map((c) => c.close()));
      const directory = await this.#directory?.catch(() => undefined);
      if (directory !== undefined) await rm(directory, { recursive: true, force: true }).catch(() => undefined);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #ensureDirectory(): Promise<string> {
    this.#directory ??= (async () => {
      try {
        const directory = await mkdtemp(join(this.#settings.directory, 'corral-egress-'));
        await chmod(directory, 0o700);
        return directory;
      } catch (cause) {
        throw new ContainError('CONTAIN_PROXY_FAILED', 'cannot make the egress proxy folder', { cause });
      }
    })();
    // A failed attempt is not cached: the next openChannel tries again.
    this.#directory.catch(() => {
      this.#directory = undefined;
    });
    return this.#directory;
  }
}

function optionError(name: string, expected: string): ContainError {
  return new ContainError('CONTAIN_PROXY_FAILED', `egress proxy option '${name}' must be ${expected}`);
}

function readOptions(options: EgressProxyOptions): Settings {
  if (typeof options !== 'object' || options === null) throw optionError('options', 'an object');
  const positive = (name: keyof typeof DEFAULTS, value: number | undefined): number => {
    const v = value ?? DEFAULTS[name];
    if (!Number.isSafeInteger(v) || v <= 0) throw optionError(name, 'a whole number above 0');
    return v;
  };
  const lookup = options.lookup ?? ((hostname, opts) => systemLookup(hostname, opts));
  if (typeof lookup !== 'function') throw optionError('lookup', 'a function like dns.promises.lookup');
  const directory = options.directory ?? tmpdir();
  if (typeof directory !== 'string' || directory === '') throw optionError('directory', 'a folder path');
  const hostAddresses = options.hostAddresses ?? interfaceAddresses;
  if (typeof hostAddresses !== 'function') throw optionError('hostAddresses', 'a function returning addresses');
  return {
    lookup,
    hostAddresses,
    dnsTimeoutMs: positive('dnsTimeoutMs', options.dnsTimeoutMs),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs),
    headerTimeoutMs: positive('headerTimeoutMs', options.headerTimeoutMs),
    maxHeaderSize: positive('maxHeaderSize', options.maxHeaderSize),
    maxConnectionsPerChannel: positive('maxConnectionsPerChannel', options.maxConnectionsPerChannel),
    maxLookupsPerChannel: positive('maxLookupsPerChannel', options.maxLookupsPerChannel),
    maxLookups: positive('maxLookups', options.maxLookups),
    refusalsPerSecond: positive('refusalsPerSecond', options.refusalsPerSecond),
    refusalBurst: positive('refusalBurst', options.refusalBurst),
    directory,
  };
}

/** Every address of the host's network interfaces. */
function* interfaceAddresses(): Iterable<string> {
  for (const entries of Object.values(networkInterfaces())) for (const entry of entries ?? []) yield entry.address;
}

/** The host's own addresses in canonical text (what checkAddress compares), unusable entries dropped. */
function readHostAddresses(source: () => Iterable<string>): Set<string> {
  const own = new Set<string>();
  for (const address of source()) {
    const canonical = canonicalAddress(address);
    if (canonical !== null) own.add(canonical.address);
  }
  return own;
}

/** Copies the rules once into frozen objects, checking each is a parsed rule. */
function snapshotRules(rules: readonly EgressRule[]): readonly EgressRule[] {
  if (!Array.isArray(rules)) throw optionError('rules', 'an array of parsed egress rules (parseEgressRule)');
  return Object.freeze(
    rules.map((rule, i) => {
      const kind = (rule as { kind?: unknown } | null)?.kind;
      if (kind !== 'domain' && kind !== 'wildcard' && kind !== 'cidr') {
        throw optionError(`rules[${i}]`, 'a parsed egress rule (parseEgressRule), not text or another object');
      }
      return Object.freeze(structuredClone(rule));
    }),
  );
}

interface Entry {
  record: ConnectionRecord;
  started: number;
  upstream?: net.Socket;
  /** For a tunnel: the client socket the upstream's bytes go to, once the tunnel is established. */
  client?: net.Socket;
  /** For plain HTTP: takes each read of the upstream, once the request is on its way. */
  reader?: (read: Read) => void;
  done: boolean;
  /** Dropped from the kept records (maxRecords), where it still sits until they are compacted. */
  dropped?: boolean;
}

// An upstream's reads go into pooled buffers that are written straight to the client, each
// buffer returned when its write is done: no allocation and no garbage per chunk on the path that
// carries most bytes. Only the bytes a read filled are ever written (`subarray(0, n)`). Reads of up
// to 256 KiB (a loopback or LAN download fills them) cost the proxy about 40 % less CPU per byte
// than 64 KiB ones: a quarter of the callbacks and writes.
//
// The proxy runs outside the sandbox's memory limit, so what a contained command can make it hold
// is bounded, end to end: nothing more is read from one side while the other has not taken what
// was written to it (the kernel's socket buffers hold the rest), and a channel has at most
// CHANNEL_READ_BUFFERS large buffers in use at once. An upstream that is idle or read slowly (a
// read did not fill its buffer), or whose channel has its large buffers in use, reads into PARK,
// which every socket shares: what a read puts there is copied out at once. A connection whose
// client stops reading thus holds one read of 16 KiB, or some of its channel's large buffers; one
// whose upstream stops reading holds what Node read ahead from the client (one read of up to
// 64 KiB) and one such read unsent. 64 stalled tunnels held 80 MiB (145 MiB the other way)
// before, 2 MiB (8 MiB) now.
const READ_BUFFER_BYTES = 256 * 1024;
/** Large read buffers one channel has in use at once: being read into, or written and not yet taken by the other side. */
const CHANNEL_READ_BUFFERS = 4;
/** At most 8 MiB of read buffers kept between reads. */
const POOLED_BUFFERS = 32;
const readBuffers: Buffer[] = [];
/** The small read buffer every socket shares (see above). */
const PARK = Buffer.alloc(16 * 1024);
/**
 * The high-water mark of the client side's streams (the socket, a request body): while the
 * proxy does not read them, what Node reads ahead stays this small.
 */
const CLIENT_HIGH_WATER_MARK = 16 * 1024;

function takeReadBuffer(): Buffer {
  return readBuffers.pop() ?? Buffer.alloc(READ_BUFFER_BYTES);
}

function returnReadBuffer(buffer: Buffer): void {
  if (readBuffers.length < POOLED_BUFFERS) readBuffers.push(buffer);
}

/** One channel's large read buffers: at most CHANNEL_READ_BUFFERS in use; beyond, PARK. */
class ReadBuffers {
  #inUse = 0;

  /** A large buffer when `large` and the channel has one to spare, else PARK. */
  take(large: boolean): Buffer {
    if (!large || this.#inUse >= CHANNEL_READ_BUFFERS) return PARK;
    this.#inUse++;
    return takeReadBuffer();
  }

  /** Gives back a buffer take() gave (PARK needs no giving back). */
  give(buffer: Buffer): void {
    if (buffer === PARK) return;
    this.#inUse--;
    returnReadBuffer(buffer);
  }
}

/** A read's bytes, and what to call once nothing refers to them any more. */
interface Read {
  chunk: Buffer;
  release: () => void;
}

const nothing = () => undefined;

interface Target {
  destination: Destination;
  /** The host as records and answers show it (IPv6 without brackets). */
  host: string;
  port: number;
}

interface HttpTarget extends Target {
  /** origin-form path and query sent upstream. */
  path: string;
  /** The Host header sent upstream: the request URI's authority (RFC 9112 section 3.2.2). */
  authority: string;
}

type Outcome = Exclude<ConnectionRefusal, 'bad-request' | 'header-too-large' | 'header-timeout'>;
type DialFailure = 'connect-failed' | 'connect-timeout' | 'channel-closed' | 'client-closed';

const STATUS: Record<ConnectionRefusal, number> = {
  'not-allowed': 403,
  'port-not-allowed': 403,
  'private-address': 403,
  'bad-address': 403,
  'bad-request': 400,
  'header-too-large': 431,
  'header-timeout': 408,
  'dns-failed': 502,
  'connect-failed': 502,
  'connect-timeout': 504,
  'channel-closed': 503,
  // nginx's "client closed request": nobody was left to answer.
  'client-closed': 499,
};

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/** Plain-HTTP requests a client connection may pipeline behind an unfinished answer (clients seldom pipeline at all). */
const MAX_PIPELINED = 8;

class Channel implements EgressChannel {
  readonly socketPath: string;
  readonly #rules: readonly EgressRule[];
  readonly #settings: Settings;
  readonly #onConnection: ((record: ConnectionRecord) => void) | undefined;
  readonly #maxRecords: number;
  readonly #forget: () => void;
  readonly #server: http.Server;
  /**
   * The kept records, oldest first: a dropped one is marked in place and the array is compacted
   * once as many are dropped as it keeps. Array.shift() copied the whole array for each record past
   * maxRecords (some 0.3 ms of the proxy's thread at 100000, for each request a contained command
   * sends). Dropped first are the kept records that were allowed (#allowed), then the refused ones
   * a later kept one repeats (#repeated), so that neither allowed connections nor one refused
   * request sent again and again push a refused attempt out of the record. Each drop costs
   * constant time, amortised.
   */
  #records: Entry[] = [];
  /** Where in #records the oldest record not dropped may be: none before it is kept. */
  #front = 0;
  #kept = 0;
  readonly #allowed = new DropQueue();
  readonly #repeated = new DropQueue();
  /**
   * The latest kept refused record of each host, the record's own host string its key (a key of
   * its own cost each record as much again as the record).
   */
  readonly #latestRefused = new Map<string, Entry>();
  readonly #open = new Set<Entry>();
  readonly #clients = new Set<net.Socket>();
  readonly #upstreams = new Set<net.Socket>();
  /** Per client connection: plain-HTTP requests pipelined behind an unfinished answer (see #await). */
  readonly #waiting = new WeakMap<net.Socket, number>();
  /** Per client connection: the plain-HTTP answer it is being given, until that answer closes. */
  readonly #answering = new WeakMap<net.Socket, http.ServerResponse>();
  /** Client connections whose unreadable request has its refusal waiting its turn or answered. */
  readonly #refusing = new WeakSet<net.Socket>();
  readonly #abort = new AbortController();
  /** The channel's resolver calls under way, abandoned ones included (see maxLookupsPerChannel). */
  readonly #lookups: Slots;
  /** The proxy's, every channel's (see maxLookups); a call holds its channel's slot while it waits for one. */
  readonly #allLookups: Slots;
  readonly #budget: RefusalBudget;
  readonly #buffers = new ReadBuffers();
  #closing: Promise<void> | undefined;
  #nextId = 0;
  #dropped = 0;

  constructor(
    socketPath: string,
    rules: readonly EgressRule[],
    settings: Settings,
    allLookups: Slots,
    onConnection: ((record: ConnectionRecord) => void) | undefined,
    maxRecords: number,
    forget: () => void,
  ) {
    this.socketPath = socketPath;
    this.#rules = rules;
    this.#settings = settings;
    this.#onConnection = onConnection;
    this.#maxRecords = maxRecords;
    this.#forget = forget;
    this.#lookups = new Slots(Math.min(settings.maxLookupsPerChannel, Math.max(1, settings.maxLookups - 1)));
    this.#allLookups = allLookups;
    this.#budget = new RefusalBudget(settings.refusalBurst, settings.refusalsPerSecond);
    this.#server = http.createServer({
      maxHeaderSize: settings.maxHeaderSize,
      headersTimeout: settings.headerTimeoutMs,
      // A request body may stream for as long as the run lasts; only the head is timed.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(settings.headerTimeoutMs / 4))),
      requireHostHeader: false,
      insecureHTTPParser: false,
      highWaterMark: CLIENT_HIGH_WATER_MARK,
    });
    this.#server.maxConnections = settings.maxConnectionsPerChannel;
    // A connection past the cap is closed before anything is read from it: an attempt refused
    // unheard, counted as one left out of the records.
    this.#server.on('drop', () => this.#dropped++);
    this.#server.on('connection', (socket: net.Socket) => {
      this.#clients.add(socket);
      socket.once('close', () => this.#clients.delete(socket));
    });
    this.#server.on('request', (req, res) => this.#forward(req, res));
    // An expectation other than 100-continue: without this listener Node answers 417 itself, an
    // attempt the proxy would never decide or record. Decided like any request; Expect, a
    // hop-by-hop field here, is not forwarded.
    this.#server.on('checkExpectation', (req, res) => this.#forward(req, res));
    this.#server.on('connect', (req, socket: net.Socket, head: Buffer) => this.#tunnel(req, socket, head));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => this.#clientError(err, socket));
  }

  get droppedRecords(): number {
    return this.#dropped;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.socketPath, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    // Accept failures (EMFILE) must not take the Corral process down.
    this.#server.on('error', () => undefined);
    await chmod(this.socketPath, 0o600);
  }

  connections(): ConnectionRecord[] {
    const out: ConnectionRecord[] = [];
    for (const entry of this.#records) if (!entry.dropped) out.push(this.#snapshot(entry));
    return out;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort();
      this.#budget.close();
      for (const entry of this.#open) if (entry.record.allowed) entry.record.aborted ??= 'channel';
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const socket of this.#upstreams) socket.destroy();
      for (const socket of this.#clients) socket.destroy();
      await closed;
      await rm(this.socketPath, { force: true }).catch(() => undefined);
      this.#forget();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- records

  #begin(method: 'CONNECT' | 'HTTP', httpMethod?: string): Entry {
    const record: ConnectionRecord = {
      id: ++this.#nextId,
      startedAt: new Date().toISOString(),
      method,
      host: '',
      port: 0,
      allowed: false,
      bytesSent: 0,
      bytesReceived: 0,
      durationMs: 0,
      open: true,
    };
    if (httpMethod !== undefined) record.httpMethod = httpMethod;
    const entry: Entry = { record, started: performance.now(), done: false };
    if (this.#kept >= this.#maxRecords) this.#dropOne();
    if (this.#maxRecords > 0) {
      this.#records.push(entry);
      this.#kept++;
    }
    this.#open.add(entry);
    return entry;
  }

  /** A kept record was allowed: it is among the first to be dropped. */
  #allowedRecord(entry: Entry): void {
    if (this.#maxRecords > 0 && !entry.dropped) this.#allowed.push(entry);
  }

  /** A kept record was refused: the one it repeats, if any, is among the first to be dropped. */
  #refusedRecord(entry: Entry): void {
    if (this.#maxRecords === 0 || entry.dropped) return;
    const earlier = this.#latestRefused.get(entry.record.host);
    if (earlier !== undefined && !earlier.dropped && sameRefusal(earlier.record, entry.record)) this.#repeated.push(earlier);
    this.#latestRefused.set(entry.record.host, entry);
  }

  /**
   * Drops the oldest kept record that was allowed, else the oldest refused one a later one
   * repeats, else the oldest kept (when maxRecords is 0 there is none to drop: nothing is kept).
   */
  #dropOne(): void {
    this.#dropped++;
    if (this.#kept === 0) return;
    let victim = this.#allowed.take() ?? this.#repeated.take();
    if (victim === undefined) {
      while (this.#records[this.#front]!.dropped) this.#front++;
      victim = this.#records[this.#front]!;
      if (this.#latestRefused.get(victim.record.host) === victim) this.#latestRefused.delete(victim.record.host);
    }
    victim.dropped = true;
    this.#kept--;
    if (this.#records.length >= 2 * this.#kept + 64) {
      this.#records = this.#records.filter((e) => !e.dropped);
      this.#front = 0;
    }
  }

  #snapshot(entry: Entry): ConnectionRecord {
    const copy = { ...entry.record };
    if (!entry.done) {
      copy.durationMs = performance.now() - entry.started;
      if (entry.upstream !== undefined) {
        copy.bytesSent = entry.upstream.bytesWritten;
        copy.bytesReceived = entry.upstream.bytesRead;
      }
    }
    return copy;
  }

  #finish(entry: Entry): void {
    if (entry.done) return;
    entry.done = true;
    this.#open.delete(entry);
    const record = entry.record;
    record.durationMs = performance.now() - entry.started;
    if (entry.upstream !== undefined) {
      record.bytesSent = entry.upstream.bytesWritten;
      record.bytesReceived = entry.upstream.bytesRead;
    }
    // Kept records must not keep their sockets alive.
    delete entry.upstream;
    delete entry.client;
    delete entry.reader;
    record.open = false;
    if (this.#onConnection === undefined) return;
    try {
      this.#onConnection({ ...record });
    } catch {
      // A reporting callback must not break the proxy.
    }
  }

  #refused(entry: Entry, reason: ConnectionRefusal): void {
    this.#budget.spend();
    entry.record.allowed = false;
    entry.record.reason = reason;
    entry.record.status = STATUS[reason];
    this.#refusedRecord(entry);
    this.#finish(entry);
  }

  // ---- requests

  #clientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    const code = err.code;
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const reason: ConnectionRefusal =
      code === 'HPE_HEADER_OVERFLOW' ? 'header-too-large' : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'header-timeout' : 'bad-request';
    // Behind an answer under way (a pipelined request), the refusal would be written into that
    // answer's bytes, or read as the answer to an earlier request: the client is cut off instead.
    if (this.#answersPending(socket)) {
      this.#refused(this.#begin('HTTP'), reason);
      socket.destroy();
      return;
    }
    // Node reports the same connection again (more bytes after the bad ones, its header timeout)
    // while its refusal waits its turn: one refusal for it is enough.
    if (this.#refusing.has(socket)) return;
    this.#refusing.add(socket);
    this.#inTurn(socket, () => {
      this.#refused(this.#begin('HTTP'), reason);
      endWith(socket, rawAnswer(reason, undefined));
    });
  }

  /**
   * Decides an attempt in its turn (see refusalsPerSecond): `decide` runs now, or once the
   * channel's refusals allow. An attempt whose client leaves (`closes` emits 'close') before its
   * turn is never decided, and counted in droppedRecords.
   */
  #inTurn(closes: net.Socket | http.ServerResponse, decide: () => void): void {
    const withdraw = this.#budget.turn(decide);
    closes.once('close', () => {
      if (withdraw()) this.#dropped++;
    });
  }

  /** True while the client connection has a plain-HTTP answer under way or requests waiting for theirs. */
  #answersPending(socket: net.Socket): boolean {
    return this.#answering.has(socket) || (this.#waiting.get(socket) ?? 0) > 0;
  }

  #tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
    client.setTimeout(0);
    let entry: Entry | undefined;
    // Node's server stops listening for the socket's errors when it hands a CONNECT over: without
    // this, a client that resets its connection while the decision is pending would crash the process.
    client.on('error', () => {
      if (entry?.record.allowed) entry.record.aborted ??= 'client';
    });
    const gone = new AbortController();
    client.once('close', () => gone.abort());
    // Node hands a CONNECT over as soon as it is parsed, even pipelined behind a plain-HTTP request
    // still being answered: its tunnel would be a second upstream connection for one client
    // connection, and its 200 and bytes would go out before (or into) the answers owed first.
    if (this.#answersPending(client)) {
      entry = this.#begin('CONNECT');
      this.#readAuthority(entry, req);
      this.#refused(entry, 'bad-request');
      client.destroy();
      return;
    }
    this.#inTurn(client, () => {
      entry = this.#begin('CONNECT');
      this.#decideTunnel(entry, req, client, head, gone.signal);
    });
  }

  /** The CONNECT's target, written into its record when readable. */
  #readAuthority(entry: Entry, req: http.IncomingMessage): Target | null {
    const target = parseAuthority(req.url ?? '');
    if (target !== null) {
      entry.record.host = target.host;
      entry.record.port = target.port;
    }
    return target;
  }

  #decideTunnel(entry: Entry, req: http.IncomingMessage, client: net.Socket, head: Buffer, gone: AbortSignal): void {
    const target = this.#readAuthority(entry, req);
    if (target === null) {
      this.#refused(entry, 'bad-request');
      endWith(client, rawAnswer('bad-request', undefined));
      return;
    }
    void this.#connect(entry, target, true, gone)
      .then((upstream) => this.#splice(entry, target, client, head, upstream))
      .catch(() => {
        entry.upstream?.destroy();
        client.destroy();
        this.#finish(entry);
      });
  }

  /** Joins the client to the upstream connection, or answers the refusal. */
  #splice(entry: Entry, target: Target, client: net.Socket, head: Buffer, upstream: net.Socket | Outcome): void {
    if (typeof upstream === 'string') {
      this.#refused(entry, upstream);
      endWith(client, rawAnswer(upstream, target));
      return;
    }
    entry.upstream = upstream;
    entry.record.status = 200;
    if (client.destroyed || !client.writable) {
      entry.record.aborted = 'client';
      upstream.destroy();
      this.#finish(entry);
      return;
    }
    let open = 2;
    const settle = () => {
      if (--open === 0) this.#finish(entry);
    };
    client.once('close', settle);
    upstream.once('close', settle);
    entry.client = client;
    client.write(ESTABLISHED);
    if (head.length > 0) upstream.write(head);
    // Each direction ends on its own (half-close is passed on); an error in either tears down both.
    // Nothing more is read from the client while the upstream has not taken what it was given.
    const resumeClient = () => {
      if (upstream.writableLength === 0 && !client.destroyed) client.resume();
    };
    client.on('data', (data: Buffer) => {
      if (upstream.destroyed) return;
      upstream.write(data, resumeClient);
      if (upstream.writableLength > 0) client.pause();
    });
    // A client that ended its side while the tunnel was being decided has had its 'end' already.
    if (client.readableEnded) upstream.end();
    else client.once('end', () => upstream.end());
    client.once('close', () => {
      if (!client.readableEnded) upstream.destroy();
    });
    client.resume();
    upstream.once('end', () => client.end());
    upstream.once('close', () => {
      if (!client.writableEnded) client.destroy();
    });
    upstream.resume();
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (res.socket === null) {
      this.#await(req, res);
      return;
    }
    const socket = res.socket;
    this.#answering.set(socket, res);
    res.once('close', () => {
      if (this.#answering.get(socket) === res) this.#answering.delete(socket);
    });
    // A client gone before its answer: the attempt is given up, so that a client which sends a
    // request and leaves, again and again, makes no more work than the channel's connections allow.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    this.#inTurn(res, () => this.#decideHttp(this.#begin('HTTP', req.method), req, res, gone.signal));
  }

  #decideHttp(entry: Entry, req: http.IncomingMessage, res: http.ServerResponse, gone: AbortSignal): void {
    const target = parseAbsoluteHttp(req.url ?? '');
    if (target === null) {
      this.#refused(entry, 'bad-request');
      answer(res, 'bad-request', undefined);
      return;
    }
    entry.record.host = target.host;
    entry.record.port = target.port;
    if (!plainFraming(req)) {
      this.#refused(entry, 'bad-request');
      answer(res, 'bad-request', target);
      return;
    }
    void this.#connect(entry, target, false, gone)
      .then((upstream) => {
        if (typeof upstream === 'string') {
          this.#refused(entry, upstream);
          answer(res, upstream, target);
          return;
        }
        entry.upstream = upstream;
        if (res.destroyed || req.destroyed) {
          entry.record.aborted = 'client';
          upstream.destroy();
          this.#finish(entry);
          return;
        }
        this.#relay(req, res, entry, upstream, target);
      })
      .catch(() => {
        entry.upstream?.destroy();
        res.destroy();
        this.#finish(entry);
      });
  }

  /**
   * Holds a request pipelined behind an answer still being sent until Node
   * gives it the client's socket (the answers before it are done), so that a
   * client connection holds one upstream connection at a time. Node parses
   * and queues every request a client sends, however many, while none of them
   * has an answer to write: a client with more than MAX_PIPELINED waiting is
   * cut off, recorded as `bad-request`. A request whose connection ends before
   * its turn is counted in droppedRecords.
   */
  #await(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    // Cut off already: the rest of what Node had read is never decided, only counted.
    if (socket.destroyed) {
      this.#dropped++;
      return;
    }
    const waiting = (this.#waiting.get(socket) ?? 0) + 1;
    if (waiting > MAX_PIPELINED) {
      this.#refused(this.#begin('HTTP', req.method), 'bad-request');
      socket.destroy();
      return;
    }
    // Requests still waiting when the connection ends (its client left, or was cut off) are never
    // decided, only counted.
    if (!this.#waiting.has(socket)) socket.once('close', () => (this.#dropped += this.#waiting.get(socket) ?? 0));
    this.#waiting.set(socket, waiting);
    res.once('socket', () => {
      this.#waiting.set(socket, (this.#waiting.get(socket) ?? 1) - 1);
      this.#forward(req, res);
    });
  }

  /**
   * Sends one plain-HTTP request upstream over `upstream` and passes the
   * answer back. The request goes with `Connection: close`, one upstream
   * connection per request; the answer's head is checked and re-sent by the
   * client's ServerResponse (which frames it for the client's keep-alive),
   * and its body goes on as the slices of the upstream's reads.
   */
  #relay(req: http.IncomingMessage, res: http.ServerResponse, entry: Entry, upstream: net.Socket, target: HttpTarget): void {
    let open = 2;
    const settle = () => {
      if (--open === 0) this.#finish(entry);
    };
    const reader = new ResponseReader(req.method === 'HEAD', http.maxHeaderSize);
    // Set once the answer is whole or given up: nothing more is read or written for this request.
    let stopped = false;
    const stop = () => {
      stopped = true;
      upstream.destroy();
      // A body the upstream no longer takes is read and dropped, so the client's next request can follow.
      req.resume();
    };
    const fail = (by: 'client' | 'upstream') => {
      if (stopped) return;
      stop();
      entry.record.aborted ??= by;
      if (res.headersSent || by === 'client') res.destroy();
      else {
        entry.record.status = 502;
        answer(res, 'upstream-failed', target);
      }
    };
    const complete = () => {
      if (stopped) return;
      // The answer is whole: whatever else the upstream sends is not passed on.
      stop();
      res.end();
    };
    upstream.once('close', () => {
      fail('upstream');
      settle();
    });
    upstream.once('end', () => {
      if (stopped) return;
      if (reader.end() === 'done') complete();
      else fail('upstream');
    });
    res.once('close', () => {
      if (!res.writableFinished) fail('client');
      settle();
    });

    // Each read's buffer is released once every slice written from it has been sent. Nothing more
    // is read from the upstream while the bytes of two reads wait for the client: one read in
    // flight would not keep a fast client busy (a quarter less speed); more would hold more.
    interface Pending {
      release: () => void;
      held: number;
      written: boolean;
    }
    let current: Pending = { release: nothing, held: 0, written: false };
    let unsent = 0;
    const release = (read: Pending) => {
      if (--read.held > 0) return;
      read.release();
      if (!read.written) return;
      unsent--;
      if (!stopped && unsent < 2 && upstream.isPaused() && !upstream.destroyed) upstream.resume();
    };
    const sink = {
      head: (head: ResponseHead) => {
        entry.record.status = head.status;
        try {
          res.writeHead(head.status, head.reason, responseHeaders(head.rawHeaders, head.length));
        } catch {
          // A head Node will not re-send (an invalid field): the answer cannot be passed on.
          fail('upstream');
        }
      },
      body: (chunk: Buffer, start: number, end: number) => {
        if (start === end || stopped) return;
        const read = current;
        if (!read.written) {
          read.written = true;
          unsent++;
        }
        read.held++;
        res.write(chunk.subarray(start, end), () => release(read));
      },
    };
    entry.reader = ({ chunk, release: giveBack }) => {
      if (stopped) return giveBack();
      current = { release: giveBack, held: 1, written: false };
      const progress = reader.push(chunk, sink);
      release(current);
      if (unsent >= 2) upstream.pause();
      if (progress === 'done') complete();
      else if (progress !== 'head' && progress !== 'body') fail('upstream');
    };

    upstream.write(requestHead(req, target), 'latin1');
    this.#sendBody(req, upstream, entry);
    upstream.resume();
  }

  /** Passes the request body on as Node's parser gives it, re-chunked when the client sent it chunked. */
  #sendBody(req: http.IncomingMessage, upstream: net.Socket, entry: Entry): void {
    const chunked = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] !== undefined;
    // Nothing more is read from the client while the upstream has not taken what it was given.
    const resumeClient = () => {
      if (upstream.writableLength === 0 && !req.destroyed) req.resume();
    };
    req.on('data', (data: Buffer) => {
      if (upstream.destroyed || data.length === 0) return;
      if (chunked) {
        upstream.write(`${data.length.toString(16)}\r\n`);
        upstream.write(data);
      }
      upstream.write(chunked ? '\r\n' : data, resumeClient);
      if (upstream.writableLength > 0) req.pause();
    });
    req.once('end', () => {
      if (chunked && !upstream.destroyed) upstream.write('0\r\n\r\n');
    });
    req.once('error', () => {
      entry.record.aborted ??= 'client';
      upstream.destroy();
    });
  }

  // ---- decisions and connections

  /**
   * Decides the destination and connects to the first address that passes,
   * trying the next permitted one when a connection fails; gives up when
   * `gone` aborts (the client left). Never rejects.
   */
  async #connect(entry: Entry, target: Target, tunnel: boolean, gone: AbortSignal): Promise<net.Socket | Outcome> {
    const record = entry.record;
    try {
      let candidates: AllowedAddress[];
      const destination = target.destination;
      if (destination.kind === 'address') {
        // The host's own addresses (os.networkInterfaces(): some 0.2 ms of the proxy's thread, four
        // times the rest of a refusal) can only refuse an address a CIDR rule opens, in a special
        // range or not (10.0.0.0/8:5432 opens 10.1.2.3, unless it is the host's own).
        let verdict = checkAddress(this.#rules, destination.address, target.port);
        if (verdict.allowed) {
          verdict = checkAddress(this.#rules, destination.address, target.port, undefined, readHostAddresses(this.#settings.hostAddresses));
        }
        record.address = verdict.address;
        if (verdict.special !== null) record.special = verdict.special.kind;
        if (!verdict.allowed) return verdict.reason;
        record.rule = verdict.rule.source;
        candidates = [verdict];
      } else {
        const verdict = matchName(this.#rules, destination.name, target.port);
        if (!verdict.allowed) return verdict.reason;
        record.rule = verdict.rule.source;
        const addresses = await this.#resolve(destination.name, gone);
        if (this.#closing !== undefined) return 'channel-closed';
        if (gone.aborted) return 'client-closed';
        if (addresses === null) return 'dns-failed';
        const { permitted, refused } = checkResolved(this.#rules, verdict.rule, addresses, target.port, readHostAddresses(this.#settings.hostAddresses));
        if (permitted.length === 0) {
          const first = refused[0];
          if (first === undefined) return 'dns-failed';
          record.address = first.address;
          if (first.special !== null) record.special = first.special.kind;
          return first.reason;
        }
        candidates = permitted;
      }

      let failure: Outcome = 'connect-failed';
      for (const candidate of candidates) {
        record.address = candidate.address;
        if (candidate.special === null) delete record.special;
        else record.special = candidate.special.kind;
        if (candidate.addressRule === undefined) delete record.addressRule;
        else record.addressRule = candidate.addressRule.source;
        const result = await this.#dial(entry, candidate, target.port, tunnel, gone);
        if (typeof result !== 'string') {
          record.allowed = true;
          this.#allowedRecord(entry);
          return result;
        }
        failure = result;
        if (result === 'channel-closed' || result === 'client-closed') break;
      }
      return failure;
    } catch {
      return 'connect-failed';
    }
  }

  /**
   * The resolver's addresses (copied once), or null on failure, timeout (counted from the request,
   * its wait for a turn included), an unusable answer, or when `gone` aborts or the channel closes.
   */
  async #resolve(name: string, gone: AbortSignal): Promise<string[] | null> {
    const closing = this.#abort.signal;
    if (gone.aborted || closing.aborted) return null;
    let timer: NodeJS.Timeout | undefined;
    let giveUp = () => {};
    const givenUp = new Promise<null>((resolve) => {
      giveUp = () => resolve(null);
      timer = setTimeout(giveUp, this.#settings.dnsTimeoutMs);
    });
    gone.addEventListener('abort', giveUp, { once: true });
    closing.addEventListener('abort', giveUp, { once: true });
    try {
      const lookup = () => this.#settings.lookup(name, { all: true, order: 'verbatim' });
      const answer = await Promise.race([this.#lookups.run(() => this.#allLookups.run(lookup, givenUp), givenUp), givenUp]);
      if (!Array.isArray(answer)) return null;
      const addresses: string[] = [];
      for (const item of answer as unknown[]) {
        const address = (item as { address?: unknown } | null)?.address;
        if (typeof address === 'string') addresses.push(address);
      }
      return addresses;
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
      gone.removeEventListener('abort', giveUp);
      closing.removeEventListener('abort', giveUp);
    }
  }

  /** Hands one read of a plain-HTTP upstream to its request's reader. */
  #read(entry: Entry, upstream: net.Socket, read: Read): boolean {
    const reader = entry.reader;
    if (reader === undefined) {
      // Read before the request was sent, or after the record was finished: fail closed.
      read.release();
      upstream.destroy();
      return false;
    }
    reader(read);
    return true;
  }

  /** Writes one read of a tunnel's upstream to its client; reads nothing more until the client has taken it. */
  #deliver(entry: Entry, upstream: net.Socket, read: Read): boolean {
    const client = entry.client;
    if (client === undefined || client.destroyed) {
      // Nowhere to deliver: the tunnel is gone, or (were the socket read before #splice —
      // it starts paused so that this cannot happen) bytes would be lost. Fail closed.
      read.release();
      upstream.destroy();
      return false;
    }
    // A read into one of the channel's large buffers may wait unsent while the next is read (the
    // channel's budget bounds how many): reading only once each was taken whole cost a download
    // through a tunnel 15 % of its speed. A read into PARK, copied out, waits alone.
    const allowed = read.release === nothing ? 0 : READ_BUFFER_BYTES;
    client.write(read.chunk, () => {
      read.release();
      if (client.writableLength <= allowed && upstream.isPaused() && !upstream.destroyed) upstream.resume();
    });
    if (client.writableLength > allowed) upstream.pause();
    return true;
  }

  /**
   * The read callback of an upstream socket: PARK's bytes are copied out at once (other sockets
   * read into it next), a large buffer is given back to the channel once its bytes are sent.
   */
  #onRead(entry: Entry, upstream: net.Socket, tunnel: boolean, n: number, buffer: Buffer): boolean {
    if (buffer !== PARK) return this.#pass(entry, upstream, tunnel, { chunk: buffer.subarray(0, n), release: () => this.#buffers.give(buffer) });
    // A copy of its own: a slice of Node's shared 64 KiB pool would keep that whole slab alive.
    const chunk = Buffer.allocUnsafeSlow(n);
    PARK.copy(chunk, 0, 0, n);
    return this.#pass(entry, upstream, tunnel, { chunk, release: nothing });
  }

  #pass(entry: Entry, upstream: net.Socket, tunnel: boolean, read: Read): boolean {
    return tunnel ? this.#deliver(entry, upstream, read) : this.#read(entry, upstream, read);
  }

  /**
   * One TCP connection to a checked address. The address is a literal:
   * nothing is resolved. A tunnel's socket starts paused and delivers what it
   * reads to `entry.client` (see #splice); a plain-HTTP one hands its reads
   * to `entry.reader` (see #relay).
   */
  #dial(entry: Entry, candidate: AllowedAddress, port: number, tunnel: boolean, gone: AbortSignal): Promise<net.Socket | DialFailure> {
    const signal = this.#abort.signal;
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve('channel-closed');
        return;
      }
      if (gone.aborted) {
        resolve('client-closed');
        return;
      }
      const options: net.NetConnectOpts = { host: candidate.address, port, family: candidate.family, allowHalfOpen: true, noDelay: true, lookup: refuseLookup };
      // The buffer the next read goes into, taken when the last read is done: a large one only
      // when that read filled its buffer (more is waiting). Kept while the socket is paused (the
      // channel's budget bounds it): a read into PARK after every pause cost a tenth of the speed.
      let next: Buffer = PARK;
      let large = false;
      options.onread = {
        buffer: () => (next = this.#buffers.take(large)),
        callback: (n, buffer) => {
          const going = this.#onRead(entry, socket, tunnel, n, buffer as Buffer);
          large = going && n === buffer.length;
          return going;
        },
      };
      const socket = net.connect(options);
      socket.once('close', () => {
        this.#buffers.give(next);
        next = PARK;
      });
      // Nothing is read until there is somewhere to put it: a tunnel's client has its 200,
      // a plain-HTTP request has been sent. A server that speaks first waits.
      socket.pause();
      this.#upstreams.add(socket);
      socket.once('close', () => this.#upstreams.delete(socket));
      const settle = (outcome: net.Socket | DialFailure) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        gone.removeEventListener('abort', onGone);
        socket.off('connect', onConnect);
        socket.off('error', onError);
        if (typeof outcome === 'string') {
          socket.destroy();
        } else {
          // From here on an upstream error ends the connection: say who ended it.
          socket.on('error', () => {
            entry.record.aborted ??= 'upstream';
          });
        }
        resolve(outcome);
      };
      const onConnect = () => settle(socket);
      const onError = () => settle('connect-failed');
      const onAbort = () => settle('channel-closed');
      const onGone = () => settle('client-closed');
      const timer = setTimeout(() => settle('connect-timeout'), this.#settings.connectTimeoutMs);
      socket.once('connect', onConnect);
      socket.once('error', onError);
      signal.addEventListener('abort', onAbort, { once: true });
      gone.addEventListener('abort', onGone, { once: true });
    });
  }
}

/**
 * Kept records in the order they became the first to drop, taken oldest first; one dropped
 * meanwhile is passed over. Constant time, amortised.
 */
class DropQueue {
  #entries: Entry[] = [];
  #first = 0;

  push(entry: Entry): void {
    this.#entries.push(entry);
  }

  /** The oldest entry not dropped yet, taken out of the queue. */
  take(): Entry | undefined {
    let found: Entry | undefined;
    while (this.#first < this.#entries.length && found === undefined) {
      const candidate = this.#entries[this.#first++]!;
      if (!candidate.dropped) found = candidate;
    }
    if (this.#first >= this.#entries.length - this.#first) {
      this.#entries = this.#entries.slice(this.#first);
      this.#first = 0;
    }
    return found;
  }
}

/** True when two refused records of one host tell the same thing: method, port, address and reason. */
function sameRefusal(a: ConnectionRecord, b: ConnectionRecord): boolean {
  return a.method === b.method && a.httpMethod === b.httpMethod && a.port === b.port && a.address === b.address && a.reason === b.reason;
}

/**
 * At most `limit` tasks under way at once, first come first served. A task
 * holds its slot until its own promise settles, whether or not anyone still
 * waits for it; one given up before its turn never runs.
 */
class Slots {
  readonly #limit: number;
  #busy = 0;
  readonly #queue: { granted: boolean; go: () => void }[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Runs `task` in its turn; resolves null without running it when `givenUp` settles first. */
  async run<T>(task: () => Promise<T>, givenUp: Promise<unknown>): Promise<T | null> {
    if (this.#busy < this.#limit) this.#busy++;
    else {
      const waiter = { granted: false, go: () => {} };
      const turn = new Promise<boolean>((resolve) => (waiter.go = () => resolve(true)));
      this.#queue.push(waiter);
      const go = await Promise.race([turn, givenUp.then(() => false)]);
      if (!go) {
        // Handed a slot in the same moment it gave up: pass the slot on.
        if (waiter.granted) this.#release();
        else this.#queue.splice(this.#queue.indexOf(waiter), 1);
        return null;
      }
    }
    const running = (async () => task())();
    running.then(
      () => this.#release(),
      () => this.#release(),
    );
    return running;
  }

  #release(): void {
    const next = this.#queue.shift();
    if (next === undefined) this.#busy--;
    else {
      next.granted = true;
      next.go();
    }
  }
}

/** net.connect's lookup hook: the proxy dials literals only, so any call would mean a second resolution. */
function refuseLookup(_hostname: string, _options: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(new ContainError('CONTAIN_PROXY_FAILED', 'the egress proxy never resolves a name twice'), '', 0);
}

// ---- request parsing

const PORT = /^\d{1,5}$/;

function readPort(text: string): number | null {
  if (!PORT.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

function target(hostText: string, port: number): Target | null {
  const destination = parseHost(hostText);
  if (destination === null) return null;
  return { destination, host: destination.kind === 'name' ? destination.name : destination.address, port };
}

/** CONNECT's authority-form: `host:port` or `[v6]:port`, the port required (RFC 9110 section 9.3.6). */
function parseAuthority(text: string): Target | null {
  const m = /^(\[[^\]]*\]|[^:[\]]+):([^:]*)$/.exec(text);
  if (m === null) return null;
  const port = readPort(m[2] as string);
  return port === null ? null : target(m[1] as string, port);
}

/** An absolute-form `http://` request target; no userinfo, no fragment, port defaults to 80. */
function parseAbsoluteHttp(url: string): HttpTarget | null {
  const m = /^http:\/\/([^/?#]*)([/?][^#]*)?$/i.exec(url);
  if (m === null) return null;
  const authority = m[1] as string;
  const a = /^(\[[^\]]*\]|[^:@[\]]+)(?::([^:]*))?$/.exec(authority);
  if (a === null) return null;
  const portText = a[2];
  const port = portText === undefined || portText === '' ? 80 : readPort(portText);
  if (port === null) return null;
  const found = target(a[1] as string, port);
  if (found === null) return null;
  const rest = m[2] ?? '/';
  // The path goes upstream as written: only the bytes a request-target may hold (as Node's client allows).
  if (/[^\x21-\xff]/.test(rest)) return null;
  const shownHost = found.destination.kind === 'address' && found.destination.family === 6 ? `[${found.host}]` : found.host;
  return { ...found, path: rest.startsWith('?') ? `/${rest}` : rest, authority: port === 80 ? shownHost : `${shownHost}:${port}` };
}

// ---- headers

/** Hop-by-hop fields (RFC 9110 section 7.6.1), and fields the proxy sets itself. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
  'expect',
  'content-length',
]);

/** Names the Connection field lists as hop-by-hop for this message. */
function connectionOptions(raw: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'connection') continue;
    for (const token of (raw[i + 1] as string).split(',')) names.add(token.trim().toLowerCase());
  }
  return names;
}

function endToEnd(raw: readonly string[]): string[] {
  const dropped = connectionOptions(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || dropped.has(lower)) continue;
    out.push(name, raw[i + 1] as string);
  }
  return out;
}

/**
 * True when the request body is framed by Content-Length, by `Transfer-Encoding: chunked` alone,
 * or not at all. Node's parser takes the chunked framing off a body coded `gzip, chunked` and
 * leaves the gzip coding on: the proxy would have to forward the coding it does not apply, as
 * the client wrote it, and an upstream reading a list of codings is where request smuggling
 * lives; sent on as `chunked` alone, the body would change its meaning. Such a request (no
 * client is known to send one) is refused instead.
 */
function plainFraming(req: http.IncomingMessage): boolean {
  const codings = req.headers['transfer-encoding'];
  return codings === undefined || codings.trim().toLowerCase() === 'chunked';
}

/**
 * The forwarded request head: origin-form, end-to-end fields only (no
 * Proxy-*, no hop-by-hop), Host from the request URI, the body's framing
 * restated by the proxy itself so that no field the client sends can change
 * where the upstream sees the body end, and `Connection: close`. Latin1, as
 * Node's parser read it, so every byte goes on as it came.
 */
function requestHead(req: http.IncomingMessage, target: HttpTarget): string {
  const fields = ['Host', target.authority, ...endToEnd(req.rawHeaders)];
  const length = req.headers['content-length'];
  if (length !== undefined) fields.push('Content-Length', length);
  else if (req.headers['transfer-encoding'] !== undefined) fields.push('Transfer-Encoding', 'chunked');
  fields.push('Connection', 'close');
  let head = `${req.method} ${target.path} HTTP/1.1\r\n`;
  for (let i = 0; i < fields.length; i += 2) head += `${fields[i]}: ${fields[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** The answer's fields: end-to-end fields only, and its Content-Length (the client's ServerResponse frames anything else). */
function responseHeaders(raw: readonly string[], length: number | undefined): string[] {
  const out = endToEnd(raw);
  if (length !== undefined) out.push('Content-Length', String(length));
  return out;
}

// ---- the proxy's own answers

function answerText(reason: ConnectionRefusal | 'upstream-failed', target: Target | undefined): string {
  if (target === undefined) return `corral egress: refused (${reason})\n`;
  const host = target.destination.kind === 'address' && target.destination.family === 6 ? `[${target.host}]` : target.host;
  const verb = reason === 'upstream-failed' || STATUS[reason] >= 500 ? 'cannot reach' : 'refused';
  return `corral egress: ${verb} ${host}:${target.port} (${reason})\n`;
}

/** A complete answer written straight to a socket (CONNECT refusals, unreadable requests). */
function rawAnswer(reason: ConnectionRefusal, target: Target | undefined): string {
  const status = STATUS[reason];
  const body = answerText(reason, target);
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Refused'}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `X-Corral-Refused: ${reason}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

/** Answers a plain-HTTP request on the proxy's behalf; the client's connection stays usable. */
function answer(res: http.ServerResponse, reason: ConnectionRefusal | 'upstream-failed', target: Target | undefined): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const status = reason === 'upstream-failed' ? 502 : STATUS[reason];
  const body = answerText(reason, target);
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Corral-Refused': reason,
  });
  res.end(body);
}

/** Writes a final answer, reads and discards whatever the client still sends, and lets go after a grace period. */
function endWith(socket: net.Socket, text: string): void {
  if (socket.destroyed) return;
  socket.on('error', () => undefined);
  socket.resume();
  socket.end(text);
  const timer = setTimeout(() => socket.destroy(), 2000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
