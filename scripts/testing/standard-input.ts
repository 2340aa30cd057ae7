// What the tests of a contained command's standard input hand a process as
// its descriptor 0 (a socket whose other end the test holds, a terminal of
// its own), and how they tell that the process ended by itself.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, realpathSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Two connected ends of a Unix stream socket: `theirs` for the process's descriptor 0, `ours` for the test. */
export async function socketPair(): Promise<{ ours: Socket; theirs: Socket }> {
  const path = join(realpathSync(mkdtempSync(join(tmpdir(), 'corral-stdin-sock-'))), 's');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const theirs = connect(path);
  await once(theirs, 'connect');
  // The test's copy of this end must read nothing meant for the process.
  theirs.pause();
  const [ours] = await accepted;
  server.close();
  return { ours, theirs };
}

/**
 * Waits for `child` to end by itself, for at most `ms`; kills it and fails the test when it does not
 * (a copy of its input still under way after the run holds its process open).
 */
export async function endsByItself(child: ChildProcess, ms: number, what: string): Promise<number | null> {
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code] = await exited;
  clearTimeout(timer);
  assert.notEqual(child.signalCode, 'SIGKILL', `${what} did not end by itself within ${ms} ms`);
  return code;
}

/**
 * Runs the shell command line `shell` under script(1), on a pseudo-terminal of its own: that terminal
 * is its descriptors 0, 1 and 2 (and its controlling terminal). What is written to the terminal is
 * `screen()`; what the test writes to `child.stdin` is typed at it, and its end is a Ctrl-D.
 */
export function underTerminal(shell: string, env: SpawnOptions['env'] = process.env): { child: ChildProcess; screen: () => string } {
  const child = spawn('script', ['-qefc', shell, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env, SHELL: '/bin/sh' } });
  let screen = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (screen += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (screen += c));
  return { child, screen: () => screen };
}
