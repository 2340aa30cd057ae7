// The in-sandbox forwarder, run directly on the host: its listeners, its relay
// and its hand-over to the command, without a sandbox around it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
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

  describe('when both sides send at once (a full-duplex protocol)', () => {
    it('relays 8 MiB each way through an echo, every byte in order, though the writer outruns the echo', async () => {
      // The echo stops reading while its answers back up: a relay that waits for one direction's
      // write before it reads the other would never read those answers, and both would stall.
      const echoSocket = join(dir, 'echo.sock');
      const echoed = new Set<Socket>();
      const echo = createServer((c) => {
        echoed.add(c);
        c.pipe(c);
      });
      await new Promise<void>((r) => echo.listen(echoSocket, r));
      const port = await freePort();
      const script = `const {createHash}=require('crypto');const s=require('net').connect(${port},'127.0.0.1');
        const total=8*1024*1024,chunk=Buffer.alloc(65536);let sent=0,got=0;const out=createHash('sha256'),back=createHash('sha256');
        function pump(){while(sent<total){chunk.fill(sent/65536%251);out.update(chunk);sent+=chunk.length;if(!s.write(chunk))return s.once('drain',pump);}s.end();}
        s.on('connect',pump);s.on('data',d=>{back.update(d);got+=d.length});
        s.on('end',()=>console.log(got,out.digest('hex')===back.digest('hex')?'same':'different'));
        setTimeout(()=>{console.log('stalled after',sent,'sent,',got,'back');process.exit(1)},20000).unref();`;
      const r = await run(['-e', `${port}:${echoSocket}`, '--', process.execPath, '-e', script]);
      // A stalled relay still holds its connection: cut it, or this file would never end.
      for (const c of echoed) c.destroy();
      echo.close();
      assert.equal(r.stdout.trim(), `${8 * 1024 * 1024} same`);
      assert.equal(r.code, 0);
    });
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

  describe('with -s FD (a sandbox started ahead of its run)', () => {
    /** Starts the forwarder with a socket at fd 3; resolves with what it said before any command was sent. */
    function waiting(extra: string[] = []) {
      const child = spawn(forwarderBinary().path, [...extra, '-s', '3', '--'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (c: Buffer) => (stdout += c));
      child.stderr!.on('data', (c: Buffer) => (stderr += c));
      const command = child.stdio[3] as import('node:stream').Duplex;
      const ready = new Promise<string>((resolve) => command.once('data', (d: Buffer) => resolve(String(d))));
      const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
      return { command, ready, done };
    }

    it('says it is ready, then becomes the command it reads, every word kept as sent (empty ones too)', async () => {
      const w = waiting();
      assert.equal(await w.ready, 'r');
      w.command.end(Buffer.from(['/bin/sh', '-c', 'printf "[%s]" "$@"', 'sh', 'a b', '', '*'].map((x) => `${x}\0`).join('')));
      const r = await w.done;
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, '[a b][][*]', '']);
    });

    it('runs nothing and exits 125 when the descriptor closes without a command', async () => {
      const w = waiting();
      await w.ready;
      w.command.end();
      const r = await w.done;
      assert.equal(r.code, 125);
      assert.match(r.stderr, /no command received/);
    });

    it('refuses a command that does not end with a NUL byte', async () => {
      const w = waiting();
      await w.ready;
      w.command.end('/bin/true');
      assert.equal((await w.done).code, 125);
    });

    it('refuses a command after -- as well as from the descriptor', async () => {
      const r = await run(['-s', '3', '--', '/bin/true']);
      assert.equal(r.code, 125);
    });
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
