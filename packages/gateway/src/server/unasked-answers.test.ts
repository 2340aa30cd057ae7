// What the server does with a peer's answers to requests it never sent
// (GatewayServer.unaskedAnswer), on a real node connection; the handler that
// finds them, node.invoke.result's, is held to it in nodes/unasked-results.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDeviceIdentity } from '@corral/identity';
import { GatewayClient, type GatewayClientOptions } from '../index.ts';
import { UNASKED_ANSWERS_BURST, UNASKED_ANSWERS_LOG_WINDOW_MS, UNASKED_ANSWERS_PER_MINUTE } from './unasked-answers.ts';
import { startTestGateway, type TestGateway } from '../../test/harness.ts';

/** A gateway whose `test.answer` stands for a result the node was never asked for, and a paired node on it. */
async function gatewayWithNode(clock: { ms: number }): Promise<{ gw: TestGateway; node: GatewayClient }> {
  const gw = await startTestGateway({ now: () => clock.ms });
  gw.server.method('test.answer', { role: 'node', handler: (_params, { connection, server }) => (server.unaskedAnswer(connection, 'test.answer'), { ok: true, ignored: true }) });
  const device = createDeviceIdentity();
  const options: GatewayClientOptions = { url: gw.server.url, token: gw.token, role: 'node', device, commands: [] };
  await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
  gw.identity.nodes.pair(device.deviceId, 'test');
  return { gw, node: await GatewayClient.connect(options) };
}

describe('when a node answers requests it was never sent', () => {
  it('logs the first of each window with how many it has sent and how many went unlogged, lets an honest few a minute through, and closes it (1008) past its allowance', async () => {
    const clock = { ms: Date.now() };
    const { gw, node } = await gatewayWithNode(clock);
    try {
      const lines = () => gw.log.filter((e) => e.event === 'refused' && e.method === 'test.answer');
      for (let i = 0; i < UNASKED_ANSWERS_BURST; i++) await node.request('test.answer', {});
      assert.deepEqual(lines().map((e) => [e.code, e.reason, e.count, e.suppressed, e.deviceId !== undefined]), [['GATEWAY_FRAME_OUT_OF_ORDER', 'answer to a request it was not sent', 1, undefined, true]]);
      // A window on, its allowance has refilled as much, and the next line counts those left out.
      clock.ms += UNASKED_ANSWERS_LOG_WINDOW_MS;
      for (let i = 0; i < UNASKED_ANSWERS_PER_MINUTE; i++) await node.request('test.answer', {});
      assert.deepEqual(lines().map((e) => [e.count, e.suppressed]), [[1, undefined], [UNASKED_ANSWERS_BURST + 1, UNASKED_ANSWERS_BURST - 1]]);
      await node.request('test.answer', {}).catch(() => undefined);
      assert.deepEqual(await node.closed, { code: 1008, reason: 'too many answers to requests it was not sent' });
      assert.deepEqual(lines().at(-1)!.reason, 'too many answers to requests it was not sent');
    } finally {
      await node.close();
      await gw.stop();
    }
  });
});
