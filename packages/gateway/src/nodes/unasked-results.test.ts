// A paired node that sends node.invoke.result for invokes it was never sent:
// ids of its own making, or another node's invoke. Each is ignored, but the
// gateway says so, and a node that keeps at it is cut off.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Gateway, GatewayClient, type GatewayLogEntry, type GatewayLogLine } from '../index.ts';
import { UNASKED_ANSWERS_BURST, UNASKED_ANSWERS_LOG_WINDOW_MS } from '../server/unasked-answers.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';

const token = randomBytes(24).toString('base64url');
const SECRET = 'payload-the-log-must-not-hold';

async function withGateway(run: (gw: Gateway, log: GatewayLogLine[], clock: { ms: number }) => Promise<void>): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'corral-unasked-'));
  const log: GatewayLogLine[] = [];
  const clock = { ms: Date.now() };
  const gw = await Gateway.start({ stateDir, token, port: 0, now: () => clock.ms, log: (line) => log.push(line) });
  try {
    await run(gw, log, clock);
  } finally {
    await gw.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

function forge(node: NodePeer, id: string = randomUUID(), nodeId = node.device.deviceId): Promise<unknown> {
  return node.client.request('node.invoke.result', { id, nodeId, ok: true, payloadJSON: JSON.stringify({ stdout: SECRET }) });
}

const unasked = (log: GatewayLogLine[], connId: string) => log.filter((l): l is GatewayLogEntry => 'connId' in l && l.connId === connId && l.event === 'refused' && l.method === 'node.invoke.result');

describe('when a paired node sends node.invoke.result for invokes it was never sent', () => {
  it('ignores them, logs the first of each minute with how many it has sent and never what they held, and counts an answer to another node\'s invoke as one (regression: each was ignored without a word)', async () => {
    await withGateway(async (gw, log, clock) => {
      const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.which']);
      const other = await pairedNodePeer(gw.url, token, gw.identity, ['system.which'], () => 'never');
      const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
      try {
        const connId = node.client.hello.server.connId;
        assert.deepEqual(await forge(node), { ok: true, ignored: true });
        assert.deepEqual(await forge(node), { ok: true, ignored: true });
        // The other node's invoke, answered by this one: under the other's id, then under its own.
        const waiting = operator.request('node.invoke', { nodeId: other.device.deviceId, command: 'system.which', params: { bins: ['sh'] }, idempotencyKey: randomUUID() });
        waiting.catch(() => undefined);
        for (const deadline = Date.now() + 3_000; other.received.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
        const id = other.received[0]!.id;
        assert.deepEqual(await forge(node, id, other.device.deviceId), { ok: true, ignored: true });
        assert.deepEqual(await forge(node, id), { ok: true, ignored: true });
        assert.equal(unasked(log, connId).length, 1, 'one line a minute');
        assert.equal(unasked(log, connId)[0]!.count, 1);
        clock.ms += UNASKED_ANSWERS_LOG_WINDOW_MS + 1;
        await forge(node);
        const lines = unasked(log, connId);
        assert.equal(lines.length, 2);
        assert.equal(lines[1]!.count, 5);
        assert.equal(lines[1]!.suppressed, 3);
        assert.ok(!JSON.stringify(log).includes(SECRET), 'nothing the node sent is in the log');
        // The other node's invoke still waits for the other node: its answer is the one taken.
        await other.client.request('node.invoke.result', { id, nodeId: other.device.deviceId, ok: true, payloadJSON: '{"bins":{"sh":"/bin/sh"}}' });
        assert.deepEqual(((await waiting) as { payload?: unknown }).payload, { bins: { sh: '/bin/sh' } });
      } finally {
        await Promise.all([node.close(), other.close(), operator.close()]);
      }
    });
  });

  it(`closes its connection (1008) once it sends more than ${UNASKED_ANSWERS_BURST} at once, and the log says why (regression: a node could forge results for ever)`, async () => {
    await withGateway(async (gw, log) => {
      const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.which']);
      try {
        for (let i = 0; i < UNASKED_ANSWERS_BURST; i++) assert.deepEqual(await forge(node), { ok: true, ignored: true });
        await forge(node).catch(() => undefined);
        const closed = await Promise.race([node.client.closed, new Promise((r) => setTimeout(() => r('still open'), 3_000).unref())]);
        assert.deepEqual(closed, { code: 1008, reason: 'too many answers to requests it was not sent' });
        const connId = node.client.hello.server.connId;
        const closedLine = () => log.find((l) => 'connId' in l && l.connId === connId && l.event === 'closed');
        for (const deadline = Date.now() + 3_000; closedLine() === undefined && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
        const line = closedLine();
        assert.equal(line && 'reason' in line ? line.reason : undefined, 'too many answers to requests it was not sent');
      } finally {
        await node.close();
      }
    });
  });
});
