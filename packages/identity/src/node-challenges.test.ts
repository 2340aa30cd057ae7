import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createDeviceIdentity, signDeviceAuth, type DeviceAuthFields } from './device.ts';
import { Identity } from './identity.ts';

describe("a connection's challenge", () => {
  const root = mkdtempSync(join(tmpdir(), 'corral-challenges-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  /** A store, and a new device answering a given nonce as a node: the thunk authenticates it. */
  function setUp() {
    const clock = { now: 1_790_000_000_000 };
    const id = Identity.open(mkdtempSync(join(root, 'store-')), { now: () => clock.now });
    const dev = createDeviceIdentity();
    const answer = (nonce: string) => () => {
      const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: clock.now, token: '', nonce, platform: 'linux' };
      const device = { id: dev.deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt: clock.now, nonce };
      return id.nodes.authenticate({ device, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [] }, nonce);
    };
    return { id, answer };
  }

  it('is no longer accepted once released (its connection closed)', () => {
    const { id, answer } = setUp();
    try {
      const { nonce } = id.nodes.challenge();
      id.nodes.release(nonce);
      assert.throws(answer(nonce), { code: 'IDENTITY_DEVICE_NONCE_MISMATCH' });
    } finally {
      id.close();
    }
  });

  it('keeps a challenge still waiting while 20,000 connections are opened and closed within its 15 s (regression: each closed connection kept its challenge, and past 10,000 the waiting one was pushed out)', () => {
    const { id, answer } = setUp();
    try {
      const waiting = id.nodes.challenge().nonce;
      for (let i = 0; i < 20_000; i++) id.nodes.release(id.nodes.challenge().nonce);
      assert.throws(answer(waiting), { code: 'IDENTITY_NODE_NOT_PAIRED' }, 'the waiting challenge is answered');
    } finally {
      id.close();
    }
  });

  it('ignores a release of a nonce it does not keep: spent, released already, never given, or not a string', () => {
    const { id, answer } = setUp();
    try {
      const { nonce } = id.nodes.challenge();
      const other = id.nodes.challenge().nonce;
      assert.throws(answer(nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      id.nodes.release(nonce);
      id.nodes.release(nonce);
      id.nodes.release('never-given');
      id.nodes.release(undefined as unknown as string);
      assert.throws(answer(other), { code: 'IDENTITY_NODE_NOT_PAIRED' }, 'another challenge still stands');
    } finally {
      id.close();
    }
  });
});
