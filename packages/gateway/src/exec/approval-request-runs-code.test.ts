// The audit record of an approval request says when the command runs code its
// argv does not show (`python3 -c …`): the approver was shown that warning
// (action.runsCode), and an auditor reading the log, or its OCSF export, sees
// it too.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openAuditReader, toAuditRecord, toOcsfEvents, type AuditRecord } from '@corral/audit';
import { Gateway } from '../gateway.ts';
import { GatewayClient } from '../index.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = `
@id("python-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"python3");
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
`;
const stateDir = policyStateDirs('approval-request-runs-code', POLICY);

/** Every record of the state directory's audit log, oldest first. */
async function records(state: string): Promise<AuditRecord[]> {
  const reader = await openAuditReader({ stateDir: state });
  const out: AuditRecord[] = [];
  try {
    const head = await reader.store.head();
    for await (const rows of reader.store.scan(0, head.size)) for (const r of rows) out.push(toAuditRecord(r));
  } finally {
    await reader.close();
  }
  return out;
}

describe('the approval.request record of a governed run whose policy asks', () => {
  let state: string;
  let gw: Gateway;
  let node: NodePeer;
  let operator: GatewayClient;
  before(async () => {
    state = stateDir();
    gw = await Gateway.start({ stateDir: state, token, port: 0 });
    node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0 } }));
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  });
  after(async () => {
    await operator?.close();
    await node?.close();
    await gw?.close();
  });

  /** Asks for `argv` (left pending: the caller gives up waiting at once) and gives the approval.request record made for it. */
  async function requested(argv: string[]): Promise<AuditRecord> {
    await assert.rejects(operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv }, timeoutMs: 50, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 }), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'APPROVAL_PENDING');
    const pending = gw.approvals.list({ status: 'pending' }).find((a) => JSON.stringify(a.action.argv) === JSON.stringify(argv));
    assert.ok(pending, 'an approval waits');
    const found = (await records(state)).filter((r) => r.event.action === 'approval.request' && r.event.resource.id === pending.id);
    assert.equal(found.length, 1);
    return found[0]!;
  }

  it("carries runsCode naming python3 and -c for python3 -c 'print(1)' (regression: the approver was warned, the log did not say so)", async () => {
    const record = await requested(['python3', '-c', 'print(1)']);
    const runsCode = record.event.details?.runsCode as { program?: unknown; via?: unknown; reason?: unknown } | undefined;
    assert.ok(runsCode, 'details.runsCode');
    assert.equal(runsCode.program, 'python3');
    assert.equal(runsCode.via, '-c');
    assert.equal(typeof runsCode.reason, 'string');
    const shown = gw.approvals.get(record.event.resource.id).action.runsCode;
    assert.deepEqual(runsCode, shown, 'what the approver was shown');
  });

  it('has no runsCode for a command whose argv shows what it does', async () => {
    const record = await requested(['printf', 'plain']);
    assert.equal(Object.hasOwn(record.event.details ?? {}, 'runsCode'), false);
  });

  it('is exported to OCSF as API Activity with runsCode in the Corral record it carries', async () => {
    const record = await requested(['python3', '-c', 'print(2)']);
    const events = toOcsfEvents(record);
    assert.equal(events.length, 1);
    const [event] = events as [Record<string, unknown>];
    assert.equal(event.class_uid, 6003);
    assert.equal(event.disposition, 'Delayed', 'the policy asked');
    const carried = (event.unmapped as { corral: { event: { action: string; details: { runsCode?: { program?: string; via?: string } } } } }).corral.event;
    assert.equal(carried.action, 'approval.request');
    assert.equal(carried.details.runsCode?.program, 'python3');
    assert.equal(carried.details.runsCode?.via, '-c');
  });
});
