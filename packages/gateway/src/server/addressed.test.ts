import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { startTestGateway } from '../../test/harness.ts';
import { startTestGateway as startHttpGateway } from '../http/testing.ts';
import { hostAllowed, originAllowed } from './addressed.ts';

/** The status a WebSocket upgrade to `url` is answered with: 101 when it opens. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    socket.once('error', reject);
  });
}

describe('which upgrades the gateway takes, by Host and Origin', () => {
  it('refuses a web page of another origin (403) and a loopback upgrade sent to another name (421), takes one with no Origin or its own (regression: any page the user opened could connect)', async () => {
    const gw = await startTestGateway();
    try {
      const url = gw.server.url;
      const own = new URL(url).host;
      assert.equal(await upgradeStatus(url, {}), 101, 'no Origin: a node, the CLI');
      assert.equal(await upgradeStatus(url, { origin: `http://${own}` }), 101, "the gateway's own pages");
      assert.equal(await upgradeStatus(url, { origin: 'https://evil.example' }), 403);
      assert.equal(await upgradeStatus(url, { origin: 'null' }), 403);
      assert.equal(await upgradeStatus(url, { host: `evil.example:${new URL(url).port}` }), 421);
      assert.equal(await upgradeStatus(url, { host: `evil.example:${new URL(url).port}`, origin: `http://evil.example:${new URL(url).port}` }), 421, 'rebinding: same origin as its own name');
      const refused = gw.log.filter((e) => e.code === 'GATEWAY_UPGRADE_REFUSED');
      assert.equal(refused.length, 4, JSON.stringify(gw.log));
      assert.ok(refused.every((e) => e.addressGroup !== undefined && e.reason !== undefined));
    } finally {
      await gw.stop();
    }
  });

  it('behind a reverse proxy (publicUrl https://corral.example.com), takes an upgrade naming the public host from a page of the public origin, and still refuses any other name or origin (regression: 421 for the public Host, 403 for its Origin, so the console could not connect through the proxy)', async () => {
    const t = await startHttpGateway({ publicUrl: 'https://corral.example.com' });
    try {
      const url = t.gw.url;
      assert.equal(await upgradeStatus(url, { host: 'corral.example.com', origin: 'https://corral.example.com' }), 101);
      assert.equal(await upgradeStatus(url, { origin: 'https://corral.example.com' }), 101, 'a proxy that passes the upstream address as Host');
      assert.equal(await upgradeStatus(url, { host: 'corral.example.com', origin: 'http://corral.example.com' }), 403);
      assert.equal(await upgradeStatus(url, { host: 'evil.example', origin: 'https://corral.example.com' }), 421);
    } finally {
      await t.close();
    }
  });

  it('writes at most its budget of lines for a flood of refused upgrades, then says how many it left out', async () => {
    const gw = await startTestGateway();
    try {
      for (let i = 0; i < 40; i++) assert.equal(await upgradeStatus(gw.server.url, { origin: 'https://evil.example' }), 403);
      const refused = gw.log.filter((e) => e.code === 'GATEWAY_UPGRADE_REFUSED');
      assert.ok(refused.length >= 20 && refused.length < 30, `${refused.length} lines`);
    } finally {
      await gw.stop();
    }
  });
});

describe('a gateway listening on every interface', () => {
  it('answers a request that reached it over loopback only when it names a loopback host (regression: the check ran only for a gateway bound to loopback, and a rebinding page got through)', async () => {
    const gw = await startHttpGateway({ host: '0.0.0.0' });
    try {
      const port = Number(new URL(gw.gw.httpUrl).port);
      const get = (host: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path: '/api/status', headers: { host } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.once('error', reject);
          req.end();
        });
      assert.equal(await get(`evil.example:${port}`), 421);
      assert.notEqual(await get(`127.0.0.1:${port}`), 421);
    } finally {
      await gw.close();
    }
  });
});

describe('hostAllowed and originAllowed', () => {
  it('take loopback names over loopback, any name otherwise, and only an http(s) origin of the same host and port', () => {
    assert.equal(hostAllowed('127.0.0.1', 'localhost:1'), true);
    assert.equal(hostAllowed('::ffff:127.0.0.1', '[::1]:1'), true);
    assert.equal(hostAllowed('::1', 'example.com'), false);
    assert.equal(hostAllowed('127.0.0.1', undefined), false);
    assert.equal(hostAllowed('10.0.0.5', 'gateway.corp.example'), true);
    assert.equal(originAllowed(undefined, 'a:1'), true);
    assert.equal(originAllowed('http://a:1', 'A:1'), true);
    assert.equal(originAllowed('http://a:2', 'a:1'), false);
    assert.equal(originAllowed('ws://a:1', 'a:1'), false);
    assert.equal(originAllowed('http://a:1', undefined), false);
    assert.equal(originAllowed('not a url', 'a:1'), false);
  });
});
