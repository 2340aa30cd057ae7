// An operator that asks and never reads what it is sent: the gateway holds at
// most maxBufferedBytes for it, then cuts it off, and its log says why.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Gateway, connectParams, type GatewayLogLine } from '../index.ts';
import { RawPeer } from '../../test/harness.ts';
import { pairedNodePeer } from '../../test/node-peer.ts';

const token = randomBytes(24).toString('base64url');

describe('when an operator sends requests and never reads the answers', () => {
  it("closes it once more than maxBufferedBytes wait unread, and the log's closed line says it was a slow consumer (regression: it said nothing of why)", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-slow-'));
    const log: GatewayLogLine[] = [];
    const gw = await Gateway.start({ stateDir, token, port: 0, maxBufferedBytes: 1024 * 1024, log: (line) => log.push(line) });
    // Each answer is 1 MiB: 48 of them are more than loopback's socket buffers and the gateway's bound together.
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.which'], () => ({ ok: true, payload: { bins: 'x'.repeat(1024 * 1024) } }));
    const peer = await RawPeer.open(gw.url);
    try {
      const challenge = (await peer.next()).payload as { nonce: string; ts: number };
      peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token, role: 'operator', scopes: ['operator.write'] }, challenge.nonce, challenge.ts) });
      const hello = (await peer.until((f) => f.id === 'c1')).payload as { server: { connId: string } };
      (peer.socket as unknown as { _socket: Socket })._socket.pause();
      for (let i = 0; i < 48; i += 1) peer.send({ type: 'req', id: `r${i}`, method: 'node.invoke', params: { nodeId: node.device.deviceId, command: 'system.which', params: { bins: ['sh'] }, idempotencyKey: randomUUID() } });
      const closed = () => log.find((l) => l.event === 'closed' && 'connId' in l && l.connId === hello.server.connId);
      for (const deadline = Date.now() + 20_000; closed() === undefined && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      assert.equal((closed() as { reason?: string } | undefined)?.reason, 'slow consumer');
    } finally {
      peer.socket.terminate();
      await node.close();
      await gw.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
