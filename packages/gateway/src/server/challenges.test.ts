import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDeviceIdentity, signDeviceAuth, type DeviceAuthFields } from '@corral/identity';
import { connectParams } from '../index.ts';
import { RawPeer, startTestGateway } from '../../test/harness.ts';

describe('when a connection closes', () => {
  it('gives its challenge back to the node registry, which no longer accepts it nor keeps it (regression: it was kept until it expired, and a flood of connections filled the 10,000 kept, pushing out those of nodes still connecting)', async () => {
    const gw = await startTestGateway({ tickIntervalMs: 60_000 });
    try {
      const closed = new Promise<void>((resolve) => gw.server.on('closed', () => resolve()));
      // An operator's connect spends no challenge: its connection holds it until it closes.
      const peer = await RawPeer.open(gw.server.url);
      const { nonce, ts } = (await peer.next()).payload as { nonce: string; ts: number };
      peer.send({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: gw.token, role: 'operator', scopes: [] }, nonce, ts) });
      assert.equal((await peer.next()).ok, true);
      await peer.close();
      await closed;
      const dev = createDeviceIdentity();
      const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: ts, token: '', nonce, platform: 'linux' };
      const device = { id: dev.deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt: ts, nonce };
      assert.throws(() => gw.identity.nodes.authenticate({ device, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [] }, nonce), { code: 'IDENTITY_DEVICE_NONCE_MISMATCH' });
    } finally {
      await gw.stop();
    }
  });
});
