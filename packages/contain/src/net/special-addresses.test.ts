import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { classifyAddress, hostAddressBlock, type SpecialAddressKind } from './special-addresses.ts';

// Naive reference: addresses as strings of bits, blocks as bit-string prefixes,
// the longest matching prefix wins. Written independently of the bigint code.
function bitsV4(address: string): string {
  return address
    .split('.')
    .map((o) => Number(o).toString(2).padStart(8, '0'))
    .join('');
}

function bitsV6(address: string): string {
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('');
}

const V4_REFERENCE: [string, SpecialAddressKind][] = [
  ['0.0.0.0/8', 'this-network'],
  ['0.0.0.0/32', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'cgnat'],
  ['100.100.100.200/32', 'metadata'],
  ['127.0.0.0/8', 'loopback'],
  ['168.63.129.16/32', 'metadata'],
  ['169.254.0.0/16', 'link-local'],
  ['169.254.169.254/32', 'metadata'],
  ['169.254.170.2/32', 'metadata'],
  ['169.254.170.23/32', 'metadata'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.0.192/32', 'metadata'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['255.255.255.255/32', 'broadcast'],
];

function referenceV4(address: string): SpecialAddressKind | null {
  const bits = bitsV4(address);
  let best: { prefix: number; kind: SpecialAddressKind } | null = null;
  for (const [cidr, kind] of V4_REFERENCE) {
    const [net = '', p = ''] = cidr.split('/');
    const prefix = Number(p);
    if (bits.slice(0, prefix) === bitsV4(net).slice(0, prefix) && (best === null || prefix > best.prefix)) best = { prefix, kind };
  }
  return best?.kind ?? null;
}

const octet = fc.integer({ min: 0, max: 255 });
const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const hex = (n: number) => n.toString(16);

describe('classifyAddress', () => {
  describe('named IPv4 vectors', () => {
    const vectors: [string, SpecialAddressKind | null][] = [
      ['127.0.0.1', 'loopback'],
      ['127.255.255.254', 'loopback'],
      ['0.0.0.0', 'unspecified'],
      ['0.1.2.3', 'this-network'],
      ['10.1.2.3', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['172.32.0.1', null],
      ['192.168.1.1', 'private'],
      ['169.254.1.1', 'link-local'],
      ['169.254.169.254', 'metadata'],
      ['169.254.170.2', 'metadata'],
      ['100.100.100.200', 'metadata'],
      ['168.63.129.16', 'metadata'],
      ['100.64.0.1', 'cgnat'],
      ['100.127.255.255', 'cgnat'],
      ['100.128.0.0', null],
      ['224.0.0.1', 'multicast'],
      ['239.255.255.250', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['240.0.0.1', 'reserved'],
      ['192.0.2.10', 'documentation'],
      ['198.51.100.7', 'documentation'],
      ['203.0.113.9', 'documentation'],
      ['198.18.0.1', 'benchmarking'],
      ['192.0.0.8', 'reserved'],
      ['8.8.8.8', null],
      ['1.1.1.1', null],
      ['93.184.216.34', null],
    ];
    for (const [address, kind] of vectors) {
      it(`classifies ${address} as ${kind ?? 'ordinary'}`, () => {
        assert.equal(classifyAddress(address)?.kind ?? null, kind);
      });
    }
  });

  describe('named IPv6 vectors', () => {
    const vectors: [string, SpecialAddressKind | null][] = [
      ['::1', 'loopback'],
      ['::', 'unspecified'],
      ['fc00::1', 'private'],
      ['fd12:3456::1', 'private'],
      ['fe80::1', 'link-local'],
      ['fe80::1%eth0', 'link-local'],
      ['febf::1', 'link-local'],
      ['fec0::1', 'private'],
      ['ff02::1', 'multicast'],
      ['fd00:ec2::254', 'metadata'],
      ['2001:db8::1', 'documentation'],
      ['3fff::1', 'documentation'],
      ['2001::1', 'reserved'],
      ['2001:2::1', 'benchmarking'],
      ['100::1', 'reserved'],
      ['::2', 'reserved'],
      ['4000::1', 'reserved'],
      ['e000::1', 'reserved'],
      ['2606:4700:4700::1111', null],
      ['2a00:1450:4001:80b::200e', null],
    ];
    for (const [address, kind] of vectors) {
      it(`classifies ${address} as ${kind ?? 'ordinary'}`, () => {
        assert.equal(classifyAddress(address)?.kind ?? null, kind);
      });
    }
  });

  describe('when an IPv6 address carries an IPv4 address', () => {
    it('classifies v4-mapped ::ffff:127.0.0.1 as loopback, inside ::ffff:127.0.0.0/104', () => {
      const found = classifyAddress('::ffff:127.0.0.1');
      assert.equal(found?.kind, 'loopback');
      assert.equal(found?.block, '::ffff:127.0.0.0/104');
      assert.equal(found?.embedded, '127.0.0.1');
    });
    it('classifies v4-mapped in hex form (::ffff:a9fe:a9fe) as metadata', () => {
      assert.equal(classifyAddress('::ffff:a9fe:a9fe')?.kind, 'metadata');
    });
    it('classifies the NAT64 well-known prefix by the address inside (64:ff9b::169.254.169.254)', () => {
      assert.equal(classifyAddress('64:ff9b::169.254.169.254')?.kind, 'metadata');
      assert.equal(classifyAddress('64:ff9b::a00:1')?.kind, 'private');
      assert.equal(classifyAddress('64:ff9b::808:808'), null);
    });
    it('classifies NAT64 local-use 64:ff9b:1::/48 as private', () => {
      assert.equal(classifyAddress('64:ff9b:1::808:808')?.kind, 'private');
    });
    it('classifies 6to4 by the address inside (2002:7f00:1::)', () => {
      assert.equal(classifyAddress('2002:7f00:1::1')?.kind, 'loopback');
      assert.equal(classifyAddress('2002:0808:0808::1'), null);
    });
    it('gives every IPv4 address the same kind mapped, through NAT64 and through 6to4', () => {
      fc.assert(
        fc.property(fc.tuple(octet, octet, octet, octet), (o) => {
          const plain = classifyAddress(o.join('.'))?.kind ?? null;
          const hi = hex(o[0] * 256 + o[1]);
          const lo = hex(o[2] * 256 + o[3]);
          assert.equal(classifyAddress(`::ffff:${o.join('.')}`)?.kind ?? null, plain);
          assert.equal(classifyAddress(`64:ff9b::${hi}:${lo}`)?.kind ?? null, plain);
          assert.equal(classifyAddress(`2002:${hi}:${lo}::1`)?.kind ?? null, plain);
        }),
      );
    });
  });

  describe('against a naive reference', () => {
    it('agrees on every IPv4 address', () => {
      fc.assert(fc.property(v4, (a) => assert.equal(classifyAddress(a)?.kind ?? null, referenceV4(a))));
    });
    it('agrees near every IPv4 block edge', () => {
      const edges = V4_REFERENCE.flatMap(([cidr]) => {
        const [net = '', p = ''] = cidr.split('/');
        const base = parseInt(bitsV4(net), 2);
        const size = 2 ** (32 - Number(p));
        return [base - 1, base, base + size - 1, base + size].filter((n) => n >= 0 && n < 2 ** 32);
      });
      for (const n of edges) {
        const a = [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
        assert.equal(classifyAddress(a)?.kind ?? null, referenceV4(a), a);
      }
    });
    it('returns a block that contains the address', () => {
      const group = fc.integer({ min: 0, max: 0xffff }).map(hex);
      const v6 = fc.array(group, { minLength: 8, maxLength: 8 }).map((g) => g.join(':'));
      fc.assert(
        fc.property(fc.oneof(v4, v6), (a) => {
          const found = classifyAddress(a);
          if (found === null) return;
          const [net = ''] = found.block.split('/');
          const bits = a.includes(':') ? bitsV6 : bitsV4;
          const netBits = net.startsWith('::ffff:') && net.includes('.') ? '0'.repeat(80) + '1'.repeat(16) + bitsV4(net.slice(7)) : bits(net);
          assert.equal(bits(a).slice(0, found.prefix), netBits.slice(0, found.prefix), `${a} in ${found.block}`);
        }),
      );
    });
  });

  describe('when the input is not an IP address', () => {
    for (const bad of ['', 'localhost', '127.1', '0x7f.0.0.1', '2130706433', '[::1]', '1.2.3.4.5', '::ffff:1.2.3']) {
      it(`refuses '${bad}' with CONTAIN_BAD_ADDRESS`, () => {
        assert.throws(() => classifyAddress(bad), { code: 'CONTAIN_BAD_ADDRESS' });
      });
    }
    it('refuses a non-string with CONTAIN_BAD_ADDRESS', () => {
      assert.throws(() => classifyAddress(42 as unknown as string), { code: 'CONTAIN_BAD_ADDRESS' });
    });
  });
});

describe('hostAddressBlock', () => {
  it('gives one of the host’s own addresses a block of its own, /32 or /128', () => {
    assert.deepEqual(hostAddressBlock('93.184.216.34'), { kind: 'host', family: 4, network: 0x5db8d822n, prefix: 32, block: '93.184.216.34/32' });
    assert.equal(hostAddressBlock('2606:4700::1').block, '2606:4700::1/128');
  });
  it('refuses what is not an IP address with CONTAIN_BAD_ADDRESS', () => {
    assert.throws(() => hostAddressBlock('example.com'), { code: 'CONTAIN_BAD_ADDRESS' });
    assert.throws(() => hostAddressBlock(7 as unknown as string), { code: 'CONTAIN_BAD_ADDRESS' });
  });
});
