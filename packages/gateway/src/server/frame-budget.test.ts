// A paired node that sends thousands of small frames at once: each fits its
// byte budget, and the gateway must still not handle them all in one go.
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { createDeviceIdentity } from '@corral/identity';
import { GatewayClient, connectParams, type GatewayClientOptions } from '../index.ts';
import { INBOUND_LIMITS } from './inbound-budget.ts';
import { stallMeter } from '../../../../scripts/testing/event-loop.ts';
import { startTestGateway, type TestGateway } from '../../test/harness.ts';

/** A client frame (RFC 6455 §5.2): FIN set, masked with a zero key, so the payload goes out as it is. */
function clientFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const length = n < 126 ? Buffer.from([0x80 | n]) : Buffer.from([0x80 | 126, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([0x81]), length, Buffer.alloc(4), payload]);
}

function text(value: unknown): Buffer {
  return clientFrame(Buffer.from(JSON.stringify(value)));
}

async function waitFor(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  for (const deadline = Date.now() + ms; !check(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A paired node on a TCP socket upgraded by hand, past hello-ok: what it writes goes out as it is, what it gets is only counted. */
interface WireNode {
  socket: Socket;
  /** Answers received to requests of id `r`. */
  answered: () => number;
  closed: Promise<void>;
}

async function wireNode(gw: TestGateway): Promise<WireNode> {
  const device = createDeviceIdentity();
  const options: GatewayClientOptions = { url: gw.server.url, token: gw.token, role: 'node', device, commands: [] };
  await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
  gw.identity.nodes.pair(device.deviceId, 'test');
  const socket = createConnection(gw.server.port, '127.0.0.1');
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // What came after the 101, as text; answers are counted as they come, so a long run is never searched again.
  let head = '';
  let tail = '';
  let answered = 0;
  const marker = '"id":"r"';
  socket.on('data', (chunk: Buffer) => {
    const text = tail + chunk.toString('latin1');
    for (let at = text.indexOf(marker); at >= 0; at = text.indexOf(marker, at + 1)) answered += 1;
    tail = text.slice(-(marker.length - 1));
    if (head.length < 4_096) head += chunk.toString('latin1');
  });
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  await waitFor('the challenge', () => /"nonce":"[^"]+","ts":\d+/.test(head), 5_000);
  const [, nonce, ts] = /"nonce":"([^"]+)","ts":(\d+)/.exec(head)!;
  socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ ...options, url: '' }, nonce!, Number(ts)) }));
  await waitFor('hello-ok', () => head.includes('"hello-ok"'), 5_000);
  return { socket, answered: () => answered, closed };
}

/** `count` node requests of some 50 bytes, written at once. */
function smallRequests(count: number): Buffer {
  const one = text({ type: 'req', id: 'r', method: 'test.noop' });
  return Buffer.concat(Array.from({ length: count }, () => one));
}

describe('when a paired node sends thousands of small frames at once, well within its byte budget', () => {
  it('reads it no faster than its frame budget refills, serves every frame, and closes nothing (regression: a node could have 32,000 frames handled at once, ~0.5 s of the event loop)', async () => {
    // 200 frames at once, then 2,000 a second: 4,000 frames take about 1.9 s to read, however fast the machine.
    const gw = await startTestGateway({ tickIntervalMs: 60_000, inboundLimits: { node: { framesPerSecond: 2_000, burstFrames: 200 } } });
    gw.server.method('test.noop', { role: 'node', handler: () => ({}) });
    try {
      const node = await wireNode(gw);
      const frames = 4_000;
      const started = Date.now();
      node.socket.write(smallRequests(frames));
      await waitFor('every request answered', () => node.answered() === frames);
      assert.ok(Date.now() - started >= 1_000, `all ${frames} answered after ${Date.now() - started} ms`);
      assert.equal(gw.server.connections().length, 1, 'the node is still connected');
      assert.ok(!gw.log.some((e) => e.code === 'GATEWAY_RATE_LIMITED'), JSON.stringify(gw.log));
      node.socket.destroy();
    } finally {
      await gw.stop();
    }
  });

  it('counts each fragment of a message as a frame: 10 requests of 4,000 fragments each are read no faster than the frame budget refills, and served (regression: ws delivers each as one message, and only that one was counted)', async () => {
    // 2,000 frames at once, then 20,000 a second: 40,000 fragments take about 1.9 s to read.
    const gw = await startTestGateway({ tickIntervalMs: 60_000, inboundLimits: { node: { framesPerSecond: 20_000, burstFrames: 2_000 } } });
    gw.server.method('test.noop', { role: 'node', handler: () => ({}) });
    try {
      const node = await wireNode(gw);
      // A request's text, a byte a frame: a text frame without FIN, continuation frames (opcode 0), the last with FIN; padded with spaces.
      const body = Buffer.from(JSON.stringify({ type: 'req', id: 'r', method: 'test.noop' }).padEnd(4_000, ' '));
      const request = Buffer.concat(Array.from(body, (byte, i) => Buffer.from([(i === body.length - 1 ? 0x80 : 0) | (i === 0 ? 0x1 : 0x0), 0x80 | 1, 0, 0, 0, 0, byte])));
      const started = Date.now();
      node.socket.write(Buffer.concat(Array.from({ length: 10 }, () => request)));
      await waitFor('every request answered', () => node.answered() === 10);
      assert.ok(Date.now() - started >= 1_000, `answered after ${Date.now() - started} ms`);
      assert.equal(gw.server.connections().length, 1, 'the node is still connected');
      node.socket.destroy();
    } finally {
      await gw.stop();
    }
  });

  it('answers another connection while it holds the node off', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000, inboundLimits: { node: { framesPerSecond: 2_000, burstFrames: 200 } } });
    gw.server.method('test.noop', { role: 'node', handler: () => ({}) });
    try {
      const node = await wireNode(gw);
      const bystander = await GatewayClient.connect({ url: gw.server.url, token: gw.token, role: 'operator', scopes: ['operator.read'] });
      const frames = 4_000;
      node.socket.write(smallRequests(frames));
      await waitFor('the node served in part', () => node.answered() > 0);
      assert.equal(((await bystander.request('health')) as { ok: boolean }).ok, true);
      assert.ok(node.answered() < frames, `the node's ${frames} frames were all served before the bystander's one`);
      await bystander.close();
      node.socket.destroy();
    } finally {
      await gw.stop();
    }
  });

  it(`under the default limits (${INBOUND_LIMITS.node.burstFrames} frames at once), stalls the event loop far less than with no frame budget, when 32,000 frames wait to be read`, async (t) => {
    /** The longest the event loop stalled while the node's first frames were handled, the burst landing while the gateway was busy. */
    async function worstStall(node: { framesPerSecond?: number; burstFrames?: number }): Promise<number> {
      const gw = await startTestGateway({ tickIntervalMs: 60_000, inboundLimits: { node } });
      gw.server.method('test.noop', { role: 'node', handler: () => ({}) });
      try {
        const peer = await wireNode(gw);
        peer.socket.write(smallRequests(32_000));
        // The gateway busy for a while (its process not scheduled, a long task): what arrives meanwhile waits to be read.
        for (const until = Date.now() + 300; Date.now() < until; );
        const meter = stallMeter(1);
        // Other work keeps the event loop turning, as on a gateway with other connections: it never waits in its poll for more to read.
        let turning = true;
        const turn = (): void => void (turning && setImmediate(turn));
        turn();
        await waitFor('the first answers', () => peer.answered() >= 5_000, 60_000);
        turning = false;
        const worst = meter.stop();
        peer.socket.destroy();
        return worst;
      } finally {
        await gw.stop();
      }
    }
    // The least of three tries each, taken in turn, as a loaded machine may stall any one (two tries each, one after the
    // other, read 58 ms against 72 in a CI run beside other test files, where 67 against 164 is usual).
    let unbudgeted = Infinity;
    let budgeted = Infinity;
    for (let attempt = 0; attempt < 3; attempt++) {
      unbudgeted = Math.min(unbudgeted, await worstStall({ framesPerSecond: 1e9, burstFrames: 1e9 }));
      budgeted = Math.min(budgeted, await worstStall({}));
    }
    t.diagnostic(`worst stall: ${unbudgeted.toFixed(1)} ms with no frame budget, ${budgeted.toFixed(1)} ms with the default`);
    assert.ok(budgeted * 1.5 < unbudgeted, `worst stall ${budgeted.toFixed(1)} ms with the frame budget, ${unbudgeted.toFixed(1)} ms without`);
  });
});
