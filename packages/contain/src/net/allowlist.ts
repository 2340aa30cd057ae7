import { isIP } from 'node:net';
import { cidrContains, formatIp, ipToBigInt, portAllowed, type EgressRule } from './egress-rule.ts';
import { classifyAddress, hostAddressBlock, type SpecialAddress } from './special-addresses.ts';

/** A rule naming hosts (`api.example.com:443`, `*.example.com:443`). */
export type NameRule = Extract<EgressRule, { kind: 'domain' | 'wildcard' }>;
/** A rule naming addresses (`10.0.0.0/8:5432`, `[fd00::1]:443`). */
export type CidrRule = Extract<EgressRule, { kind: 'cidr' }>;

/** A destination host as a client named it: a DNS name or an IP literal. */
export type Destination = { kind: 'name'; name: string } | { kind: 'address'; address: string; family: 4 | 6 };

/**
 * Why the allowlist refuses a destination.
 * - `not-allowed`: no rule names the host (or, for an IP literal, no CIDR rule covers it).
 * - `port-not-allowed`: a rule names the host, none opens the port.
 * - `private-address`: the address is special (loopback, private, metadata, one of the host's
 *   own, …) and no CIDR rule lying inside its special block opens it.
 * - `bad-address`: not usable as a destination address (an IPv6 zone such as `%eth0`).
 */
export type AllowlistRefusal = 'not-allowed' | 'port-not-allowed' | 'private-address' | 'bad-address';

export type NameVerdict = { allowed: true; rule: NameRule } | { allowed: false; reason: 'not-allowed' | 'port-not-allowed' };

export interface AllowedAddress {
  allowed: true;
  /** Canonical text: IPv4 dotted quad (v4-mapped IPv6 unwrapped), IPv6 in RFC 5952 form. */
  address: string;
  family: 4 | 6;
  /** The rule that allowed the destination: the name rule for a resolved name, the CIDR rule for a literal. */
  rule: EgressRule;
  /** For a resolved name whose address is special: the CIDR rule that lists it. */
  addressRule?: CidrRule;
  special: SpecialAddress | null;
}

export interface RefusedAddress {
  allowed: false;
  address: string;
  family: 4 | 6;
  reason: AllowlistRefusal;
  special: SpecialAddress | null;
}

export type AddressVerdict = AllowedAddress | RefusedAddress;

// RFC 1123 labels; '_' is accepted because real host names carry it, and no rule can name it
// except through a wildcard.
const NAME_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Reads a host as a client names it in a request: a DNS name, an IPv4
 * literal, or an IPv6 literal in brackets (`[::1]`). Names are lower-cased
 * and lose one trailing dot; IP literals become canonical (see
 * `canonicalAddress`).
 *
 * Refuses (returns null): empty or over-long names (253 characters), labels
 * outside letters, digits, '-' and '_' or longer than 63, names whose last
 * label is all digits (`127.1`, `2130706433`: resolvers read those as IPv4,
 * RFC 3696 section 2), IPv6 without brackets, and IPv6 zones.
 */
export function parseHost(text: string): Destination | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 255) return null;
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) return null;
    const inner = text.slice(1, -1);
    if (isIP(inner) !== 6) return null;
    const canonical = canonicalAddress(inner);
    return canonical === null ? null : { kind: 'address', ...canonical };
  }
  if (isIP(text) === 4) return { kind: 'address', address: formatIp(4, ipToBigInt(text)), family: 4 };
  const name = normalizeName(text);
  if (name.length === 0 || name.length > 253) return null;
  const labels = name.split('.');
  if (!labels.every((label) => NAME_LABEL.test(label))) return null;
  if (/^\d+$/.test(labels.at(-1) as string)) return null;
  return { kind: 'name', name };
}

/** Lower-cases a DNS name and drops one trailing dot (`API.Example.com.` is `api.example.com`). */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * The canonical form of an IP literal: a v4-mapped IPv6 address
 * (`::ffff:127.0.0.1`) becomes the IPv4 address it reaches, other IPv6
 * addresses take their RFC 5952 text. Returns null for anything that is not
 * an IP literal, and for an IPv6 zone (`fe80::1%eth0`): a zone names a host
 * interface, which a contained command has no business choosing.
 */
export function canonicalAddress(address: string): { address: string; family: 4 | 6 } | null {
  if (typeof address !== 'string' || address.includes('%')) return null;
  const family = isIP(address);
  if (family === 0) return null;
  const value = ipToBigInt(address);
  if (family === 4) return { address: formatIp(4, value), family: 4 };
  if (value >> 32n === 0xffffn) return { address: formatIp(4, value & 0xffff_ffffn), family: 4 };
  return { address: formatIp(6, value), family: 6 };
}

/** True when a name rule names the host: a domain rule exactly, a wildcard rule any name strictly below its suffix. */
export function ruleNamesHost(rule: NameRule, name: string): boolean {
  if (rule.kind === 'domain') return rule.domain === name;
  return name.length > rule.suffix.length + 1 && name.endsWith(`.${rule.suffix}`);
}

/**
 * Decides a DNS name before anything resolves it: the first domain or
 * wildcard rule that names the host and opens the port allows it.
 *
 * A name no rule names is refused here, so a contained command cannot make
 * the host send DNS queries for names of its choosing (a channel out through
 * any resolver).
 */
export function matchName(rules: readonly EgressRule[], name: string, port: number): NameVerdict {
  const host = normalizeName(name);
  let named = false;
  for (const rule of rules) {
    if (rule.kind === 'cidr' || !ruleNamesHost(rule, host)) continue;
    named = true;
    if (portAllowed(rule.ports, port)) return { allowed: true, rule };
  }
  return { allowed: false, reason: named ? 'port-not-allowed' : 'not-allowed' };
}

/**
 * Decides one address.
 *
 * With `via` (the name rule that allowed the name it was resolved from): an
 * ordinary public address is allowed by that rule; a special address only
 * when a CIDR rule opening the port lies inside its special block (so
 * `169.254.169.254/32:80` opens the metadata endpoint and `169.254.0.0/16:80`
 * or `0.0.0.0/0:80` do not).
 *
 * Without `via` (the client named the IP literal): only CIDR rules apply; a
 * CIDR rule opening the port allows an ordinary address it covers, and a
 * special address under the same inside-its-block condition.
 *
 * `hostAddresses` (canonical text) are the host's own interface addresses: each
 * is special, kind `host`, its block the address alone, whatever range holds it
 * (see `specialBlockOf`) — an address of the host reaches the host itself, as
 * loopback does.
 */
export function checkAddress(rules: readonly EgressRule[], address: string, port: number, via?: NameRule, hostAddresses?: ReadonlySet<string>): AddressVerdict {
  const canonical = canonicalAddress(address);
  if (canonical === null) {
    const family = isIP(address) === 4 ? 4 : 6;
    return { allowed: false, address: String(address), family, reason: 'bad-address', special: null };
  }
  const special = specialBlockOf(canonical.address, hostAddresses);
  const covering = rules.filter((r): r is CidrRule => r.kind === 'cidr' && cidrContains(r, canonical.address));
  const opening = covering.filter((r) => portAllowed(r.ports, port));
  const explicit = special === null ? undefined : opening.find((r) => r.prefix >= special.prefix);
  const refuse = (reason: AllowlistRefusal): RefusedAddress => ({ allowed: false, ...canonical, reason, special });

  if (via !== undefined) {
    if (special === null) return { allowed: true, ...canonical, rule: via, special };
    if (explicit === undefined) return refuse('private-address');
    return { allowed: true, ...canonical, rule: via, addressRule: explicit, special };
  }
  if (covering.length === 0) return refuse('not-allowed');
  if (opening.length === 0) return refuse('port-not-allowed');
  if (special === null) return { allowed: true, ...canonical, rule: opening[0] as CidrRule, special };
  if (explicit === undefined) return refuse('private-address');
  return { allowed: true, ...canonical, rule: explicit, special };
}

/**
 * The special block `checkAddress` holds a canonical address to: for one of the
 * host's own addresses, the address alone (`/32`, `/128`), whatever special range
 * holds it, so that only a rule naming that very address opens it — a rule for a
 * range of other machines (`10.0.0.0/8:5432`, the host's own address being
 * 10.1.2.3) must not open the host's own port 5432. A loopback address keeps its
 * loopback block: every address in it is the host's, so a rule inside it opens
 * the host knowingly. Else the special range the address lies in, or null.
 */
function specialBlockOf(address: string, hostAddresses: ReadonlySet<string> | undefined): SpecialAddress | null {
  const range = classifyAddress(address);
  if (range?.kind === 'loopback' || hostAddresses?.has(address) !== true) return range;
  return hostAddressBlock(address);
}

/**
 * Checks every address a name resolved to, in the resolver's order, each
 * once (duplicates after canonicalisation dropped, entries that are not IP
 * literals ignored), with `checkAddress` (`hostAddresses` as there). The caller connects only to `permitted` addresses, in
 * order, and never resolves the name again.
 */
export function checkResolved(
  rules: readonly EgressRule[],
  via: NameRule,
  addresses: readonly string[],
  port: number,
  hostAddresses?: ReadonlySet<string>,
): { permitted: AllowedAddress[]; refused: RefusedAddress[] } {
  const permitted: AllowedAddress[] = [];
  const refused: RefusedAddress[] = [];
  const seen = new Set<string>();
  for (const address of addresses) {
    if (typeof address !== 'string' || isIP(address) === 0) continue;
    const verdict = checkAddress(rules, address, port, via, hostAddresses);
    if (seen.has(verdict.address)) continue;
    seen.add(verdict.address);
    if (verdict.allowed) permitted.push(verdict);
    else refused.push(verdict);
  }
  return { permitted, refused };
}
