// One agent token, sixteen connections, each sending requests as fast as it
// can: what the gateway handles of that agent is held to one agent's budget,
// not sixteen times it, and another agent keeps its own.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { GatewayClient, connectParams } from '../index.ts';
import { MAX_AGENT_CONNECTIONS } from './server.ts';
import { startTestGateway } from '../../test/harness.ts';

const FRAMES_PER_SECOND = 100;
const BURST_FRAMES = 50;

/** What one socket read (64 KiB) holds of the flooder's frames (about 1 KiB each): the gateway handles a read it has taken whole, then holds its peer off. */
const FRAMES_PER_READ = 64;

// In a process of its own, so that its sending takes nothing from the gateway's event loop: opens `n` connections
// with the connect frame given (an agent token needs no nonce), then sends `test.count` on each as fast as it may.
const FLOODER = `
import WebSocket from 'ws';
const { url, connect, n } = JSON.parse(process.env.FLOOD);
const frame = JSON.stringify({ type: 'req', id: 'f', method: 'test.count', params: { pad: 'x'.repeat(1000) } });
let ready = 0;
for (let i = 0; i < n; i++) {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  socket.on('error', () => {});
  socket.once('message', () => {
    socket.send(JSON.stringify({ type: 'req', id: 'c1', method: 'connect', params: connect }));
    socket.once('message', () => {
      if (++ready === n) process.stdout.write('ready\\n');
      const pump = () => {
        for (let k = 0; k < 200 && socket.bufferedAmount < 64 * 1024; k++) socket.send(frame);
        setTimeout(pump, 5);
      };
      pump();
    });
  });
}
`;

describe(`when one agent sends requests as fast as it can on ${MAX_AGENT_CONNECTIONS} connections`, () => {
  it("handles that agent's frames within one agent's frame budget, its connections drawing on it together, and another agent's within its own (regression: each connection had a budget of its own, sixteen times as much for one token)", async () => {
    const gw = await startTestGateway({ inboundLimits: { agent: { framesPerSecond: FRAMES_PER_SECOND, burstFrames: BURST_FRAMES } } });
    const handled = new Map<string, number>();
    gw.server.method('test.count', { role: 'operator', handler: (_params, { peer }) => void handled.set(peer.agent!.name, (handled.get(peer.agent!.name) ?? 0) + 1) });
    for (const name of ['flood-bot', 'calm-bot']) gw.identity.agents.create({ name, process: 'flood', owner: 'owner@example.com' });
    const connect = connectParams({ url: '', role: 'operator', scopes: ['operator.read'], agentToken: (await gw.identity.issueToken('flood-bot')).token }, '', 0);
    const flooder = spawn(process.execPath, ['--input-type=module', '-e', FLOODER], { env: { ...process.env, FLOOD: JSON.stringify({ url: gw.server.url, connect, n: MAX_AGENT_CONNECTIONS }) }, stdio: ['ignore', 'pipe', 'inherit'] });
    const calm = await GatewayClient.connect({ url: gw.server.url, role: 'operator', scopes: ['operator.read'], agentToken: (await gw.identity.issueToken('calm-bot')).token });
    try {
      await new Promise<void>((resolve, reject) => {
        flooder.stdout.once('data', () => resolve());
        flooder.once('exit', (code) => reject(new Error(`the flooder exited (${code})`)));
      });
      const started = Date.now();
      const before = handled.get('flood-bot') ?? 0;
      await new Promise((r) => setTimeout(r, 3_000));
      const floodHandled = (handled.get('flood-bot') ?? 0) - before;
      const seconds = (Date.now() - started) / 1000;
      // At most what its budget held when the count began (a burst), what it refilled by since with a second's slack for
      // timers, and a read of each connection taken before the budget was found spent.
      const allowed = BURST_FRAMES + FRAMES_PER_SECOND * (seconds + 1) + MAX_AGENT_CONNECTIONS * FRAMES_PER_READ;
      assert.ok(floodHandled <= allowed, `the agent had ${floodHandled} frames handled in ${seconds.toFixed(1)} s, more than its budget allows (${allowed.toFixed(0)})`);
      // The other agent's budget is its own: its requests are handled as they come.
      for (let i = 0; i < 5; i++) await calm.request('test.count', {}, { timeoutMs: 2_000 });
      assert.equal(handled.get('calm-bot'), 5);
    } finally {
      flooder.kill();
      await calm.close();
      await gw.stop();
    }
  });
});
