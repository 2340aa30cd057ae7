// One agent token opening connection after connection and reading none of
// them: what the gateway holds unread for it is bounded for the agent, not
// for each of its connections, and no other principal pays for it.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connectParams, type Connection } from '../index.ts';
import { MAX_AGENT_CONNECTIONS } from './server.ts';
import { RawPeer, startTestGateway, type TestGateway } from '../../test/harness.ts';

const MAX_BUFFERED = 1024 * 1024;
const FRAME = 64 * 1024;

/** A raw connection of the agent whose token this is, past hello-ok. */
async function agentPeer(gw: TestGateway, agentToken: string): Promise<RawPeer> {
  const peer = await RawPeer.open(gw.server.url);
  const { nonce, ts } = (await peer.next()).payload as { nonce: string; ts: number };
  peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', role: 'operator', scopes: ['operator.read'], agentToken }, nonce, ts) });
  assert.equal((await peer.until((f) => f.id === 'c1')).ok, true);
  return peer;
}

/** Bytes the gateway holds unread for `connections`, closing ones included, until their sockets are destroyed (which drops what they held): what they cost it. */
function unread(connections: Connection[]): number {
  return connections.reduce((n, c) => n + ((c.socket as unknown as { _socket?: Socket })._socket?.destroyed !== false ? 0 : c.socket.bufferedAmount), 0);
}

describe(`when one agent holds ${MAX_AGENT_CONNECTIONS} connections and reads none of what it is sent`, () => {
  it("holds what the agent's connections leave unread, together, to maxBufferedBytes, cutting off the one with most, and logs why; another agent and an operator reading theirs keep their connections (regression: each connection could leave maxBufferedBytes, 16 times as much for one token)", async () => {
    const gw = await startTestGateway({ maxBufferedBytes: MAX_BUFFERED });
    const opened = new Map<string, Connection>();
    gw.server.on('ready', (c) => opened.set(c.id, c));
    for (const name of ['hog-bot', 'calm-bot']) gw.identity.agents.create({ name, process: 'backlog', owner: 'owner@example.com' });
    const hogToken = (await gw.identity.issueToken('hog-bot')).token;
    const hogs: RawPeer[] = [];
    const others: RawPeer[] = [];
    try {
      for (let i = 0; i < MAX_AGENT_CONNECTIONS; i++) hogs.push(await agentPeer(gw, hogToken));
      others.push(await agentPeer(gw, (await gw.identity.issueToken('calm-bot')).token));
      const operator = await RawPeer.open(gw.server.url);
      const { nonce, ts } = (await operator.next()).payload as { nonce: string; ts: number };
      operator.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: ['operator.read'] }, nonce, ts) });
      assert.equal((await operator.until((f) => f.id === 'c1')).ok, true);
      others.push(operator);
      let othersReceived = 0;
      for (const peer of others) peer.socket.on('message', () => void (othersReceived += 1));
      for (const peer of hogs) (peer.socket as unknown as { _socket: Socket })._socket.pause();

      const hogConnections = () => [...opened.values()].filter((c) => c.peer?.agent?.name === 'hog-bot');
      const payload = { data: 'x'.repeat(FRAME) };
      let peak = 0;
      let rounds = 0;
      // Enough to fill loopback's socket buffers of every connection many times over, until every one of the agent's is cut off.
      for (const deadline = Date.now() + 60_000; hogConnections().some((c) => c.phase === 'ready') && Date.now() < deadline; rounds++) {
        gw.server.broadcast('test.backlog', payload);
        peak = Math.max(peak, unread(hogConnections()));
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(hogConnections().every((c) => c.phase === 'closed'), 'every connection of the agent that reads nothing is cut off in the end');
      assert.ok(peak <= MAX_BUFFERED + 2 * FRAME, `the agent's connections together held ${peak} bytes unread, more than maxBufferedBytes (${MAX_BUFFERED}) and a frame`);
      const cutLines = () => gw.log.filter((e) => e.event === 'closed' && e.reason === "slow consumer: its principal's connections left too much unread");
      for (const deadline = Date.now() + 5_000; cutLines().length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      assert.ok(cutLines().length > 0, 'the log says which connections were cut off for their principal, and why');
      // The other agent and the operator read everything they were sent, and are still connected.
      for (const peer of others) assert.equal(peer.socket.readyState, peer.socket.OPEN);
      for (const deadline = Date.now() + 10_000; othersReceived < 2 * rounds && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      assert.ok(othersReceived >= 2 * rounds, `the other principals received ${othersReceived} of ${2 * rounds} events`);
    } finally {
      for (const peer of [...hogs, ...others]) peer.socket.terminate();
      await gw.stop();
    }
  });
});
