// Peers that break the protocol on the wire, below what a WebSocket client
// library lets a test send: frames written straight onto the TCP socket.
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { GatewayClient, connectParams } from '../index.ts';
import { MAX_PREAUTH_FRAMES } from '../protocol/limits.ts';
import { startTestGateway, type TestGateway } from '../../test/harness.ts';

/** A client frame (RFC 6455 §5.2): FIN set, masked with a zero key, so the payload goes out as it is. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const length = n < 126 ? Buffer.from([0x80 | n]) : n < 65_536 ? Buffer.from([0x80 | 126, n >> 8, n & 0xff]) : Buffer.concat([Buffer.from([0x80 | 127]), bigEndian64(n)]);
  return Buffer.concat([Buffer.from([0x80 | opcode]), length, Buffer.alloc(4), payload]);
}

function bigEndian64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

function text(value: unknown): Buffer {
  return clientFrame(0x1, Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)));
}

/** A TCP socket upgraded to a WebSocket by hand; `received` holds every byte the gateway sent after its 101. */
interface WireSocket {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}

function openWire(gw: TestGateway): Promise<WireSocket> {
  const socket = createConnection(gw.server.port, '127.0.0.1');
  socket.on('error', () => {});
  let head = '';
  let body = Buffer.alloc(0);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      if (head.endsWith('\r\n\r\n')) {
        body = Buffer.concat([body, chunk]);
        return;
      }
      const all = Buffer.concat([Buffer.from(head, 'latin1'), chunk]);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return void (head = all.toString('latin1'));
      head = all.subarray(0, end + 4).toString('latin1');
      body = all.subarray(end + 4);
      if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`no upgrade: ${head.split('\r\n')[0]}`));
      resolve({ socket, received: () => body.toString('latin1'), closed });
    });
    closed.then(() => reject(new Error('closed before the upgrade')));
    socket.write('GET / HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  });
}

async function waitFor(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  for (const deadline = Date.now() + ms; !check(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Writes `frames` frames of `size` bytes, one after another, and says
 * whether the gateway took them all ('taken') or cut the socket first ('cut').
 * 64 MiB is more than loopback's socket buffers hold at most (32 MiB + 4 MiB
 * here), so a gateway that reads no more cannot leave them all taken.
 */
function sendOn(wire: WireSocket, frames = 64, size = 1024 * 1024): Promise<'taken' | 'cut'> {
  const frame = clientFrame(0x1, Buffer.alloc(size, 0x78));
  return new Promise((resolve) => {
    wire.closed.then(() => resolve('cut'));
    for (let i = 0; i < frames - 1; i++) wire.socket.write(frame);
    wire.socket.write(frame, (error) => resolve(error ? 'cut' : 'taken'));
  });
}

describe('when the gateway has closed a connection and its peer sends on', () => {
  it('cuts it off past what is allowed before hello-ok, and logs GATEWAY_FRAME_TOO_LARGE (regression: once closed, it was read uncounted until cut off 2 s later, 64 MiB in this test)', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const wire = await openWire(gw);
      wire.socket.write(text('{not json'));
      await waitFor('the protocol error', () => gw.log.some((e) => e.code === 'GATEWAY_FRAME_INVALID'));
      const connId = gw.log.find((e) => e.code === 'GATEWAY_FRAME_INVALID')!.connId;
      assert.equal(await sendOn(wire), 'cut');
      await wire.closed;
      assert.ok(gw.log.some((e) => e.connId === connId && e.code === 'GATEWAY_FRAME_TOO_LARGE'), JSON.stringify(gw.log));
    } finally {
      await gw.stop();
    }
  });

  it("cuts off an authenticated peer past its kind's largest frame, and logs GATEWAY_FRAME_TOO_LARGE (regression: once closed, it was read uncounted until cut off 2 s later)", async () => {
    // An operator's largest frame 64 KiB, and a budget that never holds it off: only the frame size is at work.
    const gw = await startTestGateway({ tickIntervalMs: 60_000, inboundLimits: { operator: { maxPayload: 64 * 1024, bytesPerSecond: 256 * 1024 * 1024, burstBytes: 256 * 1024 * 1024 } } });
    try {
      const wire = await openWire(gw);
      wire.socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) }));
      await waitFor('hello-ok', () => wire.received().includes('"hello-ok"'));
      // A second connect: the gateway closes the connection (1002).
      wire.socket.write(text({ type: 'req', id: 'c2', method: 'connect', params: {} }));
      await waitFor('the protocol error', () => gw.log.some((e) => e.code === 'GATEWAY_FRAME_OUT_OF_ORDER'));
      const connId = gw.log.find((e) => e.code === 'GATEWAY_FRAME_OUT_OF_ORDER')!.connId;
      assert.equal(await sendOn(wire), 'cut');
      await wire.closed;
      assert.ok(gw.log.some((e) => e.connId === connId && e.event === 'refused' && e.code === 'GATEWAY_FRAME_TOO_LARGE'), JSON.stringify(gw.log));
    } finally {
      await gw.stop();
    }
  });
});

describe('before hello-ok', () => {
  it(`closes with 1008 (GATEWAY_RATE_LIMITED) a peer that sends more than ${MAX_PREAUTH_FRAMES} frames, here empty pongs (regression: 128 KiB of them, 21,845 frames, were each handled on every connection a peer without the token opened)`, async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const wire = await openWire(gw);
      wire.socket.write(Buffer.concat(Array.from({ length: 1_000 }, () => clientFrame(0xa, Buffer.alloc(0)))));
      await waitFor('the socket cut off', () => wire.socket.destroyed, 5_000);
      assert.ok(gw.log.some((e) => e.event === 'protocol-error' && e.code === 'GATEWAY_RATE_LIMITED'), JSON.stringify(gw.log));
      // The close frame the gateway sent last: 0x88, its length, then the code.
      const received = Buffer.from(wire.received(), 'latin1');
      const close = received.lastIndexOf(0x88);
      assert.equal(received.readUInt16BE(close + 2), 1008);
    } finally {
      await gw.stop();
    }
  });

  it(`lets a client send ${MAX_PREAUTH_FRAMES} frames before its connect, and serves it`, async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const wire = await openWire(gw);
      const pongs = Array.from({ length: MAX_PREAUTH_FRAMES - 1 }, () => clientFrame(0xa, Buffer.alloc(0)));
      wire.socket.write(Buffer.concat([...pongs, text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) })]));
      await waitFor('hello-ok', () => wire.received().includes('"hello-ok"'));
      wire.socket.destroy();
    } finally {
      await gw.stop();
    }
  });
});

describe('when an authenticated peer sends thousands of small frames at once', () => {
  it('holds it to its byte budget as if each were 1 KiB, and cuts it off held off past maxHeldOffMs with 1008 (GATEWAY_RATE_LIMITED); another connection is served (regression: 2,000 requests of 50 bytes fit a 128 KiB budget and were all served at once)', async () => {
    const limits = { maxPayload: 64 * 1024, bytesPerSecond: 64 * 1024, burstBytes: 128 * 1024, maxHeldOffMs: 1_000 };
    const gw = await startTestGateway({ tickIntervalMs: 60_000, inboundLimits: { operator: limits } });
    gw.server.method('test.noop', { role: 'operator', handler: () => ({}) });
    try {
      const wire = await openWire(gw);
      wire.socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) }));
      await waitFor('hello-ok', () => wire.received().includes('"hello-ok"'));
      const requests = 2_000;
      const small = text({ type: 'req', id: 'r', method: 'test.noop' });
      assert.ok(requests * small.length < limits.burstBytes, 'the requests fit the budget byte for byte');
      wire.socket.write(Buffer.concat(Array.from({ length: requests }, () => small)));
      const answered = (): number => wire.received().split('"type":"res","id":"r"').length - 1;
      let closed = false;
      void wire.closed.then(() => void (closed = true));
      await waitFor('the peer cut off, or every request answered', () => closed || answered() === requests, 30_000);
      assert.ok(answered() < requests, `all ${answered()} requests answered`);
      assert.ok(gw.log.some((e) => e.event === 'refused' && e.code === 'GATEWAY_RATE_LIMITED'), JSON.stringify(gw.log));
      const other = await GatewayClient.connect({ url: gw.server.url, token: gw.token, role: 'operator', scopes: [] });
      assert.deepEqual(await other.request('test.noop'), {});
      await other.close();
    } finally {
      await gw.stop();
    }
  });
});
