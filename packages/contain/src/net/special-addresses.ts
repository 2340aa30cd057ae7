import { isIP } from 'node:net';
import { ContainError } from '../errors.ts';
import { formatIp, ipToBigInt, prefixMask } from './egress-rule.ts';

/**
 * The kinds of address a contained command must not reach through a name,
 * however the name resolves, unless the policy lists the block itself.
 *
 * Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries
 * (RFC 6890 and updates), RFC 1918, RFC 4193, RFC 6598, RFC 6052, RFC 8215,
 * RFC 3056, RFC 9637, and the cloud providers' documented instance-metadata
 * endpoints.
 */
export type SpecialAddressKind =
  /** 0.0.0.0, :: — on Linux a connection to it reaches the host itself. */
  | 'unspecified'
  /** 0.0.0.0/8 other than 0.0.0.0: "this network". */
  | 'this-network'
  /** 127.0.0.0/8, ::1. */
  | 'loopback'
  /** RFC 1918, IPv6 unique-local fc00::/7, deprecated site-local fec0::/10, NAT64 local-use 64:ff9b:1::/48. */
  | 'private'
  /** 100.64.0.0/10: carrier-grade NAT shared space. */
  | 'cgnat'
  /** 169.254.0.0/16, fe80::/10. */
  | 'link-local'
  /** A cloud instance-metadata or credentials endpoint (169.254.169.254, fd00:ec2::254, 100.100.100.200, …). */
  | 'metadata'
  /** 224.0.0.0/4, ff00::/8. */
  | 'multicast'
  /** 255.255.255.255. */
  | 'broadcast'
  /** TEST-NET-1/2/3, 2001:db8::/32, 3fff::/20. */
  | 'documentation'
  /** 198.18.0.0/15, 2001:2::/48. */
  | 'benchmarking'
  /** Protocol assignments, future use, and IPv6 space outside global unicast 2000::/3. */
  | 'reserved'
  /**
   * An address of one of the host's own network interfaces outside loopback (in a private
   * or other special range, or public): a connection to it reaches the host itself, as
   * loopback does. See `hostAddressBlock`.
   */
  | 'host';

/** Where an address lies: the kind and the special block around it. */
export interface SpecialAddress {
  kind: SpecialAddressKind;
  /** The address family of the block (that of the classified address). */
  family: 4 | 6;
  /** The block's first address as an integer, and its prefix length. */
  network: bigint;
  prefix: number;
  /** The block as CIDR text, e.g. `169.254.0.0/16` or `::ffff:127.0.0.0/104`. */
  block: string;
  /** The IPv4 address carried inside an IPv6 one (v4-mapped, NAT64, 6to4) when the kind came from it. */
  embedded?: string;
}

interface Block {
  kind: SpecialAddressKind;
  network: bigint;
  prefix: number;
}

function block(kind: SpecialAddressKind, cidr: string): Block {
  const [address = '', prefixText = ''] = cidr.split('/');
  const family = isIP(address) as 4 | 6;
  const prefix = Number(prefixText);
  return { kind, network: ipToBigInt(address) & prefixMask(family, prefix), prefix };
}

/** Most specific first, so that a /32 inside a /16 names its own kind. */
function mostSpecificFirst(blocks: Block[]): readonly Block[] {
  return Object.freeze(blocks.sort((a, b) => b.prefix - a.prefix));
}

const IPV4_BLOCKS = mostSpecificFirst([
  block('unspecified', '0.0.0.0/32'),
  block('broadcast', '255.255.255.255/32'),
  // Instance-metadata and credentials endpoints: AWS, GCP, Azure, OCI, DigitalOcean
  // (169.254.169.254), AWS ECS task credentials, EKS Pod Identity, Alibaba Cloud,
  // Azure WireServer, OCI's alternative address.
  block('metadata', '169.254.169.254/32'),
  block('metadata', '169.254.170.2/32'),
  block('metadata', '169.254.170.23/32'),
  block('metadata', '100.100.100.200/32'),
  block('metadata', '168.63.129.16/32'),
  block('metadata', '192.0.0.192/32'),
  block('this-network', '0.0.0.0/8'),
  block('private', '10.0.0.0/8'),
  block('cgnat', '100.64.0.0/10'),
  block('loopback', '127.0.0.0/8'),
  block('link-local', '169.254.0.0/16'),
  block('private', '172.16.0.0/12'),
  block('reserved', '192.0.0.0/24'),
  block('documentation', '192.0.2.0/24'),
  block('reserved', '192.88.99.0/24'),
  block('private', '192.168.0.0/16'),
  block('benchmarking', '198.18.0.0/15'),
  block('documentation', '198.51.100.0/24'),
  block('documentation', '203.0.113.0/24'),
  block('multicast', '224.0.0.0/4'),
  block('reserved', '240.0.0.0/4'),
]);

const IPV6_BLOCKS = mostSpecificFirst([
  block('unspecified', '::/128'),
  block('loopback', '::1/128'),
  // AWS instance metadata and EKS Pod Identity over IPv6.
  block('metadata', 'fd00:ec2::254/128'),
  block('metadata', 'fd00:ec2::23/128'),
  block('reserved', '100::/64'),
  block('private', '64:ff9b:1::/48'),
  block('benchmarking', '2001:2::/48'),
  block('documentation', '2001:db8::/32'),
  block('reserved', '2001::/23'),
  block('documentation', '3fff::/20'),
  block('reserved', '5f00::/16'),
  block('private', 'fc00::/7'),
  block('link-local', 'fe80::/10'),
  block('private', 'fec0::/10'),
  block('multicast', 'ff00::/8'),
]);

/** IPv6 prefixes that carry an IPv4 address, and the bit offset of that address from the low end. */
const EMBEDDING = Object.freeze([
  { name: 'v4-mapped', ...block('reserved', '::ffff:0:0/96'), shift: 0n },
  { name: 'NAT64', ...block('reserved', '64:ff9b::/96'), shift: 0n },
  { name: '6to4', ...block('reserved', '2002::/16'), shift: 80n },
]);

const GLOBAL_UNICAST = block('reserved', '2000::/3');

function contains(family: 4 | 6, b: { network: bigint; prefix: number }, value: bigint): boolean {
  return (value & prefixMask(family, b.prefix)) === b.network;
}

function specialBlock(family: 4 | 6, kind: SpecialAddressKind, network: bigint, prefix: number, embedded?: string): SpecialAddress {
  const found: SpecialAddress = { kind, family, network, prefix, block: `${formatIp(family, network)}/${prefix}` };
  if (embedded !== undefined) found.embedded = embedded;
  return found;
}

function classifyV4(value: bigint): SpecialAddress | null {
  const hit = IPV4_BLOCKS.find((b) => contains(4, b, value));
  return hit ? specialBlock(4, hit.kind, hit.network, hit.prefix) : null;
}

function classifyV6(value: bigint): SpecialAddress | null {
  const hit = IPV6_BLOCKS.find((b) => contains(6, b, value));
  if (hit) return specialBlock(6, hit.kind, hit.network, hit.prefix);
  for (const carrier of EMBEDDING) {
    if (!contains(6, carrier, value)) continue;
    const v4 = (value >> carrier.shift) & 0xffff_ffffn;
    const inner = classifyV4(v4);
    if (inner === null) return null;
    // The special IPv4 block, seen through the carrier: carrier bits, then the IPv4 block's bits.
    const network = carrier.network | (inner.network << carrier.shift);
    return specialBlock(6, inner.kind, network, carrier.prefix + inner.prefix, formatIp(4, v4));
  }
  if (!contains(6, GLOBAL_UNICAST, value)) {
    // Outside 2000::/3 nothing is allocated for global unicast: name the /3 it lies in.
    const network = value & prefixMask(6, 3);
    return specialBlock(6, 'reserved', network, 3);
  }
  return null;
}

/**
 * Classifies an IP literal into the special range it lies in, or returns
 * null for an ordinary public unicast address.
 *
 * IPv6 addresses that carry an IPv4 address — v4-mapped (`::ffff:a.b.c.d`),
 * the NAT64 well-known prefix (`64:ff9b::/96`, RFC 6052) and 6to4
 * (`2002::/16`, RFC 3056) — take the class of the IPv4 address inside, and
 * their block is the IPv4 block seen through the prefix (`::ffff:127.0.0.1`
 * lies in `::ffff:127.0.0.0/104`, loopback). A zone (`fe80::1%eth0`) does
 * not change the class.
 *
 * Precondition: `address` is an IP literal (`isIP(address) !== 0`), without brackets.
 * @throws ContainError `CONTAIN_BAD_ADDRESS` when it is not.
 */
export function classifyAddress(address: string): SpecialAddress | null {
  if (typeof address !== 'string') throw new ContainError('CONTAIN_BAD_ADDRESS', 'an IP address must be a string');
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  const family = isIP(bare);
  if (family === 0) throw new ContainError('CONTAIN_BAD_ADDRESS', 'not an IPv4 or IPv6 address');
  const value = ipToBigInt(bare);
  return family === 4 ? classifyV4(value) : classifyV6(value);
}

/**
 * The block of one of the host's own interface addresses, whatever special
 * range holds it (but loopback's: see checkAddress): the address alone (`/32`,
 * `/128`), kind `host`, so that only a CIDR rule naming that very address opens it.
 *
 * Precondition: `address` is a canonical IP literal (see `canonicalAddress`).
 * @throws ContainError `CONTAIN_BAD_ADDRESS` when it is not an IP literal.
 */
export function hostAddressBlock(address: string): SpecialAddress {
  const family = typeof address === 'string' ? isIP(address) : 0;
  if (family === 0) throw new ContainError('CONTAIN_BAD_ADDRESS', 'not an IPv4 or IPv6 address');
  return specialBlock(family as 4 | 6, 'host', ipToBigInt(address), family === 4 ? 32 : 128);
}
