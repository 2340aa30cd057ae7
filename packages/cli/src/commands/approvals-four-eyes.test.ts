// corral approvals approve and four eyes: the owner of the agent that asked
// may deny its request, never allow it, whatever name --by gives.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { ApprovalStore, openGatewayDb } from '@corral/gateway';
import { Identity } from '@corral/identity';
import { corral, tempStateDir } from '../../test/corral.ts';

const state = tempStateDir();
after(() => rmSync(state, { recursive: true, force: true }));

function seed(): { first: string; second: string } {
  const identity = Identity.open(state);
  identity.agents.create({ name: 'invoice-bot', process: 'invoices', owner: 'alice@example.com' });
  identity.close();
  const db = openGatewayDb(state);
  try {
    const store = new ApprovalStore(db);
    const asks = (digit: string) => store.create({ digest: digit.repeat(64), action: { principal: 'Agent::invoice-bot', argv: ['pay', digit] }, quorum: 1 }).id;
    return { first: asks('1'), second: asks('2') };
  } finally {
    db.close();
  }
}

describe('corral approvals approve by the owner of the agent that asked', () => {
  const ids = seed();

  it('is refused with exit 1 and GATEWAY_APPROVAL_OWN_REQUEST, naming why, and the approval stays pending (regression: the owner allowed their own agent\'s request)', async () => {
    const result = await corral(['--state-dir', state, 'approvals', 'approve', ids.first, '--by', 'Alice@example.com']);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /the owner of Agent::invoice-bot may not allow its requests; someone else must approve it \[GATEWAY_APPROVAL_OWN_REQUEST\]/);
    const db = openGatewayDb(state);
    try {
      assert.equal(new ApprovalStore(db).get(ids.first).status, 'pending');
    } finally {
      db.close();
    }
  });

  it('lets the owner deny it, and someone else allow it', async () => {
    assert.equal((await corral(['--state-dir', state, 'approvals', 'deny', ids.second, '--by', 'alice@example.com'])).code, 0);
    const other = await corral(['--state-dir', state, 'approvals', 'approve', ids.first, '--by', 'bob@example.com', '--json']);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(JSON.parse(other.stdout).status, 'allowed');
  });
});
