// Peers that break the protocol on the wire, below what a WebSocket client
// library lets a test send: frames written straight onto the TCP socket.
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { GatewayClient, connectParams } from '../index.ts';
import { WebSocket } from 'ws';
import { MAX_PREAUTH_FRAMES } from '../protocol/limits.ts';
import { MAX_PENDING_PONGS } from './server.ts';
import { RawPeer, startTestGateway, type TestGateway } from '../../test/harness.ts';

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
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
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

/** The whole frames in what `received` (latin1) holds: the gateway's frames are unmasked (RFC 6455 §5.1). */
function serverFrames(received: string): Array<{ opcode: number; payload: Buffer }> {
  const bytes = Buffer.from(received, 'latin1');
  const frames: Array<{ opcode: number; payload: Buffer }> = [];
  for (let at = 0; at + 2 <= bytes.length; ) {
    const length7 = bytes[at + 1]! & 0x7f;
    const head = length7 === 126 ? 4 : length7 === 127 ? 10 : 2;
    if (at + head > bytes.length) break;
    const length = length7 === 126 ? bytes.readUInt16BE(at + 2) : length7 === 127 ? Number(bytes.readBigUInt64BE(at + 2)) : length7;
    if (at + head + length > bytes.length) break;
    frames.push({ opcode: bytes[at]! & 0x0f, payload: bytes.subarray(at + head, at + head + length) });
    at += head + length;
  }
  return frames;
}

/** The code of the close frame the gateway sent last, in what `received` (latin1) holds: 0x88, its length, then the code. */
function lastCloseCode(received: string): number {
  const bytes = Buffer.from(received, 'latin1');
  return bytes.readUInt16BE(bytes.lastIndexOf(0x88) + 2);
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
      assert.equal(lastCloseCode(wire.received()), 1008);
    } finally {
      await gw.stop();
    }
  });

  it(`closes with 1008 (GATEWAY_RATE_LIMITED) a peer that sends a message in more than ${MAX_PREAUTH_FRAMES} fragments (regression: ws delivers it as one message, and up to 16,384 fragments were taken as one frame)`, async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const wire = await openWire(gw);
      const fragment = (opcode: number): Buffer => Buffer.from([opcode, 0x80 | 1, 0, 0, 0, 0, 0x20]);
      wire.socket.write(Buffer.concat([fragment(0x1), ...Array.from({ length: 1_000 }, () => fragment(0x0))]));
      await waitFor('the socket cut off', () => wire.socket.destroyed, 5_000);
      assert.ok(gw.log.some((e) => e.event === 'protocol-error' && e.code === 'GATEWAY_RATE_LIMITED'), JSON.stringify(gw.log));
      assert.equal(lastCloseCode(wire.received()), 1008);
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

describe('when an authenticated peer sends ping after ping', () => {
  it(`closes it with 1008 past ${MAX_PENDING_PONGS} pongs owed, and logs GATEWAY_RATE_LIMITED with the reason and its address group (regression: ws cut it off, with no close code and nothing in the log)`, async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const wire = await openWire(gw);
      wire.socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) }));
      await waitFor('hello-ok', () => wire.received().includes('"hello-ok"'));
      wire.socket.write(Buffer.concat(Array.from({ length: 1_000 }, () => clientFrame(0x9, Buffer.alloc(0)))));
      await waitFor('the socket cut off', () => wire.socket.destroyed, 5_000);
      const line = gw.log.find((e) => e.event === 'refused' && e.code === 'GATEWAY_RATE_LIMITED');
      assert.ok(line, JSON.stringify(gw.log));
      assert.equal(line.reason, 'ping flood');
      assert.equal(line.addressGroup, '127.0.0.1');
      assert.equal(line.role, 'operator');
      // The close frame the gateway sent, after the pongs it owed: 0x88, its length, then the code.
      const received = Buffer.from(wire.received(), 'latin1');
      const close = received.lastIndexOf(Buffer.from([0x88, 2 + 'too many pings'.length]));
      assert.ok(close >= 0, 'no close frame');
      assert.equal(received.readUInt16BE(close + 2), 1008);
    } finally {
      await gw.stop();
    }
  });

  it(`answers ${MAX_PENDING_PONGS} pings sent at once, and keeps the connection`, async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const wire = await openWire(gw);
      wire.socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) }));
      await waitFor('hello-ok', () => wire.received().includes('"hello-ok"'));
      const before = wire.received().length;
      wire.socket.write(Buffer.concat(Array.from({ length: MAX_PENDING_PONGS }, () => clientFrame(0x9, Buffer.alloc(0)))));
      // Each pong of no payload is two bytes: 0x8a 0x00.
      await waitFor('the pongs', () => wire.received().slice(before).split('\x8a\x00').length - 1 === MAX_PENDING_PONGS);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(wire.socket.destroyed, false);
      assert.equal(gw.server.connections().length, 1);
      wire.socket.destroy();
    } finally {
      await gw.stop();
    }
  });
});

describe('when an authenticated peer reads nothing and sends pongs of its own', () => {
  it('cuts it off as a dead peer (GATEWAY_TIMEOUT) within a few ticks: a pong counts only when it echoes a ping the gateway sent (regression: any pong, unread pings behind it, kept the peer for ever)', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 100 });
    let beat: NodeJS.Timeout | undefined;
    try {
      const wire = await openWire(gw);
      wire.socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) }));
      await waitFor('hello-ok', () => wire.received().includes('"hello-ok"'));
      wire.socket.pause();
      // Unsolicited pongs of no payload, twice a tick (RFC 6455 allows them as a heartbeat).
      beat = setInterval(() => wire.socket.write(clientFrame(0xa, Buffer.alloc(0))), 50);
      await waitFor('the peer cut off as dead', () => gw.log.some((e) => e.event === 'closed' && e.code === 'GATEWAY_TIMEOUT'), 2_000);
      wire.socket.destroy();
    } finally {
      clearInterval(beat);
      await gw.stop();
    }
  });

  it('cuts off a peer that answered one ping and sends that answer again for each ping after it (regression: an answer replayed counted for as long as its ping was among the last two)', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 300 });
    let beat: NodeJS.Timeout | undefined;
    try {
      const wire = await openWire(gw);
      wire.socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) }));
      const pings = () => serverFrames(wire.received()).filter((f) => f.opcode === 0x9).map((f) => f.payload);
      await waitFor('a first ping', () => pings().length > 0);
      const answer = clientFrame(0xa, pings()[0]!);
      beat = setInterval(() => wire.socket.write(answer), 30);
      await wire.closed;
      assert.ok(gw.log.some((e) => e.event === 'closed' && e.code === 'GATEWAY_TIMEOUT'), JSON.stringify(gw.log));
      assert.equal(pings().length, 2, 'cut off at the first tick after the ping it did not answer');
    } finally {
      clearInterval(beat);
      await gw.stop();
    }
  });

  it('keeps a peer that answers each ping, with ticks every 100 ms', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 100 });
    try {
      const peer = await RawPeer.open(gw.server.url);
      const { nonce, ts } = (await peer.next()).payload as { nonce: string; ts: number };
      peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, nonce, ts) });
      assert.equal((await peer.next()).ok, true);
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(gw.server.connections().length, 1);
      assert.ok(!gw.log.some((e) => e.code === 'GATEWAY_TIMEOUT'), JSON.stringify(gw.log));
      await peer.close();
    } finally {
      await gw.stop();
    }
  });
});

describe('when the gateway evicts an unfinished handshake to make room', () => {
  it('closes its WebSocket with 1013 (try again later) and logs GATEWAY_BUSY with the reason, its address group and its connection (regression: its socket was destroyed, and the peer saw 1006 with no reason)', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000, maxUnauthenticated: 2, maxUnauthenticatedPerAddress: 2 });
    const peers: RawPeer[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const peer = await RawPeer.open(gw.server.url);
        peers.push(peer);
        await peer.next();
      }
      assert.deepEqual(await peers[0]!.closed, { code: 1013, reason: 'gateway busy: too many unfinished handshakes' });
      const line = gw.log.find((e) => e.event === 'refused' && e.code === 'GATEWAY_BUSY');
      assert.ok(line, JSON.stringify(gw.log));
      assert.equal(line.reason, 'too many unfinished handshakes');
      assert.equal(line.addressGroup, '127.0.0.1');
      assert.notEqual(line.connId, '-');
      assert.equal(peers[2]!.socket.readyState, WebSocket.OPEN);
    } finally {
      for (const peer of peers) peer.socket.terminate();
      await gw.stop();
    }
  });

  it('logs a socket still sending its HTTP request with the reason and its address group too, and cuts it off at once', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000, maxUnauthenticated: 1, maxUnauthenticatedPerAddress: 1, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    const slow = createConnection(gw.server.port, '127.0.0.1');
    slow.on('error', () => {});
    const slowClosed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
    try {
      slow.write('GET / HTTP/1.1\r\n');
      await waitFor('the slow socket admitted', () => slow.bytesWritten > 0);
      await new Promise((r) => setTimeout(r, 50));
      const peer = await RawPeer.open(gw.server.url);
      await slowClosed;
      const line = gw.log.find((e) => e.event === 'refused' && e.code === 'GATEWAY_BUSY');
      assert.ok(line, JSON.stringify(gw.log));
      assert.deepEqual([line.connId, line.reason, line.addressGroup], ['-', 'too many unfinished handshakes', '127.0.0.1']);
      peer.socket.terminate();
    } finally {
      slow.destroy();
      await gw.stop();
    }
  });
});

describe('when a peer sends a frame that breaks RFC 6455', () => {
  it("logs a protocol error with ws's reason and the peer's address group, and ws closes it 1002 (regression: ws closed it with nothing in the log)", async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const wire = await openWire(gw);
      wire.socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) }));
      await waitFor('hello-ok', () => wire.received().includes('"hello-ok"'));
      // Opcode 0x3 is reserved.
      wire.socket.write(clientFrame(0x3, Buffer.from('x')));
      await waitFor('the log line', () => gw.log.some((e) => e.event === 'protocol-error'));
      const line = gw.log.find((e) => e.event === 'protocol-error')!;
      assert.deepEqual([line.code, line.reason, line.addressGroup], ['GATEWAY_FRAME_INVALID', 'WS_ERR_INVALID_OPCODE', '127.0.0.1']);
      // ws's close frame: 0x88, a length of 2, the code 1002 and no reason.
      await waitFor('the close frame 1002', () => wire.received().includes('\x88\x02\x03\xea'));
      wire.socket.destroy();
    } finally {
      await gw.stop();
    }
  });

  it("logs a message sent in more fragments than ws takes as GATEWAY_RATE_LIMITED, with ws's reason, and ws closes it 1008", async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const wire = await openWire(gw);
      wire.socket.write(text({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, '', 0) }));
      await waitFor('hello-ok', () => wire.received().includes('"hello-ok"'));
      // A text frame without FIN, then continuation frames without FIN (opcode 0): 1 byte each, past ws's 16,384 fragments.
      const fragment = (opcode: number): Buffer => Buffer.from([opcode, 0x80 | 1, 0, 0, 0, 0, 0x78]);
      wire.socket.write(Buffer.concat([fragment(0x1), ...Array.from({ length: 16_400 }, () => fragment(0x0))]));
      await waitFor('the log line', () => gw.log.some((e) => e.event === 'protocol-error'));
      const line = gw.log.find((e) => e.event === 'protocol-error')!;
      assert.deepEqual([line.code, line.reason, line.addressGroup], ['GATEWAY_RATE_LIMITED', 'WS_ERR_TOO_MANY_BUFFERED_PARTS', '127.0.0.1']);
      await waitFor('the close frame 1008', () => wire.received().includes('\x88\x02\x03\xf0'));
      wire.socket.destroy();
    } finally {
      await gw.stop();
    }
  });
});
