// `GET /api/status`: the counts the console's header shows.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDeviceIdentity } from '@corral/identity';
import { GatewayClient } from '../client/client.ts';
import { startTestGateway, type TestGateway } from './testing.ts';

describe('status', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway();
  });
  after(() => t.close());

  it('counts nodes, agents, pending approvals and the audit log, with its latest checkpoint', async () => {
    const viewer = await t.as('vera', ['viewer']);
    t.gw.identity.agents.create({ name: 'a1', process: 'p', owner: 'o@example.com' });
    t.gw.identity.agents.create({ name: 'a2', process: 'p', owner: 'o@example.com' });
    t.gw.identity.agents.suspend('a2');
    t.gw.approvals.create({ digest: 'b'.repeat(64), action: {}, quorum: 1 });
    await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'node', device: createDeviceIdentity(), commands: [] }).catch(() => undefined);
    const status = await viewer.get('/api/status');
    assert.equal(status.status, 200);
    assert.equal(status.body.gateway.url, t.gw.url);
    assert.deepEqual(status.body.nodes, { connected: 0, paired: 0, pending: 1 });
    assert.deepEqual(status.body.agents, { active: 1, suspended: 1 });
    assert.deepEqual(status.body.approvals, { pending: 1 });
    assert.ok(status.body.audit.size >= 1, 'the sign-in is recorded');
    assert.match(status.body.version, /^\d+\.\d+\.\d+/);
  });
});
