import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { JsonValue } from '../record/canonical.ts';
import { normalizeEvent, type AuditEventInput } from '../record/event.ts';
import { toOcsf, toOcsfEvents } from './ocsf.ts';

const HASH = 'ab'.repeat(32);
const events = (input: AuditEventInput, seq = 9) => toOcsfEvents({ seq, hash: HASH, prev: 'cd'.repeat(32), event: normalizeEvent(input) });
const POLICY = `container:sha256:${'aa'.repeat(32)}`;
const END = '2026-11-27T05:00:10.000Z';

// A `corral run` record as packages/cli/src/commands/run-record.ts writes it: one allowed and one refused connection.
const contained = (over: { outcome?: AuditEventInput['outcome']; details?: Record<string, JsonValue> } = {}): AuditEventInput => ({
  time: END,
  actor: { kind: 'human', id: 'alice@build-7' },
  action: 'run.exec',
  resource: { kind: 'command', id: '/usr/bin/curl' },
  decision: { effect: 'allow', policies: [POLICY], reason: 'contained by ./policy.yaml' },
  context: { inputs: { policy: `sha256:${'aa'.repeat(32)}`, argv: `sha256:${'bb'.repeat(32)}` } },
  outcome: over.outcome ?? { status: 'failure', exitCode: 6 },
  details: {
    argv: ['/usr/bin/curl', '-s', 'https://api.example.com/'],
    policyFile: './policy.yaml',
    signal: null,
    notFound: false,
    durationMs: 2500,
    peakMemoryBytes: 1024,
    limitsHit: [],
    refused: [],
    refusedConnections: 1,
    connections: [
      { host: 'api.example.com', port: 443, address: '93.184.215.14', allowed: true, reason: null, bytesSent: 517, bytesReceived: 4096 },
      { host: 'httpbin.org', port: 443, address: null, allowed: false, reason: 'not in the egress allow-list', bytesSent: 0, bytesReceived: 0 },
    ],
    connectionCount: 2,
    warnings: [],
    ...over.details,
  },
  node: 'build-7',
});

describe('toOcsfEvents', () => {
  describe('of a corral run record (run.exec)', () => {
    it("gives a Launch, a Network Activity Open for each connection it lists, then a Terminate with the exit code, as OpenShell's supervisor and proxy record a process", () => {
      const out = events(contained());
      assert.deepEqual(
        out.map((e) => e.type_name),
        ['Process Activity: Launch', 'Network Activity: Open', 'Network Activity: Open', 'Process Activity: Terminate'],
      );
    });
    it('launches the command spawned and allowed, without an exit code, when the run began: its duration before the record', () => {
      const [launch] = events(contained());
      assert.ok(launch);
      assert.deepEqual(launch.process, { name: '/usr/bin/curl', cmd_line: '/usr/bin/curl -s https://api.example.com/' });
      assert.deepEqual([launch.launch_type_id, launch.launch_type], [1, 'Spawn']);
      assert.deepEqual([launch.action, launch.disposition, launch.severity, launch.status], ['Allowed', 'Allowed', 'Informational', 'Success']);
      assert.equal(launch.time, Date.parse(END) - 2500);
      assert.ok(!('exit_code' in launch) && !('duration' in launch));
      assert.deepEqual(launch.actor, { user: { uid: 'alice@build-7', name: 'alice@build-7', type_id: 1, type: 'User' }, authorizations: [{ decision: 'allow', policy: { name: POLICY } }] });
    });
    it('terminates it with the exit code and duration, status Success though the record says failure, as OpenShell records any exit', () => {
      const terminate = events(contained()).at(-1);
      assert.ok(terminate);
      assert.deepEqual([terminate.activity_id, terminate.exit_code, terminate.duration, terminate.time], [2, 6, 2500, Date.parse(END)]);
      assert.deepEqual([terminate.action, terminate.disposition, terminate.severity, terminate.status], ['Allowed', 'Allowed', 'Informational', 'Success']);
      assert.deepEqual(terminate.process, { name: '/usr/bin/curl', cmd_line: '/usr/bin/curl -s https://api.example.com/' });
    });
    it("records an allowed connection as an allowed Open by the run's process, its policy in firewall_rule and its bytes as traffic", () => {
      const allowed = events(contained())[1];
      assert.ok(allowed);
      assert.deepEqual([allowed.class_uid, allowed.activity_id, allowed.action, allowed.disposition, allowed.severity, allowed.status], [4001, 1, 'Allowed', 'Allowed', 'Informational', 'Success']);
      assert.deepEqual(allowed.dst_endpoint, { hostname: 'api.example.com', ip: '93.184.215.14', port: 443 });
      assert.deepEqual(allowed.firewall_rule, { name: POLICY, type: 'container' });
      assert.deepEqual(allowed.traffic, { bytes_out: 517, bytes_in: 4096 });
      assert.deepEqual(allowed.actor, { user: { uid: 'alice@build-7', name: 'alice@build-7', type_id: 1, type: 'User' }, process: { name: '/usr/bin/curl', cmd_line: '/usr/bin/curl -s https://api.example.com/' } });
      assert.ok(!('process' in allowed));
    });
    it('records a refused connection as an Open Denied/Blocked of Medium severity that failed, the reason as status_detail, as OpenShell records a denied CONNECT', () => {
      const refused = events(contained())[2];
      assert.ok(refused);
      assert.deepEqual([refused.activity_id, refused.activity_name, refused.action_id, refused.disposition_id, refused.severity_id, refused.status_id], [1, 'Open', 2, 2, 3, 2]);
      assert.equal(refused.status_detail, 'not in the egress allow-list');
      assert.deepEqual(refused.dst_endpoint, { hostname: 'httpbin.org', port: 443 });
    });
    it('gives each event its own uid and one correlation_uid, and keeps the whole record with the Terminate only', () => {
      const out = events(contained());
      const meta = out.map((e) => e.metadata as { uid: string; sequence: number; correlation_uid: string });
      assert.deepEqual(meta.map((m) => m.uid), [`${HASH}.0`, `${HASH}.1`, `${HASH}.2`, `${HASH}.3`]);
      assert.deepEqual(new Set(meta.map((m) => m.correlation_uid)), new Set([HASH]));
      assert.deepEqual(new Set(meta.map((m) => m.sequence)), new Set([9]));
      const kept = out.map((e) => Object.keys((e.unmapped as { corral: object }).corral).sort().join());
      assert.deepEqual(kept, ['hash,seq', 'hash,seq', 'hash,seq', 'event,hash,prev,seq']);
    });
    it("keeps a trace the record carries as every event's correlation_uid", () => {
      const out = events({ ...contained(), trace: '0af7651916cd43dd8448eb211c80319c' });
      assert.ok(out.every((e) => (e.metadata as { correlation_uid: string }).correlation_uid === '0af7651916cd43dd8448eb211c80319c'));
    });
    it('adds, for a run Corral stopped at a limit, a blocked Terminate of Critical severity before its exit, as OpenShell records a timeout kill', () => {
      const out = events(contained({ outcome: { status: 'failure', detail: 'stopped: timeout' }, details: { signal: 'SIGKILL', limitsHit: ['timeout'], refused: [{ kind: 'limit', limit: 'timeout', detail: 'after 30 s' }], connections: [], connectionCount: 0 } }));
      assert.deepEqual(out.map((e) => e.type_name), ['Process Activity: Launch', 'Process Activity: Terminate', 'Process Activity: Terminate']);
      const [, kill, exit] = out;
      assert.ok(kill && exit);
      assert.deepEqual([kill.action, kill.disposition, kill.severity_id, kill.status, kill.status_detail], ['Denied', 'Blocked', 5, 'Failure', 'stopped: timeout']);
      assert.ok(!('exit_code' in kill) && !('exit_code' in exit));
      assert.deepEqual([exit.status, exit.status_detail], ['Success', 'ended by SIGKILL']);
    });
    it('adds no blocked Terminate for a run its user interrupted: its exit says why, as no limit stopped it', () => {
      const out = events(contained({ outcome: { status: 'failure', detail: 'stopped: interrupted (SIGINT)' }, details: { signal: 'SIGINT', connections: [], connectionCount: 0 } }));
      assert.deepEqual(out.map((e) => [e.activity_name, e.action, e.status, e.status_detail]), [['Launch', 'Allowed', 'Success', undefined], ['Terminate', 'Allowed', 'Success', 'stopped: interrupted (SIGINT)']]);
    });
    it('lists no events for connections the record left out, and tells how many were left out', () => {
      const out = events(contained({ details: { connectionCount: 5 } }));
      assert.equal(out.filter((e) => e.class_uid === 4001).length, 2);
      assert.equal((out.at(-1)?.unmapped as { connections_not_listed: number }).connections_not_listed, 3);
    });
    it('skips a listed connection that is not shaped as Corral writes one', () => {
      const odd: JsonValue[] = [null, 'x', { host: 'a.example', port: '443', allowed: true }, { host: 'b.example', port: 443 }, { host: 'c.example', port: 443, allowed: true, bytesSent: -1, bytesReceived: 'x' }];
      const out = events(contained({ details: { connections: odd, connectionCount: odd.length } }));
      assert.deepEqual(out.filter((e) => e.class_uid === 4001).map((e) => [e.dst_endpoint, 'traffic' in e]), [[{ hostname: 'c.example', port: 443 }, false]]);
    });
    it('gives one failed Launch for a run that never started, blocked when Corral refused it', () => {
      const refused: AuditEventInput = { ...contained(), decision: { effect: 'deny', policies: [POLICY], reason: 'the host cannot enforce the policy' }, outcome: { status: 'failure', detail: 'not started: CONTAIN_UNSUPPORTED' }, details: { argv: ['/usr/bin/curl'], policyFile: './policy.yaml', error: { code: 'CONTAIN_UNSUPPORTED' } } };
      const out = events(refused);
      assert.equal(out.length, 1);
      const [launch] = out;
      assert.deepEqual([launch?.type_name, launch?.action, launch?.disposition, launch?.status], ['Process Activity: Launch', 'Denied', 'Blocked', 'Failure']);
      assert.ok(launch && !('launch_type_id' in launch) && !('exit_code' in launch));
      assert.equal((launch?.metadata as { uid: string }).uid, HASH);
      // Interrupted before the command started: the policy's allow, no exit code, no duration.
      const interrupted = events({ ...contained(), outcome: { status: 'failure', detail: 'not started: interrupted (SIGINT)' }, details: { argv: ['/usr/bin/curl'], policyFile: './policy.yaml', signal: 'SIGINT' } });
      assert.deepEqual(interrupted.map((e) => [e.type_name, e.status, 'launch_type_id' in e]), [['Process Activity: Launch', 'Failure', false]]);
    });
  });
  describe('of a governed run the node stopped at its timeout (node.invoke of system.run, timedOut)', () => {
    const timedOut: AuditEventInput = { actor: { kind: 'agent', id: 'invoice-intake' }, action: 'node.invoke', resource: { kind: 'command', id: 'system.run' }, node: 'node-7f3a', outcome: { status: 'failure', exitCode: 124 }, details: { invokeId: 'i-1', timedOut: true, durationMs: 30_000 } };
    it("gives the kill, then the exit with the code the node reported, as OpenShell's supervisor does", () => {
      const [kill, exit, ...rest] = events(timedOut);
      assert.deepEqual(rest, []);
      assert.ok(kill && exit);
      assert.deepEqual([kill.activity_name, kill.action, kill.severity, kill.status], ['Terminate', 'Denied', 'Critical', 'Failure']);
      assert.ok(!('exit_code' in kill));
      assert.deepEqual([exit.activity_name, exit.action, exit.severity, exit.status, exit.exit_code], ['Terminate', 'Allowed', 'Informational', 'Success', 124]);
    });
    it('gives the kill alone when the node reported no exit code', () => {
      const out = events({ ...timedOut, outcome: { status: 'failure' } });
      assert.deepEqual(out.map((e) => [e.activity_name, e.severity]), [['Terminate', 'Critical']]);
    });
  });
  it('gives any other record the one event toOcsf gives it', () => {
    const input: AuditEventInput = { actor: { kind: 'agent', id: 'a' }, action: 'tool.call', resource: { kind: 'tool', id: 'search' }, decision: { effect: 'allow' } };
    const r = { seq: 1, hash: HASH, prev: HASH, event: normalizeEvent(input) };
    assert.deepEqual(toOcsfEvents(r), [toOcsf(r)]);
  });
});

// The attributes OCSF 1.8.0 defines for each class (with its profiles), and those it requires.
const BASE = ['action', 'action_id', 'activity_id', 'activity_name', 'actor', 'api', 'attacks', 'authorizations', 'category_name', 'category_uid', 'class_name', 'class_uid', 'cloud', 'confidence', 'confidence_id', 'confidence_score', 'count', 'device', 'disposition', 'disposition_id', 'duration', 'end_time', 'end_time_dt', 'enrichments', 'firewall_rule', 'is_alert', 'malware', 'malware_scan_info', 'message', 'metadata', 'observables', 'osint', 'policy', 'raw_data', 'raw_data_hash', 'raw_data_size', 'risk_details', 'risk_level', 'risk_level_id', 'risk_score', 'severity', 'severity_id', 'start_time', 'start_time_dt', 'status', 'status_code', 'status_detail', 'status_id', 'time', 'time_dt', 'timezone_offset', 'type_name', 'type_uid', 'unmapped'];
const ATTRIBUTES: Record<number, Set<string>> = {
  1007: new Set([...BASE, 'actual_permissions', 'ai_model', 'exit_code', 'injection_type', 'injection_type_id', 'launch_type', 'launch_type_id', 'message_context', 'module', 'process', 'requested_permissions']),
  4001: new Set([...BASE, 'app_name', 'app_protocol_name', 'connection_info', 'cumulative_traffic', 'dst_endpoint', 'is_src_dst_assignment_known', 'ja4_fingerprint_list', 'load_balancer', 'network_observation_point', 'observation_point', 'observation_point_id', 'packet_list', 'proxy', 'proxy_connection_info', 'proxy_endpoint', 'proxy_http_request', 'proxy_http_response', 'proxy_tls', 'proxy_traffic', 'src_endpoint', 'tls', 'traffic', 'url']),
  6003: new Set([...BASE, 'ai_model', 'dst_endpoint', 'http_request', 'http_response', 'message_context', 'resources', 'src_endpoint', 'trace']),
};
const REQUIRED_BASE = ['activity_id', 'category_uid', 'class_uid', 'metadata', 'severity_id', 'time', 'type_uid'];
const REQUIRED: Record<number, string[]> = { 1007: ['actor', 'device', 'process'], 4001: [], 6003: ['actor', 'api', 'src_endpoint'] };
const CAPTION = {
  action: { 0: 'Unknown', 1: 'Allowed', 2: 'Denied', 99: 'Other' },
  disposition: { 0: 'Unknown', 1: 'Allowed', 2: 'Blocked', 8: 'Approved', 14: 'Delayed' },
  severity: { 1: 'Informational', 2: 'Low', 3: 'Medium', 5: 'Critical' },
  status: { 0: 'Unknown', 1: 'Success', 2: 'Failure' },
} as Record<string, Record<number, string>>;

describe('every OCSF event a record gives', () => {
  const connection = fc.record({ host: fc.constantFrom('api.example.com', '10.0.0.7', '2001:db8::1'), port: fc.integer({ min: 1, max: 65535 }), address: fc.constantFrom(null, '93.184.215.14'), allowed: fc.boolean(), reason: fc.constantFrom(null, 'not allowed'), bytesSent: fc.nat(), bytesReceived: fc.nat() });
  const input = fc.record({
    action: fc.constantFrom('run.exec', 'run.exit', 'net.connect', 'net.refuse', 'node.invoke', 'node.invoke.decide', 'tool.call', 'approval.request'),
    id: fc.constantFrom('system.run', '/bin/sh', 'api.example.com:443'),
    effect: fc.option(fc.constantFrom('allow', 'deny', 'ask') as fc.Arbitrary<'allow' | 'deny' | 'ask'>, { nil: undefined }),
    policies: fc.option(fc.array(fc.constantFrom('git-read', POLICY), { maxLength: 2 }), { nil: undefined }),
    approval: fc.option(fc.constant('approval-1'), { nil: undefined }),
    status: fc.option(fc.constantFrom('success', 'failure', 'unknown') as fc.Arbitrary<'success' | 'failure' | 'unknown'>, { nil: undefined }),
    exitCode: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
    detail: fc.option(fc.constantFrom('stopped: timeout', 'not started: X', 'caller-left'), { nil: undefined }),
    argv: fc.option(fc.array(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
    durationMs: fc.option(fc.nat({ max: 100_000 }), { nil: undefined }),
    timedOut: fc.option(fc.boolean(), { nil: undefined }),
    connections: fc.option(fc.array(connection, { maxLength: 3 }), { nil: undefined }),
    human: fc.boolean(),
  });
  it('has only attributes its OCSF 1.8.0 class defines, the ones it requires, and a consistent action, disposition, severity and status', () => {
    fc.assert(
      fc.property(input, (r) => {
        const out = events({
          actor: r.human ? { kind: 'human', id: 'alice' } : { kind: 'agent', id: 'intake', onBehalfOf: { kind: 'human', id: 'alice' } },
          action: r.action,
          resource: { kind: r.id.includes(':') ? 'endpoint' : 'command', id: r.id },
          ...(r.effect ? { decision: { effect: r.effect, ...(r.policies ? { policies: r.policies } : {}), ...(r.approval ? { approval: r.approval } : {}) } } : {}),
          ...(r.status ? { outcome: { status: r.status, ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}), ...(r.detail ? { detail: r.detail } : {}) } } : {}),
          details: { command: 'system.run', ...(r.argv ? { argv: r.argv } : {}), ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}), ...(r.timedOut !== undefined ? { timedOut: r.timedOut } : {}), ...(r.connections ? { connections: r.connections } : {}) },
        });
        assert.ok(out.length >= 1);
        const uids = out.map((e) => (e.metadata as { uid: string }).uid);
        assert.equal(new Set(uids).size, uids.length, 'one uid an event');
        for (const e of out) {
          const cls = e.class_uid as number;
          const allowed = ATTRIBUTES[cls];
          assert.ok(allowed, `class ${cls}`);
          assert.deepEqual(Object.keys(e).filter((k) => !allowed.has(k)), [], `class ${cls}`);
          for (const k of [...REQUIRED_BASE, ...(REQUIRED[cls] ?? [])]) assert.ok(k in e, `${cls} requires ${k}`);
          if (cls === 4001) assert.ok('dst_endpoint' in e || 'src_endpoint' in e);
          for (const k of ['action', 'disposition', 'severity', 'status']) assert.equal(e[k], CAPTION[k]?.[e[`${k}_id`] as number], k);
          // As OpenShell pairs them: a denial is blocked, failed and at least Medium; an allowance is allowed or approved.
          if (e.action_id === 2) assert.deepEqual([e.disposition_id, e.status_id, (e.severity_id as number) >= 3], [2, 2, true]);
          if (e.action_id === 1) assert.ok(e.disposition_id === 1 || e.disposition_id === 8);
          if (e.disposition_id === 2) assert.equal(e.action_id, 2);
          // An exit code is a Terminate's, which OpenShell records as an allowed, successful exit.
          if ('exit_code' in e) assert.deepEqual([cls, e.activity_id, e.status_id, e.action_id], [1007, 2, 1, 1]);
          if ('launch_type_id' in e) assert.deepEqual([e.activity_id, e.action_id], [1, 1]);
          if (cls === 4001) assert.ok(!('authorizations' in (e.actor as object)) && 'firewall_rule' in e);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('a record whose details are shaped otherwise than Corral writes them', () => {
  const hostile = fc.oneof(fc.jsonValue(), fc.record({ toString: fc.jsonValue() }), fc.record({ toString: fc.jsonValue(), valueOf: fc.jsonValue() })) as fc.Arbitrary<JsonValue>;
  it('maps to OCSF events whatever JSON its argv, connections, limits, cwd and counts hold, and its command line is text (property) (regression: an argv word {"toString":1} ended corral audit export --format ocsf with a TypeError, exporting nothing after it)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('run.exec', 'node.invoke.decide', 'node.invoke.refuse', 'node.invoke', 'net.connect', 'tool.call'),
        fc.array(hostile, { minLength: 1, maxLength: 4 }),
        fc.dictionary(fc.constantFrom('connections', 'limitsHit', 'cwd', 'signal', 'durationMs', 'connectionCount', 'timedOut'), hostile),
        (action, argv, more) => {
          const out = events({
            actor: { kind: 'agent', id: 'intake' },
            action,
            resource: { kind: 'command', id: 'system.run' },
            decision: { effect: 'allow' },
            outcome: { status: 'success', exitCode: 0 },
            details: { command: 'system.run', argv, ...more },
          });
          for (const e of out) {
            const proc = (e.process ?? (e.actor as { process?: unknown }).process) as { name?: unknown; cmd_line?: unknown } | undefined;
            if (proc?.cmd_line !== undefined) assert.equal(typeof proc.cmd_line, 'string');
            if (proc?.name !== undefined) assert.equal(typeof proc.name, 'string');
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

