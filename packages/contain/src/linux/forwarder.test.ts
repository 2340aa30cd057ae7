// The in-sandbox forwarder, run directly on the host: its listeners, its relay
// and its hand-over to the command, without a sandbox around it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { forwarderBinary } from './native.ts';

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(forwarderBinary().path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('the network forwarder', () => {
  let dir: string;
  let upstream: Server;
  let socket: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-forward-'));
    socket = join(dir, 'proxy.sock');
    // Stands in for the egress proxy: answers each line with its upper case.
    upstream = createServer((c) => c.on('data', (d) => c.end(String(d).toUpperCase())));
    await new Promise<void>((r) => upstream.listen(socket, r));
  });
  after(() => upstream.close());

  it('is built from source', () => {
    assert.match(forwarderBinary().path, /corral-forward-[0-9a-f]{16}-(static|dynamic)$/);
  });

  it('listens before the command starts, so the command can connect at once, and relays both ways', async () => {
    const port = await freePort();
    const node = process.execPath;
    const r = await run(['-e', `${port}:${socket}`, '--', node, '-e', `const s=require('net').connect(${port},'127.0.0.1',()=>s.write('hello'));s.on('data',d=>{process.stdout.write(String(d));s.end()})`]);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'HELLO');
    assert.equal(r.code, 0);
  });

  it('relays from a unix socket to a loopback port for ingress', async () => {
    const port = await freePort();
    const inner = createServer((c) => c.end('from the contained server'));
    await new Promise<void>((r) => inner.listen(port, '127.0.0.1', r));
    const ingress = join(dir, `${port}.sock`);
    const node = process.execPath;
    const r = await run(['-i', `${ingress}:${port}`, '--', node, '-e', `const s=require('net').connect('${ingress}');let t='';s.on('data',d=>t+=d);s.on('end',()=>console.log(t))`]);
    inner.close();
    assert.equal(r.stdout.trim(), 'from the contained server');
  });

  it('is no child the command could wait for', async () => {
    const r = await run(['-e', `${await freePort()}:${socket}`, '--', '/bin/sh', '-c', 'wait; echo done']);
    assert.equal(r.stdout, 'done\n');
  });

  it('passes the command its exit code', async () => {
    assert.equal((await run(['--', '/bin/sh', '-c', 'exit 9'])).code, 9);
  });

  describe('when it is misused', () => {
    it('says the command does not exist, with exit 127', async () => {
      const r = await run(['--', '/nonexistent/command']);
      assert.equal(r.code, 127);
      assert.match(r.stderr, /^corral-forward: execvp \/nonexistent\/command: /);
    });

    for (const [args, why] of [
      [['-e', '0:/x', '--', '/bin/true'], 'port 0'],
      [['-e', '70000:/x', '--', '/bin/true'], 'a port above 65535'],
      [['-e', 'nocolon', '--', '/bin/true'], 'a listener without a colon'],
      [['-x', '1:/x', '--', '/bin/true'], 'an unknown flag'],
      [['-e', '1234:/x'], 'no command'],
      [['-i', `/${'a'.repeat(200)}:80`, '--', '/bin/true'], 'a socket path too long for a unix address'],
    ] as const) {
      it(`refuses ${why} with exit 125 and runs nothing`, async () => {
        const r = await run([...args]);
        assert.equal(r.code, 125);
        assert.notEqual(r.stderr, '');
      });
    }
  });
});
