// Builds the world the escape battery attacks: a temp folder with granted,
// read-only, denied and never-granted files; host loopback servers; a marker
// in the host environment; a host process. Everything stays on this machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSyscallProbe } from '../probes/build.ts';
import type { EscapeWorld } from './cases.ts';

export interface LiveWorld extends EscapeWorld {
  /** What reached the UDP listener. */
  udpReceived: string[];
  /** How many connections the host TCP servers accepted. */
  tcpAccepted: () => number;
  close(): Promise<void>;
}

export async function buildWorld(): Promise<LiveWorld> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-escape-')));
  for (const d of ['outbox/project/.git/hooks', 'outbox/records/private', 'inbox/private', 'victim']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'outbox/project/.git/hooks/pre-commit'), '#!/bin/sh\nexit 0\n');
  writeFileSync(join(dir, 'outbox/records/private/secret.txt'), 'the denied record\n');
  writeFileSync(join(dir, 'inbox/invoice.txt'), 'vendor: Northwind\namount: 120\n');
  writeFileSync(join(dir, 'inbox/private/secret.txt'), 'the denied secret\n');
  writeFileSync(join(dir, 'victim/secret.txt'), 'the ungranted secret\n');
  symlinkSync(join(dir, 'victim/secret.txt'), join(dir, 'outbox/link-to-victim'));
  rmSync('/tmp/corral-escape-marker', { force: true });

  let accepted = 0;
  const hello = (server: Server) => server.on('connection', (s) => (accepted++, s.end('HELLO\n')));
  const tcp = hello(createServer());
  const tcp6 = hello(createServer());
  const abstract = hello(createServer());
  const abstractName = `corral-escape-${process.pid}`;
  await Promise.all([listen(tcp, 0, '127.0.0.1'), listen(tcp6, 0, '::1'), new Promise<void>((r) => abstract.listen(`\0${abstractName}`, r))]);
  const udpReceived: string[] = [];
  const udp: UdpSocket = createSocket('udp4').on('message', (m) => udpReceived.push(String(m)));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));

  const marker = { name: 'CORRAL_ESCAPE_MARKER', value: `host-secret-${process.pid}-${Date.now()}` };
  process.env[marker.name] = marker.value;
  const sleeper: ChildProcess = spawn('sleep', ['300'], { stdio: 'ignore' });

  return {
    dir,
    probe: buildSyscallProbe(),
    node: realpathSync(process.execPath),
    home: homedir(),
    tcpPort: (tcp.address() as { port: number }).port,
    tcp6Port: (tcp6.address() as { port: number }).port,
    udpPort: udp.address().port,
    abstractSocket: abstractName,
    markerEnv: marker,
    hostPid: sleeper.pid!,
    udpReceived,
    tcpAccepted: () => accepted,
    async close() {
      sleeper.kill('SIGKILL');
      delete process.env[marker.name];
      udp.close();
      await Promise.all([tcp, tcp6, abstract].map((s) => new Promise((r) => s.close(r))));
      rmSync(dir, { recursive: true, force: true });
      rmSync('/tmp/corral-escape-marker', { force: true });
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
}
