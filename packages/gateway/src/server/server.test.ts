import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { WebSocket } from 'ws';
import { GatewayClient, GatewayServer, connectParams, isHelloOk, type GatewayClientOptions } from '../index.ts';
import { DeviceTokens } from './device-tokens.ts';
import { LOG_REFUSALS_BURST, LOG_REFUSALS_PER_SECOND, MAX_AGENT_CONNECTIONS, MAX_UNAUTHENTICATED, MAX_UNAUTHENTICATED_PER_ADDRESS, addressGroup } from './server.ts';
import { RawPeer, startTestGateway, type TestGateway } from '../../test/harness.ts';

function operator(gw: TestGateway, extra: Partial<GatewayClientOptions> = {}): Promise<GatewayClient> {
  return GatewayClient.connect({ url: gw.server.url, token: gw.token, role: 'operator', scopes: ['operator.read'], ...extra });
}

async function pairedNode(gw: TestGateway, extra: Partial<GatewayClientOptions> = {}): Promise<{ client: GatewayClient; device: DeviceIdentity }> {
  const device = createDeviceIdentity();
  const options: GatewayClientOptions = { url: gw.server.url, token: gw.token, role: 'node', device, commands: ['system.which'], ...extra };
  await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
  gw.identity.nodes.pair(device.deviceId, 'test');
  return { client: await GatewayClient.connect(options), device };
}

/** Completes a raw handshake as an operator; returns the peer after hello-ok. */
async function rawOperator(gw: TestGateway): Promise<RawPeer> {
  const peer = await RawPeer.open(gw.server.url);
  const challenge = await peer.next();
  const { nonce, ts } = challenge.payload as { nonce: string; ts: number };
  peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: ['operator.read'] }, nonce, ts) });
  const hello = await peer.next();
  assert.equal(hello.ok, true);
  return peer;
}

describe('gateway handshake', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ tickIntervalMs: 100 });
  });
  after(() => gw.stop());

  it('listens on 127.0.0.1 unless told otherwise', () => {
    assert.equal(gw.server.host, '127.0.0.1');
  });

  it('sends connect.challenge first, then hello-ok that matches upstream HelloOk schema', async () => {
    const peer = await RawPeer.open(gw.server.url);
    const challenge = await peer.next();
    assert.equal(challenge.type, 'event');
    assert.equal(challenge.event, 'connect.challenge');
    const { nonce, ts } = challenge.payload as { nonce: string; ts: number };
    assert.ok(nonce.length >= 16 && Number.isSafeInteger(ts));
    peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: ['operator.read', 'operator.pairing', 'operator.root'] }, nonce, ts) });
    const res = await peer.next();
    assert.equal(res.ok, true);
    assert.ok(isHelloOk(res.payload));
    const hello = res.payload as { protocol: number; auth: { role: string; scopes: string[] }; policy: { tickIntervalMs: number } };
    assert.equal(hello.protocol, 4);
    assert.deepEqual(hello.auth, { role: 'operator', scopes: ['operator.read', 'operator.pairing'] });
    await peer.close();
  });

  it('refuses a wrong token with AUTH_TOKEN_MISMATCH and closes 1008', async () => {
    const peer = await RawPeer.open(gw.server.url);
    const { nonce, ts } = (await peer.next()).payload as { nonce: string; ts: number };
    peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: 'x'.repeat(32), role: 'operator' }, nonce, ts) });
    const res = await peer.next();
    assert.equal(res.ok, false);
    assert.equal((res.error as { details: { code: string } }).details.code, 'AUTH_TOKEN_MISMATCH');
    assert.equal((await peer.closed).code, 1008);
    assert.ok(gw.log.some((e) => e.code === 'GATEWAY_AUTH_TOKEN_MISMATCH'));
  });

  it('refuses a connection with no token, on loopback too (AUTH_TOKEN_MISSING)', async () => {
    const peer = await RawPeer.open(gw.server.url);
    const { nonce, ts } = (await peer.next()).payload as { nonce: string; ts: number };
    const params = connectParams({ url: '', token: '', role: 'operator' }, nonce, ts);
    delete params.auth;
    peer.send({ type: 'req', id: 'c1', method: 'connect', params });
    const res = await peer.next();
    assert.equal((res.error as { details: { code: string } }).details.code, 'AUTH_TOKEN_MISSING');
    assert.equal((await peer.closed).code, 1008);
  });

  it('refuses a node without a device proof (DEVICE_IDENTITY_REQUIRED)', async () => {
    await assert.rejects(GatewayClient.connect({ url: gw.server.url, token: gw.token, role: 'node' }), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'DEVICE_IDENTITY_REQUIRED');
  });

  it('holds a new node as a pending pairing request until an operator pairs it', async () => {
    const device = createDeviceIdentity();
    const options: GatewayClientOptions = { url: gw.server.url, token: gw.token, role: 'node', device, client: { displayName: 'build-01' } };
    await assert.rejects(GatewayClient.connect(options), (e: { code: string; wire?: { code: string; details?: { code?: string; requestId?: string } } }) => {
      assert.equal(e.code, 'GATEWAY_REQUEST_FAILED');
      assert.equal(e.wire?.code, 'NOT_PAIRED');
      assert.equal(e.wire?.details?.code, 'PAIRING_REQUIRED');
      assert.equal(e.wire?.details?.requestId, gw.identity.nodes.get(device.deviceId).surfaceRequest?.requestId);
      return true;
    });
    assert.equal(gw.identity.nodes.get(device.deviceId).status, 'pending');
    gw.identity.nodes.pair(device.deviceId, 'alice');
    const node = await GatewayClient.connect(options);
    assert.deepEqual(node.hello.auth, { role: 'node', scopes: [] });
    await node.close();
  });

  it('refuses a revoked node', async () => {
    const { client, device } = await pairedNode(gw);
    await client.close();
    gw.identity.nodes.revoke(device.deviceId);
    await assert.rejects(GatewayClient.connect({ url: gw.server.url, token: gw.token, role: 'node', device }), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
    assert.ok(gw.log.some((e) => e.code === 'GATEWAY_DEVICE_REVOKED'));
  });

  it('refuses a replayed handshake: a captured connect signed for another challenge (DEVICE_AUTH_NONCE_MISMATCH)', async () => {
    const device = createDeviceIdentity();
    const first = await RawPeer.open(gw.server.url);
    const { nonce, ts } = (await first.next()).payload as { nonce: string; ts: number };
    const captured = connectParams({ url: '', token: gw.token, role: 'node', device }, nonce, ts);
    await first.close();
    const second = await RawPeer.open(gw.server.url);
    await second.next();
    second.send({ type: 'req', id: 'c1', method: 'connect', params: captured });
    const res = await second.next();
    assert.equal((res.error as { details: { code: string } }).details.code, 'DEVICE_AUTH_NONCE_MISMATCH');
    assert.equal((await second.closed).code, 1008);
  });

  it('refuses a node claiming a paired node\'s id with its own key (DEVICE_AUTH_DEVICE_ID_MISMATCH)', async () => {
    const { client, device: victim } = await pairedNode(gw);
    const attacker = createDeviceIdentity();
    const forged: DeviceIdentity = { ...attacker, deviceId: victim.deviceId };
    await assert.rejects(GatewayClient.connect({ url: gw.server.url, token: gw.token, role: 'node', device: forged }), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'DEVICE_AUTH_DEVICE_ID_MISMATCH');
    await client.close();
  });

  it('refuses a node presenting a paired node\'s public key without its private key (DEVICE_AUTH_SIGNATURE_INVALID)', async () => {
    const { client, device: victim } = await pairedNode(gw);
    const attacker = createDeviceIdentity();
    const forged: DeviceIdentity = { deviceId: victim.deviceId, publicKey: victim.publicKey, privateKeyPem: attacker.privateKeyPem };
    await assert.rejects(GatewayClient.connect({ url: gw.server.url, token: gw.token, role: 'node', device: forged }), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'DEVICE_AUTH_SIGNATURE_INVALID');
    await client.close();
  });

  it('refuses an operator whose range excludes protocol 4, and lets a node host use protocol 3', async () => {
    await assert.rejects(operator(gw, { minProtocol: 3, maxProtocol: 3 }), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'PROTOCOL_MISMATCH');
    const { client } = await pairedNode(gw, { minProtocol: 3, maxProtocol: 3 });
    assert.equal(client.hello.protocol, 3);
    await client.close();
  });
});

describe('gateway roles and scopes', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
    gw.server.method('test.pairing', { role: 'operator', scopes: ['operator.pairing'], handler: () => ({ done: true }) });
    gw.server.method('test.node', { role: 'node', handler: (_p, ctx) => ({ deviceId: ctx.peer.deviceId }) });
  });
  after(() => gw.stop());

  it('answers FORBIDDEN with MISSING_SCOPE when an operator lacks the scope', async () => {
    const client = await operator(gw, { scopes: ['operator.read'] });
    await assert.rejects(client.request('test.pairing'), (e: { wire?: { code: string; details?: { code?: string; missingScope?: string } } }) => {
      assert.equal(e.wire?.code, 'FORBIDDEN');
      assert.equal(e.wire?.details?.code, 'MISSING_SCOPE');
      assert.equal(e.wire?.details?.missingScope, 'operator.pairing');
      return true;
    });
    const admin = await operator(gw, { scopes: ['operator.admin'] });
    assert.deepEqual(await admin.request('test.pairing'), { done: true });
    await client.close();
    await admin.close();
  });

  it("takes a node's first frame after hello-ok at the full frame size, though it is past the 64 KiB allowed before (regression: the connection was cut as too large and the command's result lost)", async () => {
    gw.server.method('test.result', { role: 'node', handler: (params) => ({ bytes: JSON.stringify(params).length }) });
    const { client } = await pairedNode(gw);
    try {
      const answer = (await client.request('test.result', { payloadJSON: 'x'.repeat(300_000) })) as { bytes: number };
      assert.ok(answer.bytes > 300_000);
    } finally {
      await client.close();
    }
  });

  it('gives a node no scopes even when it asks for operator.admin, and refuses it operator methods', async () => {
    const { client } = await pairedNode(gw, { scopes: ['operator.admin'] });
    assert.deepEqual(client.hello.auth.scopes, []);
    await assert.rejects(client.request('test.pairing'), (e: { wire?: { code: string } }) => e.wire?.code === 'FORBIDDEN');
    await assert.rejects(client.request('health'), (e: { wire?: { code: string } }) => e.wire?.code === 'FORBIDDEN');
    await client.close();
  });

  it('answers health only to an operator granted operator.read, as upstream scopes it (regression: any operator, scopes cleared or not, was answered)', async () => {
    const bare = await operator(gw, { scopes: [] });
    await assert.rejects(bare.request('health'), (e: { wire?: { code: string; details?: { code?: string; missingScope?: string } } }) => e.wire?.code === 'FORBIDDEN' && e.wire.details?.code === 'MISSING_SCOPE' && e.wire.details.missingScope === 'operator.read');
    assert.ok(gw.log.some((e) => e.code === 'GATEWAY_SCOPE_MISSING'));
    const pairing = await operator(gw, { scopes: ['operator.pairing'] });
    await assert.rejects(pairing.request('health'), (e: { wire?: { code: string } }) => e.wire?.code === 'FORBIDDEN');
    const writer = await operator(gw, { scopes: ['operator.write'] });
    assert.equal(((await writer.request('health')) as { ok: boolean }).ok, true);
    await Promise.all([bare.close(), pairing.close(), writer.close()]);
  });

  it('refuses an operator node-role methods', async () => {
    const client = await operator(gw, { scopes: ['operator.admin'] });
    await assert.rejects(client.request('test.node'), (e: { wire?: { code: string } }) => e.wire?.code === 'FORBIDDEN');
    await client.close();
  });

  it('answers an unknown method with INVALID_REQUEST and keeps the connection', async () => {
    const client = await operator(gw);
    await assert.rejects(client.request('no.such.method'), (e: { wire?: { code: string } }) => e.wire?.code === 'INVALID_REQUEST');
    assert.deepEqual(Object.keys((await client.request('health')) as object).sort(), ['ok', 'ts']);
    await client.close();
  });

  it('answers a retryable UNAVAILABLE past the in-flight limit', async () => {
    const limited = await startTestGateway({ maxInFlight: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    limited.server.method('test.slow', { role: 'operator', handler: () => gate.then(() => 'done') });
    const client = await operator(limited);
    const slow = [client.request('test.slow'), client.request('test.slow')];
    await assert.rejects(client.request('test.slow'), (e: { wire?: { code: string; retryable?: boolean } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true);
    release();
    assert.deepEqual(await Promise.all(slow), ['done', 'done']);
    await client.close();
    await limited.stop();
  });
});

describe('gateway frames', () => {
  let gw: TestGateway;
  let bystander: GatewayClient;
  before(async () => {
    // Ticks of 250 ms: the bystander answers pings from this process, which a test sending megabytes holds up for
    // tens of milliseconds on a loaded machine; at 50 ms two missed pings cut it off as a dead peer.
    gw = await startTestGateway({ handshakeTimeoutMs: 300, tickIntervalMs: 250 });
    bystander = await operator(gw);
  });
  after(async () => {
    await bystander.close();
    await gw.stop();
  });

  /** Every fault test ends by checking a healthy connection was not disturbed. */
  async function bystanderStillServed(): Promise<void> {
    assert.equal(((await bystander.request('health')) as { ok: boolean }).ok, true);
  }

  it('closes a connection whose first frame is not JSON with 1002, and no other', async () => {
    const peer = await RawPeer.open(gw.server.url);
    await peer.next();
    peer.send('{not json');
    assert.equal((await peer.closed).code, 1002);
    assert.ok(gw.log.some((e) => e.code === 'GATEWAY_FRAME_INVALID'));
    await bystanderStillServed();
  });

  it('closes a connection whose frame has unknown fields (upstream closed schema)', async () => {
    const peer = await RawPeer.open(gw.server.url);
    await peer.next();
    peer.send({ type: 'req', id: '1', method: 'connect', params: {}, extra: true });
    assert.equal((await peer.closed).code, 1002);
    await bystanderStillServed();
  });

  it('refuses connect params that break upstream ConnectParams schema and closes', async () => {
    const peer = await RawPeer.open(gw.server.url);
    await peer.next();
    peer.send({ type: 'req', id: '1', method: 'connect', params: { minProtocol: 4, maxProtocol: 4, client: { id: 'not-a-client', version: '1', platform: 'linux', mode: 'cli' } } });
    const res = await peer.next();
    assert.equal((res.error as { code: string }).code, 'INVALID_REQUEST');
    assert.equal((await peer.closed).code, 1008);
    await bystanderStillServed();
  });

  it('closes with 1009 a frame over 64 KiB before hello-ok', async () => {
    const peer = await RawPeer.open(gw.server.url);
    await peer.next();
    peer.send(JSON.stringify({ type: 'req', id: '1', method: 'connect', params: { pad: 'x'.repeat(80 * 1024) } }));
    assert.equal((await peer.closed).code, 1009);
    assert.ok(gw.log.some((e) => e.code === 'GATEWAY_FRAME_TOO_LARGE'));
    await bystanderStillServed();
  });

  it('cuts off a multi-megabyte frame before hello-ok while it arrives, with 1009 (regression: the socket was destroyed, and the peer saw 1006 with no reason)', async () => {
    const peer = await RawPeer.open(gw.server.url);
    await peer.next();
    peer.send('x'.repeat(4 * 1024 * 1024));
    assert.equal((await peer.closed).code, 1009);
    await bystanderStillServed();
  });

  it('closes a connection whose first request is not connect', async () => {
    const peer = await RawPeer.open(gw.server.url);
    await peer.next();
    peer.send({ type: 'req', id: '1', method: 'health' });
    const res = await peer.next();
    assert.equal(res.ok, false);
    assert.equal((await peer.closed).code, 1002);
    assert.ok(gw.log.some((e) => e.code === 'GATEWAY_FRAME_OUT_OF_ORDER'));
    await bystanderStillServed();
  });

  it('closes a connection that sends connect a second time', async () => {
    const peer = await rawOperator(gw);
    peer.send({ type: 'req', id: 'c2', method: 'connect', params: {} });
    await peer.until((f) => f.type === 'res');
    assert.equal((await peer.closed).code, 1002);
    await bystanderStillServed();
  });

  it('closes a connection that sends a res frame (clients never answer)', async () => {
    const peer = await rawOperator(gw);
    peer.send({ type: 'res', id: 'x', ok: true });
    assert.equal((await peer.closed).code, 1002);
    await bystanderStillServed();
  });

  it('closes a connection that sends a binary frame', async () => {
    const peer = await rawOperator(gw);
    peer.send(Buffer.from('{"type":"req"}'));
    assert.equal((await peer.closed).code, 1002);
    await bystanderStillServed();
  });

  it('closes a slow-loris connection that never sends connect when the handshake deadline passes', async () => {
    const started = Date.now();
    const peer = await RawPeer.open(gw.server.url);
    await peer.next();
    assert.equal((await peer.closed).code, 1008);
    assert.ok(Date.now() - started >= 250);
    assert.ok(gw.log.some((e) => e.code === 'GATEWAY_HANDSHAKE_TIMEOUT'));
    await bystanderStillServed();
  });

  it('cuts off a connection that stops answering pings (a dead peer) within two tick intervals', async () => {
    const peer = await rawOperator(gw);
    peer.socket.pause(); // reads nothing more, so it answers no ping
    const cut = () => gw.log.some((e) => e.event === 'closed' && e.code === 'GATEWAY_TIMEOUT');
    const deadline = Date.now() + 2_000;
    while (!cut() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(cut(), 'the gateway cut the silent peer off');
    peer.socket.resume();
    assert.equal((await peer.closed).code, 1006);
    await bystanderStillServed();
  });

  it('sends tick events to authenticated connections with a per-connection increasing seq', async () => {
    const seqs: number[] = [];
    const done = new Promise<void>((resolve) => {
      const stop = bystander.on('tick', (payload, seq) => {
        assert.ok(Number.isSafeInteger((payload as { ts: number }).ts));
        seqs.push(seq!);
        if (seqs.length === 3) {
          stop();
          resolve();
        }
      });
    });
    await done;
    assert.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!);
  });
});

describe("when the gateway's event loop is held up past its tick", () => {
  /**
   * At a tick, once this process has read both pings and answered them, holds
   * it up (as a long task would, or the machine not scheduling it) for `ms`
   * after the tick came: both pongs wait, unread, until the next tick is due.
   */
  async function holdUpAfterTick(gw: TestGateway, ms: number): Promise<void> {
    // Raw peers: GatewayClient has a watch of its own on the gateway's ticks.
    const peers = [await rawOperator(gw), await rawOperator(gw)];
    try {
      await new Promise<void>((resolve) => {
        let ticks = 0;
        const onTick = (data: Buffer): void => {
          if (!data.toString().includes('"event":"tick"') || ++ticks < 2) return;
          peers[1]!.socket.off('message', onTick);
          const came = Date.now();
          setImmediate(() => {
            for (const until = came + ms; Date.now() < until; );
            resolve();
          });
        };
        peers[1]!.socket.on('message', onTick);
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!gw.log.some((e) => e.code === 'GATEWAY_TIMEOUT'), JSON.stringify(gw.log));
      for (const peer of peers) {
        peer.send({ type: 'req', id: 'h', method: 'health' });
        assert.equal((await peer.until((f) => f.id === 'h')).ok, true);
      }
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  }

  it('cuts off no peer that answered the ping before a hold-up of five ticks, its pong still unread (regression: the late tick found every pong unread and cut every peer off as dead)', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 100 });
    try {
      await holdUpAfterTick(gw, 500);
    } finally {
      await gw.stop();
    }
  });

  it('cuts off no such peer when the hold-up ends just after the next tick was due, either', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 100 });
    try {
      await holdUpAfterTick(gw, 115);
    } finally {
      await gw.stop();
    }
  });
});

describe('gateway start-up', () => {
  it('refuses to start without a token (GATEWAY_CONFIG_INVALID)', async () => {
    const gw = await startTestGateway();
    await assert.rejects(GatewayServer.start({ token: '', identity: gw.identity, port: 0 }), { code: 'GATEWAY_CONFIG_INVALID' });
    await gw.stop();
  });

  it('reports a port in use as GATEWAY_CONFIG_INVALID, saying why: EADDRINUSE on that port and address', async () => {
    const gw = await startTestGateway();
    const port = gw.server.port;
    await assert.rejects(GatewayServer.start({ token: gw.token, identity: gw.identity, port }), (e: { code?: string; message?: string; cause?: { code?: string } }) => e.code === 'GATEWAY_CONFIG_INVALID' && e.cause?.code === 'EADDRINUSE' && e.message!.includes(`EADDRINUSE: port ${port} on 127.0.0.1 is in use`));
    await gw.stop();
  });

  it('refuses socket limits that contradict each other (GATEWAY_CONFIG_INVALID)', async () => {
    const gw = await startTestGateway();
    await assert.rejects(GatewayServer.start({ token: gw.token, identity: gw.identity, port: 0, maxConnections: 10, maxUnauthenticated: 11 }), { code: 'GATEWAY_CONFIG_INVALID' });
    await assert.rejects(GatewayServer.start({ token: gw.token, identity: gw.identity, port: 0, maxUnauthenticated: 8, maxUnauthenticatedPerAddress: 9 }), { code: 'GATEWAY_CONFIG_INVALID' });
    await assert.rejects(GatewayServer.start({ token: gw.token, identity: gw.identity, port: 0, headersTimeoutMs: 2_000, requestTimeoutMs: 1_000 }), { code: 'GATEWAY_CONFIG_INVALID' });
    await assert.rejects(GatewayServer.start({ token: gw.token, identity: gw.identity, port: 0, maxConnections: 0 }), { code: 'GATEWAY_CONFIG_INVALID' });
    await gw.stop();
  });
});

/** A raw TCP socket on the gateway's port that sends `bytes` one at a time, `everyMs` apart; `closedAfterMs` settles when the gateway closes it. */
function trickle(port: number, bytes = 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n', everyMs = 100): { socket: Socket; closedAfterMs: Promise<number> } {
  const started = Date.now();
  const socket = createConnection({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  socket.on('data', () => {});
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= bytes.length) return;
    socket.write(bytes[i++]!);
  }, everyMs);
  timer.unref();
  const closedAfterMs = new Promise<number>((resolve) => socket.once('close', () => {
    clearInterval(timer);
    resolve(Date.now() - started);
  }));
  return { socket, closedAfterMs };
}

describe('when an agent opens connection after connection with its agent token', () => {
  it(`holds at most ${MAX_AGENT_CONNECTIONS} for one agent, so it cannot fill the gateway and keep operators and nodes out (regression: it filled maxConnections)`, async () => {
    const gw = await startTestGateway({ maxConnections: MAX_AGENT_CONNECTIONS + 2, maxUnauthenticated: 2 });
    gw.identity.agents.create({ name: 'greedy-bot', process: 'flood', owner: 'owner@example.com' });
    const agentToken = (await gw.identity.issueToken('greedy-bot')).token;
    const agent = () => GatewayClient.connect({ url: gw.server.url, role: 'operator', scopes: ['operator.write'], agentToken });
    const held: GatewayClient[] = [];
    try {
      for (let i = 0; i < MAX_AGENT_CONNECTIONS; i++) held.push(await agent());
      await assert.rejects(agent().then((c) => held.push(c)), (e: { wire?: { code?: string; retryable?: boolean } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true);
      assert.ok(gw.log.some((e) => e.code === 'GATEWAY_BUSY'));
      held.push(await operator(gw));
    } finally {
      await Promise.all(held.map((c) => c.close()));
      await gw.stop();
    }
  });
});

describe('when the key that signed an agent token is cut off while its connection is open', () => {
  it('closes that connection at its next request (corral identity rotate --overlap 0), and keeps one whose key is still in its overlap until then (regression: it acted as the agent until the token expired)', async () => {
    const gw = await startTestGateway();
    gw.identity.agents.create({ name: 'rotated-bot', process: 'rotation', owner: 'owner@example.com' });
    gw.server.method('test.read', { role: 'operator', scopes: ['operator.read'], handler: () => ({ read: true }) });
    const connect = async () => GatewayClient.connect({ url: gw.server.url, role: 'operator', scopes: ['operator.read'], agentToken: (await gw.identity.issueToken('rotated-bot')).token });
    const list = (c: GatewayClient) => c.request('test.read', {});
    const older = await connect();
    await gw.identity.keys.rotate(3600_000);
    const newer = await connect();
    try {
      await list(older);
      // Cuts off the newer key, and the older one still in its overlap with it (identity: a rotation cuts every retiring key short).
      await gw.identity.keys.rotate(0);
      for (const cut of [newer, older]) {
        await assert.rejects(list(cut), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'AUTH_UNAUTHORIZED');
        assert.equal((await cut.closed).code, 1008);
      }
    } finally {
      await Promise.all([older.close(), newer.close()]);
      await gw.stop();
    }
  });
});

describe('when sockets trickle their HTTP headers (slow-loris)', () => {
  it('closes a socket that sends one header byte at a time once the headers timeout passes (regression: ~81 s under Node defaults)', async () => {
    const gw = await startTestGateway({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const { closedAfterMs } = trickle(gw.server.port);
      const after = await closedAfterMs;
      assert.ok(after >= 250 && after < 1_500, `closed after ${after} ms`);
      await (await operator(gw)).close();
    } finally {
      await gw.stop();
    }
  });

  it('closes a socket that connects and sends nothing, too', async () => {
    const gw = await startTestGateway({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const after = await trickle(gw.server.port, '').closedAfterMs;
      assert.ok(after < 1_500, `closed after ${after} ms`);
    } finally {
      await gw.stop();
    }
  });

  it('lets a normal client connect while more slow sockets are open than the cap allows: the oldest unauthenticated is closed to make room', async () => {
    // Long timeouts: only the caps are at work here.
    const gw = await startTestGateway({ maxConnections: 40, maxUnauthenticated: 20, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    const slow = Array.from({ length: 60 }, () => trickle(gw.server.port, 'GET / HTTP/1.1\r\n', 1_000));
    try {
      const open = () => slow.filter((s) => !s.socket.destroyed).length;
      const deadline = Date.now() + 5_000;
      while (open() > 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(open(), 20, 'slow sockets beyond the cap are closed, oldest first');
      assert.ok(slow.slice(0, 40).every((s) => s.socket.destroyed) && slow.slice(40).every((s) => !s.socket.destroyed));
      const client = await operator(gw);
      assert.equal((await client.request('health')) !== undefined, true);
      // Once authenticated, a newcomer never displaces it.
      for (let i = 0; i < 30; i++) slow.push(trickle(gw.server.port, '', 1_000));
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await client.request('health').then(() => 'served'), 'served');
      assert.ok(gw.log.some((e) => e.code === 'GATEWAY_BUSY'));
      await client.close();
    } finally {
      for (const s of slow) s.socket.destroy();
      await gw.stop();
    }
  });

  it('refuses a newcomer only when authenticated connections alone fill maxConnections', async () => {
    const gw = await startTestGateway({ maxConnections: 3, maxUnauthenticated: 2 });
    try {
      const clients = [await operator(gw), await operator(gw), await operator(gw)];
      const after = await trickle(gw.server.port, '').closedAfterMs;
      assert.ok(after < 1_000, `refused after ${after} ms`);
      for (const c of clients) assert.equal((await c.request('health')) !== undefined, true);
      await clients[0]!.close();
      await new Promise((r) => setTimeout(r, 50));
      const again = await operator(gw);
      await Promise.all([again, ...clients.slice(1)].map((c) => c.close()));
    } finally {
      await gw.stop();
    }
  });
});

/** Opens `count` WebSockets from `localAddress`, one after another, that never send `connect`: each stays an unfinished handshake. */
async function unfinishedHandshakes(url: string, localAddress: string, count: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false });
    socket.on('error', () => {});
    sockets.push(socket);
    await new Promise((resolve) => socket.once('open', resolve).once('close', resolve));
  }
  return sockets;
}

describe('when one address opens handshake after handshake', () => {
  it("closes that address's own oldest, so a client from another address still completes its handshake (regression: the flood closed every other address's handshake, oldest first)", async () => {
    const gw = await startTestGateway({ maxUnauthenticated: 8, maxUnauthenticatedPerAddress: 4 });
    const flood: WebSocket[] = [];
    try {
      const peer = await RawPeer.open(gw.server.url);
      const { nonce, ts } = (await peer.next()).payload as { nonce: string; ts: number };
      for (let i = 0; i < 12; i++) {
        const socket = new WebSocket(gw.server.url, { localAddress: '127.0.0.2', perMessageDeflate: false });
        socket.on('error', () => {});
        flood.push(socket);
        await new Promise((resolve) => socket.once('open', resolve).once('close', resolve));
      }
      assert.equal(flood.filter((s) => s.readyState === WebSocket.OPEN).length, 4);
      peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: ['operator.read'] }, nonce, ts) });
      assert.equal((await peer.next()).ok, true);
      await peer.close();
    } finally {
      for (const socket of flood) socket.terminate();
      await gw.stop();
    }
  });

  // Past the per-address cap by half again, and well within the cap for all (the defaults).
  const flood = MAX_UNAUTHENTICATED_PER_ADDRESS + MAX_UNAUTHENTICATED_PER_ADDRESS / 2;
  const hasIpv6Loopback = Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.address === '::1'));

  for (const [address, skip] of [['127.0.0.1', false], ['::1', !hasIpv6Loopback && 'no ::1 on this machine']] as const) {
    it(`keeps all ${flood} unfinished handshakes from ${address} open: loopback is every local client at once, held only by the cap for all (${MAX_UNAUTHENTICATED})`, { skip }, async () => {
      const gw = await startTestGateway({ host: address });
      const sockets: WebSocket[] = [];
      try {
        sockets.push(...(await unfinishedHandshakes(gw.server.url, address, flood)));
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(sockets.filter((s) => s.readyState === WebSocket.OPEN).length, flood);
        assert.equal(gw.log.filter((e) => e.code === 'GATEWAY_BUSY').length, 0);
      } finally {
        for (const socket of sockets) socket.terminate();
        await gw.stop();
      }
    });
  }

  it(`holds 127.0.0.2 to ${MAX_UNAUTHENTICATED_PER_ADDRESS} unfinished handshakes, closing its oldest: only 127.0.0.1 and ::1 are exempt, not the rest of 127.0.0.0/8`, async () => {
    const gw = await startTestGateway();
    const sockets: WebSocket[] = [];
    try {
      sockets.push(...(await unfinishedHandshakes(gw.server.url, '127.0.0.2', flood)));
      const open = () => sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
      const deadline = Date.now() + 3_000;
      while (open() > MAX_UNAUTHENTICATED_PER_ADDRESS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(open(), MAX_UNAUTHENTICATED_PER_ADDRESS);
      const evicted = flood - MAX_UNAUTHENTICATED_PER_ADDRESS;
      assert.ok(sockets.slice(evicted).every((s) => s.readyState === WebSocket.OPEN), 'the newest stay open');
      assert.deepEqual(new Set(gw.log.filter((e) => e.code === 'GATEWAY_BUSY').map((e) => e.remoteAddress)), new Set(['127.0.0.2']));
    } finally {
      for (const socket of sockets) socket.terminate();
      await gw.stop();
    }
  });

  it('counts an IPv6 peer by its /64, which one host commonly holds whole', () => {
    assert.equal(addressGroup('2001:db8:1:2::5'), addressGroup('2001:db8:1:2:ffff:1:2:3'));
    assert.notEqual(addressGroup('2001:db8:1:2::5'), addressGroup('2001:db8:1:3::5'));
    assert.equal(addressGroup('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressGroup('192.0.2.7'), '192.0.2.7');
    assert.equal(addressGroup('fe80::1%eth0'), addressGroup('fe80::2'));
    assert.equal(addressGroup('::1'), addressGroup('0:0:0:0:0:0:0:1'));
  });
});

describe("when the gateway's own store fails while a node connects", () => {
  it('closes that connection (1011) and keeps serving the others (regression: the exception left the message handler and stopped the gateway)', async () => {
    const db = new DatabaseSync(':memory:');
    const gw = await startTestGateway({ deviceTokens: new DeviceTokens(db) });
    const other = await operator(gw);
    try {
      const device = createDeviceIdentity();
      const options: GatewayClientOptions = { url: gw.server.url, token: gw.token, role: 'node', device };
      await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
      gw.identity.nodes.pair(device.deviceId, 'test');
      // Reads still work; the new device token cannot be written (as on a full disk).
      db.exec('PRAGMA query_only = ON');
      await assert.rejects(GatewayClient.connect(options), { code: 'GATEWAY_CONNECTION_CLOSED', message: /1011/ });
      assert.ok(gw.log.some((e) => e.event === 'handler-failed'));
      assert.equal((await other.request('health')) !== undefined, true);
    } finally {
      await other.close();
      await gw.stop();
    }
  });
  it("keeps serving the others when a listener of a connection's close throws", async () => {
    const gw = await startTestGateway();
    gw.server.on('closed', () => {
      throw new Error('a listener fault');
    });
    const other = await operator(gw);
    try {
      await (await operator(gw)).close();
      for (const end = Date.now() + 2_000; !gw.log.some((e) => e.event === 'handler-failed') && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
      assert.ok(gw.log.some((e) => e.event === 'handler-failed'));
      assert.equal((await other.request('health')) !== undefined, true);
    } finally {
      await other.close();
      await gw.stop();
    }
  });
});

describe("when the gateway's own store cannot be read as an agent's request is checked", () => {
  it('answers that request UNAVAILABLE (retryable), runs nothing, and keeps serving the others (regression: the rejection left the dispatcher unhandled and stopped the gateway)', async () => {
    const gw = await startTestGateway();
    let ran = 0;
    gw.server.method('test.read', { role: 'operator', scopes: ['operator.read'], handler: () => ({ ran: ++ran }) });
    gw.identity.agents.create({ name: 'store-bot', process: 'store', owner: 'owner@example.com' });
    const agent = await GatewayClient.connect({ url: gw.server.url, role: 'operator', scopes: ['operator.read'], agentToken: (await gw.identity.issueToken('store-bot')).token });
    const other = await operator(gw);
    try {
      // Every read of the identity store now fails, as on a disk gone bad.
      gw.identity.close();
      await assert.rejects(agent.request('test.read', {}, { timeoutMs: 2_000 }), (e: { wire?: { code?: string; retryable?: boolean } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true);
      assert.equal(ran, 0);
      assert.ok(gw.log.some((e) => e.event === 'handler-failed'));
      assert.deepEqual(await other.request('test.read', {}), { ran: 1 });
    } finally {
      await Promise.all([agent.close(), other.close()]);
      await gw.server.close();
      rmSync(gw.stateDir, { recursive: true, force: true });
    }
  });
});

describe('when an agent sends a request, closes its connection and reconnects, again and again', () => {
  it(`holds it to as many requests in flight as its open connections could hold (${MAX_AGENT_CONNECTIONS} × maxInFlight): a closed connection's handlers count until they finish (regression: each new connection started from none, and an agent piled up node invokes that each waited up to a day)`, async () => {
    const gw = await startTestGateway({ maxInFlight: 1 });
    let started = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    gw.server.method('test.slow', { role: 'operator', scopes: ['operator.read'], handler: () => (started++, gate.then(() => 'done')) });
    gw.identity.agents.create({ name: 'piling-bot', process: 'pile', owner: 'owner@example.com' });
    const agentToken = (await gw.identity.issueToken('piling-bot')).token;
    const agent = () => GatewayClient.connect({ url: gw.server.url, role: 'operator', scopes: ['operator.read'], agentToken });
    const last = await agent();
    try {
      for (let i = 0; i < MAX_AGENT_CONNECTIONS; i++) {
        const left = await agent();
        void left.request('test.slow').catch(() => undefined);
        while (started <= i) await new Promise((r) => setTimeout(r, 5));
        await left.close();
      }
      await assert.rejects(last.request('test.slow', undefined, { timeoutMs: 2_000 }), (e: { wire?: { code?: string; retryable?: boolean } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true);
      assert.equal(started, MAX_AGENT_CONNECTIONS);
      // Another operator is not held by the agent's count.
      const other = await operator(gw);
      const served = other.request('test.slow');
      release();
      assert.equal(await served, 'done');
      await other.close();
      // Once they finish, the agent has its room back.
      assert.equal(await last.request('test.slow'), 'done');
    } finally {
      release();
      await last.close();
      await gw.stop();
    }
  });
});

describe('when a peer sends more than its kind of peer needs', () => {
  let gw: TestGateway;
  let bystander: GatewayClient;
  before(async () => {
    gw = await startTestGateway({ tickIntervalMs: 1_000 });
    gw.server.method('test.result', { role: 'node', handler: (params) => ({ bytes: JSON.stringify(params).length }) });
    gw.server.method('test.echo', { role: 'operator', scopes: ['operator.write'], handler: (params) => ({ bytes: JSON.stringify(params).length }) });
    bystander = await operator(gw);
  });
  after(async () => {
    await bystander.close();
    await gw.stop();
  });

  async function agent(): Promise<GatewayClient> {
    const name = `bot-${Math.random().toString(36).slice(2, 8)}`;
    gw.identity.agents.create({ name, process: 'frames', owner: 'owner@example.com' });
    return GatewayClient.connect({ url: gw.server.url, role: 'operator', scopes: ['operator.write'], agentToken: (await gw.identity.issueToken(name)).token });
  }

  it('advertises in hello-ok the largest frame of the peer it is sent to: 25 MiB to an operator, 4 MiB to a node, 1 MiB to an agent', async () => {
    const { client: node } = await pairedNode(gw);
    const bot = await agent();
    assert.deepEqual([bystander.hello.policy.maxPayload, node.hello.policy.maxPayload, bot.hello.policy.maxPayload], [25 * 1024 * 1024, 4 * 1024 * 1024, 1024 * 1024]);
    await Promise.all([node.close(), bot.close()]);
  });

  it("takes a node's result of two full streams of output at its worst escaping (regression guard: every byte of output escaped twice, 2.8 MB)", async () => {
    const { client: node } = await pairedNode(gw);
    const payloadJSON = JSON.stringify({ stdout: '\u0001'.repeat(200_000), stderr: '\u0001'.repeat(200_000) });
    const answer = (await node.request('test.result', { payloadJSON })) as { bytes: number };
    assert.ok(answer.bytes > 2_800_000);
    await node.close();
  });

  it("takes the results of a node's 32 runs finishing at once, 400 KB of output each (regression guard: a burst no bigger than two frames cut the node off and lost them)", async () => {
    const { client: node } = await pairedNode(gw);
    const payloadJSON = JSON.stringify({ stdout: 'x'.repeat(200_000), stderr: 'y'.repeat(200_000) });
    const answers = await Promise.all(Array.from({ length: 32 }, () => node.request('test.result', { payloadJSON }) as Promise<{ bytes: number }>));
    assert.ok(answers.every((a) => a.bytes > 400_000));
    await node.close();
  });

  it('closes with 1009 a node that sends a 6 MiB frame, logged as refused (regression: any peer might send 25 MiB for the gateway to parse)', async () => {
    const { client: node, device } = await pairedNode(gw);
    await assert.rejects(node.request('test.result', { payloadJSON: 'x'.repeat(6 * 1024 * 1024) }), { code: 'GATEWAY_CONNECTION_CLOSED' });
    assert.equal((await node.closed).code, 1009);
    assert.ok(gw.log.some((e) => e.event === 'refused' && e.code === 'GATEWAY_FRAME_TOO_LARGE' && e.deviceId === device.deviceId));
    assert.equal(((await bystander.request('health')) as { ok: boolean }).ok, true);
  });

  it('closes with 1009 an agent that sends a 2 MiB frame, which an operator may send', async () => {
    const bot = await agent();
    await assert.rejects(bot.request('test.echo', { pad: 'x'.repeat(2 * 1024 * 1024) }), { code: 'GATEWAY_CONNECTION_CLOSED' });
    assert.equal((await bot.closed).code, 1009);
    const writer = await operator(gw, { scopes: ['operator.write'] });
    assert.ok(((await writer.request('test.echo', { pad: 'x'.repeat(2 * 1024 * 1024) })) as { bytes: number }).bytes > 2 * 1024 * 1024);
    await writer.close();
  });
});

describe('when a node sends a burst of frames past its byte budget', () => {
  // A budget of 256 KiB refilled at 1 MiB/s: 24 frames of 100 KiB sent at once take about 2 s to read.
  const limits = { maxPayload: 128 * 1024, bytesPerSecond: 1024 * 1024, burstBytes: 256 * 1024 };
  const frames = 24;
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ tickIntervalMs: 100, inboundLimits: { node: limits } });
    gw.server.method('test.result', { role: 'node', handler: (params) => ({ bytes: JSON.stringify(params).length }) });
  });
  after(() => gw.stop());

  /** Sends `count` results of 100 KiB at once; resolves with how many were answered, and when the last was. */
  function burst(node: GatewayClient, count = frames): { answered: () => number; done: Promise<number> } {
    let answered = 0;
    const payloadJSON = 'x'.repeat(100 * 1024);
    const done = Promise.all(Array.from({ length: count }, () => node.request('test.result', { payloadJSON }, { timeoutMs: 60_000 }).then(() => void (answered += 1)))).then(() => Date.now());
    return { answered: () => answered, done };
  }

  it('slows it down by reading its socket no faster than its budget refills, and serves every frame, rather than closing it (regression: a node returning a large output was cut off with 1008)', async () => {
    const { client: node, device } = await pairedNode(gw);
    try {
      const started = Date.now();
      const finished = await burst(node).done;
      // What the burst holds past the budget is read at 1 MiB/s: more than a second, however fast the machine.
      assert.ok(finished - started >= 1_000, `answered after ${finished - started} ms`);
      assert.ok(gw.server.connections().some((c) => c.peer?.deviceId === device.deviceId));
      assert.ok(!gw.log.some((e) => e.code === 'GATEWAY_RATE_LIMITED'));
      assert.deepEqual(await node.request('test.result', { payloadJSON: 'after' }), { bytes: JSON.stringify({ payloadJSON: 'after' }).length });
    } finally {
      await node.close();
    }
  });

  it('keeps it connected although its pongs wait behind the frames it is held to (ticks every 100 ms)', async () => {
    const { client: node, device } = await pairedNode(gw);
    try {
      await burst(node).done;
      assert.ok(!gw.log.some((e) => e.code === 'GATEWAY_TIMEOUT' && e.deviceId === device.deviceId), 'cut off as not answering pings');
      assert.ok(gw.server.connections().some((c) => c.peer?.deviceId === device.deviceId));
    } finally {
      await node.close();
    }
  });

  it('answers another connection at once while it holds the node off', async () => {
    const { client: node } = await pairedNode(gw);
    const bystander = await operator(gw);
    // Six seconds of frames at the budget: the bystander's answer comes before their end even on a loaded machine (24 frames, two seconds, did not once).
    const many = 60;
    try {
      const sent = burst(node, many);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(((await bystander.request('health')) as { ok: boolean }).ok, true);
      assert.ok(sent.answered() < many, `the node's ${many} frames were all served before the bystander's one`);
      await sent.done;
    } finally {
      await bystander.close();
      await node.close();
    }
  });
});

describe('when a peer keeps sending frames faster than its byte budget refills', () => {
  it('notices that a peer it holds off went away, and cuts nothing off as rate limited', async () => {
    const gw = await startTestGateway({ inboundLimits: { operator: { maxPayload: 128 * 1024, bytesPerSecond: 512 * 1024, burstBytes: 256 * 1024 } } });
    gw.server.method('test.echo', { role: 'operator', handler: () => ({ ok: true }) });
    const closed: string[] = [];
    gw.server.on('closed', (c) => closed.push(c.id));
    const peer = await rawOperator(gw);
    try {
      const frame = JSON.stringify({ type: 'req', id: 'x', method: 'test.echo', params: { pad: 'x'.repeat(100 * 1024) } });
      for (let i = 0; i < 20; i++) peer.send(frame);
      await peer.until((f) => f.id === 'x');
      peer.socket.terminate();
      for (const deadline = Date.now() + 20_000; closed.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      assert.equal(closed.length, 1);
      assert.equal(gw.server.connections().length, 0);
      assert.ok(!gw.log.some((e) => e.code === 'GATEWAY_RATE_LIMITED'));
    } finally {
      await gw.stop();
    }
  });

  it('closes with 1008 and logs GATEWAY_RATE_LIMITED a peer held off for longer than maxHeldOffMs in a row, and serves a peer within its budget (regression: a stream of large frames kept the event loop busy)', async () => {
    const gw = await startTestGateway({ inboundLimits: { operator: { maxPayload: 128 * 1024, bytesPerSecond: 64 * 1024, burstBytes: 512 * 1024, maxHeldOffMs: 1_000 } } });
    gw.server.method('test.echo', { role: 'operator', handler: () => ({ ok: true }) });
    const calm = await operator(gw);
    const peer = await rawOperator(gw);
    try {
      assert.equal(calm.hello.policy.maxPayload, 128 * 1024);
      const frame = JSON.stringify({ type: 'req', id: 'x', method: 'test.echo', params: { pad: 'x'.repeat(100 * 1024) } });
      for (let i = 0; i < 20 && peer.socket.readyState === WebSocket.OPEN; i++) {
        peer.send(frame);
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.deepEqual(await peer.closed, { code: 1008, reason: 'rate limited: sent past its byte or frame budget' });
      assert.ok(gw.log.some((e) => e.event === 'refused' && e.code === 'GATEWAY_RATE_LIMITED'));
      assert.deepEqual(await calm.request('test.echo', { pad: 'x'.repeat(100 * 1024) }), { ok: true });
    } finally {
      await calm.close();
      await peer.close();
      await gw.stop();
    }
  });

  it('refuses limits whose burst cannot hold the largest frame (GATEWAY_CONFIG_INVALID)', async () => {
    const gw = await startTestGateway();
    await assert.rejects(GatewayServer.start({ token: gw.token, identity: gw.identity, port: 0, inboundLimits: { node: { maxPayload: 1024, burstBytes: 1000 } } }), { code: 'GATEWAY_CONFIG_INVALID' });
    await gw.stop();
  });
});

describe('when a peer sends request after request that the gateway refuses', () => {
  it(`answers every one, and logs the first ${LOG_REFUSALS_BURST} and then at most ${LOG_REFUSALS_PER_SECOND} a second of its connection, each with how many were left out before it, the rest on its close (regression: each was a line of the log, written at once: 1,000 requests for an unknown method wrote 1,000 lines)`, async () => {
    const gw = await startTestGateway();
    try {
      const client = await operator(gw);
      const requests = 1_000;
      const answers = await Promise.allSettled(Array.from({ length: requests }, (_, i) => client.request(`no.such.method.${i}`)));
      assert.ok(answers.every((a) => a.status === 'rejected' && (a.reason as { wire?: { code: string } }).wire?.code === 'INVALID_REQUEST'));
      const lines = () => gw.log.filter((e) => e.code === 'GATEWAY_METHOD_UNKNOWN');
      assert.ok(lines().length >= LOG_REFUSALS_BURST && lines().length < LOG_REFUSALS_BURST + 10, `${lines().length} lines`);
      await client.close();
      await new Promise((r) => setTimeout(r, 100));
      const closed = gw.log.find((e) => e.event === 'closed' && e.connId === lines()[0]!.connId);
      const told = lines().reduce((n, e) => n + 1 + (e.suppressed ?? 0), 0) + (closed?.suppressed ?? 0);
      assert.equal(told, requests);
    } finally {
      await gw.stop();
    }
  });
});
