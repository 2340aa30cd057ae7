import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sampleEvent } from '../../test/fixtures.ts';
import { normalizeEvent, type AuditEventInput } from '../record/event.ts';
import { toOcsf } from './ocsf.ts';

const ocsf = (input: AuditEventInput, seq = 7) => toOcsf({ seq, hash: 'ab'.repeat(32), prev: 'cd'.repeat(32), event: normalizeEvent(input) });

// The members OpenShell writes on every OCSF event, and what this class needs.
const BASE = ['class_uid', 'class_name', 'category_uid', 'category_name', 'activity_id', 'activity_name', 'type_uid', 'type_name', 'time', 'severity_id', 'severity', 'status_id', 'status', 'metadata'];

describe('the OCSF 1.8.0 export', () => {
  it('maps a contained run to Process Activity [1007] Launch with its command line and exit code', () => {
    const e = ocsf({ ...sampleEvent(0), action: 'run.exec' });
    for (const k of [...BASE, 'process', 'actor', 'device']) assert.ok(k in e, k);
    assert.equal(e.class_uid, 1007);
    assert.equal(e.category_name, 'System Activity');
    assert.equal(e.activity_name, 'Launch');
    assert.equal(e.type_uid, 100701);
    assert.equal(e.type_name, 'Process Activity: Launch');
    assert.deepEqual(e.process, { name: '/bin/sh', cmd_line: '/bin/sh summarise.sh invoice-0.pdf' });
    assert.equal(e.exit_code, 0);
  });
  it('maps a refused connection to Network Activity [4001] Denied/Blocked, severity Medium, status Failure', () => {
    const e = ocsf({ ...sampleEvent(1), action: 'net.connect', resource: { kind: 'endpoint', id: 'httpbin.org:443' }, decision: { effect: 'deny', reason: 'no matching policy' }, outcome: { status: 'failure' } });
    assert.equal(e.class_uid, 4001);
    // OpenShell records a denied CONNECT as an Open the control blocked, not as a Refuse.
    assert.deepEqual([e.activity_id, e.activity_name, e.type_uid, e.type_name], [1, 'Open', 400101, 'Network Activity: Open']);
    assert.deepEqual([e.action_id, e.action, e.disposition_id, e.disposition], [2, 'Denied', 2, 'Blocked']);
    assert.deepEqual([e.severity_id, e.severity, e.status_id, e.status], [3, 'Medium', 2, 'Failure']);
    assert.deepEqual(e.dst_endpoint, { hostname: 'httpbin.org', port: 443 });
    const to = (id: string) => ocsf({ ...sampleEvent(1), action: 'net.connect', resource: { kind: 'endpoint', id } }).dst_endpoint;
    assert.deepEqual([to('10.0.0.7:8443'), to('[2001:db8::1]:443'), to('example.com')], [{ ip: '10.0.0.7', port: 8443 }, { ip: '2001:db8::1', port: 443 }, { hostname: 'example.com' }]);
    assert.equal(e.status_detail, 'no matching policy');
  });
  it('maps a net.refuse record to a Network Activity Open that was Denied/Blocked, as OpenShell records a denied connection', () => {
    const e = ocsf({ ...sampleEvent(1), action: 'net.refuse', resource: { kind: 'endpoint', id: 'httpbin.org:443' }, decision: { effect: 'deny', reason: 'no matching policy' }, outcome: { status: 'failure' } });
    assert.deepEqual([e.class_uid, e.activity_id, e.activity_name, e.type_uid], [4001, 1, 'Open', 400101]);
    assert.deepEqual([e.action_id, e.action, e.disposition_id, e.disposition, e.severity_id, e.status_id], [2, 'Denied', 2, 'Blocked', 3, 2]);
  });
  it("names a connection's deciding policy in firewall_rule, as OpenShell's Network Activity does, and no authorizations in the actor", () => {
    const e = ocsf({ ...sampleEvent(1), action: 'net.connect', resource: { kind: 'endpoint', id: 'api.example.com:443' }, decision: { effect: 'allow', policies: ['egress-api', 'egress-all'] } });
    assert.deepEqual(e.firewall_rule, { name: 'egress-api', type: 'cedar' });
    assert.ok(!('authorizations' in (e.actor as object)));
    // No policy decided (nothing matched): OpenShell's rule name for none, '-'.
    const none = ocsf({ ...sampleEvent(1), action: 'net.connect', resource: { kind: 'endpoint', id: 'httpbin.org:443' }, decision: { effect: 'deny', reason: 'no matching policy' } });
    assert.deepEqual(none.firewall_rule, { name: '-', type: 'cedar' });
    const contained = ocsf({ ...sampleEvent(1), action: 'net.connect', resource: { kind: 'endpoint', id: 'api.example.com:443' }, decision: { effect: 'allow', policies: [`container:sha256:${'aa'.repeat(32)}`] } });
    assert.deepEqual(contained.firewall_rule, { name: `container:sha256:${'aa'.repeat(32)}`, type: 'container' });
  });
  it('maps a tool call to API Activity [6003] with the operation, the agent and the human it acts for', () => {
    const e = ocsf({ ...sampleEvent(2), action: 'tool.call', decision: { effect: 'allow', approval: 'approval:42', policies: ['invoice-intake@sha256:' + 'ab'.repeat(32)] } });
    for (const k of [...BASE, 'api', 'actor', 'src_endpoint']) assert.ok(k in e, k);
    assert.equal(e.class_uid, 6003);
    assert.equal(e.activity_id, 99);
    assert.deepEqual(e.api, { operation: 'tool.call' });
    assert.deepEqual(e.actor, {
      app_name: 'agent:invoice-intake',
      app_uid: 'agent:agent:invoice-intake',
      user: { uid: 'alice@example.com', name: 'alice@example.com', type_id: 1, type: 'User' },
      authorizations: [{ decision: 'allow', policy: { name: 'invoice-intake@sha256:' + 'ab'.repeat(32) } }],
    });
    assert.deepEqual([e.disposition_id, e.disposition], [8, 'Approved']);
  });
  it('stamps OCSF version 1.8.0, the product, the record hash and its sequence number', () => {
    const e = ocsf(sampleEvent(3), 41);
    assert.deepEqual(e.metadata, { version: '1.8.0', product: { name: 'Corral', vendor_name: 'Corral', version: '0.1.0' }, uid: 'ab'.repeat(32), sequence: 41, log_name: 'corral-audit', correlation_uid: '0af7651916cd43dd8448eb211c80319c' });
    assert.equal(e.time, Date.parse('2026-11-25T12:00:03.000Z'));
  });
  it('carries the whole Corral record in unmapped.corral', () => {
    const e = ocsf(sampleEvent(4)) as { unmapped: { corral: { seq: number; event: { details: unknown } } } };
    assert.equal(e.unmapped.corral.seq, 7);
    assert.deepEqual(e.unmapped.corral.event.details, sampleEvent(4).details);
  });
});

// Records as the gateway writes them for one governed command on a node
// (packages/gateway/src/exec/invoke.ts): #authorize's decision, #run's and
// #lateResult's result, #abandon's record that the caller left, and runRecord
// (corral.run.report) for a run another gateway sent a Corral node.
const NODE = 'node-7f3a';
const DIGEST = 'ef'.repeat(32);
const agent = { kind: 'agent', id: 'invoice-intake' } as const;
const decided = (effect: 'allow' | 'deny' | 'ask', reason: string): AuditEventInput => ({
  actor: agent,
  action: 'node.invoke.decide',
  resource: { kind: 'command', id: '/usr/bin/git' },
  node: NODE,
  decision: { effect, policies: ['git-read'], reason },
  details: { digest: DIGEST, command: 'system.run', argv: ['/usr/bin/git', 'log', '-1'], commands: [['/usr/bin/git', 'log', '-1']], cwd: '/srv/repo', envKeys: ['LANG'] },
});
const resulted = (outcome: AuditEventInput['outcome'], details: Record<string, string | number | boolean>, approvalId?: string): AuditEventInput => ({
  actor: agent,
  action: 'node.invoke',
  resource: { kind: 'command', id: 'system.run' },
  node: NODE,
  ...(approvalId ? { decision: { effect: 'allow' as const, approval: approvalId } } : {}),
  outcome,
  context: { outputs: { result: `sha256:${'12'.repeat(32)}` } },
  details: { invokeId: '5b0e6c1e-4f7a-4a3e-9d55-0c8f8b1f2a11', ...details },
});

describe('a governed run through the gateway', () => {
  describe('its decision (node.invoke.decide of system.run)', () => {
    it('maps an allow to Process Activity [1007] Launch, spawned, with the command line and working directory from the argv, on the node', () => {
      const e = ocsf(decided('allow', 'permitted by git-read'));
      for (const k of [...BASE, 'process', 'actor', 'device']) assert.ok(k in e, k);
      assert.deepEqual([e.class_uid, e.category_uid, e.activity_id, e.activity_name, e.type_uid, e.type_name], [1007, 1, 1, 'Launch', 100701, 'Process Activity: Launch']);
      assert.deepEqual(e.process, { name: '/usr/bin/git', cmd_line: '/usr/bin/git log -1', working_directory: '/srv/repo' });
      assert.deepEqual([e.launch_type_id, e.launch_type], [1, 'Spawn']);
      assert.deepEqual(e.device, { hostname: NODE, type_id: 0, type: 'Unknown' });
      assert.deepEqual([e.action_id, e.action, e.disposition_id, e.disposition, e.severity_id, e.status_id], [1, 'Allowed', 1, 'Allowed', 1, 1]);
      assert.deepEqual(e.actor, { app_name: 'invoice-intake', app_uid: 'agent:invoice-intake', authorizations: [{ decision: 'allow', policy: { name: 'git-read' } }] });
      assert.ok(!('exit_code' in e) && !('api' in e));
    });
    it('maps a deny to a blocked Launch of Medium severity that failed, nothing spawned', () => {
      const e = ocsf(decided('deny', 'forbidden by no-push'));
      assert.deepEqual([e.class_uid, e.activity_name, e.type_uid], [1007, 'Launch', 100701]);
      assert.deepEqual([e.action_id, e.action, e.disposition_id, e.disposition], [2, 'Denied', 2, 'Blocked']);
      assert.deepEqual([e.severity_id, e.severity, e.status_id, e.status, e.status_detail], [3, 'Medium', 2, 'Failure', 'forbidden by no-push']);
      assert.ok(!('launch_type_id' in e));
    });
    it('maps an ask to a Launch delayed for a human, of Low severity, its outcome unknown', () => {
      const e = ocsf(decided('ask', 'needs a reviewer'));
      assert.deepEqual([e.class_uid, e.activity_name], [1007, 'Launch']);
      assert.deepEqual([e.disposition_id, e.disposition, e.severity_id, e.status_id], [14, 'Delayed', 2, 0]);
    });
  });
  describe("a node's own refusal before asking (node.invoke.refuse of system.run)", () => {
    it('maps it to a blocked Launch of Medium severity that failed, with the command line and working directory, nothing spawned (it was API Activity: Other)', () => {
      const e = ocsf({ actor: agent, action: 'node.invoke.refuse', resource: { kind: 'command', id: 'id' }, node: NODE, decision: { effect: 'deny', reason: "id is not on the node's allowlist" }, details: { by: 'node', code: 'NODE_RUN_DENIED', rule: 'allowlist-miss', command: 'system.run', argv: ['id', '-u'], cwd: '/srv', envKeys: [] } });
      assert.deepEqual([e.class_uid, e.activity_name, e.type_uid], [1007, 'Launch', 100701]);
      assert.deepEqual(e.process, { name: 'id', cmd_line: 'id -u', working_directory: '/srv' });
      assert.deepEqual([e.action, e.disposition, e.severity, e.status, e.status_detail], ['Denied', 'Blocked', 'Medium', 'Failure', "id is not on the node's allowlist"]);
      assert.deepEqual(e.device, { hostname: NODE, type_id: 0, type: 'Unknown' });
      assert.ok(!('launch_type_id' in e) && !('api' in e));
    });
  });
  describe('its result (node.invoke of system.run)', () => {
    it('maps a finished run to Process Activity [1007] Terminate with its exit code and duration, an allowed run as OpenShell records an exit', () => {
      const e = ocsf(resulted({ status: 'failure', exitCode: 3 }, { timedOut: false, containerPolicy: 'sha256:' + 'aa'.repeat(32), refused: 0, connections: 2, durationMs: 41.7 }));
      for (const k of [...BASE, 'process', 'actor', 'device']) assert.ok(k in e, k);
      assert.deepEqual([e.class_uid, e.activity_id, e.activity_name, e.type_uid, e.type_name], [1007, 2, 'Terminate', 100702, 'Process Activity: Terminate']);
      assert.equal(e.exit_code, 3);
      assert.equal(e.duration, 42);
      // The record names the command (system.run), not the program: OpenShell's unknown process.
      assert.deepEqual(e.process, { name: 'unknown' });
      assert.equal((e.device as { hostname: string }).hostname, NODE);
      assert.deepEqual([e.action, e.disposition, e.severity, e.status], ['Allowed', 'Allowed', 'Informational', 'Success']);
    });
    it('says Success for a run that exited non-zero, recorded as a failure: the exit code tells, as in OpenShell\'s exit event', () => {
      const e = ocsf(resulted({ status: 'failure', exitCode: 1 }, { timedOut: false, durationMs: 5 }));
      assert.deepEqual([e.activity_name, e.exit_code, e.status_id, e.status, e.action_id, e.disposition_id, e.severity_id], ['Terminate', 1, 1, 'Success', 1, 1, 1]);
    });
    it('says Failure for a result with no exit code that failed (the node could not run it)', () => {
      const e = ocsf(resulted({ status: 'failure', detail: 'UNAVAILABLE' }, {}));
      assert.deepEqual([e.activity_name, e.status, e.status_detail], ['Terminate', 'Failure', 'UNAVAILABLE']);
      assert.ok(!('exit_code' in e));
    });
    it('says Approved for a run a human approved', () => {
      const e = ocsf(resulted({ status: 'success', exitCode: 0 }, {}, 'approval-9'));
      assert.deepEqual([e.activity_name, e.disposition_id, e.disposition], ['Terminate', 8, 'Approved']);
    });
    it('maps a run the node stopped at its timeout to a blocked, failed Terminate of Critical severity, as OpenShell records a timeout kill', () => {
      const e = ocsf(resulted({ status: 'failure' }, { timedOut: true, durationMs: 30_000 }));
      assert.deepEqual([e.activity_name, e.action, e.disposition, e.severity_id, e.severity, e.status], ['Terminate', 'Denied', 'Blocked', 5, 'Critical', 'Failure']);
    });
    it('maps the record that the caller left to a Terminate whose outcome is unknown, and a late result to a Terminate with its exit code', () => {
      const left = ocsf({ actor: agent, action: 'node.invoke', resource: { kind: 'command', id: 'system.run' }, node: NODE, outcome: { status: 'unknown', detail: 'caller-left' }, details: { invokeId: 'i-1', cancelSent: true } });
      assert.deepEqual([left.class_uid, left.activity_name, left.status, left.status_detail], [1007, 'Terminate', 'Unknown', 'caller-left']);
      const late = ocsf(resulted({ status: 'success', exitCode: 0 }, { callerLeft: true }));
      assert.deepEqual([late.activity_name, late.exit_code], ['Terminate', 0]);
    });
    it("maps a node's report of a run another gateway sent it (corral.run.report) to a Terminate on that node", () => {
      const e = ocsf({ actor: { kind: 'node', id: NODE }, action: 'node.invoke', resource: { kind: 'command', id: 'system.run' }, node: NODE, outcome: { status: 'failure', exitCode: 1 }, details: { runId: 'r-1', digest: DIGEST, principal: 'Agent::invoice-intake', via: 'another gateway' } });
      assert.deepEqual([e.class_uid, e.activity_name, e.exit_code, e.status], [1007, 'Terminate', 1, 'Success']);
      assert.deepEqual(e.actor, { app_name: NODE, app_uid: `node:${NODE}` });
    });
    it('keeps the whole record in unmapped.corral', () => {
      const input = { ...resulted({ status: 'success', exitCode: 0 }, { refused: 1 }), time: '2026-11-27T04:00:00.000Z' };
      const e = ocsf(input) as { unmapped: { corral: { event: unknown } } };
      assert.deepEqual(e.unmapped.corral.event, normalizeEvent(input));
    });
  });
  it('keeps named commands, a prepare, an unknown command and approvals as API Activity [6003]', () => {
    const named: AuditEventInput[] = [
      { actor: agent, action: 'node.invoke.decide', resource: { kind: 'command', id: 'payment.create' }, node: NODE, decision: { effect: 'ask', policies: ['payments'], reason: 'over 100' }, details: { digest: DIGEST, command: 'payment.create', params: { amount: 120 } } },
      { actor: agent, action: 'node.invoke', resource: { kind: 'command', id: 'payment.create' }, node: NODE, outcome: { status: 'success' }, details: { invokeId: 'i-2' } },
      { ...decided('allow', 'permitted'), details: { digest: DIGEST, command: 'system.run.prepare', argv: ['ls'], commands: [['ls']], cwd: null, envKeys: [] } },
      { actor: agent, action: 'node.invoke.decide', resource: { kind: 'command', id: 'system.fly' }, node: NODE, decision: { effect: 'deny', reason: 'no rule governs this command' }, details: { command: 'system.fly' } },
      { actor: agent, action: 'approval.request', resource: { kind: 'approval', id: 'approval-9' }, node: NODE, decision: { effect: 'ask', policies: ['git-read'], reason: 'needs a reviewer' }, details: { digest: DIGEST, quorum: 1, expiresAtMs: 1 } },
      { actor: { kind: 'node', id: NODE }, action: 'node.report.refused', resource: { kind: 'command', id: 'system.run' }, node: NODE, outcome: { status: 'failure', detail: 'unknown-run' }, details: {} },
    ];
    for (const input of named) {
      const e = ocsf(input);
      assert.equal(e.class_uid, 6003, input.action);
      assert.deepEqual(e.api, { operation: input.action });
      assert.ok(!('process' in e));
    }
  });
});

describe('every record', () => {
  const CLASSES: Record<number, [string, number, string]> = { 1007: ['Process Activity', 1, 'System Activity'], 4001: ['Network Activity', 4, 'Network Activity'], 6003: ['API Activity', 6, 'Application Activity'] };
  const MEMBER: Record<number, string> = { 1007: 'process', 4001: 'dst_endpoint', 6003: 'api' };
  const action = fc.oneof(
    fc.constantFrom('run.exec', 'run.exit', 'net.connect', 'net.refuse', 'node.invoke', 'node.invoke.decide', 'node.report.refused', 'approval.request', 'approval.resolve', 'policy.grant', 'tool.call', 'agent.suspend', 'payment.create'),
    fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}(\.[a-z][a-z0-9_-]{0,8}){0,3}$/),
  );
  const input = fc.record({
    action,
    resource: fc.record({ kind: fc.constantFrom('command', 'endpoint', 'approval', 'tool'), id: fc.constantFrom('system.run', 'system.run.prepare', 'payment.create', '/bin/sh', 'api.example.com:443', 'x') }),
    effect: fc.option(fc.constantFrom('allow', 'deny', 'ask') as fc.Arbitrary<'allow' | 'deny' | 'ask'>, { nil: undefined }),
    status: fc.option(fc.constantFrom('success', 'failure', 'unknown') as fc.Arbitrary<'success' | 'failure' | 'unknown'>, { nil: undefined }),
    command: fc.option(fc.constantFrom('system.run', 'system.run.prepare', 'payment.create'), { nil: undefined }),
    argv: fc.option(fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }), { nil: undefined }),
    timedOut: fc.option(fc.boolean(), { nil: undefined }),
    node: fc.option(fc.constantFrom(NODE, 'host-2'), { nil: undefined }),
  });
  it('maps to exactly one class, its category and activity consistent: type_uid = class_uid × 100 + activity_id', () => {
    fc.assert(
      fc.property(input, (r) => {
        const e = ocsf({
          actor: agent,
          action: r.action,
          resource: r.resource,
          ...(r.effect ? { decision: { effect: r.effect } } : {}),
          ...(r.status ? { outcome: { status: r.status } } : {}),
          ...(r.node ? { node: r.node } : {}),
          details: { ...(r.command ? { command: r.command } : {}), ...(r.argv ? { argv: r.argv } : {}), ...(r.timedOut !== undefined ? { timedOut: r.timedOut } : {}) },
        });
        const cls = CLASSES[e.class_uid as number];
        assert.ok(cls, `class ${String(e.class_uid)}`);
        assert.deepEqual([e.class_name, e.category_uid, e.category_name], cls);
        assert.equal(e.type_uid, (e.class_uid as number) * 100 + (e.activity_id as number));
        assert.equal(e.type_name, `${e.class_name}: ${e.activity_name}`);
        // Exactly one class's own members: a record is never a process and an API call at once.
        assert.deepEqual(Object.values(MEMBER).filter((k) => k in e), [MEMBER[e.class_uid as number]]);
        // A governed system.run is a process; its prepare, named commands and everything not a run or a connection are API Activity.
        const governed = (r.action === 'node.invoke.decide' && r.command === 'system.run' && r.argv !== undefined) || (r.action === 'node.invoke' && r.resource.kind === 'command' && r.resource.id === 'system.run');
        if (governed) assert.equal(e.class_uid, 1007);
        if (r.action.startsWith('node.') && !governed) assert.equal(e.class_uid, 6003);
      }),
      { numRuns: 500 },
    );
  });
});
