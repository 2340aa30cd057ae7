// An approval is used under the policy in force when it comes, not the one in
// force when it was asked for: humans may take minutes, in which an admin
// forbids the command (a forbid always wins) or raises its quorum (fewer
// approvers than it now asks for allow nothing, and a retry asks them all).
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Approval } from '../approvals/store.ts';
import { compileCandidate, PolicyControl } from '../http/policy-control.ts';
import { auditRecords } from '../../../../scripts/testing/audit-events.ts';
import { governedGateway, refusedWith, type GovernedGateway } from '../../test/governed-gateway.ts';

const PRINTF_ASKS = '@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");\n';
const PRINTF_ASKS_TWO = '@id("printf-asks") @approval("required") @quorum("2") permit (principal, action == Action::"system.run", resource == Command::"printf");\n';
const PRINTF_FORBIDDEN = '@id("no-printf") forbid (principal, action == Action::"system.run", resource == Command::"printf");\n';

describe('when the policy changes while an approval waits', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ policy: PRINTF_ASKS, gateway: { approvalPollMs: 20 } });
  });
  after(() => t?.close());
  beforeEach(() => activate(PRINTF_ASKS));

  /** Makes `text` the active run.cedar, as the policy editor or another process does; the gateway decides with it from its next decision. */
  async function activate(text: string): Promise<void> {
    const control = PolicyControl.open(t.policies);
    const active = control.active();
    if (active.files.find((f) => f.name === 'run.cedar')?.text === text) return;
    assert.equal(await control.activate(compileCandidate(active.files.map((f) => (f.name === 'run.cedar' ? { ...f, text } : f))), active.hash), true);
  }

  /** Asks for `argv` and leaves the request waiting for its approver; its approval once made. */
  async function waiting(argv: string[]): Promise<{ running: Promise<unknown>; pending: Approval }> {
    const running = t.run(argv, 30_000);
    running.catch(() => {});
    for (;;) {
      const pending = t.pendingFor(argv);
      if (pending) return { running, pending };
      await sleep(10);
    }
  }

  it('refuses the waiting run once a forbid on its command is in force, though an approver allows it, and records why (regression: it ran)', async () => {
    const { running, pending } = await waiting(['printf', 'forbidden since']);
    await activate(PRINTF_ASKS + PRINTF_FORBIDDEN);
    await assert.rejects(t.run(['printf', 'other'], 100), refusedWith('SYSTEM_RUN_DENIED'), 'the gateway decides with the forbid');
    const sent = t.node.received.length;
    await t.gw.invoker.resolveApprovalWhenFree(pending.id, 'allow-once', 'alice');
    await assert.rejects(running, refusedWith('SYSTEM_RUN_DENIED'));
    assert.equal(t.node.received.length, sent, 'nothing reached the node');
    const refused = (await auditRecords(t.state)).filter((r) => r.event.action === 'node.invoke.decide' && r.event.decision?.approval === pending.id);
    assert.deepEqual(refused.map((r) => [r.event.decision?.effect, r.event.decision?.policies]), [['deny', ['no-printf']]]);
  });

  it('refuses the waiting run when its quorum was raised and fewer approvers allowed it (regression: one approver ran a command the policy asked two for)', async () => {
    const { running, pending } = await waiting(['printf', 'raised while waiting']);
    await activate(PRINTF_ASKS_TWO);
    const sent = t.node.received.length;
    await t.gw.invoker.resolveApprovalWhenFree(pending.id, 'allow-once', 'alice');
    await assert.rejects(running, refusedWith('SYSTEM_RUN_DENIED'));
    assert.equal(t.node.received.length, sent, 'nothing reached the node');
  });

  it('asks again, for the quorum now in force, when the same command is retried after fewer approvers allowed it (regression: the retry spent the approval of one)', async () => {
    const argv = ['printf', 'raised before the retry'];
    await assert.rejects(t.run(argv, 100), refusedWith('APPROVAL_PENDING'));
    const first = t.pendingFor(argv)!;
    await activate(PRINTF_ASKS_TWO);
    await t.gw.invoker.resolveApprovalWhenFree(first.id, 'allow-once', 'alice');
    const sent = t.node.received.length;
    await assert.rejects(t.run(argv, 100), refusedWith('APPROVAL_PENDING'));
    assert.equal(t.node.received.length, sent, 'nothing reached the node');
    const second = t.pendingFor(argv)!;
    assert.notEqual(second.id, first.id);
    assert.equal(second.quorum, 2);
    assert.equal(t.gw.approvals.get(first.id).status, 'allowed', 'the approval of one is left unspent');
    await t.gw.invoker.resolveApprovalWhenFree(second.id, 'allow-once', 'alice');
    await t.gw.invoker.resolveApprovalWhenFree(second.id, 'allow-once', 'bob');
    await t.run(argv);
    assert.equal(t.node.received.length, sent + 1);
  });
});
