// When the node stops trying: a refusal that retrying cannot fix (a wrong
// token, a revoked pairing) ends the host with the gateway's real code; a
// gateway that is unreachable is retried with backoff, and says so.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { Gateway, GatewayError } from '@corral/gateway';
import { startTestGateway } from '../../gateway/test/harness.ts';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { DEVICE_TOKENS_FILE } from './device-tokens.ts';
import { NodeHost, finalRefusal, type NodeStatus } from './host.ts';

const token = randomBytes(24).toString('base64url');

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const refusedWith = (detail: string) => (e: { code?: string; cause?: unknown }) => e.code === 'NODE_CONFIG_INVALID' && e.cause instanceof GatewayError && (e.cause.wire?.details as { code?: string } | undefined)?.code === detail;

describe('a node refused for good', () => {
  it('stops at a wrong token, naming AUTH_TOKEN_MISMATCH (regression: it printed refused (INVALID_REQUEST) forever)', async () => {
    const gw = await Gateway.start({ stateDir: tempDir('corral-rc-gw-'), token, port: 0 });
    const statuses: NodeStatus[] = [];
    const host = new NodeHost({ gateway: gw.url, token: `${token}-wrong`, stateDir: tempDir('corral-rc-node-'), maxBackoffMs: 50, warmSandboxes: 0, onStatus: (s) => statuses.push(s) });
    try {
      await assert.rejects(host.start(), refusedWith('AUTH_TOKEN_MISMATCH'));
      await assert.rejects(host.stopped, (e: Error) => /AUTH_TOKEN_MISMATCH/.test(e.message));
      assert.deepEqual(statuses, [{ state: 'stopped', detail: 'AUTH_TOKEN_MISMATCH' }]);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(statuses.length, 1, 'it tried again');
    } finally {
      await host.close();
      await gw.close();
    }
  });

  it('stops once an operator revoked its pairing, instead of waiting to be paired', async () => {
    const gw = await Gateway.start({ stateDir: tempDir('corral-rc-gw-'), token, port: 0 });
    const statuses: NodeStatus[] = [];
    const host = new NodeHost({ gateway: gw.url, token, stateDir: tempDir('corral-rc-node-'), maxBackoffMs: 50, warmSandboxes: 0, onStatus: (s) => statuses.push(s) });
    try {
      const started = host.start();
      started.catch(() => {});
      while (statuses[0]?.state !== 'pending-pairing') await new Promise((r) => setTimeout(r, 10));
      gw.identity.nodes.revoke(host.device.deviceId);
      await assert.rejects(started, refusedWith('PAIRING_REQUIRED'));
      assert.deepEqual(statuses.at(-1), { state: 'stopped', detail: 'PAIRING_REQUIRED' });
    } finally {
      await host.close();
      await gw.close();
    }
  });
});

describe('a gateway that cannot be reached', () => {
  it('is retried with growing backoff, each attempt reported with its reason and when it tries again, until closed', async () => {
    const statuses: NodeStatus[] = [];
    // A random source that always draws the middle: each wait lies halfway between 250 ms and its ceiling.
    const host = new NodeHost({ gateway: `ws://127.0.0.1:${await closedPort()}`, token, stateDir: tempDir('corral-rc-node-'), maxBackoffMs: 600, warmSandboxes: 0, random: () => 0.5, onStatus: (s) => statuses.push(s) });
    void host.start();
    while (statuses.length < 3) await new Promise((r) => setTimeout(r, 20));
    await host.close();
    await host.stopped;
    assert.ok(statuses.every((s) => s.state === 'unreachable' && s.detail === 'ECONNREFUSED'), JSON.stringify(statuses));
    // Ceilings of 250 ms first, doubling, capped at maxBackoffMs (250, 500, 600): halfway from 250 to each.
    assert.deepEqual(statuses.slice(0, 3).map((s) => s.retryInMs), [250, 375, 425]);
  });

  it('is retried by two nodes restarted together at different moments, each wait between 250 ms and its ceiling (regression: every node waited exactly 250, 500, 1000 ms… and came back in lockstep)', async () => {
    const port = await closedPort();
    /** A host whose random source is a seeded generator (a small LCG), and the waits it reports. */
    const reconnecting = (seed: number) => {
      let state = seed;
      const random = () => {
        state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
        return state / 2 ** 32;
      };
      const statuses: NodeStatus[] = [];
      const host = new NodeHost({ gateway: `ws://127.0.0.1:${port}`, token, stateDir: tempDir('corral-rc-node-'), maxBackoffMs: 400, warmSandboxes: 0, random, onStatus: (s) => statuses.push(s) });
      return { host, statuses };
    };
    const nodes = [reconnecting(1), reconnecting(2)];
    for (const { host } of nodes) void host.start();
    while (nodes.some(({ statuses }) => statuses.length < 3)) await new Promise((r) => setTimeout(r, 20));
    for (const { host } of nodes) await host.close();
    const waits = nodes.map(({ statuses }) => statuses.slice(0, 3).map((s) => s.retryInMs!));
    // Ceilings 250, 400 (doubled, capped at maxBackoffMs), 400.
    for (const each of waits) each.forEach((wait, i) => assert.ok(wait >= 250 && wait <= [250, 400, 400][i]!, JSON.stringify(waits)));
    assert.notDeepEqual(waits[0]!.slice(1), waits[1]!.slice(1), JSON.stringify(waits));
  });
});

describe('a gateway that accepts the node and then drops it', () => {
  /** A gateway that does `onReady` to every node connection it accepts, and a paired node on it; counts the connections. */
  async function droppingGateway(onReady: (connection: { event: (name: string, payload: unknown) => boolean; close: (code: number, reason: string) => void }, deviceId: string) => void) {
    const gw = await startTestGateway({ token });
    const statuses: NodeStatus[] = [];
    // Waits drawn halfway between 250 ms and their ceiling: what is asserted is how the ceiling grows.
    const host = new NodeHost({ gateway: gw.server.url, token, stateDir: tempDir('corral-rc-node-'), maxBackoffMs: 2_000, warmSandboxes: 0, random: () => 0.5, onStatus: (s) => statuses.push(s) });
    let connections = 0;
    gw.server.on('ready', (connection) => {
      connections += 1;
      onReady(connection, host.device.deviceId);
    });
    void host.start().catch(() => {});
    while (!gw.identity.nodes.find(host.device.deviceId)) await new Promise((r) => setTimeout(r, 10));
    gw.identity.nodes.pair(host.device.deviceId, 'test');
    while (connections === 0) await new Promise((r) => setTimeout(r, 5));
    return {
      statuses,
      connections: () => connections,
      close: async () => {
        await host.close();
        await gw.stop();
      },
    };
  }

  it('comes back with growing backoff when the gateway says its pairing was approved every time it connects (regression: it reconnected at once, in a loop)', async () => {
    const gw = await droppingGateway((connection, nodeId) => setTimeout(() => connection.event('node.pair.resolved', { nodeId, decision: 'approved' }), 20));
    try {
      const first = gw.connections();
      await new Promise((r) => setTimeout(r, 1_000));
      // 250 ms, then 500 ms: at most three more within a second.
      assert.ok(gw.connections() - first <= 3, `${gw.connections() - first} connections in one second`);
    } finally {
      await gw.close();
    }
  });

  it('grows its backoff when the gateway closes every connection at once, rather than starting over at each (regression: back every 250 ms, for ever)', async () => {
    const gw = await droppingGateway((connection) => connection.close(1011, 'go away'));
    try {
      while (gw.statuses.filter((s) => s.state === 'disconnected').length < 3) await new Promise((r) => setTimeout(r, 20));
      const waits = gw.statuses.filter((s) => s.state === 'disconnected').slice(0, 3).map((s) => s.retryInMs!);
      // Each drawn halfway between 250 ms and its ceiling: the ceilings double.
      const ceilings = waits.map((wait) => 2 * wait - 250);
      assert.deepEqual(ceilings, [ceilings[0]!, ceilings[0]! * 2, ceilings[0]! * 4]);
    } finally {
      await gw.close();
    }
  });
});

describe('a control plane the node cannot use', () => {
  it("says so, as the control plane's, when it is unreachable or refuses the node's token (regression: it said nothing, and every command was denied in silence)", async () => {
    const gw = await startTestGateway({ token });
    const cp = await Gateway.start({ stateDir: tempDir('corral-rc-cp-'), token: `${token}-cp`, port: 0 });
    const statuses: NodeStatus[] = [];
    const seen = (want: Partial<NodeStatus>) => statuses.some((s) => Object.entries(want).every(([k, v]) => s[k as keyof NodeStatus] === v));
    const unreachable = new NodeHost({ gateway: gw.server.url, token, stateDir: tempDir('corral-rc-node-'), warmSandboxes: 0, controlPlane: { url: `ws://127.0.0.1:${await closedPort()}`, token }, onStatus: (s) => statuses.push(s) });
    const wrong = new NodeHost({ gateway: gw.server.url, token, stateDir: tempDir('corral-rc-node-'), warmSandboxes: 0, controlPlane: { url: cp.url, token: 'not-its-token' }, onStatus: (s) => statuses.push(s) });
    try {
      void unreachable.start().catch(() => {});
      void wrong.start().catch(() => {});
      for (let i = 0; i < 250 && !(seen({ target: 'control-plane', state: 'unreachable' }) && seen({ target: 'control-plane', state: 'refused' })); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen({ target: 'control-plane', state: 'unreachable', detail: 'ECONNREFUSED' }), JSON.stringify(statuses));
      assert.ok(seen({ target: 'control-plane', state: 'refused', detail: 'AUTH_TOKEN_MISMATCH' }), JSON.stringify(statuses));
    } finally {
      await unreachable.close();
      await wrong.close();
      await cp.close();
      await gw.stop();
    }
  });

  it('forgets a device token the control plane no longer takes, so the next start asks for its token rather than being denied for ever', async () => {
    const gw = await startTestGateway({ token });
    const cp = await Gateway.start({ stateDir: tempDir('corral-rc-cp-'), token: `${token}-cp`, port: 0 });
    const stateDir = tempDir('corral-rc-node-');
    writeFileSync(join(stateDir, DEVICE_TOKENS_FILE), JSON.stringify({ [cp.url]: 'a-token-it-never-gave' }));
    const statuses: NodeStatus[] = [];
    const host = new NodeHost({ gateway: gw.server.url, token, stateDir, warmSandboxes: 0, controlPlane: { url: cp.url }, onStatus: (s) => statuses.push(s) });
    try {
      void host.start().catch(() => {});
      for (let i = 0; i < 250 && !statuses.some((s) => s.target === 'control-plane'); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(statuses.find((s) => s.target === 'control-plane')?.state, 'refused');
      assert.throws(() => new NodeHost({ gateway: gw.server.url, token, stateDir, warmSandboxes: 0, controlPlane: { url: cp.url } }), { code: 'NODE_CONFIG_INVALID', message: /a control plane token is needed/ });
    } finally {
      await host.close();
      await cp.close();
      await gw.stop();
    }
  });
});

describe('which refusals are final', () => {
  it('names token, device-proof, protocol and revoked-pairing refusals; retries a pairing still waiting, a retryable one, and a refusal without a code', () => {
    assert.equal(finalRefusal({ code: 'INVALID_REQUEST', message: 'x', details: { code: 'AUTH_TOKEN_MISMATCH' } })?.code, 'AUTH_TOKEN_MISMATCH');
    assert.equal(finalRefusal({ code: 'INVALID_REQUEST', message: 'x', details: { code: 'DEVICE_AUTH_SIGNATURE_INVALID' } })?.code, 'DEVICE_AUTH_SIGNATURE_INVALID');
    assert.equal(finalRefusal({ code: 'INVALID_REQUEST', message: 'x', details: { code: 'PROTOCOL_MISMATCH' } })?.code, 'PROTOCOL_MISMATCH');
    assert.equal(finalRefusal({ code: 'NOT_PAIRED', message: 'x', details: { code: 'PAIRING_REQUIRED', reason: 'revoked' } })?.code, 'PAIRING_REQUIRED');
    assert.equal(finalRefusal({ code: 'NOT_PAIRED', message: 'x', details: { code: 'PAIRING_REQUIRED', reason: 'not-paired' }, retryable: true }), undefined);
    assert.equal(finalRefusal({ code: 'UNAVAILABLE', message: 'x', details: { reason: 'startup-sidecars' }, retryable: true }), undefined);
    assert.equal(finalRefusal({ code: 'INVALID_REQUEST', message: 'x', details: { code: 'AUTH_TOKEN_MISMATCH' }, retryable: true }), undefined);
    assert.equal(finalRefusal({ code: 'INVALID_REQUEST', message: 'x' }), undefined);
    assert.equal(finalRefusal(undefined), undefined);
  });
});

describe('a gateway whose identity store another process holds', () => {
  it('is tried again once the store is free, never taken as a refusal of the device (regression: the node stopped for good)', { timeout: 30_000 }, async () => {
    const state = tempDir('corral-rc-busy-gw-');
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    // `corral nodes pair` or another gateway on the same state, holding the write lock past the store's 5 s busy timeout.
    const other = new DatabaseSync(join(state, 'identity.db'));
    other.exec('BEGIN IMMEDIATE');
    const statuses: NodeStatus[] = [];
    const host = new NodeHost({ gateway: gw.url, token, stateDir: tempDir('corral-rc-busy-node-'), maxBackoffMs: 200, warmSandboxes: 0, onStatus: (s) => statuses.push(s) });
    const running = host.start().catch((error: unknown) => error);
    try {
      await new Promise((r) => setTimeout(r, 6_500));
      other.exec('ROLLBACK');
      other.close();
      const deadline = Date.now() + 10_000;
      while (!gw.identity.nodes.find(host.device.deviceId) && Date.now() < deadline && !statuses.some((s) => s.state === 'stopped')) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(statuses.filter((s) => s.state === 'stopped'), [], 'the node gave up');
      assert.ok(gw.identity.nodes.find(host.device.deviceId), 'the node never reached the gateway once its store was free');
      assert.ok(statuses.some((s) => s.state === 'refused' && s.detail === 'UNAVAILABLE'), 'asked to retry while the store was held');
      // Paired, it connects: nothing of the busy spell stays behind.
      gw.identity.nodes.pair(host.device.deviceId, 'test');
      assert.equal(await running, undefined);
    } finally {
      if (other.isOpen) other.close();
      await host.close();
      await gw.close();
    }
  });
});
