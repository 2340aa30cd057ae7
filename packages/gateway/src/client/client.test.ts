import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createDeviceIdentity } from '@corral/identity';
import { WebSocketServer, type WebSocket } from 'ws';
import { GatewayClient } from './client.ts';

/** A gateway on loopback that sends its challenge, then `before(socket)`, then answers connect with hello-ok (ticks promised every `tickIntervalMs`, never sent). */
async function fakeGateway(before: (socket: WebSocket) => void, tickIntervalMs = 30_000): Promise<{ url: string; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (socket) => {
    socket.send(JSON.stringify({ type: 'event', event: 'connect.challenge', payload: { nonce: 'n'.repeat(32), ts: Date.now() } }));
    socket.on('message', (data) => {
      const req = JSON.parse(data.toString()) as { id: string };
      before(socket);
      const hello = { type: 'hello-ok', protocol: 4, server: { version: 'fake', connId: 'c1' }, features: { methods: [], events: [] }, snapshot: { presence: [], health: {}, stateVersion: { presence: 0, health: 0 }, uptimeMs: 0 }, auth: { role: 'operator', scopes: [] }, policy: { maxPayload: 1_000_000, maxBufferedBytes: 1_000_000, tickIntervalMs } };
      socket.send(JSON.stringify({ type: 'res', id: req.id, ok: true, payload: hello }));
    });
  });
  const { port } = wss.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    close: () => {
      for (const socket of wss.clients) socket.terminate();
      return new Promise((r) => wss.close(() => r()));
    },
  };
}

const event = (n: number, size = 0) => JSON.stringify({ type: 'event', event: 'presence', payload: { n, pad: 'x'.repeat(size) }, seq: n });

describe('events a gateway sends before hello-ok', () => {
  const gateways: Array<{ close: () => Promise<void> }> = [];
  after(async () => void (await Promise.all(gateways.map((g) => g.close()))));

  it('are handed to listeners attached once connected, in order, before those sent after hello-ok (regression: they were emitted before connect() resolved, to no listener)', async () => {
    const gw = await fakeGateway((socket) => {
      [1, 2, 3].forEach((n) => socket.send(event(n)));
      setImmediate(() => socket.send(event(4)));
    });
    gateways.push(gw);
    const client = await GatewayClient.connect({ url: gw.url, token: 't'.repeat(20), role: 'operator' });
    const seen: unknown[] = [];
    client.on('presence', (_payload, seq) => seen.push(seq));
    for (const end = Date.now() + 2_000; seen.length < 4 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(seen, [1, 2, 3, 4]);
    await client.close();
  });
  it('refuse the connection past 64 of them (GATEWAY_FRAME_INVALID), instead of holding all a gateway sends', async () => {
    const gw = await fakeGateway((socket) => {
      for (let n = 0; n < 65; n++) socket.send(event(n));
    });
    gateways.push(gw);
    await assert.rejects(GatewayClient.connect({ url: gw.url, token: 't'.repeat(20), role: 'operator' }), { code: 'GATEWAY_FRAME_INVALID', message: /more than 64 events .* before hello-ok/ });
  });
  it('refuse the connection past 1 MiB of them, however few', async () => {
    const gw = await fakeGateway((socket) => [1, 2].forEach((n) => socket.send(event(n, 600_000))));
    gateways.push(gw);
    await assert.rejects(GatewayClient.connect({ url: gw.url, token: 't'.repeat(20), role: 'operator' }), { code: 'GATEWAY_FRAME_INVALID' });
  });
});

describe('gateway client', () => {
  it('closes with 4000 when the gateway falls silent for two tick intervals', async () => {
    const gw = await fakeGateway(() => {}, 50);
    try {
      const client = await GatewayClient.connect({ url: gw.url, token: 't'.repeat(20), role: 'operator' });
      assert.equal((await client.closed).code, 4000);
    } finally {
      await gw.close();
    }
  });
});

describe('a gateway that sends challenge after challenge before hello-ok', () => {
  it('gets one connect, signed for its first challenge (regression: the client signed and sent a connect for every challenge, without bound)', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    const connects: Array<{ id: string; params: { device?: { nonce: string } } }> = [];
    wss.on('connection', (socket) => {
      for (let n = 0; n < 1_000; n++) socket.send(JSON.stringify({ type: 'event', event: 'connect.challenge', payload: { nonce: `nonce-${n}`.padEnd(32, '0'), ts: Date.now() } }));
      socket.on('message', (data) => connects.push(JSON.parse(data.toString()) as (typeof connects)[number]));
      setTimeout(() => {
        const hello = { type: 'hello-ok', protocol: 4, server: { version: 'fake', connId: 'c1' }, features: { methods: [], events: [] }, snapshot: { presence: [], health: {}, stateVersion: { presence: 0, health: 0 }, uptimeMs: 0 }, auth: { role: 'node', scopes: [] }, policy: { maxPayload: 1_000_000, maxBufferedBytes: 1_000_000, tickIntervalMs: 30_000 } };
        socket.send(JSON.stringify({ type: 'res', id: connects[0]?.id ?? 'none', ok: true, payload: hello }));
      }, 300);
    });
    const { port } = wss.address() as { port: number };
    try {
      const client = await GatewayClient.connect({ url: `ws://127.0.0.1:${port}`, token: 't'.repeat(20), role: 'node', device: createDeviceIdentity() });
      assert.equal(connects.length, 1);
      assert.equal(connects[0]!.params.device?.nonce, 'nonce-0'.padEnd(32, '0'));
      await client.close();
    } finally {
      for (const socket of wss.clients) socket.terminate();
      await new Promise((r) => wss.close(() => r(undefined)));
    }
  });
});

describe("when the client's event loop is held up past two of the gateway's ticks", () => {
  it('reads what the gateway sent meanwhile before it takes the gateway for gone (regression: its check ran before those reads, and a live connection was closed with tick timeout)', async () => {
    // The gateway in a thread of its own (ticks promised every 100 ms): told to, it sends one tick at once, or one
    // 600 ms later and then wakes this thread, which it holds up meanwhile — whatever the machine's load.
    const source = `
      const { parentPort, workerData: held } = require('node:worker_threads');
      import(${JSON.stringify(import.meta.resolve('ws'))}).then(({ WebSocketServer }) => {
        const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
        wss.on('listening', () => parentPort.postMessage(wss.address().port));
        wss.on('connection', (socket) => {
          socket.send(JSON.stringify({ type: 'event', event: 'connect.challenge', payload: { nonce: 'n'.repeat(32), ts: Date.now() } }));
          socket.once('message', (data) => {
            const hello = { type: 'hello-ok', protocol: 4, server: { version: 'fake', connId: 'c1' }, features: { methods: [], events: [] }, snapshot: { presence: [], health: {}, stateVersion: { presence: 0, health: 0 }, uptimeMs: 0 }, auth: { role: 'operator', scopes: [] }, policy: { maxPayload: 1000000, maxBufferedBytes: 1000000, tickIntervalMs: 100 } };
            socket.send(JSON.stringify({ type: 'res', id: JSON.parse(String(data)).id, ok: true, payload: hello }));
          });
          const tick = (then) => socket.send(JSON.stringify({ type: 'event', event: 'tick', payload: { ts: Date.now() } }), then);
          parentPort.on('message', (what) => {
            if (what === 'tick') tick();
            else setTimeout(() => tick(() => { Atomics.store(held, 0, 1); Atomics.notify(held, 0); }), 600);
          });
        });
      });`;
    const held = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(source, { eval: true, workerData: held });
    try {
      const port = await new Promise<number>((resolve) => worker.once('message', resolve));
      const client = await GatewayClient.connect({ url: `ws://127.0.0.1:${port}`, token: 't'.repeat(20), role: 'operator' });
      let closed = false;
      void client.closed.then(() => (closed = true));
      try {
        const heard = new Promise<void>((resolve) => client.on('tick', () => resolve()));
        worker.postMessage('tick');
        await heard;
        // Held up for six ticks' worth right after hearing one; the gateway's next tick is on its way before this thread goes on.
        worker.postMessage('hold');
        Atomics.wait(held, 0, 0, 10_000);
        await new Promise((r) => setTimeout(r, 150));
        assert.equal(closed, false, 'a live gateway was taken for gone');
      } finally {
        await client.close();
      }
    } finally {
      await worker.terminate();
    }
  });
});
