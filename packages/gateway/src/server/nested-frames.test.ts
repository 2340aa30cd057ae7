// A paired node or an operator that sends a frame nested thousands deep: a
// few KiB of brackets that parse, but that the gateway cannot write out again
// (JSON.stringify recurses, and runs out of stack near 4,000 levels).
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { createDeviceIdentity } from '@corral/identity';
import { Gateway, GatewayClient, connectParams } from '../index.ts';
import { MAX_FRAME_DEPTH } from '../protocol/limits.ts';
import { RawPeer } from '../../test/harness.ts';
import { auditEvents } from '../../../../scripts/testing/audit-events.ts';
import { policyStateDirs } from '../../test/policy-state.ts';

const token = randomBytes(24).toString('base64url');
const stateDir = policyStateDirs('nested', '@id("sleep") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"sleep");');

/** Text of a JSON array nested `depth` deep. */
const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

/** A paired node on a raw socket: the test writes its frames as text. */
async function rawNode(gw: Gateway): Promise<{ peer: RawPeer; nodeId: string }> {
  const device = createDeviceIdentity();
  const options = { url: gw.url, token, role: 'node' as const, device, commands: ['system.run'] };
  await GatewayClient.connect(options).then((c) => c.close(), () => undefined);
  gw.identity.nodes.pair(device.deviceId, 'test');
  const peer = await RawPeer.open(gw.url);
  const challenge = (await peer.next()).payload as { nonce: string; ts: number };
  peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams(options, challenge.nonce, challenge.ts) });
  assert.equal((await peer.until((f) => f.id === 'c1')).ok, true);
  return { peer, nodeId: device.deviceId };
}

describe('when a paired node answers a command with a result nested thousands deep', () => {
  it(`closes the node 1002 as an invalid frame past ${MAX_FRAME_DEPTH} levels, and its caller is told the node disconnected (regression: the run was recorded a success and its caller told "internal error", retryable, so it ran the command again)`, async () => {
    const state = stateDir();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    const { peer, nodeId } = await rawNode(gw);
    try {
      const called = operator.request('node.invoke', { nodeId, command: 'system.run', params: { command: ['sleep', '0'] }, timeoutMs: 5_000, idempotencyKey: randomUUID() });
      const request = (await peer.until((f) => f.event === 'node.invoke.request')).payload as { id: string };
      peer.send(`{"type":"req","id":"r1","method":"node.invoke.result","params":{"id":"${request.id}","nodeId":"${nodeId}","ok":true,"payload":${nested(5_000)}}}`);
      await assert.rejects(called, (e: { wire?: { code?: string; retryable?: boolean; details?: { code?: string } } }) => e.wire?.details?.code === 'NODE_DISCONNECTED' && e.wire.retryable !== true);
      assert.equal((await peer.closed).code, 1002);
      assert.ok(gw.server.connections().length >= 1, 'the operator is still connected');
      const outcomes = (await auditEvents(state)).filter((e) => e.action === 'node.invoke').map((e) => [e.outcome?.status, e.outcome?.detail]);
      assert.deepEqual(outcomes, [['failure', 'GATEWAY_CONNECTION_CLOSED']]);
    } finally {
      await peer.close();
      await operator.close();
      await gw.close();
    }
  });

  it(`takes a result nested ${MAX_FRAME_DEPTH} levels deep, frame included, with brackets in its strings, and relays it to its caller`, async () => {
    const state = stateDir();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    const { peer, nodeId } = await rawNode(gw);
    try {
      const called = operator.request('node.invoke', { nodeId, command: 'system.run', params: { command: ['sleep', '0'] }, timeoutMs: 5_000, idempotencyKey: randomUUID() });
      const request = (await peer.until((f) => f.event === 'node.invoke.request')).payload as { id: string };
      // The frame, its params and the result object are three of the levels.
      // Brackets in a string (an escaped quote first) are text, not levels.
      peer.send(`{"type":"req","id":"r1","method":"node.invoke.result","params":{"id":"${request.id}","nodeId":"${nodeId}","ok":true,"payload":{"text":"\\"${'['.repeat(500)}","deep":${nested(MAX_FRAME_DEPTH - 3)}}}}`);
      const result = (await called) as { payload?: { deep?: unknown; text?: string } };
      assert.equal(result.payload?.text, `"${'['.repeat(500)}`);
      let depth = 0;
      for (let at: unknown = result.payload?.deep; Array.isArray(at); at = at[0]) depth += 1;
      assert.equal(depth, MAX_FRAME_DEPTH - 3);
    } finally {
      await peer.close();
      await operator.close();
      await gw.close();
    }
  });
});

describe('when an operator sends a request nested thousands deep', () => {
  it('closes its connection 1002 and logs GATEWAY_FRAME_INVALID; another connection is served', async () => {
    const log: Array<{ event?: string; code?: string }> = [];
    const gw = await Gateway.start({ stateDir: stateDir(), token, port: 0, log: (line) => log.push(line as { event?: string; code?: string }) });
    const other = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.read'] });
    const peer = await RawPeer.open(gw.url);
    try {
      const challenge = (await peer.next()).payload as { nonce: string; ts: number };
      peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token, role: 'operator', scopes: ['operator.admin'] }, challenge.nonce, challenge.ts) });
      assert.equal((await peer.until((f) => f.id === 'c1')).ok, true);
      peer.send(`{"type":"req","id":"r1","method":"node.list","params":{"x":${nested(100_000)}}}`);
      assert.equal((await peer.closed).code, 1002);
      assert.ok(log.some((line) => line.event === 'protocol-error' && line.code === 'GATEWAY_FRAME_INVALID'));
      assert.equal(((await other.request('health')) as { ok: boolean }).ok, true);
    } finally {
      await peer.close();
      await other.close();
      await gw.close();
    }
  });
});
