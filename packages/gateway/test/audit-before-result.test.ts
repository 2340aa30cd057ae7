// The decision record of an allowed command is durable before the command
// runs: a node that cannot hold a command (upstream's) is sent it only then;
// a Corral node is sent it at once, holds it, and is released then. No caller
// ever sees a result before the decision and the result are both durable in
// the audit log, and a log that refuses the records fails the command closed.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { openAuditLog } from '@corral/audit';
import { INVOKE_RELEASE_EVENT, GatewayClient } from '../src/index.ts';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';
import { policyStateDirs } from './policy-state.ts';
import { pairedNodePeer } from './node-peer.ts';
import { slowLogGateway, type SlowLogGateway } from './slow-log-gateway.ts';
import { governedGateway, invokerGateway } from './governed-gateway.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = [
  '@id("true") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"true");',
  '@id("printf-asks") @approval("required") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"printf");',
  '',
].join('\n');
const stateDir = policyStateDirs('durable', POLICY);

describe('the audit records of a governed command', () => {
  it('are both committed (decision, then result) by the time the caller has the result', async () => {
    const t = await governedGateway({ state: stateDir() });
    try {
      for (let i = 0; i < 5; i++) {
        await t.operator.request('node.invoke', { nodeId: t.node.device.deviceId, command: 'system.run', params: { command: ['true'] }, idempotencyKey: randomUUID() });
        // Read at once, through another connection: only what is committed shows.
        const events = (await auditEvents(t.state)).filter((e) => e.action === 'node.invoke.decide' || e.action === 'node.invoke');
        assert.deepEqual(
          events.map((e) => e.action),
          Array.from({ length: i + 1 }, () => ['node.invoke.decide', 'node.invoke']).flat(),
        );
      }
    } finally {
      await t.close();
    }
  });

  it('fail the command closed when the log refuses them: the caller gets UNAVAILABLE, never the result', async () => {
    const state = stateDir();
    const log = await openAuditLog({ stateDir: state });
    await log.close(); // every append now fails with AUDIT_CLOSED
    const gateway = await invokerGateway({ state, token, audit: (event) => log.append(event) });
    const { server, identity } = gateway;
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
      await gateway.close();
    }
  });

  describe('when the decision record takes 300 ms to commit', () => {
    /** A paired node that answers every command at once, noting when each reached it. */
    const timedNode = async (gw: SlowLogGateway) => {
      const received: number[] = [];
      const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], () => {
        received.push(performance.now());
        return { ok: true, payload: { exitCode: 0 } };
      });
      return { node, received };
    };
    const invoke = (operator: GatewayClient, nodeId: string) => operator.request('node.invoke', { nodeId, command: 'system.run', params: { command: ['true'] }, idempotencyKey: randomUUID() });

    it('sends the command to a node that cannot hold it only once the decision is durable, never marked as held whatever the caller says', async () => {
      const gw = await slowLogGateway(stateDir(), token);
      const { node, received } = await timedNode(gw);
      try {
        await gw.operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['true'], awaitRelease: true }, idempotencyKey: randomUUID() });
        assert.equal(received.length, 1);
        assert.ok(received[0]! >= gw.durable[0]!, 'the node had the command before its decision was durable');
        assert.equal(node.received[0]!.params.awaitRelease, undefined);
      } finally {
        await node.close();
        await gw.close();
      }
    });

    it('sends it at once to a node that holds it (awaitRelease), and releases it once the decision is durable', async () => {
      const gw = await slowLogGateway(stateDir(), token);
      const events: Array<[string, number]> = [];
      const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], (invoke) => {
        events.push([`received awaitRelease=${String(invoke.params.awaitRelease)}`, performance.now()]);
        return 'never';
      }, [INVOKE_RELEASE_EVENT]);
      node.client.on(INVOKE_RELEASE_EVENT, (payload) => {
        const p = payload as { id: string; ok: boolean };
        events.push([`released ok=${String(p.ok)}`, performance.now()]);
        void node.client.request('node.invoke.result', { id: p.id, nodeId: node.device.deviceId, ok: true, payloadJSON: '{"exitCode":0}' });
      });
      try {
        await invoke(gw.operator, node.device.deviceId);
        assert.deepEqual(events.map(([what]) => what), ['received awaitRelease=true', 'released ok=true']);
        assert.ok(events[0]![1] < gw.durable[0]!, 'sent while the decision was being committed');
        assert.ok(events[1]![1] >= gw.durable[0]!, 'released only once it was durable');
      } finally {
        await node.close();
        await gw.close();
      }
    });

    it('acknowledges the node’s result only once the result record is durable (a Corral node replaces the warm sandbox its run took after that)', async () => {
      const gw = await slowLogGateway(stateDir(), token);
      const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], () => 'never');
      let acknowledged = 0;
      node.client.on('node.invoke.request', (payload) => {
        const p = payload as { id: string; nodeId: string };
        void node.client.request('node.invoke.result', { id: p.id, nodeId: p.nodeId, ok: true, payloadJSON: '{"exitCode":0}' }).then(() => (acknowledged = performance.now()));
      });
      try {
        await invoke(gw.operator, node.device.deviceId);
        const answeredAt = performance.now();
        while (acknowledged === 0) await new Promise((r) => setTimeout(r, 1));
        assert.equal(gw.resultsDurable.length, 1);
        assert.ok(acknowledged >= gw.resultsDurable[0]!, `acknowledged ${(gw.resultsDurable[0]! - acknowledged).toFixed(0)} ms before the result was durable`);
        assert.ok(acknowledged - answeredAt < 100, 'acknowledged when the caller was answered');
      } finally {
        await node.close();
        await gw.close();
      }
    });

    it('sends an approved command only once the approval’s own record is durable', async () => {
      const gw = await slowLogGateway(stateDir(), token);
      const { node, received } = await timedNode(gw);
      try {
        const waiting = gw.operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['printf', 'approved'] }, timeoutMs: 20_000, idempotencyKey: randomUUID() }, { timeoutMs: 25_000 });
        let pending = gw.approvals.list({ status: 'pending' })[0];
        for (let i = 0; !pending && i < 500; i++) {
          await new Promise((r) => setTimeout(r, 10));
          pending = gw.approvals.list({ status: 'pending' })[0];
        }
        assert.ok(pending, 'an approval request');
        await gw.invoker.resolveApprovalWhenFree(pending.id, 'allow-once', 'alice');
        await waiting;
        assert.equal(received.length, 1);
        assert.equal(gw.approvalsDurable.length, 1);
        assert.ok(received[0]! >= gw.approvalsDurable[0]!, 'the node had the command before the approval was durable');
      } finally {
        await node.close();
        await gw.close();
      }
    });

    it('never sends the command to a node that cannot hold it, and releases a held one with ok false, when the log refuses the decision', async () => {
      const gw = await slowLogGateway(stateDir(), token, { refuse: true });
      const plain = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run']);
      const released: boolean[] = [];
      const holding = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], () => 'never', [INVOKE_RELEASE_EVENT]);
      holding.client.on(INVOKE_RELEASE_EVENT, (payload) => {
        const p = payload as { id: string; ok: boolean };
        released.push(p.ok);
        void holding.client.request('node.invoke.result', { id: p.id, nodeId: holding.device.deviceId, ok: false, error: { code: 'SYSTEM_RUN_DENIED', message: 'not released' } });
      });
      const unavailable = (e: { wire?: { code?: string; message?: string } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.message === 'audit unavailable';
      try {
        await assert.rejects(invoke(gw.operator, plain.device.deviceId), unavailable);
        assert.deepEqual(plain.received, []);
        await assert.rejects(invoke(gw.operator, holding.device.deviceId), unavailable);
        assert.deepEqual(released, [false]);
      } finally {
        await plain.close();
        await holding.close();
        await gw.close();
      }
    });
  });
});
