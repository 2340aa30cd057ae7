// The client address of a request, by its socket's peer and, from a trusted
// proxy only, X-Forwarded-For: the entries as proxies write them.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import type { GatewayLogEntry } from '../server/server.ts';
import { ClientAddresses, TrustedProxies } from './client-address.ts';

/** A request as the HTTP server hands it over: what its socket's peer is, and its headers. */
const from = (peer: string, forwarded?: string | string[]): IncomingMessage => ({ socket: { remoteAddress: peer }, headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } }) as unknown as IncomingMessage;

describe('ClientAddresses', () => {
  const addresses = new ClientAddresses(TrustedProxies.parse(['10.0.0.0/8', '::1', 'fd00::/8']));

  it('takes the peer when it is not a trusted proxy, whatever X-Forwarded-For it sends', () => {
    assert.equal(addresses.of(from('198.51.100.1', '203.0.113.9')), '198.51.100.1');
    assert.equal(addresses.of(from('::ffff:198.51.100.1', '203.0.113.9')), '198.51.100.1', 'an IPv4 peer mapped into IPv6 as itself');
  });

  it('takes the rightmost entry that is not a trusted proxy, from a trusted one', () => {
    assert.equal(addresses.of(from('10.0.0.2', '192.0.2.1, 203.0.113.9')), '203.0.113.9');
    assert.equal(addresses.of(from('::1', '192.0.2.1, 203.0.113.9, 10.4.4.4, fd12::7')), '203.0.113.9', 'past a chain of trusted hops');
    assert.equal(addresses.of(from('::ffff:10.0.0.2', '2001:DB8::5')), '2001:db8::5', 'a trusted IPv4 peer mapped into IPv6; IPv6 in lower case');
    assert.equal(addresses.of(from('10.0.0.2', ['192.0.2.1', '203.0.113.10'])), '203.0.113.10', 'header lines given apart are one list');
  });

  it('reads entries with a port, as some load balancers write them, and bracketed IPv6', () => {
    assert.equal(addresses.of(from('10.0.0.2', '203.0.113.9:51234')), '203.0.113.9');
    assert.equal(addresses.of(from('10.0.0.2', '[2001:db8::5]:443')), '2001:db8::5');
    assert.equal(addresses.of(from('10.0.0.2', '[2001:db8::6]')), '2001:db8::6');
    assert.equal(addresses.of(from('10.0.0.2', '::ffff:203.0.113.9')), '203.0.113.9');
  });

  it('takes the first hop when every entry is a trusted proxy, and the peer when there is no header', () => {
    assert.equal(addresses.of(from('10.0.0.2', '10.9.9.9, 10.0.0.3')), '10.9.9.9');
    assert.equal(addresses.of(from('10.0.0.2')), '10.0.0.2');
  });

  it('takes the peer for a malformed list from a trusted proxy, and logs it once, then at most once a minute with how many it left out', () => {
    const log: GatewayLogEntry[] = [];
    let clock = 0;
    const watched = new ClientAddresses(TrustedProxies.parse(['10.0.0.2']), (entry) => log.push(entry), () => clock);
    for (const header of ['', ',', 'unknown', '203.0.113.9,,', '203.0.113.9 , _', 'fe80::1%eth0', '1.2.3.4:99999', '[1.2.3.4]x', 'a'.repeat(5000)]) {
      assert.equal(watched.of(from('10.0.0.2', header)), '10.0.0.2', JSON.stringify(header.slice(0, 20)));
    }
    assert.equal(log.length, 1);
    assert.equal(log[0]!.code, 'GATEWAY_FORWARDED_INVALID');
    assert.equal(log[0]!.remoteAddress, '10.0.0.2');
    clock += 61_000;
    watched.of(from('10.0.0.2', 'unknown'));
    assert.equal(log.length, 2);
    assert.equal(log[1]!.suppressed, 8);
  });

  it('without trusted proxies, is the peer for every request', () => {
    const none = new ClientAddresses(undefined);
    assert.equal(none.of(from('127.0.0.1', '203.0.113.9')), '127.0.0.1');
  });
});

describe('TrustedProxies', () => {
  it('holds addresses and blocks of either family, an IPv4 one also as mapped into IPv6', () => {
    const trusted = TrustedProxies.parse(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8', '::ffff:192.0.2.7']);
    for (const yes of ['127.0.0.1', '::ffff:127.0.0.1', '10.200.1.1', '::1', 'fd99::1', '192.0.2.7']) assert.equal(trusted.has(yes), true, yes);
    for (const no of ['127.0.0.2', '11.0.0.1', 'fe80::1', '2001:db8::1', '', 'garbage']) assert.equal(trusted.has(no), false, no);
  });

  it('trusts no one when empty', () => {
    assert.equal(TrustedProxies.parse([]).has('127.0.0.1'), false);
  });
});
