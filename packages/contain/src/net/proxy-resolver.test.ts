import assert from 'node:assert/strict';
import { pbkdf2 } from 'node:crypto';
import { stat } from 'node:fs/promises';
import * as net from 'node:net';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { parseEgressRule, type EgressRule } from './egress-rule.ts';
import { EgressProxy, type EgressChannel, type EgressLookup, type ResolvedAddress } from './proxy.ts';

// Node's resolver (getaddrinfo) runs on libuv's threadpool, 4 threads unless UV_THREADPOOL_SIZE
// says otherwise, which every file operation and every asynchronous hash of the Corral process
// share, and a name whose DNS does not answer holds its thread until the resolver gives up. These
// tests stand a lookup in for such a name that holds a thread of that same pool (a PBKDF2 run)
// for some 600 ms, and time a file operation while contained commands resolve names.

function rules(...texts: string[]): EgressRule[] {
  return texts.map((t) => {
    const rule = parseEgressRule(t);
    if (typeof rule === 'string') throw new TypeError(rule);
    return rule;
  });
}

/** PBKDF2 iterations that keep one pool thread busy for about `ms` on this machine. */
async function iterationsFor(ms: number): Promise<number> {
  const probe = 20_000;
  const started = performance.now();
  await new Promise((resolve) => pbkdf2('corral', 'salt', probe, 32, 'sha256', resolve));
  return Math.ceil((probe * ms) / Math.max(1, performance.now() - started));
}

function connectTo(channel: EgressChannel, authority: string): net.Socket {
  const socket = net.connect(channel.socketPath);
  socket.on('error', () => undefined);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\n\r\n`);
  return socket;
}

describe('EgressProxy resolver calls', () => {
  let proxy: EgressProxy;
  let under = 0;
  let most = 0;
  before(async () => {
    const iterations = await iterationsFor(600);
    const lookup: EgressLookup = async () => {
      most = Math.max(most, ++under);
      await new Promise((resolve) => pbkdf2('corral', 'salt', iterations, 32, 'sha256', resolve));
      under--;
      return [{ address: '127.0.0.1', family: 4 }] satisfies ResolvedAddress[];
    };
    proxy = new EgressProxy({ lookup, dnsTimeoutMs: 10_000 });
  });
  after(() => proxy.close());

  describe('when two contained commands each resolve 4 names that answer slowly at once', () => {
    it('keeps at most 2 resolver calls under way over every channel, and a file operation of the process waits for none of them', { timeout: 30_000 }, async (t) => {
      const channels = await Promise.all([proxy.openChannel(rules('*.slow.test:443')), proxy.openChannel(rules('*.slow.test:443'))]);
      const sockets = channels.flatMap((channel) => Array.from({ length: 4 }, (_, i) => connectTo(channel, `n${i}.slow.test:443`)));
      t.after(async () => {
        for (const socket of sockets) socket.destroy();
        await Promise.all(channels.map((c) => c.close()));
      });
      await new Promise((r) => setTimeout(r, 100));
      const started = performance.now();
      await stat('/');
      const ms = performance.now() - started;
      assert.ok(ms < 200, `a stat() waited ${ms.toFixed(0)} ms for a pool thread`);
      assert.ok(most <= 2, `${most} resolver calls under way at once`);
    });
  });

  describe('when one contained command resolves names whose DNS never answers', () => {
    it('leaves another command a resolver call of its own, so that its names still resolve', { timeout: 10_000 }, async (t) => {
      const echo = net.createServer((s) => s.pipe(s).on('error', () => undefined));
      echo.listen(0, '127.0.0.1');
      await once(echo, 'listening');
      const port = (echo.address() as net.AddressInfo).port;
      const stuck: EgressLookup = async (name) => (name.endsWith('.stuck.test') ? new Promise(() => undefined) : [{ address: '127.0.0.1', family: 4 }]);
      const own = new EgressProxy({ lookup: stuck, dnsTimeoutMs: 1000 });
      const stalling = await own.openChannel(rules('*.stuck.test:443'));
      const other = await own.openChannel(rules(`api.fine.test:${port}`, `127.0.0.1/32:${port}`));
      const sockets = Array.from({ length: 4 }, (_, i) => connectTo(stalling, `n${i}.stuck.test:443`));
      t.after(async () => {
        for (const socket of sockets) socket.destroy();
        await own.close();
        echo.close();
      });
      await new Promise((r) => setTimeout(r, 50));
      const socket = connectTo(other, `api.fine.test:${port}`);
      const [answer] = (await once(socket, 'data')) as [Buffer];
      socket.destroy();
      assert.match(answer.toString('latin1'), /^HTTP\/1\.1 200 /);
    });
  });
});
