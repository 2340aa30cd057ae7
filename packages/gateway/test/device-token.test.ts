// Device tokens: a paired node gets one in hello-ok (upstream's
// auth.deviceToken) and reconnects with it instead of the shared token; the
// token counts only for its own device, beside that device's proof, while the
// device is paired.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { Gateway, GatewayClient, isHelloOk, type GatewayClientOptions } from '../src/index.ts';

const token = randomBytes(24).toString('base64url');
const refused = (code: string) => (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === code;

describe('device tokens', () => {
  let state: string;
  let gw: Gateway;
  let device: DeviceIdentity;
  let issued: string;
  const nodeOptions = (over: Partial<GatewayClientOptions>): GatewayClientOptions => ({ url: gw.url, role: 'node', device, client: { displayName: 'tokened' }, commands: ['system.which'], ...over });
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-devtoken-'));
    gw = await Gateway.start({ stateDir: state, token, port: 0 });
    device = createDeviceIdentity();
    await assert.rejects(GatewayClient.connect(nodeOptions({ token })));
    gw.identity.nodes.pair(device.deviceId, 'test');
    const first = await GatewayClient.connect(nodeOptions({ token }));
    issued = first.hello.auth.deviceToken!;
    assert.ok(isHelloOk(first.hello), 'hello-ok with a device token still fits upstream HelloOk');
    await first.close();
  });
  after(async () => {
    await gw.close();
    rmSync(state, { recursive: true, force: true });
  });

  it('issues a paired node a device token in hello-ok', () => {
    assert.match(issued, /^[A-Za-z0-9_-]{43}$/);
  });

  it('lets the node reconnect with the device token alone, as auth.deviceToken or as auth.token, and issues the next one', async () => {
    const again = await GatewayClient.connect(nodeOptions({ deviceToken: issued }));
    const next = again.hello.auth.deviceToken!;
    assert.notEqual(next, issued);
    assert.equal(typeof again.hello.auth.issuedAtMs, 'number');
    await again.close();
    const asToken = await GatewayClient.connect(nodeOptions({ token: next }));
    await asToken.close();
  });

  it('refuses the token for another device, even one with its own valid proof', async () => {
    const other = createDeviceIdentity();
    await assert.rejects(GatewayClient.connect(nodeOptions({ device: other, deviceToken: issued })), refused('AUTH_TOKEN_MISSING'));
    await assert.rejects(GatewayClient.connect(nodeOptions({ device: other, token: issued })), refused('AUTH_TOKEN_MISMATCH'));
  });

  it('refuses the token without a device proof, and for another role', async () => {
    await assert.rejects(GatewayClient.connect({ url: gw.url, role: 'operator', token: issued, scopes: ['operator.read'] }), refused('AUTH_TOKEN_MISMATCH'));
    await assert.rejects(GatewayClient.connect({ url: gw.url, role: 'operator', device, token: issued, scopes: ['operator.read'] }), refused('AUTH_TOKEN_MISMATCH'));
  });

  it('refuses a forged token', async () => {
    await assert.rejects(GatewayClient.connect(nodeOptions({ deviceToken: randomBytes(32).toString('base64url') })), refused('AUTH_TOKEN_MISSING'));
  });

  it('stops working once the node is unpaired', async () => {
    const fresh = await GatewayClient.connect(nodeOptions({ token }));
    const current = fresh.hello.auth.deviceToken!;
    await fresh.close();
    gw.identity.nodes.revoke(device.deviceId);
    await assert.rejects(GatewayClient.connect(nodeOptions({ deviceToken: current })), (e: { wire?: { code?: string } }) => e.wire?.code === 'NOT_PAIRED');
  });
});
