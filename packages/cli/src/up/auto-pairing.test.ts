// corral up's own pairing, against a real gateway and nodes on the real protocol.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openAuditLog, type AuditEvent, type AuditLog } from '@corral/audit';
import { auditEvents } from '../../../../scripts/testing/audit-events.ts';
import { tempDir } from '../../../../scripts/testing/temp-dir.ts';
import { Gateway, GatewayClient } from '@corral/gateway';
import { createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { AutoPairing } from './auto-pairing.ts';

describe("corral up's pairing of its own nodes", () => {
  const token = randomBytes(24).toString('base64url');
  let log: AuditLog;
  let gw: Gateway;
  let pairing: AutoPairing;
  let state: string;
  const clients: GatewayClient[] = [];
  before(async () => {
    state = tempDir('corral-auto-pairing-');
    log = await openAuditLog({ stateDir: state });
    gw = await Gateway.start({ stateDir: state, token, port: 0, audit: log });
    gw.identity.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'finance@example.com' });
    pairing = new AutoPairing(gw, log);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await gw.close();
    await log.close();
  });

  /** `device` connecting as a node: refused while it waits to be paired (undefined), else its connection. */
  const connect = async (device: DeviceIdentity): Promise<GatewayClient | undefined> => {
    const client = await GatewayClient.connect({ url: gw.url, token, role: 'node', device, client: { displayName: `up-${device.deviceId.slice(0, 6)}` }, commands: ['system.run'] }).catch(() => undefined);
    if (client) clients.push(client);
    return client;
  };
  const records = async (deviceId: string): Promise<AuditEvent[]> => (await auditEvents(state)).filter((e) => e.resource.id === deviceId);


  it('pairs its node with the agents it serves, recorded as done by corral up', async () => {
    const device = createDeviceIdentity();
    assert.equal(await connect(device), undefined);
    await pairing.pair(device.deviceId, 'the node serving OpenClaw', ['invoice-bot']);
    const node = gw.identity.nodes.get(device.deviceId);
    assert.deepEqual([node.status, node.pairedBy, gw.identity.agents.namesOf(node.agents)], ['paired', 'corral up', ['invoice-bot']]);
    const [record] = await records(device.deviceId);
    assert.deepEqual([record?.action, record?.actor, record?.details?.agents], ['node.pair', { kind: 'service', id: 'corral-up' }, ['invoice-bot']]);
  });

  it('gives the agents to a node it paired before Corral kept them, once connected, and records that (regression: that node could ask for none, its OpenClaw agent denied every command)', async () => {
    const device = createDeviceIdentity();
    assert.equal(await connect(device), undefined);
    gw.identity.nodes.pair(device.deviceId, 'corral up');
    assert.ok(await connect(device));
    await pairing.pair(device.deviceId, 'the node serving OpenClaw', ['invoice-bot']);
    assert.deepEqual(gw.identity.agents.namesOf(gw.identity.nodes.get(device.deviceId).agents), ['invoice-bot']);
    assert.deepEqual((await records(device.deviceId)).map((e) => [e.action, e.details?.agents]), [['node.agents', ['invoice-bot']]]);
  });

  it("leaves the agents an operator named for its node as they are, none included", async () => {
    const device = createDeviceIdentity();
    assert.equal(await connect(device), undefined);
    gw.identity.nodes.pair(device.deviceId, 'corral up');
    gw.identity.nodes.setAgents(device.deviceId, []);
    assert.ok(await connect(device));
    await pairing.pair(device.deviceId, 'the node serving OpenClaw', ['invoice-bot']);
    assert.deepEqual(gw.identity.nodes.get(device.deviceId).agents, []);
    assert.deepEqual(await records(device.deviceId), []);
  });
});
