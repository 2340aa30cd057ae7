import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import type { AuditEventInput } from '@corral/audit';
import { Identity, MAX_PENDING_NODES, PENDING_NODE_TTL_MS, createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { auditEvents } from '../http/testing.ts';
import { Gateway, GatewayClient, GatewayServer, SurfaceStore, openGatewayDb, type GatewayClientOptions, type NodeListEntry, type PairingEntry } from '../index.ts';
import type { PairingRequest } from '../server/server.ts';
import { MAX_ANNOUNCED, NodeInventory, approvalScopes } from './inventory.ts';
import { pairedNodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { closeAdminGateway, startAdminGateway } from '../../test/harness.ts';

const token = randomBytes(24).toString('base64url');

function nodeOptions(gw: Gateway, device: DeviceIdentity, name: string): GatewayClientOptions {
  return { url: gw.url, token, role: 'node', device, client: { displayName: name }, commands: ['system.run', 'system.which'] };
}

async function refusedAsPending(options: GatewayClientOptions): Promise<void> {
  await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
}

/** The request an operator approves the node's current command surface by. */
function requestOf(gw: Gateway, device: DeviceIdentity): string {
  return gw.identity.nodes.get(device.deviceId).surfaceRequest!.requestId;
}

function waitFor(client: GatewayClient, event: string): Promise<unknown> {
  return new Promise((resolve) => {
    const stop = client.on(event, (payload) => {
      stop();
      resolve(payload);
    });
  });
}

describe('node pairing over the protocol', () => {
  let stateDir: string;
  let gw: Gateway;
  let admin: GatewayClient;
  before(async () => {
    ({ stateDir, gw, admin } = await startAdminGateway('corral-inv-', token));
  });
  after(() => closeAdminGateway({ stateDir, gw, admin }));

  it('lists a new node as a pending request with its declared commands, the scopes approving it needs and the address it came from, and announces it once', async () => {
    const device = createDeviceIdentity();
    const announced = waitFor(admin, 'node.pair.requested');
    await refusedAsPending(nodeOptions(gw, device, 'build-01'));
    const { pending } = (await admin.request('node.pair.list', {})) as { pending: PairingEntry[] };
    const entry = pending.find((p) => p.nodeId === device.deviceId);
    assert.equal(((await announced) as PairingEntry).requestId, entry?.requestId);
    assert.equal(entry?.paired, false);
    assert.deepEqual(entry?.commands, ['system.run', 'system.which']);
    assert.deepEqual(entry?.requiredApproveScopes, ['operator.pairing', 'operator.admin'], 'as upstream\'s rows say: system.run runs programs');
    assert.equal(entry?.displayName, 'build-01');
    assert.equal(entry?.remoteIp, '127.0.0.1');
  });

  it('shows what a node says of itself without control or format characters, pending and connected, so a listing cannot be forged from it', async () => {
    const device = createDeviceIdentity();
    const forged = 'build-09\n\u001b[32mpaired\u202e';
    const announced = waitFor(admin, 'node.pair.requested');
    await refusedAsPending(nodeOptions(gw, device, forged));
    assert.equal(((await announced) as PairingEntry).displayName, 'build-09[32mpaired');
    await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
    const node = await GatewayClient.connect(nodeOptions(gw, device, forged));
    try {
      const { nodes } = (await admin.request('node.list', {})) as { nodes: NodeListEntry[] };
      assert.equal(nodes.find((n) => n.nodeId === device.deviceId)?.displayName, 'build-09[32mpaired');
    } finally {
      await node.close();
    }
  });

  it('lists none of the caps a node declares with control or format characters in them, pending or connected (regression: listed as sent, escape sequences and all)', async () => {
    const device = createDeviceIdentity();
    const options = { ...nodeOptions(gw, device, 'build-14'), caps: ['camera', 'x\u001b[2Jpaired', 'corral.invoke.release\u200b'] };
    await refusedAsPending(options);
    await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
    const listed = async (): Promise<string[] | undefined> => ((await admin.request('node.list', {})) as { nodes: NodeListEntry[] }).nodes.find((n) => n.nodeId === device.deviceId)?.caps;
    assert.deepEqual(await listed(), ['camera']);
    const node = await GatewayClient.connect(options);
    try {
      assert.deepEqual(await listed(), ['camera']);
    } finally {
      await node.close();
    }
  });

  it('needs operator.admin to approve a node that declares system.run (pairing scope alone is refused)', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(nodeOptions(gw, device, 'build-02'));
    const pairer = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.pairing'] });
    await assert.rejects(pairer.request('node.pair.approve', { requestId: requestOf(gw, device) }), (e: { wire?: { code: string; details?: { missingScope?: string } } }) => e.wire?.code === 'FORBIDDEN' && e.wire.details?.missingScope === 'operator.admin');
    assert.equal(gw.identity.nodes.get(device.deviceId).status, 'pending');
    await pairer.close();
  });

  describe('the scopes approving a node needs, as upstream asks them', () => {
    type Refusal = { wire?: { code: string; message: string; details?: { code?: string; missingScope?: string; requiredScopes?: string[] } } };
    const missing = (scope: string, required: string[]) => (e: Refusal) => {
      assert.deepEqual([e.wire?.code, e.wire?.message, e.wire?.details?.code, e.wire?.details?.missingScope, e.wire?.details?.requiredScopes], ['FORBIDDEN', `missing scope: ${scope}`, 'MISSING_SCOPE', scope, required]);
      return true;
    };
    const declaring = (device: DeviceIdentity, name: string, commands: string[]): GatewayClientOptions => ({ url: gw.url, token, role: 'node', device, client: { displayName: name }, commands });
    const operator = (scopes: string[]) => GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes });

    it('refuses operator.pairing alone a node that declares ordinary commands: operator.write too (regression: pairing alone approved them)', async () => {
      const device = createDeviceIdentity();
      await refusedAsPending(declaring(device, 'kiosk-01', ['canvas.present', 'camera.snap']));
      const pairer = await operator(['operator.pairing']);
      const writer = await operator(['operator.pairing', 'operator.write']);
      try {
        await assert.rejects(pairer.request('node.pair.approve', { requestId: requestOf(gw, device) }), missing('operator.write', ['operator.pairing', 'operator.write']));
        assert.equal(gw.identity.nodes.get(device.deviceId).status, 'pending');
        await writer.request('node.pair.approve', { requestId: requestOf(gw, device) });
        assert.deepEqual(gw.identity.nodes.get(device.deviceId).commands, ['camera.snap', 'canvas.present']);
      } finally {
        await pairer.close();
        await writer.close();
      }
    });

    it('lets operator.pairing alone approve a node that declares no commands', async () => {
      const device = createDeviceIdentity();
      await refusedAsPending(declaring(device, 'bare-01', []));
      const pairer = await operator(['operator.pairing']);
      try {
        await pairer.request('node.pair.approve', { requestId: requestOf(gw, device) });
        assert.equal(gw.identity.nodes.get(device.deviceId).status, 'paired');
      } finally {
        await pairer.close();
      }
    });

    it('refuses operator.pairing with operator.write a node that declares terminal.upload: operator.admin, as upstream\'s code asks', async () => {
      const device = createDeviceIdentity();
      await refusedAsPending(declaring(device, 'term-01', ['canvas.present', 'terminal.upload']));
      const writer = await operator(['operator.pairing', 'operator.write']);
      try {
        await assert.rejects(writer.request('node.pair.approve', { requestId: requestOf(gw, device) }), missing('operator.admin', ['operator.pairing', 'operator.admin']));
        assert.equal(gw.identity.nodes.get(device.deviceId).status, 'pending');
      } finally {
        await writer.close();
      }
    });

    it('asks operator.write for a paired node\'s request for more ordinary commands too', async () => {
      const device = createDeviceIdentity();
      await refusedAsPending(declaring(device, 'bare-02', []));
      await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
      const node = await GatewayClient.connect(declaring(device, 'bare-02', ['canvas.present']));
      const pairer = await operator(['operator.pairing']);
      try {
        await assert.rejects(pairer.request('node.pair.approve', { requestId: requestOf(gw, device) }), missing('operator.write', ['operator.pairing', 'operator.write']));
        assert.deepEqual(gw.identity.nodes.get(device.deviceId).commands, []);
      } finally {
        await pairer.close();
        await node.close();
      }
    });

    it('names upstream\'s scopes for each surface: none, ordinary, and each command that runs programs or reaches files, browser or exec approvals', () => {
      assert.deepEqual(approvalScopes([]), ['operator.pairing']);
      assert.deepEqual(approvalScopes(['canvas.present', 'system.notify']), ['operator.pairing', 'operator.write']);
      const adminOnly = ['system.run', 'system.run.prepare', 'system.which', 'browser.proxy', 'browser.proxy.upload.v1', 'fs.listDir', 'terminal.upload', 'system.execApprovals.get', 'system.execApprovals.set'];
      for (const command of adminOnly) assert.deepEqual(approvalScopes(['canvas.present', command]), ['operator.pairing', 'operator.admin'], command);
    });
  });

  it('lets an approved node connect, and lists it as connected with its commands', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(nodeOptions(gw, device, 'build-03'));
    const resolved = waitFor(admin, 'node.pair.resolved');
    await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
    assert.equal(((await resolved) as { decision: string }).decision, 'approved');
    const node = await GatewayClient.connect(nodeOptions(gw, device, 'build-03'));
    const { nodes } = (await admin.request('node.list', {})) as { nodes: NodeListEntry[] };
    const row = nodes.find((n) => n.nodeId === device.deviceId);
    assert.equal(row?.connected, true);
    assert.deepEqual(row?.commands, ['system.run', 'system.which']);
    const described = (await admin.request('node.describe', { nodeId: 'build-03' })) as NodeListEntry;
    assert.equal(described.nodeId, device.deviceId);
    await node.close();
  });

  it('finds a paired node by its name when a device waiting to be paired takes the same name (regression: the name was ambiguous, and node.describe and node.invoke by it answered unknown node)', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(nodeOptions(gw, device, 'build-13'));
    await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
    const node = await GatewayClient.connect(nodeOptions(gw, device, 'build-13'));
    try {
      await refusedAsPending(nodeOptions(gw, createDeviceIdentity(), 'build-13'));
      const described = (await admin.request('node.describe', { nodeId: 'build-13' })) as NodeListEntry;
      assert.equal(described.nodeId, device.deviceId);
    } finally {
      await node.close();
    }
  });

  it('records each pairing decision and removal made over the protocol, with the commands it granted (nothing was recorded)', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(nodeOptions(gw, device, 'build-10'));
    const requestId = requestOf(gw, device);
    await admin.request('node.pair.approve', { requestId });
    await admin.request('node.pair.remove', { nodeId: device.deviceId });
    const events = (await auditEvents(stateDir)).filter((e) => e.resource.id === device.deviceId);
    assert.deepEqual(events.map((e) => [e.action, e.actor.kind]), [['node.pair.approve', 'human'], ['node.revoke', 'human']]);
    assert.match(events[0]!.actor.id, /^operator:/);
    assert.deepEqual([events[0]!.details?.requestId, events[0]!.details?.commands], [requestId, ['system.run', 'system.which']]);
  });

  it('keeps a rejected node out', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(nodeOptions(gw, device, 'build-04'));
    await admin.request('node.pair.reject', { requestId: requestOf(gw, device) });
    await refusedAsPending(nodeOptions(gw, device, 'build-04'));
    assert.equal(gw.identity.nodes.get(device.deviceId).status, 'revoked');
  });

  it('disconnects a removed node and keeps it out', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(nodeOptions(gw, device, 'build-05'));
    await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
    const node = await GatewayClient.connect(nodeOptions(gw, device, 'build-05'));
    await admin.request('node.pair.remove', { nodeId: device.deviceId });
    assert.equal((await node.closed).code, 1008);
    await refusedAsPending(nodeOptions(gw, device, 'build-05'));
  });

  it('cuts off a connected node revoked outside the gateway (as corral nodes revoke does) at its next use', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(nodeOptions(gw, device, 'build-06'));
    await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
    const node = await GatewayClient.connect(nodeOptions(gw, device, 'build-06'));
    const outside = Identity.open(stateDir);
    outside.nodes.revoke(device.deviceId);
    outside.close();
    assert.throws(() => gw.inventory.route(device.deviceId), { code: 'GATEWAY_NOT_PAIRED' });
    assert.equal((await node.closed).code, 1008);
  });
});

describe('when a paired node device connects again while its first connection is open', () => {
  it('closes the first with 1008 and sends invokes to the newer one only', async () => {
    const state = await startAdminGateway('corral-inv-twice-', token);
    const { gw, admin } = state;
    const device = createDeviceIdentity();
    const options = { ...nodeOptions(gw, device, 'twice-01'), commands: ['system.which'] };
    try {
      await refusedAsPending(options);
      await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
      const first = await GatewayClient.connect(options);
      const firstInvokes: unknown[] = [];
      first.on('node.invoke.request', (p) => firstInvokes.push(p));
      const second = await GatewayClient.connect(options);
      second.on('node.invoke.request', (p) => {
        const { id, nodeId } = p as { id: string; nodeId: string };
        void second.request('node.invoke.result', { id, nodeId, ok: true, payloadJSON: '{"which":"second"}' }).catch(() => undefined);
      });
      assert.equal((await first.closed).code, 1008);
      const result = (await admin.request('node.invoke', { nodeId: 'twice-01', command: 'system.which', params: { bins: ['sh'] }, idempotencyKey: 'twice-1' })) as { payloadJSON?: string };
      assert.equal(result.payloadJSON, '{"which":"second"}');
      assert.deepEqual(firstInvokes, []);
      await second.close();
    } finally {
      await closeAdminGateway(state);
    }
  });
});

describe('the command surface a node is paired with', () => {
  let stateDir: string;
  let gw: Gateway;
  let admin: GatewayClient;
  let pairer: GatewayClient;
  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'corral-surface-'));
    gw = await Gateway.start({ stateDir, token, port: 0 });
    admin = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    pairer = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.pairing', 'operator.write'] });
  });
  after(async () => {
    await pairer.close();
    await admin.close();
    await gw.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const declaring = (device: DeviceIdentity, name: string, commands: string[]): GatewayClientOptions => ({ url: gw.url, token, role: 'node', device, client: { displayName: name }, commands });
  const notAllowed = (e: { wire?: { code: string; message: string } }) => e.wire?.code === 'INVALID_REQUEST' && /not allowed/.test(e.wire.message);

  it('admits a node paired without system.run that reconnects declaring it with the approved commands only; its request needs operator.admin', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(declaring(device, 'kiosk', ['canvas.present']));
    await pairer.request('node.pair.approve', { requestId: requestOf(gw, device) });
    assert.deepEqual(gw.identity.nodes.get(device.deviceId).commands, ['canvas.present']);

    // Before, this reconnect was sent system.run on a pairing no admin ever approved.
    const announced = waitFor(admin, 'node.pair.requested');
    const node = await GatewayClient.connect(declaring(device, 'kiosk', ['canvas.present', 'system.run']));
    try {
      const request = (await announced) as PairingEntry;
      assert.deepEqual([request.nodeId, request.paired, request.commands, request.approvedCommands], [device.deviceId, true, ['canvas.present', 'system.run'], ['canvas.present']]);
      assert.deepEqual(gw.inventory.route(device.deviceId).commands, ['canvas.present']);
      await assert.rejects(admin.request('node.invoke', { nodeId: device.deviceId, command: 'system.run', params: { command: ['true'] }, idempotencyKey: 'k1' }), notAllowed);
      const { nodes } = (await admin.request('node.list', {})) as { nodes: NodeListEntry[] };
      assert.deepEqual(nodes.find((n) => n.nodeId === device.deviceId)?.commands, ['canvas.present']);

      await assert.rejects(pairer.request('node.pair.approve', { requestId: request.requestId }), (e: { wire?: { code: string } }) => e.wire?.code === 'FORBIDDEN');
      assert.deepEqual(gw.inventory.route(device.deviceId).commands, ['canvas.present']);
      await admin.request('node.pair.approve', { requestId: request.requestId });
      // Counts on the live connection at once, with no reconnect.
      assert.deepEqual(gw.inventory.route(device.deviceId).commands, ['canvas.present', 'system.run']);
      assert.equal(gw.identity.nodes.get(device.deviceId).surfaceRequest, undefined);
    } finally {
      await node.close();
    }
  });

  it('ties a request to the surface it names: approving one the node has since replaced fails and pairs nothing', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(declaring(device, 'switcher', ['system.which']));
    const seen = requestOf(gw, device);
    await refusedAsPending(declaring(device, 'switcher', ['system.run', 'system.which']));
    assert.notEqual(requestOf(gw, device), seen);
    await assert.rejects(admin.request('node.pair.approve', { requestId: seen }), (e: { wire?: { code: string; message: string } }) => e.wire?.code === 'INVALID_REQUEST' && e.wire.message === 'unknown requestId');
    await assert.rejects(admin.request('node.pair.approve', { requestId: device.deviceId }), (e: { wire?: { code: string } }) => e.wire?.code === 'INVALID_REQUEST');
    assert.equal(gw.identity.nodes.get(device.deviceId).status, 'pending');
    const { pending } = (await admin.request('node.pair.list', {})) as { pending: PairingEntry[] };
    assert.deepEqual(pending.find((p) => p.nodeId === device.deviceId)?.commands, ['system.run', 'system.which']);
  });

  it('rejecting a paired node\'s request keeps it paired with what it had; declaring the same again asks nothing, declaring more asks again', async () => {
    const device = createDeviceIdentity();
    await refusedAsPending(declaring(device, 'steady', ['system.which']));
    await admin.request('node.pair.approve', { requestId: requestOf(gw, device) });
    const wider = declaring(device, 'steady', ['system.run', 'system.which']);
    await (await GatewayClient.connect(wider)).close();
    await admin.request('node.pair.reject', { requestId: requestOf(gw, device) });
    const again = await GatewayClient.connect(wider);
    assert.equal(gw.identity.nodes.get(device.deviceId).status, 'paired');
    assert.equal(gw.identity.nodes.get(device.deviceId).surfaceRequest, undefined);
    assert.deepEqual(gw.inventory.route(device.deviceId).commands, ['system.which']);
    await again.close();
    await (await GatewayClient.connect(declaring(device, 'steady', ['system.run', 'system.which', 'fs.listDir']))).close();
    assert.deepEqual(gw.identity.nodes.get(device.deviceId).surfaceRequest?.commands, ['fs.listDir', 'system.run', 'system.which']);
  });
});

describe('when an operator narrows or unpairs a node while a command for it waits for a human', () => {
  const asking = policyStateDirs('surface-wait', '@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");');
  const invokeRun = (client: GatewayClient, nodeId: string) =>
    client.request('node.invoke', { nodeId, command: 'system.run', params: { command: ['printf', 'late'] }, timeoutMs: 10_000, idempotencyKey: randomBytes(8).toString('hex') }, { timeoutMs: 15_000 });

  for (const change of ['narrowed to system.which', 'revoked'] as const) {
    it(`sends nothing once approved when the node was ${change} meanwhile (regression: sent on the commands read before the wait)`, async () => {
      const stateDir = asking();
      const gw = await Gateway.start({ stateDir, token, port: 0, approvalPollMs: 20 });
      const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run', 'system.which'], () => ({ ok: true, payload: { exitCode: 0 } }));
      const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'] });
      try {
        const invoked = invokeRun(operator, node.device.deviceId);
        while (gw.approvals.list({ status: 'pending' }).length === 0) await new Promise((r) => setTimeout(r, 10));
        const outside = Identity.open(stateDir);
        if (change === 'revoked') outside.nodes.revoke(node.device.deviceId);
        else outside.nodes.pair(node.device.deviceId, 'bob', { commands: ['system.which'] });
        outside.close();
        await gw.invoker.resolveApprovalWhenFree(gw.approvals.list({ status: 'pending' })[0]!.id, 'allow-once', 'alice');
        await assert.rejects(invoked, (e: { wire?: { code: string } }) => e.wire?.code === (change === 'revoked' ? 'NOT_PAIRED' : 'INVALID_REQUEST'));
        assert.deepEqual(node.received.map((r) => r.command), []);
      } finally {
        await operator.close();
        await node.close();
        await gw.close();
      }
    });
  }
});

describe('when genuine devices keep asking to be paired with fresh keys', () => {
  it(`remembers what it announced for at most ${MAX_ANNOUNCED} devices, forgetting the oldest first (regression: one entry per device ever seen, never dropped)`, () => {
    let ask: (request: PairingRequest) => void = () => {};
    const announced: string[] = [];
    const server = {
      on: () => {},
      method: () => {},
      onPairingRequest: (listener: (request: PairingRequest) => void) => (ask = listener),
      broadcast: (_event: string, payload: PairingEntry) => announced.push(payload.nodeId),
      identity: { nodes: { onPendingExpired: () => {}, find: (deviceId: string) => ({ deviceId, displayName: deviceId, platform: '', status: 'pending', requestedAt: new Date(0).toISOString(), commands: [], surfaceRequest: { requestId: `r-${deviceId}`, commands: [], at: new Date(0).toISOString() } }) } },
    } as unknown as GatewayServer;
    new NodeInventory(server, { record: () => {}, get: () => undefined } as unknown as SurfaceStore);
    const request = (deviceId: string): PairingRequest => ({ requestId: `r-${deviceId}`, deviceId, displayName: deviceId, platform: '', commands: [], caps: [], remoteAddress: '127.0.0.1' });
    ask(request('first'));
    ask(request('first'));
    assert.deepEqual(announced, ['first'], 'a reconnect is not announced again');
    for (let i = 0; i < MAX_ANNOUNCED; i++) ask(request(`d${i}`));
    ask(request('first'));
    assert.equal(announced.at(-1), 'first', 'the oldest was forgotten, so it is announced again');
    assert.equal(announced.length, MAX_ANNOUNCED + 2);
  });
});

describe('when as many never-paired nodes as Corral keeps already wait', () => {
  it('refuses a new device with a retryable UNAVAILABLE saying the pending requests are full (PAIRING_PENDING_FULL), records and announces nothing, and still admits a paired node and tells a waiting one to wait', async () => {
    // Before: every new key was recorded and announced as a pairing request, without end.
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-inv-'));
    const gw = await Gateway.start({ stateDir, token, port: 0 });
    const admin = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      const paired = createDeviceIdentity();
      const waiting = createDeviceIdentity();
      await refusedAsPending(nodeOptions(gw, paired, 'kept'));
      await refusedAsPending(nodeOptions(gw, waiting, 'waiting'));
      gw.identity.nodes.pair(paired.deviceId, 'test');
      // The rest of the list, written as one transaction (each genuine connect would be a commit of its own).
      const db = new DatabaseSync(join(stateDir, 'identity.db'));
      db.exec('BEGIN');
      const insert = db.prepare("INSERT INTO nodes (device_id, public_key, display_name, platform, status, requested_at, seen_at, requested_commands, request_id) VALUES (?, 'x', 'flood', 'linux', 'pending', ?, ?, '[]', ?)");
      for (let i = 1; i < MAX_PENDING_NODES; i++) insert.run(randomBytes(32).toString('hex'), Date.now(), Date.now(), randomBytes(16).toString('hex'));
      db.exec('COMMIT');
      db.close();

      const announced: string[] = [];
      admin.on('node.pair.requested', (payload) => announced.push((payload as PairingEntry).nodeId));
      const fresh = createDeviceIdentity();
      await assert.rejects(GatewayClient.connect(nodeOptions(gw, fresh, 'one-too-many')), (e: { wire?: { code: string; message: string; retryable?: boolean; details?: { code?: string; recommendedNextStep?: string } } }) => {
        assert.equal(e.wire?.code, 'UNAVAILABLE');
        assert.equal(e.wire.retryable, true);
        assert.deepEqual([e.wire.details?.code, e.wire.details?.recommendedNextStep], ['PAIRING_PENDING_FULL', 'wait_then_retry']);
        assert.match(e.wire.message, /wait to be paired/);
        return true;
      });
      assert.equal(gw.identity.nodes.find(fresh.deviceId), undefined);
      await refusedAsPending(nodeOptions(gw, waiting, 'waiting'));
      const node = await GatewayClient.connect(nodeOptions(gw, paired, 'kept'));
      await node.close();
      const { pending } = (await admin.request('node.pair.list', {})) as { pending: PairingEntry[] };
      assert.equal(pending.length, MAX_PENDING_NODES);
      assert.equal(pending.some((p) => p.nodeId === fresh.deviceId), false);
      // The operator's list was sent after any announcement the refusal would have made, on the same connection.
      assert.equal(announced.includes(fresh.deviceId), false);
    } finally {
      await admin.close();
      await gw.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe('when a node waiting to be paired goes away and its request goes stale', () => {
  it('forgets the surface it declared once a new device asks, and announces its request again if it comes back (regression: one surface kept per key ever seen)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-inv-'));
    const gw = await Gateway.start({ stateDir, token, port: 0 });
    const admin = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.pairing'] });
    const surfaces = openGatewayDb(stateDir);
    try {
      const gone = createDeviceIdentity();
      const first = waitFor(admin, 'node.pair.requested');
      await refusedAsPending(nodeOptions(gw, gone, 'gone'));
      assert.equal(((await first) as PairingEntry).nodeId, gone.deviceId);
      assert.notEqual(new SurfaceStore(surfaces).get(gone.deviceId), undefined);
      // It last tried longer ago than a waiting node may stay silent.
      const db = new DatabaseSync(join(stateDir, 'identity.db'));
      db.prepare('UPDATE nodes SET requested_at = ?, seen_at = ? WHERE device_id = ?').run(Date.now() - PENDING_NODE_TTL_MS - 1000, Date.now() - PENDING_NODE_TTL_MS - 1000, gone.deviceId);
      db.close();
      await refusedAsPending(nodeOptions(gw, createDeviceIdentity(), 'new'));
      assert.equal(gw.identity.nodes.find(gone.deviceId), undefined);
      assert.equal(new SurfaceStore(surfaces).get(gone.deviceId), undefined);
      const again = new Promise<PairingEntry>((resolve) => admin.on('node.pair.requested', (p) => (p as PairingEntry).nodeId === gone.deviceId && resolve(p as PairingEntry)));
      await refusedAsPending(nodeOptions(gw, gone, 'gone'));
      assert.equal((await again).requestId, requestOf(gw, gone));
    } finally {
      surfaces.close();
      await admin.close();
      await gw.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe('node inventory across a gateway restart', () => {
  it('keeps paired nodes paired and pending requests pending', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-inv-'));
    const paired = createDeviceIdentity();
    const waiting = createDeviceIdentity();
    let gw = await Gateway.start({ stateDir, token, port: 0 });
    await refusedAsPending(nodeOptions(gw, paired, 'kept'));
    await refusedAsPending(nodeOptions(gw, waiting, 'waiting'));
    gw.identity.nodes.pair(paired.deviceId, 'test');
    await gw.close();

    gw = await Gateway.start({ stateDir, token, port: 0 });
    const node = await GatewayClient.connect(nodeOptions(gw, paired, 'kept'));
    const admin = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.pairing'] });
    const { pending } = (await admin.request('node.pair.list', {})) as { pending: PairingEntry[] };
    assert.deepEqual(pending.map((p) => p.nodeId), [waiting.deviceId]);
    assert.deepEqual(pending[0]!.commands, ['system.run', 'system.which']);
    await node.close();
    await admin.close();
    await gw.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
});

describe('when the audit log refuses the record of a pairing decision', () => {
  it('pairs nothing, so the approval can be made again once the log takes it (regression: the node was paired unrecorded, the caller told it failed, and its retry refused as an unknown request)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-inv-'));
    const identity = Identity.open(stateDir);
    const db = openGatewayDb(stateDir);
    const server = await GatewayServer.start({ token, identity, port: 0 });
    const recorded: AuditEventInput[] = [];
    let refusing = true;
    new NodeInventory(server, new SurfaceStore(db), {
      record: async (event) => {
        if (refusing) throw new Error('the disk is full');
        recorded.push(event);
      },
    });
    const admin = await GatewayClient.connect({ url: server.url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      const device = createDeviceIdentity();
      await assert.rejects(GatewayClient.connect({ url: server.url, token, role: 'node', device, client: { displayName: 'unrecorded' }, commands: ['system.run'] }), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
      const requestId = identity.nodes.get(device.deviceId).surfaceRequest!.requestId;
      await assert.rejects(admin.request('node.pair.approve', { requestId }), (e: { wire?: { code: string; retryable?: boolean } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true);
      assert.equal(identity.nodes.get(device.deviceId).status, 'pending');
      refusing = false;
      await admin.request('node.pair.approve', { requestId });
      assert.equal(identity.nodes.get(device.deviceId).status, 'paired');
      assert.deepEqual(recorded.map((e) => [e.action, e.details?.requestId]), [['node.pair.approve', requestId]]);
    } finally {
      await admin.close();
      await server.close();
      db.close();
      identity.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe('when the audit log refuses the record of a removal', () => {
  it('removes the node all the same and says it did, not that nothing happened (regression: a retryable internal error, as if the node were still paired)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'corral-inv-'));
    const identity = Identity.open(stateDir);
    const db = openGatewayDb(stateDir);
    const server = await GatewayServer.start({ token, identity, port: 0 });
    new NodeInventory(server, new SurfaceStore(db), { record: async () => Promise.reject(new Error('the disk is full')) });
    const admin = await GatewayClient.connect({ url: server.url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      const device = createDeviceIdentity();
      await assert.rejects(GatewayClient.connect({ url: server.url, token, role: 'node', device, commands: [] }), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
      identity.nodes.pair(device.deviceId, 'test');
      await assert.rejects(admin.request('node.pair.remove', { nodeId: device.deviceId }), (e: { wire?: { code: string; retryable?: boolean } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable !== true);
      assert.equal(identity.nodes.get(device.deviceId).status, 'revoked');
    } finally {
      await admin.close();
      await server.close();
      db.close();
      identity.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describe('when a paired node reconnects naming itself as another paired node (its own key and device token, client.displayName unsigned)', () => {
  let stateDir: string;
  let gw: Gateway;
  let admin: GatewayClient;
  before(async () => {
    ({ stateDir, gw, admin } = await startAdminGateway('corral-inv-names-', token));
  });
  after(() => closeAdminGateway({ stateDir, gw, admin }));

  const COMMANDS = ['system.which', 'system.execApprovals.get'];
  /** A new device that asked to be paired as `name`. */
  async function asking(name: string): Promise<{ device: DeviceIdentity; options: GatewayClientOptions }> {
    const device = createDeviceIdentity();
    const options: GatewayClientOptions = { url: gw.url, token, role: 'node', device, client: { displayName: name }, commands: COMMANDS };
    await refusedAsPending(options);
    return { device, options };
  }
  /** A node paired as `name` that answers every command with that name; `served` lists what reached it. */
  async function servingNode(name: string): Promise<{ device: DeviceIdentity; client: GatewayClient; deviceToken: string; served: string[] }> {
    const { device, options } = await asking(name);
    gw.identity.nodes.pair(device.deviceId, 'test');
    const client = await GatewayClient.connect(options);
    return { device, client, deviceToken: client.hello.auth.deviceToken as string, served: serve(client, name) };
  }
  function serve(client: GatewayClient, who: string): string[] {
    const served: string[] = [];
    client.on('node.invoke.request', (p) => {
      const { id, nodeId, command } = p as { id: string; nodeId: string; command: string };
      served.push(command);
      void client.request('node.invoke.result', { id, nodeId, ok: true, payloadJSON: JSON.stringify({ servedBy: who }) }).catch(() => undefined);
    });
    return served;
  }
  /** Reconnects `node` with its own key and device token only, under `name`. */
  async function renamed(node: { device: DeviceIdentity; client: GatewayClient; deviceToken: string }, name: string): Promise<{ client: GatewayClient; served: string[] }> {
    await node.client.close();
    const client = await GatewayClient.connect({ url: gw.url, deviceToken: node.deviceToken, role: 'node', device: node.device, client: { displayName: name }, commands: COMMANDS });
    return { client, served: serve(client, `impostor of ${name}`) };
  }
  const which = (nodeId: string) => admin.request('node.invoke', { nodeId, command: 'system.which', params: { bins: ['sh'] }, idempotencyKey: randomUUID() }) as Promise<{ nodeId: string; payload: { servedBy: string } }>;

  it('keeps the name for the node paired under it: node.list shows the other by its own name with the name as its claim, and node.invoke, node.describe and exec.approvals.node.get by the name reach the node paired under it (regression: listed twice, and by name answered unknown node)', async () => {
    const real = await servingNode('build-01');
    const other = await servingNode('laptop-7');
    const impostor = await renamed(other, 'build-01');
    try {
      const { nodes } = (await admin.request('node.list', {})) as { nodes: NodeListEntry[] };
      const shown = (id: string) => nodes.find((n) => n.nodeId === id);
      assert.deepEqual([shown(real.device.deviceId)?.displayName, shown(real.device.deviceId)?.claimedDisplayName], ['build-01', undefined]);
      assert.deepEqual([shown(other.device.deviceId)?.displayName, shown(other.device.deviceId)?.claimedDisplayName], ['laptop-7', 'build-01']);
      assert.equal(nodes.filter((n) => n.displayName === 'build-01').length, 1);
      const ran = await which('build-01');
      assert.deepEqual([ran.nodeId, ran.payload.servedBy], [real.device.deviceId, 'build-01']);
      assert.equal(((await admin.request('node.describe', { nodeId: 'build-01' })) as NodeListEntry).nodeId, real.device.deviceId);
      assert.deepEqual(await admin.request('exec.approvals.node.get', { nodeId: 'build-01' }), { servedBy: 'build-01' });
      assert.deepEqual(impostor.served, []);
      // Its claim finds nothing of its own either: by its own name it is still itself.
      assert.equal((await which('laptop-7')).nodeId, other.device.deviceId);
    } finally {
      await impostor.client.close();
      await real.client.close();
    }
  });

  it('sends nothing to it by that name once the node paired under it was re-keyed and waits to be paired again: refused, naming the nodes known by it (regression: the impostor was the one node connected under that name)', async () => {
    const real = await servingNode('build-02');
    const other = await servingNode('laptop-8');
    const impostor = await renamed(other, 'build-02');
    try {
      await real.client.close();
      gw.identity.nodes.revoke(real.device.deviceId);
      const rekeyed = await asking('build-02');
      await assert.rejects(which('build-02'), (e: { wire?: { code?: string; details?: { code?: string; nodeIds?: string[] } } }) => e.wire?.code === 'INVALID_REQUEST' && e.wire.details?.code === 'NODE_AMBIGUOUS' && e.wire.details.nodeIds?.sort().join() === [real.device.deviceId, rekeyed.device.deviceId].sort().join());
      assert.deepEqual(impostor.served, []);
    } finally {
      await impostor.client.close();
    }
  });

  it('never picks one of two paired nodes known by the same name: node.invoke and node.describe by it are refused as ambiguous, each still reached by its id', async () => {
    const first = await servingNode('build-03');
    const second = await servingNode('build-03');
    try {
      const ambiguous = (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'NODE_AMBIGUOUS';
      await assert.rejects(which('build-03'), ambiguous);
      await assert.rejects(admin.request('node.describe', { nodeId: 'build-03' }), ambiguous);
      assert.deepEqual([first.served, second.served], [[], []]);
      assert.equal((await which(second.device.deviceId)).payload.servedBy, 'build-03');
    } finally {
      await first.client.close();
      await second.client.close();
    }
  });
});
