// A node waiting to be paired in a state directory, as a gateway leaves one when a new device key connects.
import assert from 'node:assert/strict';
import { Identity, createDeviceIdentity, signDeviceAuth } from '@corral/identity';
import { openGatewayDb } from '@corral/gateway';

/**
 * Gives `state` a gateway state and an identity store in which a fresh
 * device key, named `displayName`, asked to be paired declaring
 * `commands`; its device id.
 */
export function pendingNode(state: string, displayName = 'build-01', commands: string[] = ['system.run']): string {
  openGatewayDb(state).close();
  const device = createDeviceIdentity();
  const identity = Identity.open(state);
  try {
    const { nonce } = identity.nodes.challenge();
    const signedAt = Date.now();
    const signature = signDeviceAuth(device.privateKeyPem, { deviceId: device.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: signedAt, token: '', nonce, platform: 'linux' });
    const connect = { device: { id: device.deviceId, publicKey: device.publicKey, signature, signedAt, nonce }, client: { id: 'node-host', mode: 'node', platform: 'linux', displayName }, role: 'node', scopes: [], commands };
    assert.throws(() => identity.nodes.authenticate(connect, nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
  } finally {
    identity.close();
  }
  return device.deviceId;
}
