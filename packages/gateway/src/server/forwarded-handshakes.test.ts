// Unfinished handshakes behind the operator's reverse proxy: every client
// arrives from the proxy's address, so the cap per address counts each by the
// client a trusted proxy forwards for, once its request says who that is.
// Real sockets on loopback: the proxy is a local address sending X-Forwarded-For.
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { connectParams } from '../index.ts';
import { ClientAddresses, TrustedProxies } from '../http/client-address.ts';
import { startTestGateway, type TestGateway } from '../../test/harness.ts';

/** A gateway that counts 8 unfinished handshakes in all, 4 from one address, and trusts the proxies named. */
const gatewayBehind = (proxies: string[]): Promise<TestGateway> =>
  startTestGateway({ maxUnauthenticated: 8, maxUnauthenticatedPerAddress: 4, clientAddresses: new ClientAddresses(TrustedProxies.parse(proxies)) });

/** A WebSocket opened from `from`, saying it forwards for `client` when given; resolves once open (or closed), with its first frame (the challenge) to come. */
async function open(gw: TestGateway, from: string, client?: string): Promise<{ socket: WebSocket; challenge: Promise<{ nonce: string; ts: number }> }> {
  const socket = new WebSocket(gw.server.url, { localAddress: from, perMessageDeflate: false, ...(client ? { headers: { 'x-forwarded-for': client } } : {}) });
  socket.on('error', () => {});
  const challenge = new Promise<{ nonce: string; ts: number }>((resolve) => socket.once('message', (data) => resolve(JSON.parse(data.toString()).payload)));
  await new Promise((resolve) => socket.once('open', resolve).once('close', resolve));
  return { socket, challenge };
}

/** Sends `connect` as an operator on a socket `open` gave; resolves with whether hello-ok came back. */
async function connect(gw: TestGateway, opened: Awaited<ReturnType<typeof open>>): Promise<boolean> {
  const { nonce, ts } = await opened.challenge;
  if (opened.socket.readyState !== WebSocket.OPEN) return false;
  const answer = new Promise<boolean>((resolve) => {
    opened.socket.once('message', (data) => resolve(JSON.parse(data.toString()).ok === true));
    opened.socket.once('close', () => resolve(false));
  });
  opened.socket.send(JSON.stringify({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: ['operator.read'] }, nonce, ts) }));
  return answer;
}

/** Opens `count` unfinished handshakes from `from`, one after another, each forwarded for the client `clientOf(i)` names. */
async function flood(gw: TestGateway, from: string, count: number, clientOf: (i: number) => string | undefined): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) sockets.push((await open(gw, from, clientOf(i))).socket);
  return sockets;
}

/** A TCP connection from `from` that sends nothing, reading what it is sent; resolves once connected. */
async function silentSocket(gw: TestGateway, from: string): Promise<Socket> {
  const socket = createConnection({ host: '127.0.0.1', port: gw.server.port, localAddress: from }).on('error', () => {});
  socket.resume();
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

const openCount = (sockets: WebSocket[]) => sockets.filter((s) => s.readyState === WebSocket.OPEN).length;

for (const proxy of ['127.0.0.2', '127.0.0.1']) {
  describe(`behind a trusted proxy at ${proxy}${proxy === '127.0.0.1' ? ' (loopback, held only by the cap for all)' : ''}, when one client's handshakes flood through it`, () => {
    it("closes that client's own oldest, and another client's handshake through the same proxy completes (regression: every client behind the proxy shared one address's slots, and one client's flood closed everyone's)", async () => {
      const gw = await gatewayBehind([proxy]);
      const sockets: WebSocket[] = [];
      try {
        const other = await open(gw, proxy, '198.51.100.2');
        sockets.push(other.socket);
        const flooding = await flood(gw, proxy, 12, () => '203.0.113.7');
        sockets.push(...flooding);
        await waitFor("the flooding client's oldest closed", () => openCount(flooding) <= 4);
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(openCount(flooding), 4, "the flooding client's newest 4 stay");
        assert.ok(flooding.slice(-4).every((s) => s.readyState === WebSocket.OPEN));
        assert.equal(await connect(gw, other), true, "the other client's handshake completes");
        const busy = gw.log.filter((e) => e.code === 'GATEWAY_BUSY');
        assert.deepEqual(new Set(busy.map((e) => `${e.addressGroup} ${e.remoteAddress}`)), new Set(['203.0.113.7 203.0.113.7']), 'only the flooding client was closed, and the log names it, not the proxy');
      } finally {
        for (const socket of sockets) socket.terminate();
        await gw.stop();
      }
    });
  });
}

describe('behind a trusted proxy at 127.0.0.2, a client forwarded over IPv6', () => {
  it('is counted by its /64, as a client reaching the gateway directly is: 8 from one /64 keep 4, and one from another /64 stays', async () => {
    const gw = await gatewayBehind(['127.0.0.2']);
    const sockets: WebSocket[] = [];
    try {
      const other = await open(gw, '127.0.0.2', '2001:db8:9:9::1');
      sockets.push(other.socket);
      const flooding = await flood(gw, '127.0.0.2', 8, (i) => `2001:db8:1:2::${i + 1}`);
      sockets.push(...flooding);
      await waitFor('the oldest of that /64 closed', () => openCount(flooding) <= 4);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(openCount(flooding), 4);
      assert.equal(other.socket.readyState, WebSocket.OPEN);
    } finally {
      for (const socket of sockets) socket.terminate();
      await gw.stop();
    }
  });
});

describe("a trusted proxy's keep-alive socket", () => {
  it("counts as the client of its latest request: another client's flood leaves it open once it carried a request of its own", async () => {
    const gw = await gatewayBehind(['127.0.0.2']);
    const sockets: WebSocket[] = [];
    const kept = await silentSocket(gw, '127.0.0.2');
    try {
      let answered = '';
      kept.setEncoding('latin1').on('data', (chunk: string) => (answered += chunk));
      for (const [i, client] of ['203.0.113.7', '198.51.100.2'].entries()) {
        kept.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: ${client}\r\n\r\n`);
        await waitFor(`answer ${i + 1}`, () => answered.split('HTTP/1.1 426').length - 1 === i + 1);
      }
      sockets.push(...(await flood(gw, '127.0.0.2', 8, () => '203.0.113.7')));
      await waitFor('the flood held to 4', () => openCount(sockets) <= 4);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(kept.closed, false, 'the socket now carrying 198.51.100.2 stays open');
    } finally {
      kept.destroy();
      for (const socket of sockets) socket.terminate();
      await gw.stop();
    }
  });
});

describe("a trusted proxy's sockets that have sent no request yet", () => {
  it('count toward the cap for all (8), not the proxy address\'s (4): the proxy opens them for clients it has not named yet', async () => {
    const gw = await gatewayBehind(['127.0.0.2']);
    const raw: Socket[] = [];
    try {
      // Raw TCP connections from the proxy that send nothing: HTTP sockets still sending their headers.
      for (let i = 0; i < 12; i++) raw.push(await silentSocket(gw, '127.0.0.2'));
      const closed = () => raw.filter((s) => s.closed).length;
      await waitFor('the oldest 4 closed', () => closed() >= 4);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(closed(), 4);
      assert.ok(raw.slice(4).every((s) => !s.closed), 'the newest 8 stay');
    } finally {
      for (const s of raw) s.destroy();
      await gw.stop();
    }
  });

  it('are closed at the headers deadline all the same', async () => {
    const gw = await startTestGateway({ headersTimeoutMs: 300, requestTimeoutMs: 600, clientAddresses: new ClientAddresses(TrustedProxies.parse(['127.0.0.2'])) });
    try {
      const started = Date.now();
      const socket = await silentSocket(gw, '127.0.0.2');
      await new Promise((resolve) => socket.once('close', resolve));
      assert.ok(Date.now() - started < 1_500, `closed after ${Date.now() - started} ms`);
    } finally {
      await gw.stop();
    }
  });
});

describe('a peer not named as a proxy, sending X-Forwarded-For', () => {
  it('is counted by its own address whatever client it names (4 from 127.0.0.3, each naming another)', async () => {
    const gw = await gatewayBehind(['127.0.0.2']);
    const sockets: WebSocket[] = [];
    try {
      sockets.push(...(await flood(gw, '127.0.0.3', 8, (i) => `203.0.113.${i + 1}`)));
      await waitFor('the oldest closed', () => openCount(sockets) <= 4);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(openCount(sockets), 4);
      assert.deepEqual(new Set(gw.log.filter((e) => e.code === 'GATEWAY_BUSY').map((e) => e.addressGroup)), new Set(['127.0.0.3']));
    } finally {
      for (const socket of sockets) socket.terminate();
      await gw.stop();
    }
  });
});

describe('a WebSocket a trusted proxy forwards', () => {
  it('is named in the log by the client it is forwarded for; one from a peer not trusted, by that peer (regression: every connection behind the proxy was logged as the proxy)', async () => {
    const gw = await gatewayBehind(['127.0.0.2']);
    const sockets: WebSocket[] = [];
    try {
      for (const from of ['127.0.0.2', '127.0.0.3']) {
        const opened = await open(gw, from, '198.51.100.9');
        sockets.push(opened.socket);
        const { nonce, ts } = await opened.challenge;
        opened.socket.send(JSON.stringify({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: 'not the gateway token at all', role: 'operator', scopes: [] }, nonce, ts) }));
        await new Promise((resolve) => opened.socket.once('close', resolve));
      }
      const refused = gw.log.filter((e) => e.event === 'refused' && e.code === 'GATEWAY_AUTH_TOKEN_MISMATCH').map((e) => e.remoteAddress);
      assert.deepEqual(refused, ['198.51.100.9', '127.0.0.3'], JSON.stringify(gw.log));
    } finally {
      for (const socket of sockets) socket.terminate();
      await gw.stop();
    }
  });

  it("is named by that client's address group when refused for a web page's Origin", async () => {
    const gw = await gatewayBehind(['127.0.0.2']);
    try {
      const page = new WebSocket(gw.server.url, { localAddress: '127.0.0.2', origin: 'https://elsewhere.example', headers: { 'x-forwarded-for': '198.51.100.9' } });
      page.on('error', () => {});
      await new Promise((resolve) => page.once('close', resolve));
      const refused = gw.log.filter((e) => e.code === 'GATEWAY_UPGRADE_REFUSED').map((e) => e.addressGroup);
      assert.deepEqual(refused, ['198.51.100.9'], JSON.stringify(gw.log));
    } finally {
      await gw.stop();
    }
  });
});

async function waitFor(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  for (const deadline = Date.now() + ms; !check(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
