// A paired node keeps the device token its gateway gave it and reconnects
// with it alone: its machine need not keep the shared gateway token, which
// also admits operators.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Gateway } from '@corral/gateway';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { DEVICE_TOKENS_FILE } from './device-tokens.ts';
import { NodeHost, type NodeStatus } from './host.ts';

describe('a node reconnecting with its device token', () => {
  it('connects without the shared token once paired, also after the shared token changed; without either it says what it needs', async () => {
    const gatewayState = tempDir('corral-dt-gw-');
    const nodeState = tempDir('corral-dt-node-');
    const first = randomBytes(24).toString('base64url');
    let gw = await Gateway.start({ stateDir: gatewayState, token: first, port: 0 });
    const url = gw.url;
    const port = Number(new URL(url).port);
    assert.throws(() => new NodeHost({ gateway: url, stateDir: nodeState, warmSandboxes: 0 }), (e: { code?: string; message: string }) => e.code === 'NODE_CONFIG_INVALID' && /a gateway token is needed .* the first time/.test(e.message));

    const statuses: NodeStatus[] = [];
    let host = new NodeHost({ gateway: url, token: first, stateDir: nodeState, maxBackoffMs: 50, warmSandboxes: 0, onStatus: (s) => statuses.push(s) });
    const started = host.start();
    while (statuses[0]?.state !== 'pending-pairing') await new Promise((r) => setTimeout(r, 10));
    gw.identity.nodes.pair(host.device.deviceId, 'test');
    await started;
    await host.close();
    assert.equal(statSync(join(nodeState, DEVICE_TOKENS_FILE)).mode & 0o777, 0o600);

    try {
      // The operators' token is replaced; the node never had the new one.
      await gw.close();
      gw = await Gateway.start({ stateDir: gatewayState, token: randomBytes(24).toString('base64url'), port });
      host = new NodeHost({ gateway: url, stateDir: nodeState, maxBackoffMs: 50, warmSandboxes: 0 });
      await host.start();
      assert.ok(gw.inventory.list().some((n) => n.nodeId === host.device.deviceId && n.connected));
      await host.close();

      // A token the gateway does not know (its state was reset) refuses the node for good and is forgotten: the next start asks for the shared token.
      writeFileSync(join(nodeState, DEVICE_TOKENS_FILE), JSON.stringify({ [url]: 'not-a-token-it-gave' }));
      host = new NodeHost({ gateway: url, stateDir: nodeState, maxBackoffMs: 50, warmSandboxes: 0 });
      await assert.rejects(host.start(), (e: Error & { code?: string }) => e.code === 'NODE_CONFIG_INVALID' && /AUTH_TOKEN_MISSING/.test(e.message));
      await host.close();
      assert.throws(() => new NodeHost({ gateway: url, stateDir: nodeState, warmSandboxes: 0 }), { code: 'NODE_CONFIG_INVALID' });
    } finally {
      await host.close();
      await gw.close();
    }
  });
});

describe('the file of device tokens', () => {
  it('keeps the newest token of at most 32 gateways, refuses an over-long one, and reads a damaged file as none', async () => {
    const { DeviceTokens } = await import('./device-tokens.ts');
    const dir = tempDir('corral-dt-file-');
    const tokens = new DeviceTokens(dir);
    for (let i = 0; i < 40; i++) tokens.set(`ws://10.0.0.${i}:18789`, `token-${i}`);
    assert.equal(tokens.get('ws://10.0.0.7:18789'), undefined, 'the oldest are forgotten');
    assert.equal(tokens.get('ws://10.0.0.39:18789'), 'token-39');
    tokens.set('ws://10.0.0.39:18789', 'x'.repeat(201));
    assert.equal(tokens.get('ws://10.0.0.39:18789'), undefined, 'a token longer than any gateway gives is not kept');
    writeFileSync(join(dir, DEVICE_TOKENS_FILE), '{"ws://10.0.0.38:18789": ');
    assert.equal(tokens.get('ws://10.0.0.38:18789'), undefined);
  });
});
