import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
    assert.deepEqual([e.action_id, e.action, e.disposition_id, e.disposition], [2, 'Denied', 2, 'Blocked']);
    assert.deepEqual([e.severity_id, e.severity, e.status_id, e.status], [3, 'Medium', 2, 'Failure']);
    assert.deepEqual(e.dst_endpoint, { hostname: 'httpbin.org', port: 443 });
    const to = (id: string) => ocsf({ ...sampleEvent(1), action: 'net.connect', resource: { kind: 'endpoint', id } }).dst_endpoint;
    assert.deepEqual([to('10.0.0.7:8443'), to('[2001:db8::1]:443'), to('example.com')], [{ ip: '10.0.0.7', port: 8443 }, { ip: '2001:db8::1', port: 443 }, { hostname: 'example.com' }]);
    assert.equal(e.status_detail, 'no matching policy');
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
