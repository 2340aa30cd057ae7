import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalAddress, checkAddress, checkResolved, matchName, parseHost, type NameRule } from './allowlist.ts';
import { formatIp, ipToBigInt, parseEgressRule, prefixMask, type EgressRule } from './egress-rule.ts';
import { classifyAddress } from './special-addresses.ts';

function rules(...texts: string[]): EgressRule[] {
  return texts.map((t) => {
    const rule = parseEgressRule(t);
    if (typeof rule === 'string') throw new TypeError(rule);
    return rule;
  });
}

function nameRule(text: string): NameRule {
  const [rule] = rules(text);
  if (rule === undefined || rule.kind === 'cidr') throw new TypeError(`${text} is not a name rule`);
  return rule;
}

describe('parseHost', () => {
  describe('when the host is a name', () => {
    it('lower-cases it and drops one trailing dot', () => {
      assert.deepEqual(parseHost('API.Example.COM.'), { kind: 'name', name: 'api.example.com' });
    });
    it('accepts labels with digits, hyphens inside and underscores', () => {
      assert.deepEqual(parseHost('a-1.b_c.example.com'), { kind: 'name', name: 'a-1.b_c.example.com' });
    });
  });

  describe('when the host is an IP literal', () => {
    it('reads IPv4', () => {
      assert.deepEqual(parseHost('10.0.0.1'), { kind: 'address', address: '10.0.0.1', family: 4 });
    });
    it('reads bracketed IPv6 in canonical form', () => {
      assert.deepEqual(parseHost('[FD00:0:0::0001]'), { kind: 'address', address: 'fd00::1', family: 6 });
    });
    it('unwraps a v4-mapped address to the IPv4 address it reaches', () => {
      assert.deepEqual(parseHost('[::ffff:127.0.0.1]'), { kind: 'address', address: '127.0.0.1', family: 4 });
      assert.deepEqual(parseHost('[::ffff:a9fe:a9fe]'), { kind: 'address', address: '169.254.169.254', family: 4 });
    });
  });

  describe('when the host is hostile or malformed', () => {
    const cases: [string, string][] = [
      ['empty', ''],
      ['a lone dot', '.'],
      ['an empty label', 'a..example.com'],
      ['a label of 64 characters', `${'a'.repeat(64)}.com`],
      ['a name of 254 characters', `${'a.'.repeat(126)}ab`],
      ['an absurdly long host', 'a'.repeat(100_000)],
      ['a space', 'exa mple.com'],
      ['a percent-encoded dot', 'example%2ecom'],
      ['userinfo', 'user@example.com'],
      ['a leading hyphen', '-a.example.com'],
      ['an all-digit last label (inet_aton 127.1)', '127.1'],
      ['a decimal IPv4 (2130706433)', '2130706433'],
      ['a hex-dotted IPv4 (0x7f.0.0.1)', '0x7f.0.0.1'],
      ['IPv6 without brackets', '::1'],
      ['an IPv6 zone', '[fe80::1%25eth0]'],
      ['brackets around IPv4', '[127.0.0.1]'],
      ['an unclosed bracket', '[::1'],
      ['non-ASCII', 'bücher.de'],
    ];
    for (const [why, host] of cases) {
      it(`refuses ${why}`, () => {
        assert.equal(parseHost(host), null);
      });
    }
  });
});

// Sparse groups, so that runs of zeros (what '::' compresses) are common.
const v6Text = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((g) => g.map((n) => n.toString(16)).join(':'));

describe('canonicalAddress', () => {
  it('writes IPv6 in RFC 5952 form', () => {
    assert.deepEqual(canonicalAddress('2001:DB8:0:0:1:0:0:1'), { address: '2001:db8::1:0:0:1', family: 6 });
  });
  it('writes IPv6 as the WHATWG URL serialiser does, for any non-mapped address', () => {
    fc.assert(
      fc.property(v6Text, (a) => {
        const canonical = canonicalAddress(a);
        if (canonical === null || canonical.family === 4) return;
        assert.equal(canonical.address, new URL(`http://[${a}]/`).hostname.slice(1, -1));
      }),
    );
  });
  it('refuses zones and non-addresses', () => {
    assert.equal(canonicalAddress('fe80::1%eth0'), null);
    assert.equal(canonicalAddress('example.com'), null);
  });
});

describe('matchName', () => {
  const list = rules('api.example.com:443', '*.corp.example:443', '*.corp.example:8000-8100', 'db.example.com:5432', '10.0.0.0/8:443');

  it('allows a domain rule’s name on its port', () => {
    const verdict = matchName(list, 'api.example.com', 443);
    assert.equal(verdict.allowed, true);
    assert.equal(verdict.allowed && verdict.rule.source, 'api.example.com:443');
  });
  it('matches case-insensitively and ignores a trailing dot', () => {
    assert.equal(matchName(list, 'API.Example.Com.', 443).allowed, true);
  });
  it('matches a wildcard for names below it at any depth', () => {
    assert.equal(matchName(list, 'git.corp.example', 443).allowed, true);
    assert.equal(matchName(list, 'a.b.c.corp.example', 8050).allowed, true);
  });

  describe('when the name is the wildcard’s apex', () => {
    it('refuses not-allowed', () => {
      assert.deepEqual(matchName(list, 'corp.example', 443), { allowed: false, reason: 'not-allowed' });
    });
  });
  describe('when a name only ends with the same letters (evilcorp.example)', () => {
    it('refuses not-allowed', () => {
      assert.deepEqual(matchName(list, 'evilcorp.example', 443), { allowed: false, reason: 'not-allowed' });
      assert.deepEqual(matchName(list, 'api.example.com.evil.test', 443), { allowed: false, reason: 'not-allowed' });
    });
  });
  describe('when a rule names the host but not the port', () => {
    it('refuses port-not-allowed', () => {
      assert.deepEqual(matchName(list, 'api.example.com', 80), { allowed: false, reason: 'port-not-allowed' });
      assert.deepEqual(matchName(list, 'x.corp.example', 8101), { allowed: false, reason: 'port-not-allowed' });
    });
  });
  describe('when the only rule that could match is a CIDR rule', () => {
    it('refuses not-allowed: names match only name rules', () => {
      assert.deepEqual(matchName(rules('10.0.0.0/8:443'), 'db.internal', 443), { allowed: false, reason: 'not-allowed' });
    });
  });
  it('refuses everything under an empty rule list', () => {
    assert.deepEqual(matchName([], 'example.com', 443), { allowed: false, reason: 'not-allowed' });
  });
});

describe('checkAddress', () => {
  describe('when the client names an IP literal', () => {
    it('allows it only through a CIDR rule covering it on the port', () => {
      const list = rules('93.184.216.0/24:443', 'example.com:443');
      const verdict = checkAddress(list, '93.184.216.34', 443);
      assert.equal(verdict.allowed, true);
      assert.equal(verdict.allowed && verdict.rule.source, '93.184.216.0/24:443');
      assert.equal(checkAddress(list, '93.184.217.1', 443).allowed, false);
    });
    it('refuses not-allowed when only name rules exist', () => {
      assert.equal(checkAddress(rules('example.com:443'), '93.184.216.34', 443).allowed, false);
      assert.equal((checkAddress(rules('example.com:443'), '93.184.216.34', 443) as { reason: string }).reason, 'not-allowed');
    });
    it('refuses port-not-allowed outside the rule’s ports', () => {
      assert.equal((checkAddress(rules('93.184.216.0/24:443'), '93.184.216.34', 80) as { reason: string }).reason, 'port-not-allowed');
    });
    it('allows a private address its own block lists (10.0.0.0/8 for 10.1.2.3)', () => {
      assert.equal(checkAddress(rules('10.0.0.0/8:5432'), '10.1.2.3', 5432).allowed, true);
    });
    it('allows a v4-mapped literal through the IPv4 rule', () => {
      assert.equal(checkAddress(rules('10.0.0.0/8:5432'), '::ffff:10.1.2.3', 5432).allowed, true);
    });
    it('refuses an IPv6 zone as bad-address', () => {
      assert.equal((checkAddress(rules('[fe80::]/10:*'), 'fe80::1%eth0', 80) as { reason: string }).reason, 'bad-address');
    });
  });

  describe('when a broad CIDR rule covers a special address', () => {
    const list = rules('0.0.0.0/0:*', '[::]/0:*', '169.254.0.0/16:80', '127.0.0.0/8:8080');
    for (const [address, port] of [
      ['127.0.0.1', 80],
      ['169.254.169.254', 80],
      ['10.0.0.1', 443],
      ['::1', 443],
      ['fd00:ec2::254', 80],
      ['::ffff:169.254.169.254', 80],
      ['64:ff9b::a9fe:a9fe', 80],
    ] as const) {
      it(`refuses ${address}:${port} as private-address`, () => {
        const verdict = checkAddress(list, address, port);
        assert.equal(verdict.allowed, false);
        assert.equal(!verdict.allowed && verdict.reason, 'private-address');
      });
    }
    it('still allows ordinary public addresses through 0.0.0.0/0', () => {
      assert.equal(checkAddress(list, '8.8.8.8', 53).allowed, true);
    });
    it('allows 169.254.1.1 through 169.254.0.0/16, and loopback through 127.0.0.0/8 on its port', () => {
      assert.equal(checkAddress(list, '169.254.1.1', 80).allowed, true);
      assert.equal(checkAddress(list, '127.0.0.1', 8080).allowed, true);
    });
  });

  describe('when a name resolved to the address', () => {
    const via = nameRule('api.example.com:443');
    it('allows an ordinary address through the name rule', () => {
      const verdict = checkAddress([via], '93.184.216.34', 443, via);
      assert.equal(verdict.allowed && verdict.rule.source, 'api.example.com:443');
    });
    for (const address of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '100.100.100.200', '::1', 'fd00:ec2::254', '::ffff:127.0.0.1', '0.0.0.0']) {
      it(`refuses ${address} as private-address without a CIDR rule listing it`, () => {
        const verdict = checkAddress([via], address, 443, via);
        assert.equal(!verdict.allowed && verdict.reason, 'private-address');
      });
    }
    it('refuses the metadata address when only the link-local /16 is listed', () => {
      const verdict = checkAddress([via, ...rules('169.254.0.0/16:443')], '169.254.169.254', 443, via);
      assert.equal(!verdict.allowed && verdict.reason, 'private-address');
    });
    it('allows the metadata address when its /32 is listed, naming both rules', () => {
      const verdict = checkAddress([via, ...rules('169.254.169.254:443')], '169.254.169.254', 443, via);
      assert.equal(verdict.allowed, true);
      assert.equal(verdict.allowed && verdict.addressRule?.source, '169.254.169.254:443');
      assert.equal(verdict.special?.kind, 'metadata');
    });
    it('refuses a listed private address on a port its CIDR rule does not open', () => {
      const verdict = checkAddress([via, ...rules('10.0.0.0/8:5432')], '10.1.2.3', 443, via);
      assert.equal(!verdict.allowed && verdict.reason, 'private-address');
    });
  });
});

describe('when the address is one of the host’s own', () => {
  // A public address of the host reaches the host itself (its services on 0.0.0.0 or [::]), as loopback does.
  const own = new Set(['93.184.216.34', '2606:4700::1', '127.0.0.1']);
  const via = nameRule('api.example.com:443');
  it('refuses it through a name as private-address, kind host, its block the address alone', () => {
    const verdict = checkAddress([via], '93.184.216.34', 443, via, own);
    assert.deepEqual([verdict.allowed, !verdict.allowed && verdict.reason, verdict.special?.kind, verdict.special?.block], [false, 'private-address', 'host', '93.184.216.34/32']);
  });
  it('refuses it under 0.0.0.0/0 and [::]/0, v4-mapped spelling included', () => {
    const broad = rules('0.0.0.0/0:*', '[::]/0:*');
    for (const address of ['93.184.216.34', '::ffff:93.184.216.34', '2606:4700::1']) {
      const verdict = checkAddress(broad, address, 443, undefined, own);
      assert.equal(!verdict.allowed && verdict.reason, 'private-address', address);
    }
  });
  it('allows it only when a CIDR rule names the address itself', () => {
    assert.equal(checkAddress(rules('93.184.216.0/24:443'), '93.184.216.34', 443, undefined, own).allowed, false);
    const verdict = checkAddress([via, ...rules('93.184.216.34:443')], '93.184.216.34', 443, via, own);
    assert.equal(verdict.allowed && verdict.addressRule?.source, '93.184.216.34:443');
  });
  it('leaves a loopback address loopback: every one is the host\'s, and a rule inside loopback opens the host knowingly', () => {
    assert.equal(checkAddress([via], '127.0.0.1', 443, via, own).special?.kind, 'loopback');
    assert.equal(checkAddress(rules('127.0.0.0/8:8080'), '127.0.0.1', 8080, undefined, own).allowed, true);
  });
  it('refuses it among the addresses a name resolved to, keeping the others', () => {
    const { permitted, refused } = checkResolved([via], via, ['93.184.216.34', '1.1.1.1'], 443, own);
    assert.deepEqual([permitted.map((p) => p.address), refused.map((r) => [r.address, r.special?.kind])], [['1.1.1.1'], [['93.184.216.34', 'host']]]);
  });
});

// Regression: a rule for a special range (192.0.2.0/24:18555, 10.0.0.0/8:5432) opened the host's own
// address in that range, and with it the host's own services listening on 0.0.0.0: the host check ran
// only for an address no special range holds.
describe('when a CIDR rule for a special range covers one of the host\'s own addresses', () => {
  const own = new Set(['192.0.2.2', '10.1.2.3', 'fd00::2', 'fe80::fc:ff:fe00:1']);
  const via = nameRule('db.example.com:*');
  const refusedAsHost = (verdict: ReturnType<typeof checkAddress>, block: string) =>
    assert.deepEqual([verdict.allowed, !verdict.allowed && verdict.reason, verdict.special?.kind, verdict.special?.block], [false, 'private-address', 'host', block]);

  it('refuses the host\'s own address as a literal, as private-address of kind host, and opens its neighbours', () => {
    const list = rules('192.0.2.0/24:18555', '10.0.0.0/8:5432', '[fd00::]/8:443', '[fe80::]/10:443');
    refusedAsHost(checkAddress(list, '192.0.2.2', 18555, undefined, own), '192.0.2.2/32');
    refusedAsHost(checkAddress(list, '::ffff:192.0.2.2', 18555, undefined, own), '192.0.2.2/32');
    refusedAsHost(checkAddress(list, '10.1.2.3', 5432, undefined, own), '10.1.2.3/32');
    refusedAsHost(checkAddress(list, 'fd00::2', 443, undefined, own), 'fd00::2/128');
    refusedAsHost(checkAddress(list, 'fe80::fc:ff:fe00:1', 443, undefined, own), 'fe80::fc:ff:fe00:1/128');
    for (const [address, p] of [['192.0.2.3', 18555], ['10.1.2.4', 5432], ['fd00::3', 443], ['fe80::1', 443]] as const) {
      assert.equal(checkAddress(list, address, p, undefined, own).allowed, true, address);
    }
  });

  it('refuses it when a name the policy allows resolves to it, keeping the name\'s other addresses', () => {
    const list = [via, ...rules('10.0.0.0/8:5432')];
    refusedAsHost(checkAddress(list, '10.1.2.3', 5432, via, own), '10.1.2.3/32');
    const { permitted, refused } = checkResolved(list, via, ['10.1.2.3', '10.1.2.4'], 5432, own);
    assert.deepEqual([permitted.map((p) => p.address), refused.map((r) => [r.address, r.special?.kind])], [['10.1.2.4'], [['10.1.2.3', 'host']]]);
  });

  it('opens it through a rule naming the address itself, literal or resolved', () => {
    const list = [via, ...rules('192.0.2.0/24:18555', '192.0.2.2/32:18555', '[fd00::2]:443')];
    const literal = checkAddress(list, '192.0.2.2', 18555, undefined, own);
    assert.equal(literal.allowed && literal.rule.source, '192.0.2.2/32:18555');
    const resolved = checkAddress(list, '192.0.2.2', 18555, via, own);
    assert.equal(resolved.allowed && resolved.addressRule?.source, '192.0.2.2/32:18555');
    assert.equal(checkAddress(list, 'fd00::2', 443, undefined, own).allowed, true);
  });
});

describe('checkResolved', () => {
  const via = nameRule('api.example.com:443');
  it('keeps the resolver’s order and drops duplicates and non-addresses', () => {
    const { permitted, refused } = checkResolved([via], via, ['93.184.216.34', 'not-an-ip', '::ffff:93.184.216.34', '2606:4700::1'], 443);
    assert.deepEqual(
      permitted.map((p) => p.address),
      ['93.184.216.34', '2606:4700::1'],
    );
    assert.equal(refused.length, 0);
  });
  describe('when a name resolves to a private and a public address (DNS rebinding mix)', () => {
    it('permits only the public one', () => {
      const { permitted, refused } = checkResolved([via], via, ['10.0.0.1', '93.184.216.34', '169.254.169.254'], 443);
      assert.deepEqual(
        permitted.map((p) => p.address),
        ['93.184.216.34'],
      );
      assert.deepEqual(
        refused.map((r) => [r.address, r.reason]),
        [
          ['10.0.0.1', 'private-address'],
          ['169.254.169.254', 'private-address'],
        ],
      );
    });
  });
  it('permits nothing for an empty answer', () => {
    assert.deepEqual(checkResolved([via], via, [], 443), { permitted: [], refused: [] });
  });
});

// ---- properties

const label = fc.constantFrom('a', 'b', 'api', 'x-1', 'corp', 'example', 'com', 'io');
const name = fc.array(label, { minLength: 2, maxLength: 5 }).map((ls) => ls.join('.'));
const octet = fc.integer({ min: 0, max: 255 });
const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => g.map((n) => n.toString(16)).join(':'));
/** A block written by its network (one with host bits set is refused): the address generated, its host bits cleared. */
const network = (family: 4 | 6, address: string, prefix: number) => formatIp(family, ipToBigInt(address) & prefixMask(family, prefix));
const port = fc.integer({ min: 1, max: 65535 });

function bits(address: string): string {
  if (!address.includes(':')) return address.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  return address
    .split(':')
    .map((g) => parseInt(g, 16).toString(2).padStart(16, '0'))
    .join('');
}

describe('allowlist properties', () => {
  it('a wildcard rule names exactly the names with more labels ending in its suffix', () => {
    fc.assert(
      fc.property(name, name, (suffix, host) => {
        const expected = host.split('.').length > suffix.split('.').length && host.split('.').slice(-suffix.split('.').length).join('.') === suffix;
        assert.equal(matchName(rules(`*.${suffix}:443`), host, 443).allowed, expected);
      }),
    );
  });
  it('a domain rule names exactly its own name, whatever the case and a trailing dot', () => {
    fc.assert(
      fc.property(name, name, fc.boolean(), fc.boolean(), (domain, host, upper, dot) => {
        const asked = `${upper ? host.toUpperCase() : host}${dot ? '.' : ''}`;
        assert.equal(matchName(rules(`${domain}:443`), asked, 443).allowed, host === domain);
      }),
    );
  });
  it('a CIDR rule covers exactly the addresses sharing its prefix bits', () => {
    const cidr = fc.oneof(
      fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([a, p]) => ({ text: `${network(4, a, p)}/${p}:*`, net: a, p })),
      fc.tuple(v6, fc.integer({ min: 0, max: 128 })).map(([a, p]) => ({ text: `[${network(6, a, p)}]/${p}:*`, net: a, p })),
    );
    fc.assert(
      fc.property(cidr, fc.oneof(v4, v6), port, (rule, address, p) => {
        const sameFamily = rule.net.includes(':') === address.includes(':');
        const covers = sameFamily && bits(rule.net).slice(0, rule.p) === bits(address).slice(0, rule.p);
        const verdict = checkAddress(rules(rule.text), address, p);
        // A covered address is allowed unless it is special and the rule reaches beyond its special block.
        assert.equal(verdict.allowed || verdict.reason !== 'not-allowed', covers);
        if (!covers) return;
        const special = classifyAddress(address);
        assert.equal(verdict.allowed, special === null || rule.p >= special.prefix);
      }),
    );
  });
  it('one of the host\'s own addresses outside loopback is reached only through a rule naming it alone, whatever range covers it', () => {
    // Addresses in the ranges a host's interfaces have (private, documentation, link-local, ULA) and anywhere.
    const inRange = (base: string, family: 4 | 6, prefix: number) =>
      fc.bigInt({ min: 0n, max: (1n << BigInt((family === 4 ? 32 : 128) - prefix)) - 1n }).map((low) => formatIp(family, ipToBigInt(base) | low));
    const hostAddress = fc
      .oneof(inRange('10.0.0.0', 4, 8), inRange('192.0.2.0', 4, 24), inRange('172.16.0.0', 4, 12), inRange('fd00::', 6, 8), inRange('fe80::', 6, 64), v4, v6)
      .map((a) => canonicalAddress(a)!)
      .filter((a) => classifyAddress(a.address)?.kind !== 'loopback');
    fc.assert(
      fc.property(hostAddress, fc.integer({ min: 0, max: 128 }), port, ({ address, family }, wanted, p) => {
        const full = family === 4 ? 32 : 128;
        const prefix = Math.min(wanted, full);
        const text = family === 4 ? `${network(4, address, prefix)}/${prefix}:*` : `[${network(6, address, prefix)}]/${prefix}:*`;
        const via = nameRule('api.example.com:*');
        const own = new Set([address]);
        const literal = checkAddress(rules(text), address, p, undefined, own);
        const resolved = checkAddress([via, ...rules(text)], address, p, via, own);
        assert.equal(literal.allowed, prefix === full, text);
        assert.equal(resolved.allowed, prefix === full, text);
      }),
    );
  });
  it('a name never reaches a special address without a CIDR rule inside its block', () => {
    const anyRules = fc.array(
      fc.oneof(
        name.map((n) => `${n}:*`),
        fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([a, p]) => `${network(4, a, p)}/${p}:*`),
      ),
      { maxLength: 4 },
    );
    const special = fc.constantFrom('127.0.0.1', '10.0.0.1', '169.254.169.254', '100.100.100.200', '192.168.1.1', '0.0.0.0', '::1', '::ffff:127.0.0.1', 'fd00:ec2::254');
    fc.assert(
      fc.property(anyRules, fc.array(fc.oneof(special, v4, v6), { maxLength: 6 }), (texts, addresses) => {
        const list = rules(...texts);
        const via = nameRule('api.example.com:*');
        for (const allowed of checkResolved(list, via, addresses, 443).permitted) {
          if (allowed.special === null) continue;
          const listing = allowed.addressRule;
          assert.ok(listing !== undefined && listing.prefix >= allowed.special.prefix, `${allowed.address} reached without a rule inside ${allowed.special.block}`);
        }
      }),
    );
  });
});
