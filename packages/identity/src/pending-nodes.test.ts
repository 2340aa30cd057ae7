import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDeviceIdentity, signDeviceAuth, type DeviceAuthFields, type DeviceIdentity } from './device.ts';
import { Identity } from './identity.ts';
import { MAX_PENDING_NODES, PENDING_NODE_TTL_MS } from './nodes.ts';

/** A store in its own directory, on a clock the test moves. */
function store(root: string): { id: Identity; clock: { now: number } } {
  const clock = { now: 1_790_000_000_000 };
  return { id: Identity.open(mkdtempSync(join(root, 'store-')), { now: () => clock.now }), clock };
}

/** `dev` connecting now, as a node declaring `commands`: the thunk authenticates it against a fresh challenge. */
function connectAs(id: Identity, clock: { now: number }, dev: DeviceIdentity, commands: string[] = ['canvas.snapshot']) {
  return () => {
    const { nonce } = id.nodes.challenge();
    const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: clock.now, token: '', nonce, platform: 'linux' };
    const device = { id: dev.deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt: clock.now, nonce };
    return id.nodes.authenticate({ device, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [], commands }, nonce);
  };
}

/** `count` fresh device keys, each connecting once and left waiting: their devices. */
function flood(id: Identity, clock: { now: number }, count: number): DeviceIdentity[] {
  return Array.from({ length: count }, () => {
    const dev = createDeviceIdentity();
    assert.throws(connectAs(id, clock, dev), { code: 'IDENTITY_NODE_NOT_PAIRED' });
    return dev;
  });
}

const pendingIds = (id: Identity) => id.nodes.list().filter((n) => n.status === 'pending').map((n) => n.deviceId).sort();

describe('nodes waiting to be paired', () => {
  const root = mkdtempSync(join(tmpdir(), 'corral-pending-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('when the holder of the gateway token floods it with fresh device keys', () => {
    // One flood for these tests, in order (each write is a commit): a node paired before it, then as many new keys as are kept.
    let id: Identity;
    let clock: { now: number };
    let paired: DeviceIdentity;
    let waiting: DeviceIdentity[];
    before(() => {
      ({ id, clock } = store(root));
      paired = createDeviceIdentity();
      assert.throws(connectAs(id, clock, paired), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      id.nodes.pair(paired.deviceId, 'ops');
      waiting = flood(id, clock, MAX_PENDING_NODES);
    });
    after(() => id.close());

    it(`keeps at most ${MAX_PENDING_NODES} waiting: each key past them is refused IDENTITY_NODE_PENDING_FULL and not recorded`, () => {
      // Before: every fresh key added a pending row, without end.
      const refused = Array.from({ length: 20 }, () => createDeviceIdentity());
      for (const dev of refused) assert.throws(connectAs(id, clock, dev), { code: 'IDENTITY_NODE_PENDING_FULL' });
      assert.equal(id.nodes.list().length, MAX_PENDING_NODES + 1);
      for (const dev of refused) assert.equal(id.nodes.find(dev.deviceId), undefined);
      // Those already waiting keep their place and their request, and are still told to wait.
      assert.deepEqual(pendingIds(id), waiting.map((d) => d.deviceId).sort());
      assert.throws(connectAs(id, clock, waiting[0]!), { code: 'IDENTITY_NODE_NOT_PAIRED' });
    });

    it('admits a paired node, and records its request for more commands, while the list is full', () => {
      assert.equal(connectAs(id, clock, paired)().status, 'paired');
      assert.deepEqual(connectAs(id, clock, paired, ['canvas.snapshot', 'camera.snap'])().commands, ['canvas.snapshot']);
      assert.deepEqual(id.nodes.get(paired.deviceId).surfaceRequest?.commands, ['camera.snap', 'canvas.snapshot']);
    });

    it('counts a node out of the waiting ones once an operator pairs or rejects it: each makes room for one', () => {
      id.nodes.pair(waiting[0]!.deviceId, 'ops');
      id.nodes.decline(waiting[1]!.deviceId);
      flood(id, clock, 2);
      assert.throws(connectAs(id, clock, createDeviceIdentity()), { code: 'IDENTITY_NODE_PENDING_FULL' });
    });
  });

  describe('when a waiting node goes away', () => {
    it(`drops its request once it has not tried for ${PENDING_NODE_TTL_MS / 60_000} minutes and a new device asks, keeping the ones still trying`, () => {
      const { id, clock } = store(root);
      try {
        const gone = flood(id, clock, MAX_PENDING_NODES);
        const trying = gone.splice(0, 3);
        clock.now += PENDING_NODE_TTL_MS - 60_000;
        // Still within its time: nothing has gone stale, so a new device is refused.
        assert.throws(connectAs(id, clock, createDeviceIdentity()), { code: 'IDENTITY_NODE_PENDING_FULL' });
        for (const dev of trying) assert.throws(connectAs(id, clock, dev), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        clock.now += 60_001;
        const fresh = createDeviceIdentity();
        assert.throws(connectAs(id, clock, fresh), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        assert.deepEqual(pendingIds(id), [...trying, fresh].map((d) => d.deviceId).sort());
        // One that comes back asks again, under the same request id an operator may already have seen.
        const back = gone[0]!;
        assert.throws(connectAs(id, clock, back), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        assert.equal(id.nodes.get(back.deviceId).status, 'pending');
      } finally {
        id.close();
      }
    });

    it('tells its listeners which nodes it dropped, and admits the new one even when a listener throws', () => {
      const { id, clock } = store(root);
      try {
        const [gone] = flood(id, clock, 1);
        const told: string[][] = [];
        id.nodes.onPendingExpired(() => {
          throw new Error('a listener that fails');
        });
        id.nodes.onPendingExpired((ids) => told.push([...ids]));
        clock.now += PENDING_NODE_TTL_MS + 1;
        const fresh = flood(id, clock, 1);
        assert.deepEqual(told, [[gone!.deviceId]]);
        assert.deepEqual(pendingIds(id), [fresh[0]!.deviceId]);
      } finally {
        id.close();
      }
    });

    it('never drops a paired or a revoked node, however long it has not connected', () => {
      const { id, clock } = store(root);
      try {
        const [paired, revoked, declined] = flood(id, clock, 3);
        id.nodes.pair(paired!.deviceId, 'ops');
        id.nodes.revoke(revoked!.deviceId);
        id.nodes.decline(declined!.deviceId);
        clock.now += 100 * PENDING_NODE_TTL_MS;
        flood(id, clock, 1);
        assert.equal(id.nodes.get(paired!.deviceId).status, 'paired');
        assert.equal(id.nodes.get(revoked!.deviceId).status, 'revoked');
        assert.equal(id.nodes.get(declined!.deviceId).status, 'revoked');
        assert.throws(connectAs(id, clock, revoked!), { code: 'IDENTITY_NODE_REVOKED' });
        assert.equal(connectAs(id, clock, paired!)().status, 'paired');
      } finally {
        id.close();
      }
    });
  });
});
