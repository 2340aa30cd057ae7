// The decision record of an allowed command is appended while the command
// travels to the node, but no caller ever sees a result before the decision
// and the result are both durable in the audit log, and a log that refuses
// the records fails the command closed.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openAuditLog } from '@corral/audit';
import { Identity } from '@corral/identity';
import { DecisionPoint } from '@corral/policy';
import { ApprovalStore, Gateway, ReceiptSigner, GatewayClient, GatewayServer, NodeInventory, NodeInvoker, SurfaceStore, openGatewayDb } from '../src/index.ts';
import { auditEvents } from './audit-events.ts';
import { policyStateDirs } from './policy-state.ts';
import { pairedNodePeer } from './node-peer.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = '@id("true") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"true");\n';
const stateDir = policyStateDirs('durable', POLICY);

describe('the audit records of a governed command', () => {
  it('are both committed (decision, then result) by the time the caller has the result', async () => {
    const state = stateDir();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0 } }));
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      for (let i = 0; i < 5; i++) {
        await operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['true'] }, idempotencyKey: randomUUID() });
        // Read at once, through another connection: only what is committed shows.
        const events = (await auditEvents(state)).filter((e) => e.action === 'node.invoke.decide' || e.action === 'node.invoke');
        assert.deepEqual(
          events.map((e) => e.action),
          Array.from({ length: i + 1 }, () => ['node.invoke.decide', 'node.invoke']).flat(),
        );
      }
    } finally {
      await operator.close();
      await node.close();
      await gw.close();
    }
  });

  it('fail the command closed when the log refuses them: the caller gets UNAVAILABLE, never the result', async () => {
    const state = stateDir();
    const identity = Identity.open(state);
    const db = openGatewayDb(state);
    const server = await GatewayServer.start({ token, identity, port: 0 });
    const log = await openAuditLog({ stateDir: state });
    await log.close(); // every append now fails with AUDIT_CLOSED
    const point = new DecisionPoint();
    point.reload(join(state, 'policies'));
    new NodeInvoker(server, new NodeInventory(server, new SurfaceStore(db)), { approvals: new ApprovalStore(db), receipts: ReceiptSigner.open(db), decide: (input) => point.decide(input), audit: (event) => log.append(event) });
    const node = await pairedNodePeer(server.url, token, identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0, stdout: 'secret result' } }));
    const operator = await GatewayClient.connect({ url: server.url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      await assert.rejects(
        operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['true'] }, idempotencyKey: randomUUID() }),
        (e: { wire?: { code?: string; message?: string } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.message === 'audit unavailable',
      );
    } finally {
      await operator.close();
      await node.close();
      await server.close();
      db.close();
      identity.close();
    }
  });
});
