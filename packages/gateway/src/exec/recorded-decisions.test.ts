// Replaying what the gateway recorded: each governed node command is judged
// again as it was decided — every spelling of its program, the shells it
// runs through, a named command's params, the node's own ask — so a
// candidate policy is compared with the decision as a whole.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEvent } from '@corral/audit';
import { DecisionPoint, loadPolicies, replay, type RecordedDecision } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { recordedDecision } from './recorded-decisions.ts';

const ALLOW_ECHO_AND_SH = `
@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");
@id("sh") permit (principal, action == Action::"system.run", resource == Command::"sh");
`;

function candidate(text: string): DecisionPoint {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'candidate.cedar', text }]));
  return point;
}

/** The decision record the gateway writes for a system.run of `argv` (invoke.ts), decided `effect`. */
function runRecord(argv: string[], effect: 'allow' | 'deny' | 'ask', extra: Record<string, string | number> = {}): AuditEvent {
  const run = canonicalRun({ command: argv });
  return {
    time: '2026-11-26T10:00:00.000Z',
    actor: { kind: 'human', id: 'operator' },
    action: 'node.invoke.decide',
    resource: { kind: 'command', id: run.argv[0]! },
    node: 'a'.repeat(64),
    decision: { effect, policies: [], reason: 'recorded' },
    details: { digest: 'b'.repeat(64), command: 'system.run', argv: run.argv, commands: run.commands, cwd: null, envKeys: [], ...extra },
  };
}

const replayed = (point: DecisionPoint, events: AuditEvent[]) => replay(point, events.map((e, i) => recordedDecision(i, e, new Map())).filter((r): r is RecordedDecision => r !== undefined));

describe('a governed node command replayed from its decision record', () => {
  it('names its program as the live decision did: /bin/echo is Command::"echo" (regression: replayed as Command::"/bin/echo", every permit for echo reported as lost)', () => {
    const report = replayed(candidate(ALLOW_ECHO_AND_SH), [runRecord(['/bin/echo', 'hi'], 'allow')]);
    assert.deepEqual([report.total, report.unchanged, report.changed.length], [1, 1, 0]);
  });

  it('applies a forbid on the shell a command runs through, and on another spelling of its program (regression: neither was asked, so the candidate looked harmless)', () => {
    const forbidSh = `${ALLOW_ECHO_AND_SH}\n@id("no-sh") forbid (principal, action == Action::"system.run", resource == Command::"sh");`;
    const forbidBinEcho = `${ALLOW_ECHO_AND_SH}\n@id("no-bin-echo") forbid (principal, action == Action::"system.run", resource == Command::"/usr/bin/echo");`;
    const runs = [runRecord(['sh', '-c', 'echo a; echo b'], 'allow'), runRecord(['echo', 'plain'], 'allow')];
    assert.deepEqual(replayed(candidate(forbidSh), runs).changed.map((c) => [c.ref, c.before, c.after.decision, c.after.policies]), [[0, 'allow', 'deny', ['no-sh']]]);
    assert.deepEqual(replayed(candidate(forbidBinEcho), runs).changed.map((c) => [c.ref, c.after.decision, c.after.policies]), [[0, 'deny', ['no-bin-echo']], [1, 'deny', ['no-bin-echo']]]);
  });

  it('judges a denied run of several commands as a whole (regression: left out, the log keeping only the combined decision)', () => {
    const report = replayed(candidate(ALLOW_ECHO_AND_SH), [runRecord(['sh', '-c', 'echo a; curl example.com'], 'deny')]);
    assert.deepEqual([report.total, report.unchanged], [1, 1]);
    const allowCurl = replayed(candidate(`${ALLOW_ECHO_AND_SH}\n@id("curl") permit (principal, action == Action::"system.run", resource == Command::"curl");`), [runRecord(['sh', '-c', 'echo a; curl example.com'], 'deny')]);
    assert.deepEqual(allowCurl.changed.map((c) => [c.before, c.after.decision]), [['deny', 'allow']]);
  });

  it('leaves out a run\'s allow that names the approval which allowed it: the policy\'s own answer is the ask recorded before (regression: replayed as a policy allow, a candidate that asks as the set did was reported to change it)', () => {
    const asked = runRecord(['echo', 'hi'], 'ask');
    const approved = { ...runRecord(['echo', 'hi'], 'allow', { approvalRecord: 'refused' }), decision: { effect: 'allow' as const, policies: [], approval: 'c'.repeat(32), reason: 'allowed by its approval' } };
    const report = replayed(candidate(ALLOW_ECHO_AND_SH), [asked, approved]);
    assert.equal(report.total, 1);
    assert.equal(recordedDecision(1, approved, new Map()), undefined);
  });

  it("asks again where the node's own policy asked, whatever the candidate allows", () => {
    const report = replayed(candidate(ALLOW_ECHO_AND_SH), [runRecord(['echo', 'hi'], 'ask', { nodeAsks: 'approval required by the node policy' })]);
    assert.deepEqual([report.unchanged, report.changed.length], [1, 0]);
  });

  it('replays a named command from its checked params, and leaves out a command no rule governs (refused without a policy)', () => {
    const payment: AuditEvent = { ...runRecord(['echo'], 'ask'), resource: { kind: 'command', id: 'payment.create' }, details: { digest: 'b'.repeat(64), command: 'payment.create', params: { amount: 250_000, currency: 'EUR', payee: 'ACME' } } };
    const ungoverned: AuditEvent = { ...runRecord(['echo'], 'deny'), details: { command: 'camera.snap' } };
    const big = '@id("pay-big") @approval("required") permit (principal, action == Action::"payment.create", resource) when { context has amount && context.amount > 100000 };';
    const report = replayed(candidate(big), [payment, ungoverned]);
    assert.deepEqual([report.total, report.unchanged], [1, 1]);
    const small = replayed(candidate('@id("pay") permit (principal, action == Action::"payment.create", resource);'), [payment]);
    assert.deepEqual(small.changed.map((c) => [c.before, c.after.decision, (c.request as { context: unknown }).context]), [['ask', 'allow', { amount: 250_000, currency: 'EUR' }]]);
  });

  it('reports an ask the candidate answers with another quorum as changed (regression: two approvers lowered to one was reported as no change)', () => {
    const two = runRecord(['echo', 'hi'], 'ask', { quorum: 2 });
    const asks = (quorum: number) => candidate(`@id("echo-asks") @approval("required") @quorum("${quorum}") permit (principal, action == Action::"system.run", resource == Command::"echo");`);
    assert.deepEqual(replayed(asks(1), [two]).changed.map((c) => [c.before, c.beforeQuorum, c.after.decision, c.after.quorum]), [['ask', 2, 'ask', 1]]);
    assert.deepEqual(replayed(asks(2), [two]).changed, []);
    // A record from before asks recorded their quorum says nothing of it: compared by decision alone.
    assert.deepEqual(replayed(asks(1), [runRecord(['echo', 'hi'], 'ask')]).changed, []);
  });

  it('reports a record the candidate cannot decide as not decidable, not as a deny', () => {
    const point = candidate(ALLOW_ECHO_AND_SH);
    const report = replay(point, [{ ...recordedDecision(0, runRecord(['echo', 'hi'], 'allow'), new Map())!, at: 'not a time' }]);
    assert.deepEqual([report.refused.map((r) => r.code), report.changed.length], [['POLICY_REQUEST_INVALID'], 0]);
  });
});
