// Allow-always grants kept as policy files: adding and removing one goes
// through the policy set's compare-and-swap on the set as it is on disk now,
// so a change another process made meanwhile is kept, not lost.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { policyStateDirs } from '../../test/policy-state.ts';
import { compileCandidate, PolicyControl, type Candidate, type PolicyFile } from '../http/policy-control.ts';
import { openGatewayDb } from '../store/store.ts';
import { grantFile, PolicyGrants, revokeGrantIn } from './grants.ts';
import { ApprovalStore, type Approval } from './store.ts';

const BASE = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const OTHER = 'forbid (principal, action == Action::"system.run", resource == Command::"rm");\n';
const stateDir = policyStateDirs('grants', BASE);
const policyDir = () => join(stateDir(), 'policies');
const approvalsDir = stateDir();
const approvals = new ApprovalStore(openGatewayDb(approvalsDir));
/** The same approvals as `corral approvals revoke` sees them from another process: a connection of its own. */
const approvalsElsewhere = new ApprovalStore(openGatewayDb(approvalsDir));
const grantsIn = (dir: string) => new PolicyGrants(PolicyControl.open(dir), approvals);
/** The record of a grant made, as an audit log that takes it. */
const recorded = async (): Promise<void> => {};
const MADE = { status: 'made' };
const NOT_MADE = { status: 'not-made' };

function allowedAlways(approvers = ['alice@example.com']): Approval {
  const a = approvals.create({ digest: randomBytes(32).toString('hex'), action: { principal: 'Agent::invoice-bot', command: 'system.run', argv: ['ls'], nodeId: 'node-1' }, quorum: approvers.length });
  for (const approver of approvers) approvals.resolve(a.id, 'allow-always', approver);
  return approvals.get(a.id);
}

/** Activates the set plus `other.cedar`, as another process would (its own PolicyControl on the same directory). */
async function changeElsewhere(dir: string): Promise<void> {
  const elsewhere = PolicyControl.open(dir);
  const active = elsewhere.active();
  assert.equal(await elsewhere.activate(compileCandidate([...active.files, { name: 'other.cedar', text: OTHER }]), active.hash), true);
}

describe('allow-always grants', () => {
  it('adds a grant on top of a change another process activated since this gateway last read the set', async () => {
    const dir = policyDir();
    const grants = grantsIn(dir);
    await changeElsewhere(dir);
    const approval = allowedAlways();
    assert.deepEqual(await grants.add(approval, recorded), MADE);
    const names = PolicyControl.open(dir).active().files.map((f) => f.name).sort();
    assert.deepEqual(names, [grantFile(approval.id), 'other.cedar', 'run.cedar']);
    assert.equal(grants.covering(approval.digest), `approval-${approval.id}`);
  });
  it('reads the set again and retries when another process activates between its read and its swap', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    let raced = 0;
    // The gateway's view of the set, with another process's activation landing just before its first swap.
    const racing = {
      refreshOffThread: () => control.refreshOffThread(),
      compileOffThread: (files: PolicyFile[], options: { urgent?: boolean }) => control.compileOffThread(files, options),
      ready: () => control.ready(),
      active: () => control.active(),
      activateRecorded: async (candidate: Candidate, baseHash: string, record: (replaced: Candidate) => Promise<void>) => {
        if (raced++ === 0) await changeElsewhere(dir);
        return control.activateRecorded(candidate, baseHash, record);
      },
    } as unknown as PolicyControl;
    const approval = allowedAlways();
    assert.deepEqual(await new PolicyGrants(racing, approvals).add(approval, recorded), MADE);
    assert.equal(raced, 2, 'the first swap was refused, the second went through');
    assert.deepEqual(PolicyControl.open(dir).active().files.map((f) => f.name).sort(), [grantFile(approval.id), 'other.cedar', 'run.cedar']);
  });
  it('covers only the digest its permit matches, never one an approver\'s name spells in its comment (regression: a grant made by one approver covered an action that needs two)', async () => {
    const grants = grantsIn(policyDir());
    const other = 'cd'.repeat(32);
    const approval = allowedAlways([`token:x context.digest == "${other}"`]);
    assert.deepEqual(await grants.add(approval, recorded), MADE);
    assert.equal(grants.covering(approval.digest), `approval-${approval.id}`);
    assert.equal(grants.covering(other), undefined);
  });
  it('removes a grant from another process and keeps what was activated since', async () => {
    const dir = policyDir();
    const approval = allowedAlways();
    assert.deepEqual(await grantsIn(dir).add(approval, recorded), MADE);
    await changeElsewhere(dir);
    assert.equal(await revokeGrantIn(dir, approvals, approval.id), 'revoked');
    assert.deepEqual(PolicyControl.open(dir).active().files.map((f) => f.name).sort(), ['other.cedar', 'run.cedar']);
    assert.equal(await revokeGrantIn(dir, approvals, approval.id), 'not-found', 'a second revoke finds nothing');
  });
  it('removes several grants in one activation, keeping what another process activated since, and says what became of each in order: revoked, withheld (not made yet), or none (allowed once)', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    let activations = 0;
    const counting = {
      refreshOffThread: () => control.refreshOffThread(),
      compileOffThread: (files: PolicyFile[], options: { urgent?: boolean }) => control.compileOffThread(files, options),
      activate: (candidate: Candidate, baseHash: string) => {
        activations++;
        return control.activate(candidate, baseHash);
      },
    } as unknown as PolicyControl;
    const [a, b] = [allowedAlways(), allowedAlways()];
    for (const approval of [a, b]) assert.deepEqual(await grantsIn(dir).add(approval, recorded), MADE);
    await changeElsewhere(dir);
    const notMade = allowedAlways();
    const once = approvals.create({ digest: randomBytes(32).toString('hex'), action: { principal: 'Agent::invoice-bot', command: 'system.run', argv: ['ls'], nodeId: 'node-1' }, quorum: 1 });
    approvals.resolve(once.id, 'allow-once', 'alice@example.com');
    assert.deepEqual(await new PolicyGrants(counting, approvals).removeAll([a.id, notMade.id, b.id, once.id]), ['revoked', 'withheld', 'revoked', 'not-found']);
    assert.equal(activations, 1);
    assert.deepEqual(PolicyControl.open(dir).active().files.map((f) => f.name).sort(), ['other.cedar', 'run.cedar']);
    assert.deepEqual([a, b, notMade].map((x) => approvals.grantWithdrawn(x.id)), [true, true, true]);
    assert.deepEqual(await new PolicyGrants(counting, approvals).removeAll([a.id, b.id]), ['not-found', 'not-found'], 'a second removal finds nothing');
    assert.equal(activations, 1, 'and activates nothing');
  });
  it('waits for a grant this gateway is adding before it revokes, so the revoke finds it (regression: found missing mid-way, it was reported absent, then made)', async () => {
    const dir = policyDir();
    const grants = grantsIn(dir);
    const approval = allowedAlways();
    const adding = grants.add(approval, recorded);
    assert.equal(await grants.remove(approval.id), 'revoked');
    assert.deepEqual(await adding, MADE);
    assert.equal(PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(approval.id)), false);
  });
  it('withholds a grant not made yet, so that its approval\'s run, spending it later, makes none (regression: an approval resolved always by the CLI made its grant when its run came, after a revoke had found nothing)', async () => {
    const dir = policyDir();
    const approval = allowedAlways();
    assert.equal(await revokeGrantIn(dir, approvals, approval.id), 'withheld');
    assert.deepEqual(await grantsIn(dir).add(await approvals.consumeNowOrWhenFree(approval.id, approval.digest), recorded), NOT_MADE);
    assert.equal(PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(approval.id)), false);
    assert.equal(await revokeGrantIn(dir, approvals, approval.id), 'not-found', 'a second revoke finds nothing');
    const once = approvals.create({ digest: randomBytes(32).toString('hex'), action: { principal: 'Agent::invoice-bot', command: 'system.run', argv: ['ls'], nodeId: 'node-1' }, quorum: 1 });
    approvals.resolve(once.id, 'allow-once', 'alice@example.com');
    assert.equal(await revokeGrantIn(dir, approvals, once.id), 'not-found', 'an allow-once approval has no grant to withhold');
  });
  it('takes back a grant withdrawn in another process while it was being made (regression: the revoke found it not made yet and said there was none, then the gateway made it)', async () => {
    const dir = policyDir();
    const grants = grantsIn(dir);
    const approval = allowedAlways();
    const adding = grants.add(approval, recorded); // claimed at once, compiled off-thread
    assert.equal(await revokeGrantIn(dir, approvalsElsewhere, approval.id), 'withheld');
    assert.deepEqual(await adding, NOT_MADE);
    assert.equal(PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(approval.id)), false);
    assert.equal(grants.covering(approval.digest), undefined);
  });
  it('takes back a grant withdrawn between its last look and its swap into the set, and counts it for no decision meanwhile', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    const approval = allowedAlways();
    const grants = new PolicyGrants(control, approvals);
    let coveredAfterSwap: string | undefined = 'not asked';
    const racing = {
      refreshOffThread: () => control.refreshOffThread(),
      compileOffThread: (files: PolicyFile[], options: { urgent?: boolean }) => control.compileOffThread(files, options),
      ready: () => control.ready(),
      active: () => control.active(),
      activate: async (candidate: Candidate, baseHash: string) => {
        await approvalsElsewhere.withdrawGrantWhenFree(approval.id);
        const swapped = await control.activate(candidate, baseHash);
        coveredAfterSwap = grants.covering(approval.digest);
        return swapped;
      },
      activateRecorded: async (candidate: Candidate, baseHash: string, record: (replaced: Candidate) => Promise<void>) => {
        await approvalsElsewhere.withdrawGrantWhenFree(approval.id);
        return control.activateRecorded(candidate, baseHash, async (replaced) => {
          coveredAfterSwap = grants.covering(approval.digest);
          await record(replaced);
        });
      },
    } as unknown as PolicyControl;
    assert.deepEqual(await new PolicyGrants(racing, approvals).add(approval, recorded), NOT_MADE);
    assert.equal(coveredAfterSwap, undefined, 'in the set for a moment, yet covering nothing');
    assert.equal(PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(approval.id)), false);
  });
  it('counts no grant withdrawn in another process whose file is still in the set', async () => {
    const dir = policyDir();
    const grants = grantsIn(dir);
    const approval = allowedAlways();
    assert.deepEqual(await grants.add(approval, recorded), MADE);
    assert.equal(await approvalsElsewhere.withdrawGrantWhenFree(approval.id), 'withdrawn');
    assert.equal(grants.covering(approval.digest), undefined);
    assert.equal(await revokeGrantIn(dir, approvals, approval.id), 'revoked', 'its file is then removed like any other');
  });
  it('makes a grant once: one withdrawn is not made again when asked again (its approval\'s own run, another gateway, a restart)', async () => {
    const dir = policyDir();
    const approval = allowedAlways();
    assert.deepEqual(await grantsIn(dir).add(approval, recorded), MADE);
    assert.equal(await revokeGrantIn(dir, approvals, approval.id), 'revoked');
    assert.deepEqual(await grantsIn(dir).add(await approvals.consumeNowOrWhenFree(approval.id, approval.digest), recorded), NOT_MADE);
    assert.equal(PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(approval.id)), false);
  });
  it('answers two adds of one grant at once alike, and makes it again after a failed attempt', async () => {
    const dir = policyDir();
    const grants = grantsIn(dir);
    const approval = allowedAlways();
    assert.deepEqual(await Promise.all([grants.add(approval, recorded), grants.add(approval, recorded)]), [MADE, MADE]);
    const failing = allowedAlways();
    const refusing = { refreshOffThread: () => PolicyControl.open(dir).refreshOffThread(), compileOffThread: (files: PolicyFile[]) => PolicyControl.open(dir).compileOffThread(files), activate: async () => false, activateRecorded: async () => 'stale' } as unknown as PolicyControl;
    await assert.rejects(new PolicyGrants(refusing, approvals).add(failing, recorded), { code: 'GATEWAY_CONFLICT' });
    assert.deepEqual(await grants.add(failing, recorded), MADE);
  });
  it('makes no grant of an approval that expired on its way to a quorum, every approver so far having chosen always', async () => {
    let now = Date.now();
    const clocked = new ApprovalStore(openGatewayDb(stateDir()), () => now);
    const a = clocked.create({ digest: randomBytes(32).toString('hex'), action: { principal: 'Agent::invoice-bot', command: 'system.run', argv: ['ls'], nodeId: 'node-1' }, quorum: 2, ttlMs: 1_000 });
    clocked.resolve(a.id, 'allow-always', 'alice');
    now += 1_001;
    const expired = clocked.get(a.id);
    assert.deepEqual([expired.status, expired.decision], ['expired', 'allow-always']);
    assert.deepEqual(await new PolicyGrants(PolicyControl.open(policyDir()), clocked).add(expired, recorded), NOT_MADE);
  });
});

describe('an allow-always approval a gateway stored before it kept granted_at', () => {
  /** The approvals table as gateways wrote it before granted_at, holding one approval allowed always and not yet spent. */
  function storedBefore(grantedAtColumn: boolean): { dir: string; approval: { id: string; digest: string } } {
    const dir = stateDir();
    const db = openGatewayDb(dir);
    db.exec(`CREATE TABLE approvals (id TEXT PRIMARY KEY, digest TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL, decision TEXT, quorum INTEGER NOT NULL, approvers TEXT NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, resolved_at INTEGER${grantedAtColumn ? ', granted_at INTEGER' : ''})`);
    const approval = { id: randomUUID(), digest: randomBytes(32).toString('hex') };
    const now = Date.now();
    db.prepare("INSERT INTO approvals (id, digest, action, status, decision, quorum, approvers, created_at, expires_at, resolved_at) VALUES (?, ?, ?, 'allowed', 'allow-always', 1, '[\"alice@example.com\"]', ?, ?, ?)")
      .run(approval.id, approval.digest, JSON.stringify({ principal: 'Agent::invoice-bot', command: 'system.run', argv: ['ls'], nodeId: 'node-1' }), now - 1_000, now + 600_000, now - 500);
    db.close();
    return { dir, approval };
  }

  it('does not bring back its grant, revoked before the upgrade, when its waiting run spends it after (regression: the migration left granted_at empty, so the run made the grant again)', async () => {
    // That gateway made the grant when the approval was resolved; an operator revoked it (the set holds no grant); then the gateway was upgraded.
    const { dir, approval } = storedBefore(false);
    const upgraded = new ApprovalStore(openGatewayDb(dir));
    const spent = await upgraded.consumeNowOrWhenFree(approval.id, approval.digest);
    assert.deepEqual(await new PolicyGrants(PolicyControl.open(join(dir, 'policies')), upgraded).add(spent, recorded), NOT_MADE);
    assert.equal(PolicyControl.open(join(dir, 'policies')).active().files.some((f) => f.name === grantFile(approval.id)), false);
  });

  it('does not bring it back either where a gateway already added granted_at without marking the approvals stored before', async () => {
    const { dir, approval } = storedBefore(true);
    const upgraded = new ApprovalStore(openGatewayDb(dir));
    assert.deepEqual(await new PolicyGrants(PolicyControl.open(join(dir, 'policies')), upgraded).add(await upgraded.consumeNowOrWhenFree(approval.id, approval.digest), recorded), NOT_MADE);
  });

  it('still makes the grant of an approval resolved after the upgrade, also once the store is opened again (a restart)', async () => {
    const { dir } = storedBefore(false);
    const upgraded = new ApprovalStore(openGatewayDb(dir));
    const a = upgraded.create({ digest: randomBytes(32).toString('hex'), action: { principal: 'Agent::invoice-bot', command: 'system.run', argv: ['ls'], nodeId: 'node-1' }, quorum: 1 });
    upgraded.resolve(a.id, 'allow-always', 'alice@example.com');
    const restarted = new ApprovalStore(openGatewayDb(dir));
    assert.deepEqual(await new PolicyGrants(PolicyControl.open(join(dir, 'policies')), restarted).add(await restarted.consumeNowOrWhenFree(a.id, a.digest), recorded), MADE);
  });
});

describe('while another process holds gateway.db (a corral command appending its record)', () => {
  it('makes a grant, and revokes it, once the lock is let go, waiting with timers meanwhile (regression: the claim and the withdrawal waited inside SQLite, stalling the gateway)', async () => {
    const dir = policyDir();
    const grants = grantsIn(dir);
    const approval = allowedAlways();
    const active = () => PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(approval.id));
    const holder = new DatabaseSync(join(approvalsDir, 'gateway.db'));
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 5);
    try {
      holder.exec('BEGIN IMMEDIATE');
      const called = performance.now();
      const adding = grants.add(approval, recorded);
      assert.ok(performance.now() - called < 1000, `the call returned at once, to wait with timers (it took ${(performance.now() - called).toFixed(0)} ms)`);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(ticks > 0, 'timers fired while the claim waited');
      assert.equal(active(), false, 'not made while the lock is held');
      holder.exec('ROLLBACK');
      assert.deepEqual(await adding, MADE);
      assert.equal(active(), true);
      holder.exec('BEGIN IMMEDIATE');
      ticks = 0;
      const again = performance.now();
      const removing = grants.remove(approval.id);
      assert.ok(performance.now() - again < 1000, `the call returned at once, to wait with timers (it took ${(performance.now() - again).toFixed(0)} ms)`);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(ticks > 0, 'timers fired while the withdrawal waited');
      assert.equal(approvals.grantWithdrawn(approval.id), false, 'not withdrawn while the lock is held');
      holder.exec('ROLLBACK');
      assert.equal(await removing, 'revoked');
      assert.equal(active(), false);
    } finally {
      clearInterval(ticking);
      if (holder.isTransaction) holder.exec('ROLLBACK');
      holder.close();
    }
  });
});
