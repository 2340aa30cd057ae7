// A node connecting while a row of identity.db cannot be read: the gateway's
// own fault, never a refusal of the node's device.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { createDeviceIdentity } from '@corral/identity';
import { GatewayClient } from '../client/client.ts';
import { Gateway } from '../gateway.ts';

describe('a node connecting while its row of identity.db is damaged', () => {
  it('is asked to retry (UNAVAILABLE, retryable), not refused with DEVICE_AUTH_*, which would stop it for good', async () => {
    const state = mkdtempSync(join(tmpdir(), 'corral-damaged-store-'));
    const token = 'gateway-token-for-a-damaged-store';
    const gw = await Gateway.start({ stateDir: state, token, port: 0, audit: false });
    try {
      const device = createDeviceIdentity();
      const raw = new DatabaseSync(join(state, 'identity.db'));
      raw.prepare("INSERT INTO nodes (device_id, public_key, display_name, platform, status, requested_at, commands) VALUES (?, ?, 'n', 'linux', 'paired', 1, '[\"system.run\"')").run(device.deviceId, device.publicKey);
      raw.close();
      const refused = (await GatewayClient.connect({ url: gw.url, token, role: 'node', device, commands: ['system.run'] }).then(
        (c) => (void c.close(), undefined),
        (e: unknown) => e,
      )) as { wire?: { code?: string; retryable?: boolean; details?: { code?: string } } } | undefined;
      assert.ok(refused, 'the connect is not accepted');
      assert.deepEqual([refused.wire?.code, refused.wire?.retryable], ['UNAVAILABLE', true]);
      assert.ok(!String(refused.wire?.details?.code ?? '').startsWith('DEVICE_AUTH_'));
    } finally {
      await gw.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
