import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';

// A channel keeps its last maxRecords connection records (100000 by default), and a contained
// command makes a record as fast as it can send a request the proxy refuses. These tests run the
// proxy in a process of its own (proxy-process.fixture.ts, default maxRecords) and count the CPU
// time it spends, which its callers, every other sandbox's channel included, wait for.

const CAP = 100_000;
const BATCH = 10_000;

function ask<T>(child: ChildProcess, message: string): Promise<T> {
  const answer = once(child, 'message') as Promise<[T]>;
  child.send(message);
  return answer.then(([value]) => value);
}

/** The proxy process's CPU time so far, in microseconds. */
async function cpu(child: ChildProcess): Promise<number> {
  return (await ask<{ cpu: number }>(child, 'cpu')).cpu;
}

/**
 * Sends `count` plain-HTTP requests to a host no rule names over 4 keep-alive connections, 8 in
 * flight on each, and resolves once every one has its 403 (one record each).
 */
async function refusals(socketPath: string, count: number): Promise<void> {
  const request = 'GET http://refused.example/ HTTP/1.1\r\n\r\n';
  const mark = '403 Forbidden';
  let sent = 0;
  const lanes = Array.from({ length: 4 }, () => {
    const socket = net.connect(socketPath);
    socket.on('error', () => undefined);
    return socket;
  });
  await Promise.all(
    lanes.map(
      (socket) =>
        new Promise<void>((resolve, reject) => {
          let inFlight = 0;
          let tail = '';
          const send = () => {
            while (inFlight < 8 && sent < count) {
              sent++;
              inFlight++;
              socket.write(request);
            }
            if (inFlight === 0) {
              socket.destroy();
              resolve();
            }
          };
          socket.on('data', (chunk: Buffer) => {
            const text = tail + chunk.toString('latin1');
            inFlight -= text.split(mark).length - 1;
            tail = text.slice(-(mark.length - 1));
            send();
          });
          socket.once('close', () => (inFlight > 0 ? reject(new Error('the proxy closed a connection with answers owed')) : resolve()));
          send();
        }),
    ),
  );
}

describe('EgressProxy records', () => {
  let child: ChildProcess;
  let socketPath: string;

  before(async () => {
    child = fork(new URL('./proxy-process.fixture.ts', import.meta.url), { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    [{ socketPath }] = (await once(child, 'message')) as [{ socketPath: string }];
  });

  after(async () => {
    if (!child.connected) return;
    const exited = once(child, 'exit');
    child.send('close');
    await exited;
  });

  // Each record past the cap took the oldest off the front of an array of 100000: a copy of the
  // whole array, some 0.3 ms of the proxy's one thread for each refused request.
  describe(`when a channel holds its ${CAP} records (the default maxRecords) and requests keep coming`, () => {
    it('spends no more CPU time on a record that drops the oldest than on one below the cap', { timeout: 300_000 }, async () => {
      await refusals(socketPath, CAP - 2 * BATCH);
      const start = await cpu(child);
      await refusals(socketPath, BATCH);
      const below = (await cpu(child)) - start;
      await refusals(socketPath, 2 * BATCH);
      const past = await cpu(child);
      await refusals(socketPath, BATCH);
      const above = (await cpu(child)) - past;
      const each = (us: number) => `${(us / BATCH).toFixed(0)} µs`;
      assert.ok(above < 2 * below, `a record past the cap cost ${each(above)} of CPU time, one below it ${each(below)}`);
    });
  });
});
