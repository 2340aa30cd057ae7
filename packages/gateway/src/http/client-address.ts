// Who sent a request to the HTTP API, when the gateway sits behind the
// operator's reverse proxies: the socket's peer, unless that peer is one of
// the configured trusted proxies; then the rightmost X-Forwarded-For entry
// that is not itself a trusted proxy. Each proxy appends the address it was
// sent the request from, so the entries right of the last untrusted one were
// written by proxies the operator named, and those left of it by whoever
// sent the request: never read. From any other peer the header is ignored.
//
// Only X-Forwarded-For is read, the header nginx, HAProxy and the cloud load
// balancers append to. `Forwarded` (RFC 7239) is not: a proxy that writes
// only X-Forwarded-For passes a client's own `Forwarded: for=…` through
// untouched, and reading it too would let that client choose its address.
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { GatewayError } from '../errors.ts';
import type { GatewayLogEntry } from '../server/server.ts';
import { TokenBucket } from '../server/token-bucket.ts';

/** How often a malformed X-Forwarded-For from a trusted proxy is logged: once, then at most once a minute, with how many were not. */
const MALFORMED_LOG_PER_SECOND = 1 / 60;

/** An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`) as itself; any other address as given, lower case. */
function canonical(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped ? mapped[1]! : address.toLowerCase();
}

/**
 * The `trustedProxies` option: IP addresses (`10.0.0.7`, `::1`) and address
 * blocks (`10.0.0.0/8`, `fd00::/8`), each the address of a reverse proxy in
 * front of the gateway; none, and no one's X-Forwarded-For is read. Throws
 * GATEWAY_TRUSTED_PROXY_INVALID naming the entry.
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  /** The entries as given, for the log and the doctor. */
  readonly entries: readonly string[];

  private constructor(entries: readonly string[]) {
    this.entries = entries;
  }

  static parse(entries: readonly string[]): TrustedProxies {
    if (!Array.isArray(entries)) throw new GatewayError('GATEWAY_TRUSTED_PROXY_INVALID', 'trustedProxies must be a list of addresses of reverse proxies (e.g. ["127.0.0.1", "10.0.0.0/8"])');
    const proxies = new TrustedProxies([...entries]);
    for (const entry of entries) proxies.#add(entry);
    return proxies;
  }

  #add(entry: unknown): void {
    const shown = typeof entry === 'string' ? JSON.stringify(entry.slice(0, 100)) : String(entry);
    const invalid = (rule: string) => new GatewayError('GATEWAY_TRUSTED_PROXY_INVALID', `trustedProxies entry ${shown} ${rule}`);
    if (typeof entry !== 'string' || entry === '') throw invalid('must be an IP address or address block, e.g. 10.0.0.7 or 10.0.0.0/8');
    const slash = entry.indexOf('/');
    const address = canonical(slash === -1 ? entry : entry.slice(0, slash));
    const family = isIP(address);
    // A zone (fe80::1%eth0) is not part of what a socket reports as its peer, nor of a forwarded address.
    if (family === 0 || address.includes('%')) throw invalid('is not an IP address or address block: give addresses (10.0.0.7, ::1) or blocks (10.0.0.0/8, fd00::/8), not host names');
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash === -1) return this.#list.addAddress(address, type);
    const prefixText = entry.slice(slash + 1);
    const bits = family === 4 ? 32 : 128;
    const prefix = Number(prefixText);
    if (!/^\d{1,3}$/.test(prefixText) || prefix > bits) throw invalid(`has no prefix length from 1 to ${bits} after the /`);
    if (prefix === 0) throw invalid('is every address: anyone could then say which address they send from; name the proxies');
    this.#list.addSubnet(address, prefix, type);
  }

  /** Whether `address` (as a socket reports it, or as X-Forwarded-For gives it) is one of the trusted proxies. */
  has(address: string): boolean {
    const bare = canonical(address);
    const family = isIP(bare);
    return family !== 0 && this.#list.check(bare, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** One X-Forwarded-For entry as an address: `10.0.0.1`, `2001:db8::1`, also with a port (`10.0.0.1:5000`, `[2001:db8::1]:5000`) as some load balancers write it; else undefined. */
function forwardedAddress(entry: string): string | undefined {
  let text = entry.trim();
  const withPort = /^\[([^\]]*)\](?::(\d{1,5}))?$/.exec(text) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  if (withPort) {
    if (withPort[2] !== undefined && Number(withPort[2]) > 65535) return undefined;
    text = withPort[1]!;
  }
  return isIP(text) !== 0 && !text.includes('%') ? canonical(text) : undefined;
}

/**
 * The client address of each request: see the top of this file. A trusted
 * proxy's X-Forwarded-For that is not a list of addresses (empty, a name,
 * `unknown`, garbage) is taken as no header at all — the request is the
 * proxy's own — and logged (GATEWAY_FORWARDED_INVALID, without the header's
 * text) once, then at most once a minute with how many were not.
 */
export class ClientAddresses {
  readonly #trusted: TrustedProxies | undefined;
  readonly #log: (entry: GatewayLogEntry) => void;
  readonly #lines: TokenBucket;
  #suppressed = 0;
  /** Each request's, read once: a malformed header is logged once however often the address is asked for. */
  readonly #of = new WeakMap<IncomingMessage, string>();

  constructor(trusted: TrustedProxies | undefined, log: (entry: GatewayLogEntry) => void = () => {}, now: () => number = () => performance.now()) {
    this.#trusted = trusted;
    this.#log = log;
    this.#lines = new TokenBucket(MALFORMED_LOG_PER_SECOND, 1, now);
  }

  /** Whether `peer`, a socket's peer address, is a trusted proxy: its requests are read for the client each forwards for. */
  trusts(peer: string): boolean {
    return this.#trusted?.has(peer) ?? false;
  }

  /** The address `request` came from: its socket's peer, or for a trusted proxy's request the client it forwards for. */
  of(request: IncomingMessage): string {
    let address = this.#of.get(request);
    if (address === undefined) {
      address = this.#read(request);
      this.#of.set(request, address);
    }
    return address;
  }

  #read(request: IncomingMessage): string {
    const peer = canonical(request.socket.remoteAddress ?? '');
    if (this.#trusted === undefined || !this.#trusted.has(peer)) return peer;
    // Node joins repeated X-Forwarded-For lines with ", ", in order: one list.
    const header = request.headers['x-forwarded-for'];
    if (header === undefined) return peer;
    const entries = (typeof header === 'string' ? header : header.join(',')).split(',');
    let client = peer;
    for (let i = entries.length - 1; i >= 0; i--) {
      const address = forwardedAddress(entries[i]!);
      if (address === undefined) {
        this.#malformed(peer);
        return peer;
      }
      client = address;
      if (!this.#trusted.has(address)) return address;
    }
    // Every hop is a trusted proxy: the request began at the first of them.
    return client;
  }

  #malformed(peer: string): void {
    if (!this.#lines.take()) {
      this.#suppressed += 1;
      return;
    }
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#log({
      event: 'protocol-error',
      connId: 'http',
      code: 'GATEWAY_FORWARDED_INVALID',
      remoteAddress: peer,
      reason: 'a trusted proxy sent an X-Forwarded-For that is not a list of addresses: taken as its own request',
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }
}
