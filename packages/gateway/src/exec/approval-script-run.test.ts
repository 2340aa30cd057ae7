// A run of a script from a file the agent may change (`python3 build.py`,
// `./deploy.sh`), through a real gateway: its approver is told so, may allow
// it once, and cannot make it a standing grant, which would cover whatever
// the file holds at each later run.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { governedGateway, refusedWith, type GovernedGateway } from '../../test/governed-gateway.ts';

const ALICE = { channel: 'corral', accountId: 'x', senderId: 'alice@example.com' };
const ASKS = '@id("asks") @approval("required") permit (principal, action == Action::"system.run", resource);\n';

describe('a governed run of a script from a file that may change', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ policy: ASKS, gateway: { approvalPollMs: 20 } });
  });
  after(() => t?.close());

  /** Asks for `argv` and gives the id of the approval it waits for. */
  async function asked(argv: string[]): Promise<string> {
    await assert.rejects(t.run(argv, 100), refusedWith('APPROVAL_PENDING'));
    const pending = t.pendingFor(argv);
    assert.ok(pending, 'an approval waits');
    return pending.id;
  }

  const grantFiles = () => (existsSync(join(t.policies, 'grants')) ? readdirSync(join(t.policies, 'grants')) : []).filter((name) => name.startsWith('approval-'));

  for (const [argv, via] of [[['python3', 'build.py'], 'script'], [['./deploy.sh', '--prod'], 'path'], [['make', 'deploy'], 'recipes']] as const) {
    it(`refuses allow-always for ${argv.join(' ')} over the protocol, allows it once, and asks again the next time (regression: allow-always made a standing grant covering whatever the file held at each later run)`, async () => {
      const id = await asked([...argv]);
      assert.equal((t.gw.approvals.get(id).action.runsCode as { via?: string } | null)?.via, via, 'the approver is told');
      await assert.rejects(t.operator.request('exec.approval.resolve', { id, decision: 'allow-always', reviewer: ALICE }), (e: { wire?: { code?: string; message?: string } }) => e.wire?.code === 'INVALID_REQUEST' && /^allow-always is refused/.test(e.wire.message ?? ''));
      assert.equal(t.gw.approvals.get(id).status, 'pending', 'nothing counted');
      await t.operator.request('exec.approval.resolve', { id, decision: 'allow-once', reviewer: ALICE });
      await t.run([...argv]);
      assert.deepEqual(grantFiles(), [], 'no standing grant');
      await assert.rejects(t.run([...argv], 100), refusedWith('APPROVAL_PENDING'));
    });
  }

  it('still makes a standing grant for a run of a system program whose argv shows what it does (make --version)', async () => {
    const id = await asked(['make', '--version']);
    await t.operator.request('exec.approval.resolve', { id, decision: 'allow-always', reviewer: ALICE });
    await t.run(['make', '--version']);
    assert.equal(grantFiles().length, 1, 'its standing grant');
    await t.run(['make', '--version']);
  });
});
