// The gateway while another process (a `corral nodes pair`, `corral agents
// create`) holds identity.db's write lock: SQLite waits for a lock
// synchronously, so every wait stops the whole gateway. It waits briefly,
// keeps serving everyone else, and tells the writer it refused to try again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { IDENTITY_BUSY_TIMEOUT_MS } from './gateway.ts';
import { Gateway, GatewayClient } from './index.ts';
import { startTestGateway, type ApiClient, type TestGateway } from './http/testing.ts';
import { closeAdminGateway, startAdminGateway } from '../test/harness.ts';

/** How soon a request the lock does not concern is answered while a write waits on it. */
const ANSWERED_WITHIN_MS = 300;

/** Another connection to identity.db holding its write lock, as a CLI command writing does; `release` lets it go. */
function holdWriteLock(stateDir: string): { release(): void } {
  const db = new DatabaseSync(join(stateDir, 'identity.db'));
  db.exec('BEGIN IMMEDIATE');
  return {
    release() {
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

/** Milliseconds from now until `promise` settles (whatever it settles to). */
async function timed<T>(promise: Promise<T>, started = performance.now()): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const [result] = await Promise.allSettled([promise]);
  return { ms: performance.now() - started, result: result! };
}

function wireOf(result: PromiseSettledResult<unknown>): { code?: string; retryable?: boolean; retryAfterMs?: number } | undefined {
  assert.equal(result.status, 'rejected', 'the request was refused');
  return (result as PromiseRejectedResult).reason?.wire;
}

async function refusedAsPending(gw: Gateway, token: string, device: DeviceIdentity): Promise<void> {
  await assert.rejects(GatewayClient.connect({ url: gw.url, token, role: 'node', device, client: { displayName: 'runner' }, commands: ['system.which'] }), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
}

describe('while another process holds the identity store\'s write lock', () => {
  const token = randomBytes(24).toString('base64url');
  let stateDir: string;
  let gw: Gateway;
  let admin: GatewayClient;
  before(async () => {
    ({ stateDir, gw, admin } = await startAdminGateway('corral-busy-', token));
  });
  after(() => closeAdminGateway({ stateDir, gw, admin }));

  it('waits on the lock far less than the CLI does', () => {
    assert.ok(IDENTITY_BUSY_TIMEOUT_MS >= 100 && IDENTITY_BUSY_TIMEOUT_MS <= 250, `${IDENTITY_BUSY_TIMEOUT_MS} ms`);
  });

  describe('when an operator approves a pairing (regression: the gateway froze 5 s and then answered "unknown requestId")', () => {
    it('answers health within 300 ms, tells the approval UNAVAILABLE and retryable, and pairs once the lock is released', async () => {
      const device = createDeviceIdentity();
      await refusedAsPending(gw, token, device);
      const requestId = gw.identity.nodes.get(device.deviceId).surfaceRequest!.requestId;
      const lock = holdWriteLock(stateDir);
      let approved: PromiseSettledResult<unknown>;
      try {
        const started = performance.now();
        const approve = timed(admin.request('node.pair.approve', { requestId }), started);
        // Sent after the approval on the same connection: served only once the approval's wait is over.
        const health = await timed(admin.request('health', {}), started);
        assert.equal(health.result.status, 'fulfilled');
        assert.ok(health.ms < ANSWERED_WITHIN_MS, `health answered after ${Math.round(health.ms)} ms`);
        approved = (await approve).result;
      } finally {
        lock.release();
      }
      assert.deepEqual(wireOf(approved), { code: 'UNAVAILABLE', message: 'the gateway is busy: try again shortly', retryable: true, retryAfterMs: 1_000 });
      assert.equal(gw.identity.nodes.get(device.deviceId).status, 'pending', 'nothing was paired');
      await admin.request('node.pair.approve', { requestId });
      assert.equal(gw.identity.nodes.get(device.deviceId).status, 'paired');
    });
  });

  describe('when an operator removes a node (regression: answered "removed" and cut it off though it stayed paired)', () => {
    it('tells the removal UNAVAILABLE and retryable, leaves the node connected and paired, and removes it once the lock is released', async () => {
      const device = createDeviceIdentity();
      await refusedAsPending(gw, token, device);
      await admin.request('node.pair.approve', { requestId: gw.identity.nodes.get(device.deviceId).surfaceRequest!.requestId });
      const node = await GatewayClient.connect({ url: gw.url, token, role: 'node', device, client: { displayName: 'runner' }, commands: ['system.which'] });
      try {
        let closed = false;
        void node.closed.then(() => (closed = true));
        const lock = holdWriteLock(stateDir);
        let removed: PromiseSettledResult<unknown>;
        try {
          removed = (await timed(admin.request('node.pair.remove', { nodeId: device.deviceId }))).result;
        } finally {
          lock.release();
        }
        assert.equal(wireOf(removed)?.code, 'UNAVAILABLE');
        assert.equal(wireOf(removed)?.retryable, true);
        assert.equal(gw.identity.nodes.get(device.deviceId).status, 'paired');
        await admin.request('health', {});
        assert.equal(closed, false, 'the node stays connected');
        assert.deepEqual(await admin.request('node.pair.remove', { nodeId: device.deviceId }), { nodeId: device.deviceId, removed: true });
        assert.equal(gw.identity.nodes.get(device.deviceId).status, 'revoked');
      } finally {
        await node.close();
      }
    });
  });

  describe('when an agent connects with its token', () => {
    it('admits it at once: checking a token reads the store and writes nothing, and a reader does not wait on a writer', async () => {
      gw.identity.agents.create({ name: 'busy-bot', process: 'wait', owner: 'owner@example.com' });
      const agentToken = (await gw.identity.issueToken('busy-bot')).token;
      const lock = holdWriteLock(stateDir);
      try {
        const { ms, result } = await timed(GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'], agentToken }));
        assert.equal(result.status, 'fulfilled');
        assert.ok(ms < ANSWERED_WITHIN_MS, `admitted after ${Math.round(ms)} ms`);
        await (result as PromiseFulfilledResult<GatewayClient>).value.close();
      } finally {
        lock.release();
      }
    });
  });
});

describe('the HTTP API while another process holds the identity store\'s write lock', () => {
  let t: TestGateway;
  let admin: ApiClient;
  before(async () => {
    t = await startTestGateway();
    admin = await t.as('root', ['admin']);
    t.gw.identity.agents.create({ name: 'invoice-bot', process: 'invoices', owner: 'owner@example.com' });
  });
  after(() => t.close());

  it('answers a suspension 503 with Retry-After in the API\'s error shape and a read within 300 ms, and suspends once the lock is released', async () => {
    const lock = holdWriteLock(t.state);
    let suspend: { ms: number; result: PromiseSettledResult<Awaited<ReturnType<ApiClient['post']>>> };
    let read: { ms: number; result: PromiseSettledResult<Awaited<ReturnType<ApiClient['get']>>> };
    try {
      const started = performance.now();
      [suspend, read] = await Promise.all([timed(admin.post('/api/agents/invoice-bot/suspend', { reason: 'checking' }), started), timed(admin.get('/api/agents'), started)]);
    } finally {
      lock.release();
    }
    assert.equal(read.result.status, 'fulfilled');
    assert.ok(read.ms < ANSWERED_WITHIN_MS, `the read answered after ${Math.round(read.ms)} ms`);
    assert.ok(suspend.ms < ANSWERED_WITHIN_MS, `the suspension answered after ${Math.round(suspend.ms)} ms`);
    assert.equal(suspend.result.status, 'fulfilled');
    const answer = (suspend.result as PromiseFulfilledResult<Awaited<ReturnType<ApiClient['post']>>>).value;
    assert.equal(answer.status, 503);
    assert.equal(answer.headers.get('retry-after'), '1');
    assert.deepEqual(answer.body, { error: 'unavailable', message: 'the gateway is busy: try again shortly', code: 'IDENTITY_STORE_BUSY', retryAfterS: 1 });
    assert.equal(t.gw.identity.agents.get('invoice-bot').status, 'active');
    const again = await admin.post('/api/agents/invoice-bot/suspend', { reason: 'checking' });
    assert.deepEqual([again.status, again.body.status], [200, 'suspended']);
  });

  it('answers approving a pairing 503 with Retry-After, and pairs once the lock is released', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(t.gw, t.token, device);
    const requestId = t.gw.identity.nodes.get(device.deviceId).surfaceRequest!.requestId;
    const lock = holdWriteLock(t.state);
    let answer: Awaited<ReturnType<ApiClient['post']>>;
    try {
      answer = await admin.post(`/api/nodes/pending/${requestId}/approve`);
    } finally {
      lock.release();
    }
    assert.deepEqual([answer.status, answer.headers.get('retry-after'), answer.body.error, answer.body.code], [503, '1', 'unavailable', 'GATEWAY_BUSY']);
    const approved = await admin.post(`/api/nodes/pending/${requestId}/approve`);
    assert.deepEqual([approved.status, approved.body.status], [200, 'paired']);
  });
});

describe('starting while another process holds the identity store\'s write lock', () => {
  it('keeps trying, its event loop free between tries, and starts once the lock is released', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-busy-start-'));
    try {
      const token = randomBytes(24).toString('base64url');
      await (await Gateway.start({ stateDir, token, port: 0 })).close();
      const lock = holdWriteLock(stateDir);
      setTimeout(() => lock.release(), 400);
      const gw = await Gateway.start({ stateDir, token, port: 0 });
      await gw.close();
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
