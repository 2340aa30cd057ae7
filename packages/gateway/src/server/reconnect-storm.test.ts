// A paired node's key in a loop that reconnects as fast as it can: each
// connect the gateway accepts writes gateway.db twice (a device token, the
// declared surface) and closes the device's previous connection.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { GatewayClient, type GatewayClientOptions } from '../index.ts';
import { NODE_RECONNECTS_BURST, NODE_RECONNECT_EVERY_MS } from './server.ts';
import { startTestGateway, type TestGateway } from '../../test/harness.ts';

async function pairedDevice(gw: TestGateway): Promise<GatewayClientOptions> {
  const device: DeviceIdentity = createDeviceIdentity();
  const options: GatewayClientOptions = { url: gw.server.url, token: gw.token, role: 'node', device, commands: [] };
  await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
  gw.identity.nodes.pair(device.deviceId, 'test');
  return options;
}

describe('when a paired node reconnects again and again as fast as it can', () => {
  it(`accepts ${NODE_RECONNECTS_BURST} at once, then one every ${NODE_RECONNECT_EVERY_MS / 1000} s, refusing the rest before anything is written (UNAVAILABLE, retryable, 1013) and logging it; another node connects meanwhile (regression: every connect was accepted, about a hundred a second from one device)`, async () => {
    const clock = { ms: Date.now() };
    const gw = await startTestGateway({ now: () => clock.ms });
    try {
      const stormy = await pairedDevice(gw);
      const calm = await pairedDevice(gw);
      for (let i = 0; i < NODE_RECONNECTS_BURST; i++) await (await GatewayClient.connect(stormy)).close();
      const refused = await GatewayClient.connect(stormy).then(
        (client) => client.close().then(() => undefined),
        (error: { wire?: { code?: string; retryable?: boolean; retryAfterMs?: number } }) => error.wire,
      );
      assert.equal(refused?.code, 'UNAVAILABLE');
      assert.equal(refused?.retryable, true);
      assert.ok((refused?.retryAfterMs ?? 0) > 0);
      assert.ok(gw.log.some((e) => e.event === 'refused' && e.code === 'GATEWAY_RATE_LIMITED' && e.reason === 'reconnecting too fast'));
      await (await GatewayClient.connect(calm)).close();
      clock.ms += NODE_RECONNECT_EVERY_MS;
      await (await GatewayClient.connect(stormy)).close();
    } finally {
      await gw.stop();
    }
  });
});
