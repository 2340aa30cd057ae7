import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { dirname } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseEgressRule, type EgressRule } from './egress-rule.ts';
import { EgressProxy, type ConnectionRecord, type EgressChannel, type EgressLookup } from './proxy.ts';

// Every server here listens on 127.0.0.1 and every name the proxy resolves
// comes from this table: no test can reach beyond loopback. Names that lead
// to non-loopback addresses exist only to be refused before any connection.
const NAMES: Record<string, string[]> = {
  'api.test.corral': ['127.0.0.1'],
  'other.test.corral': ['127.0.0.1'],
  'svc.wild.test.corral': ['127.0.0.1'],
  'deep.svc.wild.test.corral': ['127.0.0.1'],
  'wild.test.corral': ['127.0.0.1'],
  'loop.evil.test': ['127.0.0.1'],
  'mapped.evil.test': ['::ffff:127.0.0.1'],
  'ten.evil.test': ['10.1.2.3'],
  'meta.evil.test': ['169.254.169.254'],
  'mixed.test.corral': ['10.0.0.1', '169.254.169.254', '127.0.0.1'],
  'empty.test.corral': [],
};
const looked: string[] = [];
const lookup: EgressLookup = async (hostname) => {
  looked.push(hostname);
  if (hostname === 'slow.test.corral') return new Promise(() => undefined);
  if (hostname === 'junk.test.corral') return [{ address: 'not an address', family: 4 }];
  const found = NAMES[hostname];
  if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: net.isIP(address) }));
};

function rules(...texts: string[]): EgressRule[] {
  return texts.map((t) => {
    const rule = parseEgressRule(t);
    if (typeof rule === 'string') throw new TypeError(rule);
    return rule;
  });
}

// ---- upstream servers on loopback

const block = Buffer.alloc(64 * 1024, 0x61);
/** 8 MiB of random bytes, sent whole by `sender` and by the HTTP upstream's /payload. */
const payload = randomBytes(8 << 20);

function upstreamHttp(): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/echo') {
      let bodyBytes = 0;
      req.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
      req.on('end', () => res.end(JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, bodyBytes })));
      return;
    }
    if (url.pathname === '/bytes') {
      let left = Number(url.searchParams.get('n'));
      const chunked = url.searchParams.has('chunked');
      res.writeHead(200, chunked ? {} : { 'Content-Length': left });
      const pump = () => {
        while (left > 0) {
          const piece = block.subarray(0, Math.min(left, block.length));
          left -= piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (url.pathname === '/payload') {
      // The same 8 MiB of random bytes each time, with a Content-Length or chunked.
      res.writeHead(200, url.searchParams.has('chunked') ? {} : { 'Content-Length': payload.length });
      res.end(payload);
      return;
    }
    if (url.pathname === '/mirror') {
      // No Content-Length: the answer is chunked, the request body streamed back as it comes.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    if (url.pathname === '/reset') {
      res.writeHead(200, { 'Content-Length': 100_000 });
      res.write(block.subarray(0, 1000), () => req.socket.resetAndDestroy());
      return;
    }
    res.writeHead(404).end();
  });
}

/**
 * Answers each request with the exact bytes of SCRIPTS[path], then ends the
 * connection or (`open`) leaves it open; remembers every request head it saw.
 */
const SCRIPTS: Record<string, { answer: string; open?: boolean }> = {
  '/extra': { answer: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil', open: true },
  '/to-close': { answer: 'HTTP/1.0 200 OK\r\nX-Kept: yes\r\nConnection: close\r\n\r\nuntil the end' },
  '/head': { answer: 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', open: true },
  '/hints': { answer: 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', open: true },
  '/folded': { answer: 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok' },
  '/short': { answer: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort' },
  '/no-content': { answer: 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Kept: yes\r\n\r\n', open: true },
};
const scriptedHeads: string[] = [];
function scripted(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      scriptedHeads.push(head.slice(0, end));
      const script = SCRIPTS[head.split(' ')[1] ?? ''];
      head = '';
      if (script === undefined) return void socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      if (script.open) socket.write(script.answer);
      else socket.end(script.answer);
    });
  });
}

/** Reads `count` answers with a Content-Length each off one connection (a keep-alive or pipelined exchange). */
function answers(socket: net.Socket, count: number): Promise<{ status: number; body: string }[]> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const out: { status: number; body: string }[] = [];
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffer.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
        if (Number.isNaN(length)) return reject(new Error(`an answer without Content-Length: ${head}`));
        if (buffer.length < end + 4 + length) return;
        out.push({ status: Number(head.split(' ')[1]), body: buffer.subarray(end + 4, end + 4 + length).toString('latin1') });
        buffer = buffer.subarray(end + 4 + length);
        if (out.length === count) return resolve(out);
      }
    });
    socket.once('close', () => reject(new Error(`closed after ${out.length} of ${count} answers`)));
  });
}

/** Reads until the client's FIN, then answers twice as many bytes and ends: a half-close check and a byte count. */
function doubler(): net.Server {
  return net.createServer({ allowHalfOpen: true }, (socket) => {
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('end', () => socket.end(Buffer.alloc(received * 2, 0x62)));
    socket.on('error', () => undefined);
  });
}

function echo(): net.Server {
  return net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
}

/** Sends without end and ignores the client's FIN: only a torn-down connection stops it. */
const firehoseEvents = new EventEmitter();
function firehose(): net.Server {
  return net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => undefined);
    socket.on('close', () => firehoseEvents.emit('closed'));
    const pump = () => {
      while (!socket.destroyed && socket.write(block));
      if (!socket.destroyed) socket.once('drain', pump);
    };
    pump();
  });
}

/** Speaks first, as SMTP or SSH servers do. */
function greeter(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write('220 corral-test ready\r\n');
    socket.pipe(socket);
  });
}

/** Sends `payload` to every client, then ends. */
function sender(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(payload);
  });
}

/** Accepts, and on the first byte resets the connection. */
function resetter(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.resetAndDestroy());
  });
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

// ---- clients

interface Head {
  status: number;
  headers: Record<string, string>;
  rest: Buffer;
}

function readHead(socket: net.Socket): Promise<Head> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      cleanup();
      socket.pause();
      const [statusLine = '', ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, rest: buffer.subarray(end + 4) });
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`connection closed before an answer (${buffer.length} bytes)`));
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
  });
}

async function readAll(socket: net.Socket, first: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  const chunks = [first];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.resume();
  await Promise.race([once(socket, 'end'), once(socket, 'close')]);
  return Buffer.concat(chunks);
}

/** Sends raw request text to the channel and reads the whole answer (the proxy closes after its own answers). */
async function rawExchange(channel: EgressChannel, text: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const socket = net.connect(channel.socketPath);
  socket.on('error', () => undefined);
  socket.write(text);
  const head = await readHead(socket);
  const length = Number(head.headers['content-length'] ?? 0);
  let body = head.rest;
  if (body.length < length) body = await readAll(socket, body);
  socket.destroy();
  return { status: head.status, headers: head.headers, body: body.subarray(0, length).toString() };
}

/** Opens a CONNECT tunnel; resolves with the answer and, on 200, the tunnelled socket. */
async function tunnel(channel: EgressChannel, authority: string, early?: Buffer): Promise<{ status: number; headers: Record<string, string>; body: string; socket: net.Socket }> {
  const socket = net.connect(channel.socketPath);
  socket.on('error', () => undefined);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: Basic c2VjcmV0LXRva2Vu\r\n\r\n`);
  if (early) socket.write(early);
  const head = await readHead(socket);
  if (head.status === 200) {
    if (head.rest.length > 0) socket.unshift(head.rest);
    socket.resume();
    return { status: 200, headers: head.headers, body: '', socket };
  }
  const length = Number(head.headers['content-length'] ?? 0);
  let body = head.rest;
  if (body.length < length) body = await readAll(socket, body);
  return { status: head.status, headers: head.headers, body: body.subarray(0, length).toString(), socket };
}

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  reused: boolean;
}

function viaHttp(channel: EgressChannel, url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer; agent?: http.Agent } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: channel.socketPath, path: url, method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket }));
    });
    req.end(options.body);
  });
}

async function until<T>(probe: () => T | undefined, what: string, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function finished(channel: EgressChannel, count: number): Promise<ConnectionRecord[]> {
  return until(() => {
    const all = channel.connections();
    return all.length >= count && all.every((r) => !r.open) ? all : undefined;
  }, `${count} finished records`);
}

// ---- the suite

const servers: net.Server[] = [];
let proxy: EgressProxy;
let httpPort: number;
let doublerPort: number;
let echoPort: number;
let resetPort: number;
let closedPort: number;
let firehosePort: number;
let greeterPort: number;
let senderPort: number;
let scriptedPort: number;

before(async () => {
  const h = upstreamHttp();
  const d = doubler();
  const e = echo();
  const r = resetter();
  const f = firehose();
  const g = greeter();
  const p = sender();
  const sc = scripted();
  servers.push(h, d, e, r, f, g, p, sc);
  [httpPort, doublerPort, echoPort, resetPort, firehosePort, greeterPort, senderPort, scriptedPort] = await Promise.all([
    listen(h),
    listen(d),
    listen(e),
    listen(r),
    listen(f),
    listen(g),
    listen(p),
    listen(sc),
  ]);
  const gone = net.createServer();
  closedPort = await listen(gone);
  await new Promise((res) => gone.close(res));
  proxy = new EgressProxy({ lookup, headerTimeoutMs: 300, dnsTimeoutMs: 200, connectTimeoutMs: 2000, maxHeaderSize: 8192 });
});

after(async () => {
  await proxy.close();
  for (const s of servers) {
    if (s instanceof http.Server) s.closeAllConnections();
    s.close();
  }
});

async function open(...texts: string[]): Promise<EgressChannel> {
  return proxy.openChannel(rules(...texts));
}

describe('EgressProxy', () => {
  describe('when a rule names the host and a CIDR rule lists the loopback address it resolves to', () => {
    let channel: EgressChannel;
    before(async () => {
      channel = await open('api.test.corral:*', '127.0.0.1/32:*');
    });
    after(() => channel.close());

    it('tunnels CONNECT and records the name rule and the address rule', async () => {
      const t = await tunnel(channel, `api.test.corral:${httpPort}`);
      assert.equal(t.status, 200);
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request({ createConnection: () => t.socket, path: '/echo', headers: { Host: 'api.test.corral' } }, resolve);
        req.on('error', reject);
        req.end();
      });
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      assert.equal(JSON.parse(Buffer.concat(chunks).toString()).url, '/echo');
      t.socket.destroy();
      const [record] = await finished(channel, 1);
      assert.equal(record?.method, 'CONNECT');
      assert.equal(record?.host, 'api.test.corral');
      assert.equal(record?.port, httpPort);
      assert.equal(record?.address, '127.0.0.1');
      assert.equal(record?.allowed, true);
      assert.equal(record?.rule, 'api.test.corral:*');
      assert.equal(record?.addressRule, '127.0.0.1/32:*');
      assert.equal(record?.special, 'loopback');
      assert.equal(record?.status, 200);
    });

    it('forwards plain HTTP in absolute form, with Host taken from the URI', async () => {
      const got = await viaHttp(channel, `http://API.test.corral:${httpPort}/echo?q=1`, { headers: { Host: 'somewhere.else' } });
      assert.equal(got.status, 200);
      const seen = JSON.parse(got.body.toString());
      assert.equal(seen.url, '/echo?q=1');
      const host = seen.rawHeaders[seen.rawHeaders.findIndex((h: string) => h.toLowerCase() === 'host') + 1];
      assert.equal(host, `api.test.corral:${httpPort}`);
      const record = (await finished(channel, 2)).at(-1);
      assert.equal(record?.method, 'HTTP');
      assert.equal(record?.httpMethod, 'GET');
      assert.equal(record?.allowed, true);
      assert.equal(record?.status, 200);
    });
  });

  describe('bytes', () => {
    it('counts both ways through a tunnel, early data and half-close included', async (t) => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      t.after(() => channel.close());
      const opened = await tunnel(channel, `api.test.corral:${doublerPort}`, Buffer.alloc(100, 1));
      assert.equal(opened.status, 200);
      opened.socket.end(Buffer.alloc(900, 1));
      const back = await readAll(opened.socket);
      assert.equal(back.length, 2000);
      const [record] = await finished(channel, 1);
      assert.equal(record?.bytesSent, 1000);
      assert.equal(record?.bytesReceived, 2000);
      assert.equal(record?.aborted, undefined);
    });

    // The client's end had come (and gone, unheard) while the tunnel was being decided: the
    // upstream never learnt of it, and the tunnel stayed open, half-closed, until the run ended.
    it('passes on a half-close the client sent with its CONNECT, before the tunnel opened', { timeout: 10_000 }, async (t) => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      t.after(() => channel.close());
      const socket = net.connect({ path: channel.socketPath, allowHalfOpen: true });
      socket.on('error', () => undefined);
      t.after(() => socket.destroy());
      socket.end(Buffer.concat([Buffer.from(`CONNECT api.test.corral:${doublerPort} HTTP/1.1\r\n\r\n`), Buffer.alloc(100, 1)]));
      const head = await readHead(socket);
      assert.equal(head.status, 200);
      const back = await readAll(socket, head.rest);
      assert.equal(back.length, 200);
      const [record] = await finished(channel, 1);
      assert.deepEqual([record?.bytesSent, record?.bytesReceived, record?.aborted], [100, 200, undefined]);
    });

    it('counts both ways for plain HTTP, streaming a 1 MiB upload and a 4 MiB chunked download', async (t) => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      t.after(() => channel.close());
      const up = await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`, { method: 'POST', body: Buffer.alloc(1 << 20, 2) });
      assert.equal(JSON.parse(up.body.toString()).bodyBytes, 1 << 20);
      const down = await viaHttp(channel, `http://api.test.corral:${httpPort}/bytes?n=${4 << 20}&chunked`);
      assert.equal(down.body.length, 4 << 20);
      const [upload, download] = await finished(channel, 2);
      assert.ok((upload?.bytesSent ?? 0) > 1 << 20 && (upload?.bytesSent ?? 0) < (1 << 20) + 2000, `sent ${upload?.bytesSent}`);
      assert.ok((download?.bytesReceived ?? 0) > 4 << 20, `received ${download?.bytesReceived}`);
    });
  });

  describe('plain HTTP relayed as bytes after the head', () => {
    let channel: EgressChannel;
    before(async () => {
      channel = await open('api.test.corral:*', '127.0.0.1/32:*');
    });
    after(() => channel.close());

    it('relays a chunked upload and a chunked answer byte-exact, and counts the bytes', async () => {
      const sent = randomBytes(3 << 20);
      const before = channel.connections().length;
      const got = await new Promise<Buffer>((resolve, reject) => {
        const req = http.request({ socketPath: channel.socketPath, path: `http://api.test.corral:${httpPort}/mirror`, method: 'POST', agent: false });
        req.on('error', reject);
        req.on('response', (res) => {
          assert.equal(res.headers['transfer-encoding'], 'chunked');
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        });
        // Written in uneven pieces, without a Content-Length: the client chunks it.
        for (let at = 0; at < sent.length; at += 100_003) req.write(sent.subarray(at, at + 100_003));
        req.end();
      });
      assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(sent).digest('hex'));
      const record = (await finished(channel, before + 1)).at(-1);
      assert.equal(record?.aborted, undefined);
      assert.ok((record?.bytesSent ?? 0) > sent.length && (record?.bytesSent ?? 0) < sent.length + 4000, `sent ${record?.bytesSent}`);
      assert.ok((record?.bytesReceived ?? 0) > sent.length && (record?.bytesReceived ?? 0) < sent.length + 4000, `received ${record?.bytesReceived}`);
    });

    it('relays a chunked upload intact to an upstream that reads it slowly, so that the proxy’s writes back up', async (t) => {
      const slow = http.createServer((req, res) => {
        req.pause();
        setTimeout(() => {
          const hash = createHash('sha256');
          req.on('data', (c: Buffer) => hash.update(c));
          req.on('end', () => res.end(hash.digest('hex')));
          req.resume();
        }, 300);
      });
      const port = await listen(slow);
      t.after(() => {
        slow.closeAllConnections();
        slow.close();
      });
      // 8 MiB: more than the kernel's buffers on the way hold (about 4 MiB here), so the proxy's own buffer fills.
      const sent = payload;
      const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ socketPath: channel.socketPath, path: `http://api.test.corral:${port}/`, method: 'POST', agent: false });
        req.on('error', reject);
        req.on('response', (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        // No Content-Length: the client chunks it, and the proxy re-chunks what Node's parser gives it.
        for (let at = 0; at < sent.length; at += 65_536) req.write(sent.subarray(at, at + 65_536));
        req.end();
      });
      assert.deepEqual(got, { status: 200, body: createHash('sha256').update(sent).digest('hex') });
    });

    it('serves two requests on one client connection, each over its own upstream connection with Connection: close, each with its own record', async (t) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      t.after(() => agent.destroy());
      const before = channel.connections().length;
      const first = await viaHttp(channel, `http://api.test.corral:${httpPort}/echo?n=1`, { agent });
      const second = await viaHttp(channel, `http://api.test.corral:${httpPort}/echo?n=2`, { agent, method: 'POST', body: Buffer.from('body of the second') });
      assert.equal(second.reused, true, 'the second request did not reuse the client connection');
      const [one, two] = [JSON.parse(first.body.toString()), JSON.parse(second.body.toString())];
      assert.deepEqual([one.url, two.url, two.method, two.bodyBytes], ['/echo?n=1', '/echo?n=2', 'POST', 18]);
      for (const seen of [one, two]) {
        const connection = (seen.rawHeaders as string[]).findIndex((h) => h.toLowerCase() === 'connection');
        assert.equal(seen.rawHeaders[connection + 1], 'close');
      }
      const records = (await finished(channel, before + 2)).slice(before);
      assert.deepEqual(
        records.map((r) => [r.httpMethod, r.allowed, r.status]),
        [
          ['GET', true, 200],
          ['POST', true, 200],
        ],
      );
    });

    it('refuses a second request to a refused host pipelined on the same client connection', async () => {
      const before = channel.connections().length;
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      const read = answers(socket, 2);
      socket.write(
        `GET http://api.test.corral:${httpPort}/echo HTTP/1.1\r\nHost: api.test.corral\r\n\r\n` +
          'GET http://api.evil.com/steal HTTP/1.1\r\nHost: api.evil.com\r\n\r\n',
      );
      const [first, second] = await read;
      socket.destroy();
      assert.equal(first?.status, 200);
      assert.equal(JSON.parse(first?.body ?? '').url, '/echo');
      assert.deepEqual([second?.status, second?.body], [403, 'corral egress: refused api.evil.com:80 (not-allowed)\n']);
      const records = (await finished(channel, before + 2)).slice(before);
      assert.deepEqual(
        records.map((r) => [r.host, r.allowed, r.reason]),
        [
          ['api.test.corral', true, undefined],
          ['api.evil.com', false, 'not-allowed'],
        ],
      );
    });

    it('stops at the announced length without waiting for the upstream to close, and passes on nothing after it', async (t) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      t.after(() => agent.destroy());
      const smuggling = await viaHttp(channel, `http://api.test.corral:${scriptedPort}/extra`, { agent });
      const next = await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`, { agent });
      assert.deepEqual([smuggling.status, smuggling.body.toString()], [200, 'hello']);
      assert.deepEqual([next.reused, JSON.parse(next.body.toString()).url], [true, '/echo']);
    });

    it('passes on a body that runs to the end of the upstream connection, framed for the client', async () => {
      const got = await viaHttp(channel, `http://api.test.corral:${scriptedPort}/to-close`);
      assert.deepEqual([got.status, got.body.toString(), got.headers['x-kept']], [200, 'until the end', 'yes']);
      assert.equal(got.headers['transfer-encoding'], 'chunked');
    });

    it('answers HEAD with the announced length and no body, without waiting for one', async () => {
      const got = await viaHttp(channel, `http://api.test.corral:${scriptedPort}/head`, { method: 'HEAD' });
      assert.deepEqual([got.status, got.headers['content-length'], got.body.length], [200, '1000', 0]);
      assert.match(scriptedHeads.at(-1) ?? '', /^HEAD \/head HTTP\/1\.1\r\n/);
    });

    it('passes on a 204 without the Content-Length its upstream wrongly sent', async () => {
      const got = await viaHttp(channel, `http://api.test.corral:${scriptedPort}/no-content`);
      assert.deepEqual([got.status, got.headers['content-length'], got.headers['x-kept'], got.body.length], [204, undefined, 'yes', 0]);
    });

    it('passes on the final answer after an interim 103', async () => {
      const got = await viaHttp(channel, `http://api.test.corral:${scriptedPort}/hints`);
      assert.deepEqual([got.status, got.body.toString()], [200, 'ok']);
    });

    it('answers 502 upstream-failed to a head with a folded line, and records aborted upstream', async () => {
      const before = channel.connections().length;
      const got = await viaHttp(channel, `http://api.test.corral:${scriptedPort}/folded`);
      assert.deepEqual([got.status, got.headers['x-corral-refused']], [502, 'upstream-failed']);
      const record = (await finished(channel, before + 1)).at(-1);
      assert.deepEqual([record?.allowed, record?.aborted, record?.status], [true, 'upstream', 502]);
    });

    it('cuts the client off when the upstream ends short of its Content-Length', async () => {
      const before = channel.connections().length;
      await assert.rejects(viaHttp(channel, `http://api.test.corral:${scriptedPort}/short`));
      const record = (await finished(channel, before + 1)).at(-1);
      assert.deepEqual([record?.allowed, record?.aborted, record?.status], [true, 'upstream', 200]);
    });
  });

  describe('when a client pipelines requests on one connection', () => {
    // Holds every request it gets until released, counting those it has not answered.
    let held: net.Socket[] | undefined;
    let unanswered = 0;
    let most = 0;
    let holderPort: number;
    const reply = (s: net.Socket) => {
      unanswered--;
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    };
    const release = () => {
      for (const s of held ?? []) reply(s);
      held = undefined;
    };
    const holder = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => {
        most = Math.max(most, ++unanswered);
        if (held === undefined) reply(s);
        else held.push(s);
      });
    });
    let channel: EgressChannel;
    before(async () => {
      holderPort = await listen(holder);
      channel = await open('api.test.corral:*', '127.0.0.1/32:*');
    });
    after(async () => {
      await channel.close();
      holder.close();
    });
    beforeEach(() => {
      held = [];
      most = 0;
    });

    it('holds one upstream connection at a time, and answers each of 8 requests in order', async () => {
      const before = channel.connections().length;
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      const read = answers(socket, 8);
      socket.write(`GET http://api.test.corral:${holderPort}/ HTTP/1.1\r\n\r\n`.repeat(8));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(most, 1, 'upstream requests in flight at once');
      release();
      const got = await read;
      socket.destroy();
      assert.deepEqual(got.map((a) => [a.status, a.body]), Array.from({ length: 8 }, () => [200, 'ok']));
      assert.equal(most, 1, 'upstream requests in flight at once');
      const records = (await finished(channel, before + 8)).slice(before);
      assert.ok(records.every((r) => r.allowed && r.status === 200));
    });

    it('cuts off a client that pipelines more than 8 requests behind an unfinished answer, and records it', async () => {
      const before = channel.connections().length;
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      // 500 requests at once: unbounded, each was parsed and sent upstream on a connection of its own.
      socket.write(`GET http://api.test.corral:${holderPort}/ HTTP/1.1\r\nX-Pad: ${'p'.repeat(1000)}\r\n\r\n`.repeat(500));
      // Cut off with requests unread: the client sees a reset.
      await until(() => socket.destroyed || undefined, 'the proxy to cut the client off');
      assert.ok(most <= 1, `${most} upstream requests in flight at once`);
      const records = (await finished(channel, before + 2)).slice(before);
      // The first request's attempt is given up when the client is cut off (or, had it connected
      // first, ends there): either way it ends with the client.
      const first = records[0];
      assert.ok(first?.reason === 'client-closed' || (first?.allowed && first.aborted === 'client'), JSON.stringify(first));
      assert.deepEqual([records[1]?.allowed, records[1]?.reason], [false, 'bad-request']);
      release();
    });

    it('counts the requests a client pipelined and then left before they were taken up as dropped, so that the run counts every attempt', async () => {
      const before = channel.connections().length;
      const dropped = channel.droppedRecords;
      const warnings: string[] = [];
      const onWarning = (warning: Error) => warnings.push(warning.name);
      process.on('warning', onWarning);
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      socket.write(`GET http://api.test.corral:${holderPort}/ HTTP/1.1\r\n\r\n`.repeat(9));
      await until(() => most === 1 || undefined, 'the first request upstream');
      socket.destroy();
      await finished(channel, before + 1);
      await new Promise((r) => setTimeout(r, 50));
      process.off('warning', onWarning);
      release();
      assert.equal(channel.connections().length - before, 1);
      assert.equal(channel.droppedRecords - dropped, 8);
      // One listener for the connection, not one for each request waiting on it.
      assert.deepEqual(warnings, []);
    });

    it('counts as dropped the requests a client pipelined past the cut-off', async () => {
      const before = channel.connections().length;
      const dropped = channel.droppedRecords;
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      socket.write(`GET http://api.test.corral:${holderPort}/ HTTP/1.1\r\n\r\n`.repeat(12));
      await until(() => socket.destroyed || undefined, 'the proxy to cut the client off');
      await finished(channel, before + 2);
      await new Promise((r) => setTimeout(r, 50));
      release();
      assert.equal(channel.connections().length - before + channel.droppedRecords - dropped, 12);
    });

    it('cuts off a client that pipelines a CONNECT behind an unfinished answer, opening no tunnel, and records it', async () => {
      const before = channel.connections().length;
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      // The tunnel opened beside the held answer: a second upstream connection for one client
      // connection, its 200 and the tunnelled bytes written before the answer to the GET.
      socket.write(`GET http://api.test.corral:${holderPort}/ HTTP/1.1\r\n\r\nCONNECT api.test.corral:${echoPort} HTTP/1.1\r\n\r\nping`);
      await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 500))]);
      release();
      socket.destroy();
      assert.ok(!received.includes('Connection Established'), received);
      assert.ok(!received.includes('ping'), received);
      const records = (await finished(channel, before + 2)).slice(before);
      const connect = records.find((r) => r.method === 'CONNECT');
      assert.deepEqual([connect?.allowed, connect?.reason, connect?.host, connect?.port], [false, 'bad-request', 'api.test.corral', echoPort]);
    });
  });

  describe('when a malformed request follows an answer already under way on the same connection', () => {
    // Sends the head and half the body of its answer, and the rest when told.
    const rest: net.Socket[] = [];
    const trickle = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234');
        rest.push(s);
      });
    });
    let trickPort: number;
    let channel: EgressChannel;
    before(async () => {
      trickPort = await listen(trickle);
      channel = await open('api.test.corral:*', '127.0.0.1/32:*');
    });
    after(async () => {
      await channel.close();
      trickle.close();
    });

    it('cuts the client off and never writes its refusal into the middle of that answer', async () => {
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      socket.write(`GET http://api.test.corral:${trickPort}/ HTTP/1.1\r\n\r\n`);
      await until(() => received.endsWith('01234') || undefined, 'half the answer');
      socket.write('GARBAGE\r\n\r\n');
      await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 3000))]);
      for (const s of rest) s.end('56789');
      socket.destroy();
      // Before: '…01234HTTP/1.1 400 Bad Request…', read by the client as the answer's last 5 bytes and more.
      assert.ok(received.endsWith('\r\n\r\n01234'), JSON.stringify(received));
      assert.ok(!received.includes('X-Corral-Refused'), JSON.stringify(received));
      const records = await finished(channel, 2);
      assert.deepEqual(
        records.map((r) => [r.allowed, r.reason ?? null, r.aborted ?? null]),
        [
          [true, null, 'client'],
          [false, 'bad-request', null],
        ],
      );
    });
  });

  describe('when clients send a request and leave at once, again and again', () => {
    // Each client frees its connection slot as it leaves: an attempt kept going after it would make
    // work (resolver calls, upstream connections) the channel's connection cap no longer bounds.
    it('gives each attempt up: no upstream connection, at most 4 resolver calls under way, each recorded client-closed', async (t) => {
      let under = 0;
      let most = 0;
      const slowLookup: EgressLookup = async () => {
        most = Math.max(most, ++under);
        await new Promise((r) => setTimeout(r, 100));
        under--;
        return [{ address: '127.0.0.1', family: 4 }];
      };
      let reached = 0;
      const counter = net.createServer((s) => {
        reached++;
        s.destroy();
      });
      const counterPort = await listen(counter);
      const own = new EgressProxy({ lookup: slowLookup, maxConnectionsPerChannel: 8, dnsTimeoutMs: 5000 });
      const channel = await own.openChannel(rules('api.test.corral:*', '127.0.0.1/32:*'));
      t.after(async () => {
        await own.close();
        counter.close();
      });
      for (let i = 1; i <= 60; i++) {
        const socket = net.connect(channel.socketPath);
        socket.on('error', () => undefined);
        socket.write(`GET http://api.test.corral:${counterPort}/ HTTP/1.1\r\n\r\n`);
        await until(() => channel.connections().length >= i, 'the request to arrive');
        socket.destroy();
      }
      const records = await finished(channel, 60);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(reached, 0, 'upstream connections made for clients that had gone');
      assert.ok(most <= 4, `${most} resolver calls under way at once`);
      assert.deepEqual(new Set(records.map((r) => `${r.allowed} ${r.reason}`)), new Set(['false client-closed']));
    });
  });

  describe('when a client opens more connections than the channel holds', () => {
    it('closes the ones past maxConnectionsPerChannel unread, and counts each in droppedRecords', async (t) => {
      const own = new EgressProxy({ lookup, maxConnectionsPerChannel: 2 });
      const channel = await own.openChannel(rules('api.test.corral:*'));
      t.after(() => own.close());
      const sockets = Array.from({ length: 5 }, () => {
        const socket = net.connect(channel.socketPath);
        socket.on('error', () => undefined);
        return socket;
      });
      t.after(() => sockets.forEach((s) => s.destroy()));
      await until(() => sockets.filter((s) => s.destroyed).length === 3 || undefined, 'three connections closed');
      assert.equal(channel.connections().length, 0);
      assert.equal(channel.droppedRecords, 3);
    });
  });

  describe('when a client opens many connections to names at once', () => {
    it('resolves at most 4 names at once for the channel, and every request still gets through in its turn', async (t) => {
      let under = 0;
      let most = 0;
      const slowLookup: EgressLookup = async () => {
        most = Math.max(most, ++under);
        await new Promise((r) => setTimeout(r, 30));
        under--;
        return [{ address: '127.0.0.1', family: 4 }];
      };
      // More for the proxy than for one channel: the channel's own bound is the one seen here.
      const own = new EgressProxy({ lookup: slowLookup, dnsTimeoutMs: 5000, maxLookups: 8 });
      const channel = await own.openChannel(rules('api.test.corral:*', '127.0.0.1/32:*'));
      t.after(() => own.close());
      const got = await Promise.all(Array.from({ length: 12 }, () => viaHttp(channel, `http://api.test.corral:${httpPort}/bytes?n=10`)));
      assert.deepEqual(new Set(got.map((g) => g.status)), new Set([200]));
      assert.equal(most, 4, 'resolver calls under way at once');
    });
  });

  describe('when no rule names the host (api.evil.com)', () => {
    let channel: EgressChannel;
    before(async () => {
      channel = await open('api.test.corral:*', '127.0.0.1/32:*');
    });
    after(() => channel.close());

    it('refuses CONNECT with 403, a plain-text reason and X-Corral-Refused, and never resolves the name', async () => {
      const t = await tunnel(channel, 'api.evil.com:443');
      assert.equal(t.status, 403);
      assert.equal(t.headers['x-corral-refused'], 'not-allowed');
      assert.equal(t.body, 'corral egress: refused api.evil.com:443 (not-allowed)\n');
      assert.ok(!looked.includes('api.evil.com'), 'the name was sent to the resolver');
      const record = (await finished(channel, 1)).at(-1);
      assert.deepEqual([record?.host, record?.port, record?.allowed, record?.reason], ['api.evil.com', 443, false, 'not-allowed']);
    });

    it('refuses plain HTTP with 403 and keeps the client connection usable', async (t) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      t.after(() => agent.destroy());
      const first = await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`, { agent });
      const refused = await viaHttp(channel, 'http://api.evil.com/steal', { agent });
      const third = await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`, { agent });
      assert.equal(first.status, 200);
      assert.equal(refused.status, 403);
      assert.equal(refused.headers['x-corral-refused'], 'not-allowed');
      assert.equal(refused.body.toString(), 'corral egress: refused api.evil.com:80 (not-allowed)\n');
      assert.equal(third.status, 200);
      assert.equal(refused.reused && third.reused, true, 'the three requests shared one client connection');
    });

    // Node's server answered such a request 417 on its own, before the proxy saw it: an attempt
    // that left no record.
    it('decides and records a request that asks an expectation other than 100-continue, and forwards it to an allowed host without Expect', async () => {
      const answer = await rawExchange(channel, 'GET http://api.evil.com/steal HTTP/1.1\r\nExpect: x-unmet\r\n\r\n');
      assert.deepEqual([answer.status, answer.headers['x-corral-refused']], [403, 'not-allowed']);
      const refused = (await finished(channel, 1)).at(-1);
      assert.deepEqual([refused?.host, refused?.port, refused?.allowed, refused?.reason], ['api.evil.com', 80, false, 'not-allowed']);
      const got = await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`, { headers: { Expect: 'x-unmet' } });
      assert.equal(got.status, 200);
      const names = (JSON.parse(got.body.toString()).rawHeaders as string[]).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      assert.ok(!names.includes('expect'), 'Expect was forwarded');
      const allowed = (await finished(channel, 1)).at(-1);
      assert.deepEqual([allowed?.host, allowed?.allowed, allowed?.status], ['api.test.corral', true, 200]);
    });
  });

  describe('when a rule names the host but not the port', () => {
    it('refuses port-not-allowed', async (t) => {
      const channel = await open('api.test.corral:443', '127.0.0.1/32:*');
      t.after(() => channel.close());
      const answer = await tunnel(channel, `api.test.corral:${httpPort}`);
      assert.equal(answer.status, 403);
      assert.equal(answer.headers['x-corral-refused'], 'port-not-allowed');
      const [record] = await finished(channel, 1);
      assert.equal(record?.reason, 'port-not-allowed');
    });
  });

  describe('when a name resolves to a special address', () => {
    const cases: [string, string, string][] = [
      ['loop.evil.test', 'loopback', '127.0.0.1'],
      ['mapped.evil.test', 'loopback', '127.0.0.1'],
      ['ten.evil.test', 'private', '10.1.2.3'],
      ['meta.evil.test', 'metadata', '169.254.169.254'],
    ];
    for (const [name, kind, address] of cases) {
      it(`refuses ${name} (${address}) and records private-address, ${kind}`, async (t) => {
        // A broad link-local rule and the whole IPv4 space do not list these addresses explicitly.
        const channel = await open(`${name}:*`, '169.254.0.0/16:*', '0.0.0.0/0:*');
        t.after(() => channel.close());
        const answer = await tunnel(channel, `${name}:${httpPort}`);
        assert.equal(answer.status, 403);
        assert.equal(answer.headers['x-corral-refused'], 'private-address');
        const [record] = await finished(channel, 1);
        assert.deepEqual([record?.allowed, record?.reason, record?.special, record?.address], [false, 'private-address', kind, address]);
      });
    }

    it('connects when a CIDR rule lists the loopback address itself', async (t) => {
      const channel = await open('loop.evil.test:*', `127.0.0.1/32:${httpPort}`);
      t.after(() => channel.close());
      const got = await viaHttp(channel, `http://loop.evil.test:${httpPort}/echo`);
      assert.equal(got.status, 200);
    });

    it('connects only to the permitted address of a mixed answer', async (t) => {
      const channel = await open('mixed.test.corral:*', '127.0.0.1/32:*', '169.254.0.0/16:*');
      t.after(() => channel.close());
      const got = await viaHttp(channel, `http://mixed.test.corral:${httpPort}/echo`);
      assert.equal(got.status, 200);
      const [record] = await finished(channel, 1);
      assert.equal(record?.address, '127.0.0.1');
    });
  });

  describe('when the destination is one of the host\'s own addresses', () => {
    // Refused before any connection: the address only stands for one of the host's own here.
    it('refuses a name resolving to it and the literal under 0.0.0.0/0, as private-address of kind host', async (t) => {
      const own = new EgressProxy({
        lookup: async () => [{ address: '93.184.216.34', family: 4 }],
        hostAddresses: () => ['127.0.0.1', '93.184.216.34', 'fe80::1'],
      });
      t.after(() => own.close());
      const channel = await own.openChannel(rules('self.test.corral:443', '0.0.0.0/0:443'));
      for (const authority of ['self.test.corral:443', '93.184.216.34:443', '[::ffff:93.184.216.34]:443']) {
        const answer = await tunnel(channel, authority);
        assert.deepEqual([answer.status, answer.headers['x-corral-refused']], [403, 'private-address'], authority);
      }
      const records = await finished(channel, 3);
      assert.deepEqual(
        records.map((r) => [r.allowed, r.address, r.special]),
        Array.from({ length: 3 }, () => [false, '93.184.216.34', 'host']),
      );
    });

    // Regression: 192.0.2.0/24:18555 opened the host's own 192.0.2.2 (and its service on 0.0.0.0:18555),
    // 10.0.0.0/8:5432 a cloud VM's own 10.x address: the host check ran only outside every special range.
    it('refuses the host\'s own address inside a special range a rule opens, as a literal and through a name, as private-address of kind host', async (t) => {
      const own = new EgressProxy({
        lookup: async () => [{ address: '10.1.2.3', family: 4 }],
        hostAddresses: () => ['127.0.0.1', '192.0.2.2', '10.1.2.3'],
        // Refused before any connection; were one tried, it would fail at once rather than wait.
        connectTimeoutMs: 200,
      });
      t.after(() => own.close());
      const channel = await own.openChannel(rules('192.0.2.0/24:18555', '10.0.0.0/8:5432', 'db.test.corral:5432'));
      for (const authority of ['192.0.2.2:18555', '[::ffff:192.0.2.2]:18555', '10.1.2.3:5432', 'db.test.corral:5432']) {
        const answer = await tunnel(channel, authority);
        assert.deepEqual([answer.status, answer.headers['x-corral-refused']], [403, 'private-address'], authority);
      }
      const records = await finished(channel, 4);
      assert.deepEqual(
        records.map((r) => [r.allowed, r.address, r.special]),
        [
          [false, '192.0.2.2', 'host'],
          [false, '192.0.2.2', 'host'],
          [false, '10.1.2.3', 'host'],
          [false, '10.1.2.3', 'host'],
        ],
      );
    });

    // Reading them (os.networkInterfaces(), some 0.2 ms of the proxy's one thread) made a refused
    // literal cost the proxy four times what a refused name does, for as many as a contained
    // command cared to send.
    it('reads the host’s addresses only for a literal a CIDR rule opens, never for one refused anyway', async (t) => {
      let reads = 0;
      const own = new EgressProxy({
        hostAddresses: () => {
          reads++;
          return ['93.184.216.34'];
        },
      });
      t.after(() => own.close());
      const channel = await own.openChannel(rules('93.184.216.0/24:443'));
      for (const [authority, reason] of [
        ['8.8.8.8:443', 'not-allowed'],
        ['93.184.216.34:80', 'port-not-allowed'],
        ['[2001:db8::1]:443', 'not-allowed'],
        ['127.0.0.1:443', 'not-allowed'],
      ] as const) {
        const answer = await tunnel(channel, authority);
        assert.deepEqual([answer.status, answer.headers['x-corral-refused']], [403, reason], authority);
      }
      assert.equal(reads, 0);
      const answer = await tunnel(channel, '93.184.216.34:443');
      assert.deepEqual([answer.status, answer.headers['x-corral-refused']], [403, 'private-address']);
      assert.equal(reads, 1);
      const record = (await finished(channel, 5)).at(-1);
      assert.deepEqual([record?.address, record?.special], ['93.184.216.34', 'host']);
    });
  });

  describe('when the client names an IP literal', () => {
    it('refuses not-allowed when only a name rule matches the server', async (t) => {
      const channel = await open('api.test.corral:*');
      t.after(() => channel.close());
      const answer = await tunnel(channel, `127.0.0.1:${httpPort}`);
      assert.equal(answer.headers['x-corral-refused'], 'not-allowed');
      const v6 = await tunnel(channel, `[::1]:${httpPort}`);
      assert.equal(v6.headers['x-corral-refused'], 'not-allowed');
      assert.equal(v6.body, `corral egress: refused [::1]:${httpPort} (not-allowed)\n`);
    });
    it('refuses private-address under 0.0.0.0/0', async (t) => {
      const channel = await open('0.0.0.0/0:*');
      t.after(() => channel.close());
      const answer = await viaHttp(channel, `http://127.0.0.1:${httpPort}/echo`);
      assert.equal(answer.status, 403);
      assert.equal(answer.headers['x-corral-refused'], 'private-address');
    });
    it('connects when a CIDR rule lists it, v4-mapped spelling included', async (t) => {
      const channel = await open(`127.0.0.1/32:${httpPort}`);
      t.after(() => channel.close());
      assert.equal((await viaHttp(channel, `http://127.0.0.1:${httpPort}/echo`)).status, 200);
      assert.equal((await viaHttp(channel, `http://[::ffff:127.0.0.1]:${httpPort}/echo`)).status, 200);
      const records = await finished(channel, 2);
      assert.deepEqual(
        records.map((r) => [r.address, r.rule]),
        [
          ['127.0.0.1', `127.0.0.1/32:${httpPort}`],
          ['127.0.0.1', `127.0.0.1/32:${httpPort}`],
        ],
      );
    });
  });

  describe('when the destination is IPv6 loopback', () => {
    it('connects to [::1] when a CIDR rule lists it, and to a name resolving to ::1 with the same rule', async (t) => {
      const v6 = echo();
      v6.listen(0, '::1');
      await once(v6, 'listening');
      const port = (v6.address() as net.AddressInfo).port;
      const channel = await proxy.openChannel(rules('v6.test.corral:*', `[::1]:${port}`), {});
      t.after(async () => {
        await channel.close();
        v6.close();
      });
      NAMES['v6.test.corral'] = ['::1'];
      t.after(() => delete NAMES['v6.test.corral']);
      for (const authority of [`[::1]:${port}`, `[0:0::1]:${port}`, `v6.test.corral:${port}`]) {
        const opened = await tunnel(channel, authority);
        assert.equal(opened.status, 200, authority);
        opened.socket.write('six');
        const [reply] = (await once(opened.socket, 'data')) as [Buffer];
        assert.equal(reply.toString(), 'six');
        opened.socket.destroy();
      }
      const records = await finished(channel, 3);
      assert.deepEqual(
        records.map((r) => [r.host, r.address, r.special]),
        [
          ['::1', '::1', 'loopback'],
          ['::1', '::1', 'loopback'],
          ['v6.test.corral', '::1', 'loopback'],
        ],
      );
    });
  });

  describe('when a wildcard rule is given', () => {
    it('allows names below it and refuses its apex without resolving it', async (t) => {
      const channel = await open('*.wild.test.corral:*', '127.0.0.1/32:*');
      t.after(() => channel.close());
      assert.equal((await viaHttp(channel, `http://svc.wild.test.corral:${httpPort}/echo`)).status, 200);
      assert.equal((await viaHttp(channel, `http://deep.svc.wild.test.corral:${httpPort}/echo`)).status, 200);
      const before = looked.filter((n) => n === 'wild.test.corral').length;
      const apex = await viaHttp(channel, `http://wild.test.corral:${httpPort}/echo`);
      assert.equal(apex.status, 403);
      assert.equal(looked.filter((n) => n === 'wild.test.corral').length, before);
    });
  });

  describe('when resolution fails', () => {
    for (const [name, why] of [
      ['nowhere.test.corral', 'the resolver throws'],
      ['slow.test.corral', 'the resolver never answers'],
      ['empty.test.corral', 'the answer is empty'],
      ['junk.test.corral', 'the answer holds no address'],
    ]) {
      it(`answers 502 dns-failed when ${why}`, async (t) => {
        const channel = await open('*.test.corral:*', '127.0.0.1/32:*');
        t.after(() => channel.close());
        const answer = await tunnel(channel, `${name}:443`);
        assert.equal(answer.status, 502);
        assert.equal(answer.headers['x-corral-refused'], 'dns-failed');
        const [record] = await finished(channel, 1);
        assert.deepEqual([record?.allowed, record?.reason], [false, 'dns-failed']);
      });
    }
  });

  describe('when nothing listens on the allowed port', () => {
    it('answers 502 connect-failed', async (t) => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      t.after(() => channel.close());
      const answer = await viaHttp(channel, `http://api.test.corral:${closedPort}/`);
      assert.equal(answer.status, 502);
      assert.equal(answer.headers['x-corral-refused'], 'connect-failed');
      const [record] = await finished(channel, 1);
      assert.deepEqual([record?.allowed, record?.reason, record?.address], [false, 'connect-failed', '127.0.0.1']);
    });
  });

  describe('when the request is hostile or malformed', () => {
    let channel: EgressChannel;
    before(async () => {
      channel = await open('api.test.corral:*', '127.0.0.1/32:*');
    });
    after(() => channel.close());

    const cases: [string, string, number, string][] = [
      ['a garbage request line', 'GARBAGE\r\n\r\n', 400, 'bad-request'],
      ['CONNECT to a non-numeric port', 'CONNECT api.test.corral:https HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['CONNECT to port 0', 'CONNECT api.test.corral:0 HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['CONNECT to port 70000', 'CONNECT api.test.corral:70000 HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['CONNECT without a port', 'CONNECT api.test.corral HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['CONNECT to IPv6 without brackets', 'CONNECT ::1:443 HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['CONNECT to an absurdly long host', `CONNECT ${'a'.repeat(4000)}.test:443 HTTP/1.1\r\n\r\n`, 400, 'bad-request'],
      ['a host with a percent-encoded dot', 'GET http://api%2etest.corral/ HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['an inet_aton host (2130706433)', 'GET http://2130706433/ HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['an origin-form request (the proxy is not a server)', 'GET /echo HTTP/1.1\r\nHost: api.test.corral\r\n\r\n', 400, 'bad-request'],
      ['an https:// absolute-form request', 'GET https://api.test.corral/ HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['userinfo in the URI', 'GET http://user:hunter2@api.test.corral/ HTTP/1.1\r\n\r\n', 400, 'bad-request'],
      ['a head over the size limit', `GET http://api.test.corral/ HTTP/1.1\r\nX-Pad: ${'p'.repeat(10_000)}\r\n\r\n`, 431, 'header-too-large'],
    ];
    for (const [why, text, status, reason] of cases) {
      it(`answers ${status} ${reason} to ${why}`, async () => {
        const answer = await rawExchange(channel, text);
        assert.equal(answer.status, status);
        assert.equal(answer.headers['x-corral-refused'], reason);
        assert.ok(!answer.body.includes('hunter2'));
        const record = channel.connections().at(-1);
        assert.deepEqual([record?.allowed, record?.reason], [false, reason]);
      });
    }

    it('answers 400 bad-request to a body coded gzip then chunked, and forwards nothing (dropping the gzip would change the body)', async () => {
      const before = scriptedHeads.length;
      const answer = await rawExchange(
        channel,
        `POST http://api.test.corral:${scriptedPort}/echo HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      );
      assert.deepEqual([answer.status, answer.headers['x-corral-refused']], [400, 'bad-request']);
      const record = channel.connections().at(-1);
      assert.deepEqual([record?.allowed, record?.reason, record?.httpMethod], [false, 'bad-request', 'POST']);
      assert.equal(scriptedHeads.length, before);
    });

    it('answers 408 header-timeout to a client that sends its head slowly (slowloris)', async () => {
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      socket.write('CONNECT api.test.corral:443 HTTP/1.1\r\nX-Slow: ');
      const started = Date.now();
      const drip = setInterval(() => socket.write('a'), 50);
      try {
        const head = await readHead(socket);
        assert.equal(head.status, 408);
        assert.equal(head.headers['x-corral-refused'], 'header-timeout');
        assert.ok(Date.now() - started < 2000);
      } finally {
        clearInterval(drip);
        socket.destroy();
      }
    });
  });

  describe('secrets and hop-by-hop fields', () => {
    it('never forwards, records or echoes Proxy-Authorization, and drops hop-by-hop fields', async (t) => {
      const seen: ConnectionRecord[] = [];
      const channel = await proxy.openChannel(rules('api.test.corral:*', '127.0.0.1/32:*'), { onConnection: (r) => seen.push(r) });
      t.after(() => channel.close());
      const headers = {
        'Proxy-Authorization': 'Bearer sk-live-secret',
        'Proxy-Connection': 'keep-alive',
        Connection: 'X-Hop',
        'X-Hop': 'hop',
        TE: 'trailers',
        'X-End': 'kept',
      };
      const got = await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`, { headers });
      const names = (JSON.parse(got.body.toString()).rawHeaders as string[]).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      for (const dropped of ['proxy-authorization', 'proxy-connection', 'x-hop', 'te']) assert.ok(!names.includes(dropped), `${dropped} was forwarded`);
      assert.ok(names.includes('x-end'));
      const refused = await viaHttp(channel, 'http://api.evil.com/', { headers });
      assert.ok(!refused.body.toString().includes('sk-live-secret'));
      await finished(channel, 2);
      const tunnelled = await tunnel(channel, 'api.evil.com:443');
      assert.ok(!tunnelled.body.includes('c2VjcmV0'));
      await until(() => seen.length >= 3 || undefined, 'three reports');
      assert.ok(!JSON.stringify([seen, channel.connections()]).includes('secret'));
      assert.ok(!JSON.stringify(channel.connections()).includes('c2VjcmV0'));
    });
  });

  describe('when a side ends a connection abnormally', () => {
    let channel: EgressChannel;
    before(async () => {
      channel = await open('api.test.corral:*', '127.0.0.1/32:*');
    });
    after(() => channel.close());

    it('passes an upstream reset mid-response on to the plain-HTTP client and records aborted upstream', async () => {
      await assert.rejects(async () => {
        const got = await viaHttp(channel, `http://api.test.corral:${httpPort}/reset`);
        if (got.body.length < 100_000) throw new Error('truncated');
      });
      const record = (await finished(channel, 1)).at(-1);
      assert.equal(record?.aborted, 'upstream');
      assert.equal(record?.allowed, true);
    });

    it('answers 502 upstream-failed when the upstream resets before answering a plain-HTTP request', async () => {
      const before = channel.connections().length;
      const got = await viaHttp(channel, `http://api.test.corral:${resetPort}/`);
      assert.equal(got.status, 502);
      assert.equal(got.headers['x-corral-refused'], 'upstream-failed');
      assert.equal(got.body.toString(), `corral egress: cannot reach api.test.corral:${resetPort} (upstream-failed)\n`);
      const record = (await finished(channel, before + 1)).at(-1);
      assert.deepEqual([record?.allowed, record?.aborted, record?.status], [true, 'upstream', 502]);
    });

    it('survives a client that resets its connection while its CONNECT waits for the decision', async (t) => {
      // Its own proxy: a DNS wait long enough to reset the client within it.
      const own = new EgressProxy({ lookup, dnsTimeoutMs: 1000 });
      t.after(() => own.close());
      const waiting = await own.openChannel(rules('*.test.corral:*', '127.0.0.1/32:*'));
      const socket = net.connect(waiting.socketPath);
      socket.on('error', () => undefined);
      // An answer the client leaves mostly unread (it fits the socket's buffers, so it is done), then
      // a CONNECT whose name never resolves: closing with unread bytes resets the proxy's side of the
      // connection while the CONNECT waits.
      socket.pause();
      socket.write(`GET http://api.test.corral:${httpPort}/bytes?n=${64 << 10} HTTP/1.1\r\n\r\n`);
      await finished(waiting, 1);
      socket.write('CONNECT slow.test.corral:443 HTTP/1.1\r\n\r\n');
      await new Promise((r) => setTimeout(r, 50));
      socket.destroy();
      const records = await finished(waiting, 2);
      assert.deepEqual(
        records.map((r) => [r.method, r.host, r.allowed, r.reason]),
        [
          ['HTTP', 'api.test.corral', true, undefined],
          ['CONNECT', 'slow.test.corral', false, 'client-closed'],
        ],
      );
    });

    it('closes the tunnel when the upstream resets it, and records aborted upstream', async () => {
      const before = channel.connections().length;
      const t = await tunnel(channel, `api.test.corral:${resetPort}`);
      t.socket.write('hello');
      await once(t.socket, 'close');
      const record = (await finished(channel, before + 1)).at(-1);
      assert.equal(record?.aborted, 'upstream');
    });

    it('closes the upstream side when the client goes away mid-tunnel, and records aborted client', async () => {
      const before = channel.connections().length;
      const t = await tunnel(channel, `api.test.corral:${firehosePort}`);
      await once(t.socket, 'data');
      const upstreamClosed = once(firehoseEvents, 'closed');
      t.socket.destroy();
      await upstreamClosed;
      const record = (await finished(channel, before + 1)).at(-1);
      assert.equal(record?.aborted, 'client');
    });

    it('keeps a tunnel open beyond the header timeout', async () => {
      const t = await tunnel(channel, `api.test.corral:${echoPort}`);
      await new Promise((r) => setTimeout(r, 500));
      t.socket.write('still here');
      const [reply] = (await once(t.socket, 'data')) as [Buffer];
      assert.equal(reply.toString(), 'still here');
      t.socket.destroy();
    });
  });

  describe('when the upstream speaks first', () => {
    it('delivers its greeting after the 200 line, not before', async (t) => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      t.after(() => channel.close());
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      socket.write(`CONNECT api.test.corral:${greeterPort} HTTP/1.1\r\n\r\n`);
      const head = await readHead(socket);
      assert.equal(head.status, 200);
      socket.unshift(head.rest);
      socket.resume();
      let text = '';
      socket.setEncoding('latin1');
      for await (const chunk of socket) {
        text += chunk;
        if (text.includes('\r\n')) break;
      }
      assert.equal(text, '220 corral-test ready\r\n');
      socket.destroy();
    });
  });

  describe('when plain-HTTP answers share the read buffers', () => {
    for (const framing of ['length', 'chunked'] as const) {
      it(`delivers 8 MiB intact to each of four concurrent slow readers, framed by ${framing}`, async (t) => {
        const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
        t.after(() => channel.close());
        const expected = createHash('sha256').update(payload).digest('hex');
        const url = `http://api.test.corral:${httpPort}/payload${framing === 'chunked' ? '?chunked' : ''}`;
        const digests = await Promise.all(
          Array.from({ length: 4 }, (_, i) => new Promise<string>((resolve, reject) => {
            const req = http.request({ socketPath: channel.socketPath, path: url, agent: false });
            req.on('error', reject);
            req.on('response', async (res) => {
              const hash = createHash('sha256');
              let chunks = 0;
              try {
                for await (const chunk of res) {
                  hash.update(chunk as Buffer);
                  // Stall now and then, so that the proxy pauses the upstream and buffers wait for writes.
                  if (++chunks % (8 + i) === 0) await new Promise((r) => setTimeout(r, 2));
                }
                resolve(hash.digest('hex'));
              } catch (err) {
                reject(err);
              }
            });
            req.end();
          })),
        );
        assert.deepEqual(digests, [expected, expected, expected, expected]);
        const records = await finished(channel, 4);
        assert.ok(records.every((r) => r.bytesReceived > payload.length && r.aborted === undefined));
      });
    }
  });

  describe('when tunnels share the read buffers', () => {
    it('delivers 8 MiB intact to each of four concurrent slow readers', async (t) => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      t.after(() => channel.close());
      const expected = createHash('sha256').update(payload).digest('hex');
      const digests = await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          const opened = await tunnel(channel, `api.test.corral:${senderPort}`);
          const hash = createHash('sha256');
          let chunks = 0;
          for await (const chunk of opened.socket) {
            hash.update(chunk as Buffer);
            // Stall now and then, so that the proxy pauses the upstream and buffers wait for writes.
            if (++chunks % (8 + i) === 0) await new Promise((r) => setTimeout(r, 2));
          }
          return hash.digest('hex');
        }),
      );
      assert.deepEqual(digests, [expected, expected, expected, expected]);
      const records = await finished(channel, 4);
      assert.ok(records.every((r) => r.bytesReceived === payload.length));
    });
  });

  describe('many concurrent tunnels', () => {
    it('carries 50 tunnels at once, each its own bytes', async (t) => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      t.after(() => channel.close());
      const results = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const opened = await tunnel(channel, `api.test.corral:${doublerPort}`);
          opened.socket.end(Buffer.alloc(i + 1, 1));
          return (await readAll(opened.socket)).length;
        }),
      );
      assert.deepEqual(
        results,
        Array.from({ length: 50 }, (_, i) => 2 * (i + 1)),
      );
      const records = await finished(channel, 50);
      assert.equal(records.filter((r) => r.allowed && r.aborted === undefined).length, 50);
    });
  });

  describe('when the channel closes', () => {
    it('ends its open tunnels, records aborted channel, and removes the socket', async () => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      const t = await tunnel(channel, `api.test.corral:${echoPort}`);
      const closed = once(t.socket, 'close');
      assert.equal(channel.connections()[0]?.open, true);
      await channel.close();
      await closed;
      const [record] = await finished(channel, 1);
      assert.equal(record?.aborted, 'channel');
      assert.equal(existsSync(channel.socketPath), false);
      const late = net.connect(channel.socketPath);
      const [err] = (await once(late, 'error')) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ENOENT');
      await channel.close();
    });
  });

  describe('when two runs share the proxy', () => {
    it('applies each channel’s rules to its own socket only', async (t) => {
      const a = await open('api.test.corral:*', '127.0.0.1/32:*');
      const b = await open('other.test.corral:*', '127.0.0.1/32:*');
      t.after(() => Promise.all([a.close(), b.close()]));
      assert.notEqual(a.socketPath, b.socketPath);
      assert.equal((await viaHttp(a, `http://api.test.corral:${httpPort}/echo`)).status, 200);
      assert.equal((await viaHttp(a, `http://other.test.corral:${httpPort}/echo`)).status, 403);
      assert.equal((await viaHttp(b, `http://other.test.corral:${httpPort}/echo`)).status, 200);
      assert.equal((await viaHttp(b, `http://api.test.corral:${httpPort}/echo`)).status, 403);
      const hostsOf = async (c: EgressChannel) => (await finished(c, 2)).map((r) => [r.host, r.allowed]);
      assert.deepEqual(await hostsOf(a), [
        ['api.test.corral', true],
        ['other.test.corral', false],
      ]);
      assert.deepEqual(await hostsOf(b), [
        ['other.test.corral', true],
        ['api.test.corral', false],
      ]);
    });

    it('keeps the rules given at opening even if the caller changes its array later', async (t) => {
      const list = rules('api.test.corral:*', '127.0.0.1/32:*');
      const channel = await proxy.openChannel(list);
      t.after(() => channel.close());
      list.push(...rules('other.test.corral:*'));
      assert.equal((await viaHttp(channel, `http://other.test.corral:${httpPort}/echo`)).status, 403);
    });
  });

  describe('reporting', () => {
    it('reports each final record once, and survives a callback that throws', async (t) => {
      const reported: number[] = [];
      const channel = await proxy.openChannel(rules('api.test.corral:*', '127.0.0.1/32:*'), {
        onConnection: (r) => {
          reported.push(r.id);
          throw new Error('a broken reporter');
        },
      });
      t.after(() => channel.close());
      await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`);
      await viaHttp(channel, 'http://api.evil.com/');
      await until(() => reported.length === 2 || undefined, 'two reports');
      assert.deepEqual(reported, [1, 2]);
      assert.equal((await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`)).status, 200);
    });

    it('keeps at most maxRecords, counting the dropped ones', async (t) => {
      const channel = await proxy.openChannel(rules('api.test.corral:*'), { maxRecords: 2 });
      t.after(() => channel.close());
      for (let i = 0; i < 3; i++) await viaHttp(channel, 'http://api.evil.com/');
      assert.deepEqual(
        channel.connections().map((r) => r.id),
        [2, 3],
      );
      assert.equal(channel.droppedRecords, 1);
      const three = await proxy.openChannel(rules('api.test.corral:*'), { maxRecords: 3 });
      t.after(() => three.close());
      for (let i = 0; i < 10; i++) {
        await viaHttp(three, 'http://api.evil.com/');
        assert.deepEqual(
          three.connections().map((r) => r.id),
          Array.from({ length: Math.min(3, i + 1) }, (_, k) => Math.max(1, i - 1) + k),
        );
      }
      assert.equal(three.droppedRecords, 7);
    });

    it('drops allowed records before refused ones, so allowed connections cannot push a refused attempt out of the record (regression: the oldest went first, whatever it was)', async (t) => {
      const channel = await proxy.openChannel(rules('api.test.corral:*', '127.0.0.1/32:*'), { maxRecords: 3 });
      t.after(() => channel.close());
      assert.equal((await viaHttp(channel, 'http://api.evil.com/')).status, 403);
      for (let i = 0; i < 10; i++) assert.equal((await viaHttp(channel, `http://api.test.corral:${httpPort}/echo`)).status, 200);
      const kept = channel.connections();
      assert.deepEqual(kept.map((r) => [r.id, r.allowed]), [[1, false], [10, true], [11, true]]);
      assert.equal(channel.droppedRecords, 8);
      // Refused ones alone past the cap: the oldest of them goes.
      for (let i = 0; i < 4; i++) await viaHttp(channel, 'http://api.evil.com/');
      assert.deepEqual(channel.connections().map((r) => [r.id, r.allowed]), [[13, false], [14, false], [15, false]]);
      assert.equal(channel.droppedRecords, 12);
    });

    it('drops a refused record that a later one to the same destination repeats before one that stands alone, so a flood of one refused request cannot push another refused attempt out of the record', async (t) => {
      const channel = await proxy.openChannel(rules('api.test.corral:*'), { maxRecords: 3 });
      t.after(() => channel.close());
      assert.equal((await viaHttp(channel, 'http://exfil.evil.com/')).status, 403);
      for (let i = 0; i < 10; i++) assert.equal((await viaHttp(channel, 'http://noise.evil.com/')).status, 403);
      assert.deepEqual(channel.connections().map((r) => [r.id, r.host]), [[1, 'exfil.evil.com'], [10, 'noise.evil.com'], [11, 'noise.evil.com']]);
      assert.equal(channel.droppedRecords, 8);
      assert.equal((await viaHttp(channel, 'http://other.evil.com/')).status, 403);
      assert.deepEqual(channel.connections().map((r) => r.host), ['exfil.evil.com', 'noise.evil.com', 'other.evil.com']);
      // Every kept one stands alone: the oldest goes.
      assert.equal((await viaHttp(channel, 'http://third.evil.com/')).status, 403);
      assert.deepEqual(channel.connections().map((r) => r.host), ['noise.evil.com', 'other.evil.com', 'third.evil.com']);
      assert.equal(channel.droppedRecords, 10);
    });
  });

  describe('with curl through a TCP-to-unix forwarder (as the sandbox reaches it)', () => {
    it('fetches plain HTTP and through a CONNECT tunnel, and is refused elsewhere', async (t) => {
      const channel = await open('api.test.corral:*', '127.0.0.1/32:*');
      const forwarder = net.createServer((client) => {
        const upstream = net.connect(channel.socketPath);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        client.pipe(upstream).pipe(client);
      });
      const port = await listen(forwarder);
      t.after(async () => {
        forwarder.close();
        await channel.close();
      });
      const curl = promisify(execFile);
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
      const proxyArgs = ['-sS', '--max-time', '5', '--proxy', `http://127.0.0.1:${port}`];
      const plain = await curl('curl', [...proxyArgs, `http://api.test.corral:${httpPort}/echo`], { env });
      assert.equal(JSON.parse(plain.stdout).url, '/echo');
      const tunnelled = await curl('curl', [...proxyArgs, '--proxytunnel', `http://api.test.corral:${httpPort}/echo`], { env });
      assert.equal(JSON.parse(tunnelled.stdout).url, '/echo');
      const refused = await curl('curl', [...proxyArgs, '-o', '/dev/null', '-w', '%{http_code}', 'http://api.evil.com/'], { env });
      assert.equal(refused.stdout, '403');
      const records = await finished(channel, 3);
      assert.deepEqual(
        records.map((r) => [r.method, r.allowed]),
        [
          ['HTTP', true],
          ['CONNECT', true],
          ['HTTP', false],
        ],
      );
    });
  });

  describe('lifecycle and configuration', () => {
    it('puts each socket in a private 0700 folder, the socket itself 0600', async (t) => {
      const channel = await open('api.test.corral:443');
      t.after(() => channel.close());
      assert.equal(statSync(dirname(channel.socketPath)).mode & 0o777, 0o700);
      assert.equal(statSync(channel.socketPath).mode & 0o777, 0o600);
      assert.ok(Buffer.byteLength(channel.socketPath) <= 107);
    });

    it('removes its folder on close and then refuses new channels with CONTAIN_CLOSED', async () => {
      const own = new EgressProxy({ lookup });
      const channel = await own.openChannel(rules('api.test.corral:443'));
      await own.close();
      assert.equal(existsSync(dirname(channel.socketPath)), false);
      await assert.rejects(own.openChannel([]), { code: 'CONTAIN_CLOSED' });
    });

    it('refuses a rule given as text with CONTAIN_PROXY_FAILED', async () => {
      await assert.rejects(proxy.openChannel(['api.test.corral:443'] as unknown as EgressRule[]), { code: 'CONTAIN_PROXY_FAILED' });
    });

    it('refuses a folder whose socket path would overflow sun_path with CONTAIN_PROXY_FAILED', async () => {
      const own = new EgressProxy({ lookup, directory: `/tmp/${'d'.repeat(120)}` });
      await assert.rejects(own.openChannel([]), { code: 'CONTAIN_PROXY_FAILED' });
      await own.close();
    });

    for (const [option, value] of [
      ['connectTimeoutMs', 0],
      ['headerTimeoutMs', -1],
      ['maxHeaderSize', 1.5],
      ['maxLookupsPerChannel', 0],
      ['maxLookups', -2],
      ['refusalsPerSecond', 0.5],
      ['refusalBurst', 0],
      ['lookup', 'dns'],
      ['hostAddresses', ['1.2.3.4']],
    ] as const) {
      it(`refuses option ${option}=${String(value)} with CONTAIN_PROXY_FAILED`, () => {
        assert.throws(() => new EgressProxy({ [option]: value } as never), { code: 'CONTAIN_PROXY_FAILED' });
      });
    }
  });
});
