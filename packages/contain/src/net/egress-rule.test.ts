import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cidrContains, formatIp, ipToBigInt, parseEgressRule, portAllowed, prefixMask, type EgressRule } from './egress-rule.ts';

function rule(text: string): EgressRule {
  const parsed = parseEgressRule(text);
  assert.ok(typeof parsed !== 'string', `expected '${text}' to parse: ${String(parsed)}`);
  return parsed;
}

describe('egress rules', () => {
  describe('when written HOST:PORT', () => {
    it('reads a domain, lower-cased', () => {
      assert.deepEqual(rule('API.Example.com:443'), { kind: 'domain', domain: 'api.example.com', ports: { from: 443, to: 443 }, source: 'API.Example.com:443' });
    });
    it('reads a wildcard as the suffix below it', () => {
      const r = rule('*.corp.example:8000-8100');
      assert.equal(r.kind, 'wildcard');
      assert.equal(r.kind === 'wildcard' && r.suffix, 'corp.example');
      assert.deepEqual(r.ports, { from: 8000, to: 8100 });
    });
    it('reads an IPv4 address as a /32 block and a CIDR as its network', () => {
      const one = rule('10.1.2.3:5432');
      assert.ok(one.kind === 'cidr' && one.prefix === 32);
      const block = rule('10.0.0.0/8:*');
      assert.ok(block.kind === 'cidr' && block.network === ipToBigInt('10.0.0.0') && block.prefix === 8);
      assert.deepEqual(block.ports, { from: 1, to: 65535 });
    });
    it('reads bracketed IPv6 addresses and blocks', () => {
      const r = rule('[fd00::]/8:443');
      assert.ok(r.kind === 'cidr' && r.family === 6 && r.prefix === 8);
      assert.ok(cidrContains(r as Extract<EgressRule, { kind: 'cidr' }>, 'fdff::2'));
      assert.ok(!cidrContains(r as Extract<EgressRule, { kind: 'cidr' }>, 'fe80::1'));
    });
  });

  describe('when the rule is malformed', () => {
    for (const [text, why] of [
      ['api.example.com', 'no port'],
      ['api.example.com:0', 'port 0'],
      ['api.example.com:70000', 'port above 65535'],
      ['api.example.com:90-80', 'range backwards'],
      ['api.example.com:https', 'named port'],
      [':443', 'no host'],
      ['*.com:443', 'wildcard over a top-level domain'],
      ['*:443', 'bare wildcard'],
      ['exa mple.com:443', 'space in a name'],
      ['-bad.example.com:443', 'label starting with a hyphen'],
      ['10.0.0.0/33:443', 'IPv4 prefix too long'],
      ['300.1.1.1/8:443', 'not an address'],
      ['fd00::1:443', 'IPv6 without brackets'],
      ['[fd00::1:443', 'unclosed bracket'],
      ['[not-v6]:443', 'bracketed non-address'],
      // No request ever matches these: the proxy reads a host whose last label is all digits as no name,
      // an IPv6 zone as no address, and a v4-mapped address as the IPv4 address it maps.
      ['127.1:80', 'an IPv4 address short of four parts'],
      ['2130706433:80', 'an IPv4 address as one number'],
      ['0x7f.1:80', 'an IPv4 address in hex'],
      ['127.000.000.001:80', 'an IPv4 address with leading zeros'],
      ['[fe80::1%eth0]:80', 'an IPv6 zone'],
      ['[::ffff:127.0.0.1]:80', 'a v4-mapped IPv6 address'],
      ['[::ffff:10.0.0.0]/104:80', 'a v4-mapped IPv6 block'],
    ] as const) {
      it(`refuses ${why} ('${text}') with a sentence`, () => {
        const parsed = parseEgressRule(text);
        assert.equal(typeof parsed, 'string');
      });
    }
  });

  describe('ports', () => {
    it('allows exactly the range, ends included', () => {
      const range = { from: 8000, to: 8100 };
      assert.ok(portAllowed(range, 8000) && portAllowed(range, 8100));
      assert.ok(!portAllowed(range, 7999) && !portAllowed(range, 8101));
    });
  });

  describe('CIDR blocks, against a naive reference', () => {
    // Reference: compare the first `prefix` bits as text.
    const bitsOf = (address: string) => {
      const n = ipToBigInt(address);
      const width = address.includes(':') ? 128 : 32;
      return n.toString(2).padStart(width, '0');
    };
    const naiveContains = (network: string, prefix: number, address: string) => bitsOf(network).slice(0, prefix) === bitsOf(address).slice(0, prefix);
    // A block is written by its network (one with host bits set is refused): the address generated, its host bits cleared.
    const blockOf = (family: 4 | 6, address: string, prefix: number) => formatIp(family, ipToBigInt(address) & prefixMask(family, prefix));

    it('contain exactly the IPv4 addresses sharing the prefix', () => {
      fc.assert(
        fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (network, prefix, address) => {
          const r = rule(`${blockOf(4, network, prefix)}/${prefix}:443`) as Extract<EgressRule, { kind: 'cidr' }>;
          assert.equal(cidrContains(r, address), naiveContains(network, prefix, address));
          assert.ok(cidrContains(r, network));
        }),
        { numRuns: 2000 },
      );
    });

    it('contain exactly the IPv6 addresses sharing the prefix', () => {
      fc.assert(
        fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.ipV6(), (network, prefix, address) => {
          const r = rule(`[${blockOf(6, network, prefix)}]/${prefix}:443`) as Extract<EgressRule, { kind: 'cidr' }>;
          assert.equal(cidrContains(r, address), naiveContains(network, prefix, address));
        }),
        { numRuns: 2000 },
      );
    });

    it('never match an address of the other family', () => {
      const r = rule('0.0.0.0/0:*') as Extract<EgressRule, { kind: 'cidr' }>;
      assert.ok(!cidrContains(r, '::1'));
    });
  });

  describe('for any text', () => {
    it('returns a rule or a sentence, never throws', () => {
      fc.assert(
        fc.property(fc.string(), (text) => {
          const parsed = parseEgressRule(text);
          return typeof parsed === 'string' || typeof parsed === 'object';
        }),
        { numRuns: 2000 },
      );
    });
  });
});
