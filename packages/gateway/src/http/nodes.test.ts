// Nodes: the inventory, pairing requests with the address they came from,
// approving and rejecting them, and revoking a connected node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDeviceIdentity } from '@corral/identity';
import { GatewayClient } from '../client/client.ts';
import { auditEvents, startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

describe('nodes', () => {
  let t: TestGateway;
  let admin: ApiClient;
  let approver: ApiClient;
  const ask = (device: ReturnType<typeof createDeviceIdentity>, displayName: string) =>
    GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'node', device, client: { displayName }, commands: ['system.run'] }).then(
      (c) => c,
      () => undefined,
    );
  before(async () => {
    t = await startTestGateway();
    admin = await t.as('root', ['admin']);
    approver = await t.as('alice', ['approver']);
  });
  after(() => t.close());

  it('lists a pairing request with the address it came from, approves it, and the node connects', async () => {
    const device = createDeviceIdentity();
    assert.equal(await ask(device, 'runner-a'), undefined);
    const pending = await approver.get('/api/nodes/pending');
    const request = pending.body.requests.find((r: { nodeId: string }) => r.nodeId === device.deviceId);
    assert.deepEqual([request.displayName, request.remoteIp, request.commands], ['runner-a', '127.0.0.1', ['system.run']]);
    assert.equal((await approver.post(`/api/nodes/pending/${request.requestId}/approve`)).status, 403, 'approvers read nodes; admins pair them');
    const approved = await admin.post(`/api/nodes/pending/${request.requestId}/approve`);
    assert.deepEqual([approved.status, approved.body.status], [200, 'paired']);
    const client = await ask(device, 'runner-a');
    assert.ok(client, 'the paired node connects');
    const listed = (await approver.get('/api/nodes')).body.nodes.find((n: { nodeId: string }) => n.nodeId === device.deviceId);
    assert.deepEqual([listed.connected, listed.paired, listed.remoteIp], [true, true, '127.0.0.1']);
    const closed = client!.closed.then(() => 'closed');
    const revoked = await admin.post(`/api/nodes/${device.deviceId}/revoke`);
    assert.deepEqual([revoked.status, revoked.body.status], [200, 'revoked']);
    assert.equal(await closed, 'closed', 'a revoked node is cut off at once');
    const actions = (await auditEvents(t.state)).filter((e) => e.resource.id === device.deviceId).map((e) => e.action);
    assert.deepEqual(actions, ['node.pair.approve', 'node.revoke']);
  });

  it('lists a paired node asking for more commands with what it adds; approving grants them to the connected node', async () => {
    const device = createDeviceIdentity();
    const connect = (commands: string[]) => GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'node', device, client: { displayName: 'runner-c' }, commands });
    await connect(['system.which']).catch(() => undefined);
    await admin.post(`/api/nodes/pending/${t.gw.identity.nodes.get(device.deviceId).surfaceRequest!.requestId}/approve`);
    const client = await connect(['system.run', 'system.which']);
    try {
      const request = (await approver.get('/api/nodes/pending')).body.requests.find((r: { nodeId: string }) => r.nodeId === device.deviceId);
      assert.deepEqual([request.paired, request.commands, request.approvedCommands], [true, ['system.run', 'system.which'], ['system.which']]);
      const listed = (await approver.get('/api/nodes')).body.nodes.find((n: { nodeId: string }) => n.nodeId === device.deviceId);
      assert.deepEqual([listed.commands, listed.requestedCommands], [['system.which'], ['system.run', 'system.which']]);
      const approved = await admin.post(`/api/nodes/pending/${request.requestId}/approve`);
      assert.deepEqual([approved.status, approved.body.commands], [200, ['system.run', 'system.which']]);
      assert.deepEqual(t.gw.inventory.route(device.deviceId).commands, ['system.run', 'system.which']);
    } finally {
      await client.close();
    }
  });

  it('says which agents a paired node may ask the control plane for, and lets an admin replace them (recorded), refusing unknown agents, a node not paired and approvers', async () => {
    const device = createDeviceIdentity();
    await ask(device, 'runner-d');
    const bot = t.gw.identity.agents.create({ name: 'ledger-bot', process: 'ledger', owner: 'owner@example.com' });
    const put = (client: ApiClient, body: unknown) => client.call('PUT', `/api/nodes/${device.deviceId}/agents`, body);
    assert.deepEqual([(await put(admin, { agents: ['ledger-bot'] })).status, (await put(admin, { agents: ['ledger-bot'] })).body.code], [409, 'IDENTITY_NODE_NOT_PAIRED']);
    await admin.post(`/api/nodes/pending/${t.gw.identity.nodes.get(device.deviceId).surfaceRequest!.requestId}/approve`);
    const listed = async () => (await approver.get('/api/nodes')).body.nodes.find((n: { nodeId: string }) => n.nodeId === device.deviceId).agents;
    assert.deepEqual(await listed(), []);
    assert.equal((await put(approver, { agents: ['ledger-bot'] })).status, 403, 'approvers read nodes; admins say what they may ask for');
    for (const bad of [{ agents: 'ledger-bot' }, { agents: [1] }, {}, { agents: ['ledger-bot', 'ghost-bot'] }]) {
      const refused = await put(admin, bad);
      assert.equal(refused.status, 400, JSON.stringify(bad));
    }
    assert.match((await put(admin, { agents: ['ghost-bot'] })).body.message, /no agent named ghost-bot/);
    const set = await put(admin, { agents: ['ledger-bot'] });
    assert.deepEqual([set.status, set.body.agents], [200, ['ledger-bot']]);
    assert.deepEqual(t.gw.identity.nodes.get(device.deviceId).agents, [bot.id]);
    assert.deepEqual(await listed(), ['ledger-bot']);
    assert.deepEqual((await put(admin, { agents: [] })).body.agents, []);
    const records = (await auditEvents(t.state)).filter((e) => e.action === 'node.agents' && e.resource.id === device.deviceId);
    assert.deepEqual(records.map((e) => [e.actor.id, e.details?.agents]), [['root', ['ledger-bot']], ['root', []]]);
  });

  it('rejects a request; a request id that is not pending answers 404', async () => {
    const device = createDeviceIdentity();
    await ask(device, 'runner-b');
    const { requestId } = t.gw.identity.nodes.get(device.deviceId).surfaceRequest!;
    const rejected = await admin.post(`/api/nodes/pending/${requestId}/reject`);
    assert.deepEqual([rejected.status, rejected.body.status], [200, 'revoked']);
    assert.equal((await admin.post(`/api/nodes/pending/${requestId}/approve`)).status, 404);
    assert.equal((await admin.post(`/api/nodes/pending/${device.deviceId}/approve`)).status, 404, 'a request is approved by its id, not the node\'s');
    assert.equal((await admin.post('/api/nodes/no-such-node/revoke')).status, 404);
  });
});
