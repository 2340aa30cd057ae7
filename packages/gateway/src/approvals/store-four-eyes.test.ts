// Four eyes: whoever is accountable for a request never allows it. An
// agent's request is its owner's (the human named when the agent was made),
// so its owner may deny it but someone else must allow it.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openGatewayDb } from '../store/store.ts';
import { accountApprover, ApprovalStore, tokenApprover } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-approvals-four-eyes-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const approvals = new ApprovalStore(openGatewayDb(dir));
const owners: Record<string, string> = { 'invoice-bot': 'Alice@Example.com' };
const ownerOf = (agent: string) => owners[agent];
const botAsks = () => approvals.create({ digest: createHash('sha256').update(randomUUID()).digest('hex'), action: { principal: 'Agent::invoice-bot', argv: ['pay', '100'] }, quorum: 1 });

describe('when the approver owns the agent that asked', () => {
  it('refuses their allow with GATEWAY_APPROVAL_OWN_REQUEST, whatever the case of their address, signed in, under the gateway token or a system account; nothing counts', async () => {
    const a = botAsks();
    assert.throws(() => approvals.resolve(a.id, 'allow-once', 'alice@example.com', undefined, undefined, ownerOf), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
    assert.throws(() => approvals.resolve(a.id, 'allow-always', 'oidc:https://sso.example#1', undefined, 'ALICE@example.com', ownerOf), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
    await assert.rejects(approvals.resolveWhenFree(a.id, 'allow-once', tokenApprover('alice@example.com'), { ownerOf }), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
    await assert.rejects(approvals.resolveRecorded(a.id, 'allow-once', accountApprover('ops', 'alice@example.com'), async () => assert.fail('nothing is recorded'), { ownerOf }), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
    assert.deepEqual([approvals.get(a.id).status, approvals.get(a.id).approvers], ['pending', []]);
  });

  it('lets the owner deny it, and someone else allow it', () => {
    assert.equal(approvals.resolve(botAsks().id, 'deny', 'alice@example.com', undefined, undefined, ownerOf).status, 'denied');
    assert.equal(approvals.resolve(botAsks().id, 'allow-once', 'bob@example.com', undefined, undefined, ownerOf).status, 'allowed');
  });
  it('refuses it by the address a signed-in approver claims, verified or not, whatever its case, as the store decides too (regression: one named by issuer and subject, whose provider sent no email_verified, allowed it)', async () => {
    const a = botAsks();
    const sso = 'oidc:https://sso.example#7';
    await assert.rejects(approvals.resolveWhenFree(a.id, 'allow-once', sso, { authority: sso, claimed: 'ALICE@example.com', ownerOf }), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
    assert.deepEqual([approvals.get(a.id).status, approvals.get(a.id).approvers], ['pending', []]);
    assert.equal((await approvals.resolveWhenFree(a.id, 'allow-once', sso, { authority: sso, claimed: 'bob@example.com', ownerOf })).status, 'allowed', 'another address claimed refuses nothing');
  });
});

describe('when a human asked', () => {
  it('refuses an allow by the approver whose claimed address is that human, and lets someone else allow it', async () => {
    const asks = () => approvals.create({ digest: createHash('sha256').update(randomUUID()).digest('hex'), action: { principal: 'Human::carol@example.com', argv: ['pay', '5'] }, quorum: 1 });
    const sso = 'oidc:https://sso.example#8';
    const a = asks();
    await assert.rejects(approvals.resolveWhenFree(a.id, 'allow-once', sso, { authority: sso, claimed: 'carol@example.com' }), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
    assert.equal((await approvals.resolveWhenFree(a.id, 'allow-once', sso, { authority: sso, claimed: 'dave@example.com' })).status, 'allowed');
  });
});
