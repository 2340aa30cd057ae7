// A withdrawn allow-always grant allows nothing, even while its file is
// still in the policy set (withdrawn by another process, which takes the file
// out a moment later, or whose removal failed and left it): not on its own,
// and not beside another permit that allows another command of the same run.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../client/client.ts';
import { Gateway } from '../gateway.ts';
import { compileCandidate, PolicyControl } from '../http/policy-control.ts';
import { grantFile } from '../approvals/grants.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';

const token = randomBytes(24).toString('base64url');
const LS = '@id("ls") permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const PRINTF_ASKS = '@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");\n';
const stateDir = policyStateDirs('grant-withdrawn-run', LS + PRINTF_ASKS);
const refusedWith = (code: string) => (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === code;

describe('a withdrawn allow-always grant whose file is still in the set', () => {
  let state: string;
  let gw: Gateway;
  let node: NodePeer;
  let operator: GatewayClient;
  before(async () => {
    state = stateDir();
    gw = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 20 });
    node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0 } }));
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  });
  after(async () => {
    await operator.close();
    await node.close();
    await gw.close();
  });
  const run = (argv: string[], timeoutMs = 10_000) => operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv }, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 });

  it('allows no run it was the only permit of a command of, however other commands of the run are allowed (regression: an ls beside it kept the withdrawn grant allowing the run)', async () => {
    const argv = ['sh', '-c', 'ls; printf granted'];
    await assert.rejects(run(argv, 100), refusedWith('APPROVAL_PENDING'));
    const id = gw.approvals.list({ status: 'pending' })[0]!.id;
    await gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
    await run(argv);
    // Printf no longer asks (nothing permits it): the standing grant alone allows it in this run, as intended.
    const policies = join(state, 'policies');
    const elsewhere = PolicyControl.open(policies);
    const active = elsewhere.active();
    assert.ok(active.files.some((f) => f.name === grantFile(id)));
    assert.equal(await elsewhere.activate(compileCandidate(active.files.map((f) => (f.name === 'run.cedar' ? { ...f, text: LS } : f))), active.hash), true);
    await run(argv);
    // Withdrawn in gateway.db, as `corral approvals revoke` does before it takes the file out of the set.
    assert.equal(await gw.approvals.withdrawGrantWhenFree(id), 'withdrawn');
    const sent = node.received.length;
    await assert.rejects(run(argv), refusedWith('SYSTEM_RUN_DENIED'));
    assert.equal(node.received.length, sent, 'nothing reached the node');
    await assert.rejects(run(['printf', 'granted']), refusedWith('SYSTEM_RUN_DENIED'));
    await run(['ls']);
  });
});
