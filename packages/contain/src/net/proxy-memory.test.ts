import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';

// The egress proxy runs in the Corral process, outside the sandbox's memory limit: what a
// contained command can make it hold is memory the sandbox does not count. These tests run the
// proxy in a process of its own and count the bytes it holds in buffers (after a garbage
// collection), while its clients or its upstreams stop reading.

const CONNECTIONS = 64;
/**
 * What 64 connections whose clients stop reading may add: the channel's 4 large read buffers
 * (1 MiB) and a read of 16 KiB each (measured: 2 MiB).
 */
const LIMIT_CLIENT_STALLED = 4 << 20;
/**
 * What 64 connections whose upstreams stop reading may add: a read of up to 64 KiB each that the
 * upstream has not taken, and one Node read ahead from the client (measured: 8 MiB).
 */
const LIMIT_UPSTREAM_STALLED = 12 << 20;
const block = Buffer.alloc(64 * 1024, 0x61);

function ask<T>(child: ChildProcess, message: string): Promise<T> {
  const answer = once(child, 'message') as Promise<[T]>;
  child.send(message);
  return answer.then(([value]) => value);
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Sends as fast as its client takes, and never reads. */
function firehose(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => undefined);
    const pump = () => {
      while (!socket.destroyed && socket.write(block));
      if (!socket.destroyed) socket.once('drain', pump);
    };
    pump();
  });
}

/** Answers every request with a chunked body sent as fast as its client takes, without end. */
function endless(): http.Server {
  return http.createServer((_req, res) => {
    res.on('error', () => undefined);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    const pump = () => {
      while (!res.destroyed && res.write(block));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
}

/** Accepts and never reads. */
function deaf(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pause();
  });
}

/** Sends `request` and reads nothing more once the answer's first bytes are in (a 200). */
async function stalled(socketPath: string, request: string): Promise<net.Socket> {
  const socket = net.connect({ path: socketPath, readableHighWaterMark: 1024 } as net.NetConnectOpts);
  socket.on('error', () => undefined);
  socket.write(request);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  socket.pause();
  assert.match(chunk.toString('latin1'), /^HTTP\/1\.1 200 /);
  return socket;
}

function tunnel(socketPath: string, port: number): Promise<net.Socket> {
  return stalled(socketPath, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
}

/** The proxy's buffer bytes once they stop growing (two readings 500 ms apart within 256 KiB, or after 15 s). */
async function settled(child: ChildProcess): Promise<number> {
  let last = (await ask<{ arrayBuffers: number }>(child, 'measure')).arrayBuffers;
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const now = (await ask<{ arrayBuffers: number }>(child, 'measure')).arrayBuffers;
    if (Math.abs(now - last) < 256 << 10) return now;
    last = now;
  }
  return last;
}

describe('EgressProxy memory', () => {
  const servers: net.Server[] = [];
  let firehosePort: number;
  let deafPort: number;
  let endlessPort: number;
  let child: ChildProcess | undefined;
  let socketPath: string;
  const clients: net.Socket[] = [];

  before(async () => {
    const f = firehose();
    const d = deaf();
    const e = endless();
    servers.push(f, d, e);
    [firehosePort, deafPort, endlessPort] = await Promise.all([listen(f), listen(d), listen(e)]);
  });

  // Each test has a proxy process of its own.
  beforeEach(async () => {
    child = fork(new URL('./proxy-process.fixture.ts', import.meta.url), { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    [{ socketPath }] = (await once(child, 'message')) as [{ socketPath: string }];
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    if (child?.connected) {
      const exited = once(child, 'exit');
      child.send('close');
      await exited;
    }
  });

  after(() => {
    for (const s of servers) {
      if (s instanceof http.Server) s.closeAllConnections();
      s.close();
    }
  });

  // Before the proxy held each side's reads to the other side's pace, 64 tunnels held some
  // 80 MiB one way and 145 MiB the other (1.3 and 2.3 MiB each), 64 plain-HTTP answers 102 MiB.
  describe(`when the clients of ${CONNECTIONS} tunnels stop reading while their upstreams send as fast as they can`, () => {
    it('holds the channel’s large buffers and 16 KiB a tunnel', async () => {
      const proxy = child as ChildProcess;
      const before = await settled(proxy);
      for (let i = 0; i < CONNECTIONS; i++) clients.push(await tunnel(socketPath, firehosePort));
      const held = (await settled(proxy)) - before;
      assert.ok(held < LIMIT_CLIENT_STALLED, `the proxy holds ${(held / 2 ** 20).toFixed(1)} MiB more in buffers`);
    });
  });

  describe(`when the upstreams of ${CONNECTIONS} tunnels stop reading while their clients send as fast as they can`, () => {
    it('holds some 128 KiB a tunnel, not 2 MiB', async () => {
      const proxy = child as ChildProcess;
      const before = await settled(proxy);
      for (let i = 0; i < CONNECTIONS; i++) {
        const socket = await tunnel(socketPath, deafPort);
        clients.push(socket);
        const pump = () => {
          while (!socket.destroyed && socket.write(block));
          if (!socket.destroyed) socket.once('drain', pump);
        };
        pump();
      }
      const held = (await settled(proxy)) - before;
      assert.ok(held < LIMIT_UPSTREAM_STALLED, `the proxy holds ${(held / 2 ** 20).toFixed(1)} MiB more in buffers`);
    });
  });

  describe(`when the upstreams of ${CONNECTIONS} plain-HTTP requests stop reading an endless chunked upload`, () => {
    it('holds some 128 KiB a request, not 2 MiB', async () => {
      const proxy = child as ChildProcess;
      const before = await settled(proxy);
      const size = `${block.length.toString(16)}\r\n`;
      for (let i = 0; i < CONNECTIONS; i++) {
        const socket = net.connect(socketPath);
        socket.on('error', () => undefined);
        clients.push(socket);
        socket.write(`POST http://127.0.0.1:${deafPort}/ HTTP/1.1\r\nHost: 127.0.0.1:${deafPort}\r\nTransfer-Encoding: chunked\r\n\r\n`);
        const pump = () => {
          while (!socket.destroyed) {
            socket.write(size);
            socket.write(block);
            if (!socket.write('\r\n')) break;
          }
          if (!socket.destroyed) socket.once('drain', pump);
        };
        pump();
      }
      const held = (await settled(proxy)) - before;
      assert.ok(held < LIMIT_UPSTREAM_STALLED, `the proxy holds ${(held / 2 ** 20).toFixed(1)} MiB more in buffers`);
    });
  });

  describe(`when the clients of ${CONNECTIONS} plain-HTTP requests stop reading an endless answer`, () => {
    it('holds the channel’s large buffers and 16 KiB a request', async () => {
      const proxy = child as ChildProcess;
      const before = await settled(proxy);
      for (let i = 0; i < CONNECTIONS; i++) {
        clients.push(await stalled(socketPath, `GET http://127.0.0.1:${endlessPort}/ HTTP/1.1\r\nHost: 127.0.0.1:${endlessPort}\r\n\r\n`));
      }
      const held = (await settled(proxy)) - before;
      assert.ok(held < LIMIT_CLIENT_STALLED, `the proxy holds ${(held / 2 ** 20).toFixed(1)} MiB more in buffers`);
    });
  });
});
