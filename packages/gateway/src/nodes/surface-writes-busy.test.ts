// Nodes connecting while another process (a `corral` command) holds
// gateway.db's write lock: what a node declared and the device token it is
// handed are written to gateway.db as it connects. Neither write may wait
// for the lock inside SQLite, which stops the whole gateway meanwhile.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { DeviceTokens } from '../server/device-tokens.ts';
import { GatewayClient, SurfaceStore, openGatewayDb, type GatewayClientOptions, type NodeListEntry, type PairingEntry } from '../index.ts';
import { CLOSE } from '../protocol/limits.ts';
import { GATEWAY_DB_FILE } from '../store/store.ts';
import { setBusyTimeout } from '../store/write-lock.ts';
import { NodeInventory } from './inventory.ts';
import { startTestGateway, type TestGateway } from '../../test/harness.ts';
import { stallMeter } from '../../../../scripts/testing/event-loop.ts';

/**
 * The gateway connection's busy_timeout in these tests: far above the
 * gateway's own (GATEWAY_BUSY_TIMEOUT_MS), so that a write waiting for the
 * lock inside SQLite shows as a stall of this length, which no slow machine
 * makes by itself.
 */
const BUSY_TIMEOUT_MS = 2_000;

/** Another connection to gateway.db holding its write lock, as a `corral` command writing does. */
function holdWriteLock(stateDir: string): { release(): void } {
  const db = new DatabaseSync(join(stateDir, GATEWAY_DB_FILE));
  db.exec('BEGIN IMMEDIATE');
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}


/** Waits (with timers, up to 10 s) until `check` holds. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (const end = performance.now() + 10_000; !check(); ) {
    if (performance.now() > end) assert.fail(`${what}: not within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `promise`, or a failure naming `what` after 10 s. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within 10 s`)), 10_000)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A gateway whose node inventory and device tokens live in gateway.db, as `corral gateway` runs them. */
interface Harness {
  t: TestGateway;
  stateDir: string;
  surfaces: SurfaceStore;
  tokens: DeviceTokens;
  operator: GatewayClient;
  close(): Promise<void>;
}

async function start(writeWaitMs?: number): Promise<Harness> {
  const stateDir = mkdtempSync(join(tmpdir(), 'corral-surface-busy-'));
  const db = openGatewayDb(stateDir);
  setBusyTimeout(db, BUSY_TIMEOUT_MS);
  const tokens = new DeviceTokens(db);
  const t = await startTestGateway({ stateDir, deviceTokens: tokens });
  const surfaces = new SurfaceStore(db);
  new NodeInventory(t.server, surfaces, writeWaitMs !== undefined ? { writeWaitMs } : {});
  const operator = await GatewayClient.connect({ url: t.server.url, token: t.token, role: 'operator', scopes: ['operator.admin'] });
  return {
    t,
    stateDir,
    surfaces,
    tokens,
    operator,
    async close() {
      await operator.close();
      await t.stop();
      db.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

function nodeOptions(h: Harness, device: DeviceIdentity, displayName: string): GatewayClientOptions {
  return { url: h.t.server.url, token: h.t.token, role: 'node', device, client: { displayName }, commands: ['system.which'], caps: ['camera'] };
}

/** A device paired (as `runner`, declaring system.which) while the lock is free. */
async function pairedDevice(h: Harness): Promise<DeviceIdentity> {
  const device = createDeviceIdentity();
  await assert.rejects(GatewayClient.connect(nodeOptions(h, device, 'runner')), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
  h.t.identity.nodes.pair(device.deviceId, 'test', { requestId: h.t.identity.nodes.get(device.deviceId).surfaceRequest!.requestId });
  return device;
}

async function listed(h: Harness, deviceId: string): Promise<NodeListEntry | undefined> {
  return ((await h.operator.request('node.list', {})) as { nodes: NodeListEntry[] }).nodes.find((n) => n.nodeId === deviceId);
}

describe('while a corral command holds the write lock of gateway.db', () => {
  describe('when a paired node connects (regression: its device token and surface each waited inside SQLite, stalling every connection, and the token then failed the connect)', () => {
    let h: Harness;
    before(async () => {
      h = await start();
    });
    after(() => h.close());

    it('admits it without stalling the gateway, hands out no device token it could not store, and stores what it declared once the lock is released', async () => {
      const device = await pairedDevice(h);
      const lock = holdWriteLock(h.stateDir);
      let node: GatewayClient | undefined;
      try {
        const stalls = stallMeter();
        const [connected, health] = await Promise.allSettled([GatewayClient.connect(nodeOptions(h, device, 'runner-2')), h.operator.request('health', {})]);
        const worst = stalls.stop();
        assert.equal(connected.status, 'fulfilled', 'the node is admitted while the lock is held');
        node = (connected as PromiseFulfilledResult<GatewayClient>).value;
        assert.equal(health.status, 'fulfilled');
        assert.ok(worst < BUSY_TIMEOUT_MS / 2, `the event loop stopped for ${Math.round(worst)} ms (a write waiting inside SQLite stops it ${BUSY_TIMEOUT_MS} ms)`);
        assert.equal((node.hello.auth as { deviceToken?: string }).deviceToken, undefined, 'no token is handed out that is not stored');
        // Operators see the node as it declared itself on this connection while its write waits (the name it gives now
        // as its claim: it is known by the name it was paired under).
        const entry = await listed(h, device.deviceId);
        assert.deepEqual([entry?.connected, entry?.displayName, entry?.claimedDisplayName, entry?.commands, entry?.caps], [true, 'runner', 'runner-2', ['system.which'], ['camera']]);
        assert.equal(h.surfaces.get(device.deviceId)?.displayName, 'runner', 'not stored while the lock is held');
      } finally {
        lock.release();
      }
      await eventually(() => h.surfaces.get(device.deviceId)?.displayName === 'runner-2', 'the declared surface stored');
      assert.deepEqual(h.surfaces.get(device.deviceId)?.caps, ['camera']);
      await node.close();
    });

    it('issues a device token at the next connect with the lock free, and the node reconnects with that token alone', async () => {
      const device = await pairedDevice(h);
      const lock = holdWriteLock(h.stateDir);
      try {
        await (await GatewayClient.connect(nodeOptions(h, device, 'runner'))).close();
      } finally {
        lock.release();
      }
      const node = await GatewayClient.connect(nodeOptions(h, device, 'runner'));
      const deviceToken = (node.hello.auth as { deviceToken?: string }).deviceToken;
      await node.close();
      assert.equal(typeof deviceToken, 'string');
      const { token: _shared, ...rest } = nodeOptions(h, device, 'runner');
      await (await GatewayClient.connect({ ...rest, deviceToken: deviceToken! })).close();
    });
  });

  describe('when the lock stays held past the wait', () => {
    let h: Harness;
    before(async () => {
      h = await start(300);
    });
    after(() => h.close());

    it('closes only that node\'s connection 1013 (try again later) with nothing stored, keeps serving the others, and admits it again once the lock is released', async () => {
      const other = await GatewayClient.connect(nodeOptions(h, await pairedDevice(h), 'other'));
      let otherClosed = false;
      void other.closed.then(() => (otherClosed = true));
      const device = await pairedDevice(h);
      const before = h.surfaces.get(device.deviceId);
      const lock = holdWriteLock(h.stateDir);
      try {
        const node = await GatewayClient.connect(nodeOptions(h, device, 'runner-2'));
        const closed = await within(node.closed, 'the node\'s connection closed');
        assert.equal(closed.code, CLOSE.tryAgainLater);
        assert.deepEqual(h.surfaces.get(device.deviceId), before, 'nothing stored');
        assert.equal((await listed(h, device.deviceId))?.connected, false);
        assert.equal(((await other.request('node.pending.pull', {})) as { hasMore: boolean }).hasMore, false, 'another node is still served');
        await h.operator.request('health', {});
        assert.equal(otherClosed, false);
      } finally {
        lock.release();
      }
      const node = await GatewayClient.connect(nodeOptions(h, device, 'runner-2'));
      await eventually(() => h.surfaces.get(device.deviceId)?.displayName === 'runner-2', 'the declared surface stored');
      assert.equal((await listed(h, device.deviceId))?.connected, true);
      await Promise.all([node.close(), other.close()]);
    });
  });

  describe('when an unpaired node asks to be paired (regression: its surface waited inside SQLite and then failed, so the request was never announced)', () => {
    let h: Harness;
    before(async () => {
      h = await start();
    });
    after(() => h.close());

    it('refuses it NOT_PAIRED without stalling the gateway, and announces the request with what it declared once the lock is released', async () => {
      const device = createDeviceIdentity();
      let released = false;
      const announced = new Promise<{ entry: PairingEntry; early: boolean }>((resolve) => {
        const stop = h.operator.on('node.pair.requested', (payload) => {
          stop();
          resolve({ entry: payload as PairingEntry, early: !released });
        });
      });
      const lock = holdWriteLock(h.stateDir);
      try {
        const stalls = stallMeter();
        await assert.rejects(GatewayClient.connect(nodeOptions(h, device, 'build-07')), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
        await h.operator.request('health', {});
        const worst = stalls.stop();
        assert.ok(worst < BUSY_TIMEOUT_MS / 2, `the event loop stopped for ${Math.round(worst)} ms (a write waiting inside SQLite stops it ${BUSY_TIMEOUT_MS} ms)`);
      } finally {
        released = true;
        lock.release();
      }
      const { entry, early } = await within(announced, 'the request announced');
      assert.equal(early, false, 'announced only once its surface is stored');
      assert.deepEqual([entry.nodeId, entry.displayName, entry.commands], [device.deviceId, 'build-07', ['system.which']]);
      assert.equal(h.surfaces.get(device.deviceId)?.displayName, 'build-07');
    });
  });
});

describe('SurfaceStore', () => {
  describe('when another connection holds the write lock past the wait', () => {
    it('rejects GATEWAY_BUSY (wire UNAVAILABLE, retryable) with nothing written, and writes once the lock is free', async () => {
      const stateDir = mkdtempSync(join(tmpdir(), 'corral-surface-store-'));
      const db = openGatewayDb(stateDir);
      try {
        const surfaces = new SurfaceStore(db);
        const surface = { deviceId: 'd1', displayName: 'runner', platform: 'linux', commands: ['system.which'], caps: [], lastSeenAt: 1 };
        const lock = holdWriteLock(stateDir);
        try {
          const stalls = stallMeter();
          await assert.rejects(Promise.resolve(surfaces.record(surface, { waitMs: 100 })), (e: { code?: string; wire?: { code?: string; retryable?: boolean } }) => e.code === 'GATEWAY_BUSY' && e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true);
          assert.ok(stalls.stop() < 1000, 'waited with timers, not inside SQLite (5 s here)');
          assert.equal(surfaces.get('d1'), undefined);
        } finally {
          lock.release();
        }
        assert.equal(surfaces.record(surface), undefined, 'written at once while the lock is free');
        assert.equal(surfaces.get('d1')?.displayName, 'runner');
      } finally {
        db.close();
        rmSync(stateDir, { recursive: true, force: true });
      }
    });
  });
});
