// The audit record of an approval request says when the command runs code its
// argv does not show (`python3 -c …`): the approver was shown that warning
// (action.runsCode), and an auditor reading the log, or its OCSF export, sees
// it too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toOcsfEvents, type AuditRecord } from '@corral/audit';
import { auditRecords } from '../../../../scripts/testing/audit-events.ts';
import { governedGateway, refusedWith, type GovernedGateway } from '../../test/governed-gateway.ts';

const POLICY = `
@id("python-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"python3");
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
`;

describe('the approval.request record of a governed run whose policy asks', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ policy: POLICY });
  });
  after(() => t?.close());

  /** Asks for `argv` (left pending: the caller gives up waiting at once) and gives the approval.request record made for it. */
  async function requested(argv: string[]): Promise<AuditRecord> {
    await assert.rejects(t.run(argv, 50, 30_000), refusedWith('APPROVAL_PENDING'));
    const pending = t.pendingFor(argv);
    assert.ok(pending, 'an approval waits');
    const found = (await auditRecords(t.state)).filter((r) => r.event.action === 'approval.request' && r.event.resource.id === pending.id);
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
    const shown = t.gw.approvals.get(record.event.resource.id).action.runsCode;
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
