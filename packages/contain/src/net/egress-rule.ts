import { isIP } from 'node:net';

/**
 * One egress grant: a destination pattern and the ports it opens.
 *
 * Written as `HOST:PORTS` where HOST is a domain (`api.example.com`), a
 * wildcard domain (`*.example.com`: any name below it, not the apex), an IP
 * address (`10.0.0.5`, `[fd00::1]`) or a CIDR block (`10.0.0.0/8`,
 * `[fd00::]/8`), and PORTS is a port (`443`), a range (`8000-8100`) or `*`.
 */
export type EgressRule =
  | { kind: 'domain'; domain: string; ports: PortRange; source: string }
  | { kind: 'wildcard'; suffix: string; ports: PortRange; source: string }
  | { kind: 'cidr'; family: 4 | 6; network: bigint; prefix: number; ports: PortRange; source: string };

export interface PortRange {
  from: number;
  to: number;
}

const DOMAIN_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Parses one rule; returns the rule or a sentence saying what is wrong. */
export function parseEgressRule(text: string): EgressRule | string {
  const source = text.trim();
  const split = splitHostPort(source);
  if (typeof split === 'string') return split;
  const ports = parsePorts(split.port);
  if (typeof ports === 'string') return ports;
  const host = split.host.toLowerCase();

  const slash = host.indexOf('/');
  if (slash !== -1 || isIP(host) !== 0) {
    const address = slash === -1 ? host : host.slice(0, slash);
    const family = isIP(address) as 0 | 4 | 6;
    if (family === 0) return `'${address}' is not an IP address (a CIDR block is ADDRESS/PREFIX, e.g. 10.0.0.0/8)`;
    const bits = family === 4 ? 32 : 128;
    const prefixText = slash === -1 ? String(bits) : host.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      return `'/${prefixText}' is not a prefix length for IPv${family} (0 to ${bits})`;
    }
    const prefix = Number(prefixText);
    const network = ipToBigInt(address) & prefixMask(family, prefix);
    // The proxy reads a v4-mapped address as the IPv4 address it maps: a rule written so would match no request.
    if (family === 6 && prefix >= 96 && network >> 32n === 0xffffn) {
      return `'${split.host}' is an IPv4 block written as IPv6; write '${formatIp(4, network & 0xffff_ffffn)}/${prefix - 96}'`;
    }
    // A block is written by its network: one with bits set past its prefix was most likely meant as that one address or a narrower block.
    if (network !== ipToBigInt(address)) {
      const written = (value: bigint, length: number) => (family === 4 ? `${formatIp(4, value)}/${length}` : `[${formatIp(6, value)}]/${length}`);
      const block = written(network, prefix);
      return `'${family === 4 ? split.host : `[${address}]/${prefixText}`}' sets bits past its /${prefix} prefix: it would be the network ${block}. Write '${block}' for that network, or '${written(ipToBigInt(address), bits)}' for the one address`;
    }
    return { kind: 'cidr', family, network, prefix, ports, source };
  }

  const wildcard = host.startsWith('*.');
  // A fully qualified name's trailing dot names the same host: 'example.com.' is 'example.com'.
  const bare = wildcard ? host.slice(2) : host;
  const domain = bare.endsWith('.') ? bare.slice(0, -1) : bare;
  const labels = domain.split('.');
  if (domain.length > 253 || labels.some((l) => !DOMAIN_LABEL.test(l))) {
    return `'${split.host}' is not a domain name, '*.' wildcard, IP address or CIDR block`;
  }
  // Resolvers read such a name as an IPv4 address (RFC 3696 section 2), and the proxy as no name at all: the rule would match no request.
  if (/^\d+$/.test(labels.at(-1)!)) return `'${split.host}' is neither a domain name (its last label is all digits) nor an IPv4 address; write the address as four decimal numbers, e.g. '127.0.0.1'`;
  if (wildcard && labels.length < 2) return `'${split.host}' would match a whole top-level domain; name at least two labels after '*.'`;
  return wildcard ? { kind: 'wildcard', suffix: domain, ports, source } : { kind: 'domain', domain, ports, source };
}

function splitHostPort(source: string): { host: string; port: string } | string {
  const missingPort = `'${source}' has no port: write HOST:PORT, e.g. '${source}:443' (or '${source}:*' for every port)`;
  if (source.startsWith('[')) {
    // [v6]:port or [v6]/prefix:port
    const close = source.indexOf(']');
    if (close === -1) return `'${source}' opens '[' without closing it`;
    const address = source.slice(1, close);
    let rest = source.slice(close + 1);
    let prefix = '';
    const prefixMatch = /^\/(\d{1,3})/.exec(rest);
    if (prefixMatch) {
      prefix = `/${prefixMatch[1]}`;
      rest = rest.slice(prefixMatch[0].length);
    }
    if (!rest.startsWith(':')) return missingPort;
    if (isIP(address) !== 6) return `'${address}' is not an IPv6 address`;
    // A zone names one of the host's interfaces, which the proxy lets no request choose: the rule would match none.
    if (address.includes('%')) return `'${address}' names an interface zone; write the address without '%…'`;
    return { host: address + prefix, port: rest.slice(1) };
  }
  const colon = source.lastIndexOf(':');
  if (colon === -1) return missingPort;
  const host = source.slice(0, colon);
  if (host.includes(':')) return `'${source}': write IPv6 addresses in brackets, e.g. '[fd00::1]:443'`;
  if (host === '') return `'${source}' has no host before the port`;
  return { host, port: source.slice(colon + 1) };
}

function parsePorts(text: string): PortRange | string {
  if (text === '*') return { from: 1, to: 65535 };
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return `'${text}' is not a port: use a number (443), a range (8000-8100) or '*'`;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || from > to) return `port range '${text}' must lie within 1-65535, low to high`;
  return { from, to };
}

/** An IP address as an unsigned integer (IPv4 in 32 bits, IPv6 in 128). Precondition: isIP(address) !== 0. */
export function ipToBigInt(address: string): bigint {
  if (isIP(address) === 4) {
    return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  }
  let text = address;
  // An IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const n = ipToBigInt(v4[1]);
    text = `${text.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The text of an IP address held as an integer: dotted quad for IPv4, RFC 5952 form (lowercase, longest zero run as '::', v4-mapped with a dotted tail) for IPv6. */
export function formatIp(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  // RFC 5952 section 5: a v4-mapped address keeps its IPv4 tail in dotted form.
  if (value >> 32n === 0xffffn) return `::ffff:${formatIp(4, value & 0xffff_ffffn)}`;
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1; // RFC 5952 4.2.2: a single zero group is not shortened
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** The mask keeping the first `prefix` bits of an address of the family. */
export function prefixMask(family: 4 | 6, prefix: number): bigint {
  const bits = family === 4 ? 32 : 128;
  if (prefix === 0) return 0n;
  return ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
}

/** True when `address` (an IP literal) lies in the rule's CIDR block. */
export function cidrContains(rule: Extract<EgressRule, { kind: 'cidr' }>, address: string): boolean {
  const family = isIP(address);
  if (family !== rule.family) return false;
  return (ipToBigInt(address) & prefixMask(rule.family, rule.prefix)) === rule.network;
}

/** True when the port lies in the range. */
export function portAllowed(range: PortRange, port: number): boolean {
  return port >= range.from && port <= range.to;
}
