// A run an approval allows never goes before a durable record that it was
// allowed. The approval's own record (`approval.resolve`) is that record when
// this gateway made it durable; when the audit log refused it, or the gateway
// cannot know it was kept (the approval was allowed by another process, or
// before this gateway started), the run carries its own
// decision record (`node.invoke.decide`, effect allow, naming the approval),
// durable before the node gets the command, and runs nothing when the log
// refuses that one too.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, mock } from 'node:test';
import type { AuditEventInput } from '@corral/audit';
import type { DeviceIdentity } from '@corral/identity';
import { ApprovalStore, GatewayClient, INVOKE_RELEASE_EVENT } from '../index.ts';
import type { NodePeer, ReceivedInvoke } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { refusingLogGateway, type NodeAnswer } from '../../test/refusing-log-gateway.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = `
@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
`;
const stateDir = policyStateDirs('approval-record', POLICY);
const refusedWith = (code: string) => (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === code;
/** The audit log's refusal as the caller gets it: retryable, unavailable. */
const auditUnavailable = (e: { wire?: { code?: string; retryable?: boolean } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true;

/** The records an approval allowed a run on: its decision records naming it, and what they say. */
const decisionsOf = (events: AuditEventInput[], approvalId: string) => events.filter((e) => e.action === 'node.invoke.decide' && e.decision?.approval === approvalId);

/**
 * A gateway over `state` (a fresh one by default) whose audit log refuses the
 * appends `refusing.when` picks; its node answers every command at once and
 * notes, as each reaches it, the records durable by then.
 */
const gatewayOver = (state = stateDir(), caps: string[] = [], device?: DeviceIdentity) =>
  refusingLogGateway({ state, token, caps, ...(device ? { node: (url: string, answer: NodeAnswer) => pairedAgain(url, device, answer) } : {}) });

/** The node `device`, paired with the gateway of this state directory before it restarted, connected again; it answers every command with `answer`. */
async function pairedAgain(url: string, device: DeviceIdentity, answer: NodeAnswer): Promise<NodePeer> {
  const client = await GatewayClient.connect({ url, token, role: 'node', device, client: { displayName: 'restarted-peer' }, commands: ['system.run'], caps: [] });
  const received: ReceivedInvoke[] = [];
  client.on('node.invoke.request', (payload) => {
    const p = payload as { id: string; nodeId: string; command: string; paramsJSON?: string | null };
    received.push({ id: p.id, command: p.command, params: p.paramsJSON ? (JSON.parse(p.paramsJSON) as Record<string, unknown>) : {} });
    void client.request('node.invoke.result', { id: p.id, nodeId: p.nodeId, ok: true, payloadJSON: JSON.stringify(answer().payload) }).catch(() => {});
  });
  return { device, client, received, close: () => client.close() };
}

/** Commands the node got whose argv is `argv`. */
const receivedRuns = (node: NodePeer, argv: string[]) => node.received.filter((r) => JSON.stringify(r.params.command) === JSON.stringify(argv));

describe('when the audit log refuses the record of an approval that allows a run', () => {
  it('runs the waiting command only once a decision record naming the approval, and saying why it exists, is durable (regression: it ran with no durable record that it was approved)', async () => {
    const gw = await gatewayOver();
    try {
      gw.refusing.when = (e) => e.action === 'approval.resolve';
      const { waiting, id } = await gw.asked(['printf', 'approved']);
      await gw.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
      await waiting;
      assert.equal(gw.events.filter((e) => e.action === 'approval.resolve').length, 0, 'the approval itself is not on record');
      const decided = decisionsOf(gw.events, id);
      assert.deepEqual(
        decided.map((e) => [e.decision?.effect, (e.details as { approvalRecord?: string }).approvalRecord]),
        [['allow', 'refused']],
      );
      assert.match(decided[0]!.decision!.reason ?? '', /approval\.resolve/, 'the record says why it exists');
      assert.equal(gw.durableAtRun.length, 1, 'the node got the command once');
      assert.ok(gw.durableAtRun[0]!.includes(decided[0]!), 'the allow was durable before the node got the command');
      const ran = gw.events.filter((e) => e.action === 'node.invoke' && e.decision?.approval === id);
      assert.equal(ran.length, 1);
      assert.equal(ran[0]!.trace, decided[0]!.trace, 'the decision and the result of the run pair up');
    } finally {
      await gw.close();
    }
  });

  it('runs nothing when the log refuses that decision record too: the caller is told the audit log is unavailable, and the node never gets the command', async () => {
    const gw = await gatewayOver();
    try {
      gw.refusing.when = (e) => e.action === 'approval.resolve' || (e.action === 'node.invoke.decide' && e.decision?.effect === 'allow');
      const { waiting, id } = await gw.asked(['printf', 'never']);
      await gw.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
      await assert.rejects(waiting, auditUnavailable);
      assert.deepEqual(receivedRuns(gw.node, ['printf', 'never']), [], 'the node never got it');
      assert.equal(gw.durableAtRun.length, 0);
      assert.deepEqual(gw.events.filter((e) => e.decision?.approval === id || (e.details as { approval?: string } | undefined)?.approval === id), [], 'no record of a run');
      assert.equal(gw.approvals.get(id).status, 'used', 'the approval was spent on the run refused: a retry asks again');
    } finally {
      await gw.close();
    }
  });

  it('releases a Corral node holding the run once that record is durable, and tells it to run nothing when it is refused', async () => {
    const gw = await gatewayOver(stateDir(), [INVOKE_RELEASE_EVENT]);
    const releases: Array<{ id: string; ok: boolean }> = [];
    gw.node.client.on(INVOKE_RELEASE_EVENT, (payload) => void releases.push(payload as { id: string; ok: boolean }));
    try {
      gw.refusing.when = (e) => e.action === 'approval.resolve';
      const first = await gw.asked(['printf', 'held']);
      await gw.invoker.resolveApprovalWhenFree(first.id, 'allow-once', 'alice');
      await first.waiting;
      assert.deepEqual(decisionsOf(gw.events, first.id).map((e) => e.decision?.effect), ['allow']);
      gw.refusing.when = (e) => e.action === 'approval.resolve' || (e.action === 'node.invoke.decide' && e.decision?.effect === 'allow');
      const second = await gw.asked(['printf', 'held-refused']);
      await gw.invoker.resolveApprovalWhenFree(second.id, 'allow-once', 'alice');
      await assert.rejects(second.waiting, auditUnavailable);
      const sent = gw.node.received.map((r) => [r.params.command, r.params.awaitRelease]);
      assert.deepEqual(sent, [
        [['printf', 'held'], true],
        [['printf', 'held-refused'], true],
      ]);
      for (let i = 0; releases.length < 2 && i < 200; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(
        releases.map((r) => [r.id, r.ok]),
        gw.node.received.map((r, i) => [r.id, i === 0]),
        'released to run the first, told to run nothing for the second',
      );
      assert.deepEqual(decisionsOf(gw.events, second.id), []);
    } finally {
      await gw.close();
    }
  });

  it('answers a node serving another gateway (corral.run.authorize) only once that record is durable, and not at all when it is refused', async () => {
    const gw = await gatewayOver();
    const authorize = (argv: string[], timeoutMs = 10_000) => gw.node.client.request('corral.run.authorize', { command: 'system.run', params: { command: argv }, timeoutMs }, { timeoutMs: timeoutMs + 5_000 }) as Promise<{ decision: string; runId?: string; approvalId?: string }>;
    try {
      gw.refusing.when = (e) => e.action === 'approval.resolve';
      for (const [argv, refused] of [[['printf', 'elsewhere'], false], [['printf', 'elsewhere-refused'], true]] as const) {
        await assert.rejects(authorize([...argv], 50), refusedWith('APPROVAL_PENDING'));
        const id = gw.pendingFor([...argv])!.id;
        await gw.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
        if (refused) gw.refusing.when = (e) => e.action === 'approval.resolve' || (e.action === 'node.invoke.decide' && e.decision?.effect === 'allow');
        const before = gw.events.length;
        if (refused) {
          await assert.rejects(authorize([...argv]), auditUnavailable);
          assert.deepEqual(gw.events.slice(before).filter((e) => e.decision?.effect !== 'ask'), [], 'nothing authorized, no run opened');
          continue;
        }
        const answer = await authorize([...argv]);
        assert.equal(answer.approvalId, id);
        // The policy's ask is recorded again for each request; then the allow its approval gave.
        assert.deepEqual(gw.events.slice(before).map((e) => [e.action, e.decision?.effect, e.decision?.approval]), [['node.invoke.decide', 'ask', undefined], ['node.invoke.decide', 'allow', id]]);
      }
    } finally {
      await gw.close();
    }
  });

  it('still refuses a run an approver denied', async () => {
    const gw = await gatewayOver();
    try {
      gw.refusing.when = (e) => e.action === 'approval.resolve';
      const { waiting, id } = await gw.asked(['printf', 'denied']);
      await gw.invoker.resolveApprovalWhenFree(id, 'deny', 'alice');
      await assert.rejects(waiting, refusedWith('SYSTEM_RUN_DENIED'));
      assert.deepEqual(receivedRuns(gw.node, ['printf', 'denied']), []);
      assert.deepEqual(decisionsOf(gw.events, id), []);
    } finally {
      await gw.close();
    }
  });
});

describe('an approval allowed before this gateway started (its record may never have become durable)', () => {
  it('allows its run on a decision record of its own, durable before the node gets the command (regression: a gateway restarted after the approval record was refused ran it with no durable record)', async () => {
    const state = stateDir();
    const earlier = await gatewayOver(state);
    const { device } = earlier.node;
    let id: string;
    try {
      earlier.refusing.when = (e) => e.action === 'approval.resolve';
      // Its caller stops waiting: nothing spends the approval before the gateway stops.
      await assert.rejects(earlier.run(['printf', 'after-restart'], 50), refusedWith('APPROVAL_PENDING'));
      id = earlier.pendingFor(['printf', 'after-restart'])!.id;
      await earlier.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
      assert.equal(earlier.approvals.get(id).status, 'allowed');
    } finally {
      await earlier.close();
    }
    const gw = await gatewayOver(state, [], device);
    try {
      await gw.run(['printf', 'after-restart']);
      const decided = decisionsOf(gw.events, id);
      assert.deepEqual(
        decided.map((e) => [e.decision?.effect, (e.details as { approvalRecord?: string }).approvalRecord]),
        [['allow', 'unconfirmed']],
      );
      assert.equal(gw.durableAtRun.length, 1);
      assert.ok(gw.durableAtRun[0]!.includes(decided[0]!), 'the allow was durable before the node got the command');
    } finally {
      await gw.close();
    }
  });
});

describe('when the approvals whose records this gateway made durable grow past 256 and are forgotten', () => {
  it('forgets toward a record: one gateway.db cannot read at that moment is forgotten, and its run carries its own durable allow (unconfirmed)', async () => {
    const gw = await gatewayOver();
    try {
      await assert.rejects(gw.run(['printf', 'forgotten'], 50), refusedWith('APPROVAL_PENDING'));
      const id = gw.pendingFor(['printf', 'forgotten'])!.id;
      await gw.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
      const { get } = gw.approvals;
      let failedReads = 0;
      const reading = mock.method(gw.approvals, 'get', function (this: ApprovalStore, asked: string) {
        if (asked !== id) return get.call(this, asked);
        failedReads++;
        throw Object.assign(new Error('database is locked'), { code: 'ERR_SQLITE_ERROR' });
      });
      try {
        // Enough other approvals resolved here, their records durable, that remembering the last sweeps the rest.
        for (let i = 0; i < 256; i++) {
          const other = gw.approvals.create({ digest: randomBytes(32).toString('hex'), action: { argv: ['printf', `other-${i}`] }, quorum: 1 });
          await gw.invoker.resolveApprovalWhenFree(other.id, 'allow-once', 'bob');
        }
      } finally {
        reading.mock.restore();
      }
      assert.ok(failedReads > 0, 'the sweep asked gateway.db for that approval');
      await gw.run(['printf', 'forgotten']);
      assert.deepEqual(
        decisionsOf(gw.events, id).map((e) => [e.decision?.effect, (e.details as { approvalRecord?: string }).approvalRecord]),
        [['allow', 'unconfirmed']],
      );
      assert.ok(gw.durableAtRun.at(-1)!.includes(decisionsOf(gw.events, id)[0]!), 'the allow was durable before the node got the command');
    } finally {
      await gw.close();
    }
  });
});

describe('an approval whose own record is durable before its run', () => {
  it('adds no record of its own to the run when this gateway made that record durable; one resolved by another process (corral approvals approve, a second gateway, which commits an approval before its record) carries its own, durable before it runs (regression: a second gateway that crashed or whose log refused the record left its run with no durable record that it was approved)', async () => {
    const gw = await gatewayOver();
    try {
      const here = await gw.asked(['printf', 'here']);
      await gw.invoker.resolveApprovalWhenFree(here.id, 'allow-once', 'alice');
      await here.waiting;
      assert.deepEqual(decisionsOf(gw.events, here.id), []);
      const there = await gw.asked(['printf', 'there']);
      await gw.approvals.resolveRecorded(there.id, 'allow-once', 'bob', async () => undefined);
      await there.waiting;
      assert.deepEqual(
        decisionsOf(gw.events, there.id).map((e) => [e.decision?.effect, (e.details as { approvalRecord?: string }).approvalRecord]),
        [['allow', 'unconfirmed']],
      );
      assert.ok(gw.durableAtRun.at(-1)!.includes(decisionsOf(gw.events, there.id)[0]!), 'the allow was durable before the node got the command');
      assert.equal(gw.durableAtRun.length, 2);
    } finally {
      await gw.close();
    }
  });
});
