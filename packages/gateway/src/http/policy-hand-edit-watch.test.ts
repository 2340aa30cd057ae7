// A running gateway takes up a hand edit of its policy directory as it is
// saved (it watches the folder that holds the set in use, and follows the
// link an activation swaps), not at the next unrelated reading of the set;
// an edit that does not validate leaves the set in use deciding, said once;
// the change is recorded in the audit log; closing the gateway ends the watch.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { governedGateway, refusedWith, type GovernedGateway } from '../../test/governed-gateway.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { until } from '../../../../scripts/testing/until.ts';
import { auditEvents } from '../../../../scripts/testing/audit-events.ts';
import { hashFiles, PolicyControl, type PolicyLogEntry } from './policy-control.ts';
import { ApiClient, TEST_PASSWORD } from './testing.ts';
import type { GatewayLogLine } from '../gateway.ts';

const PERMIT = '@id("ls") permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const FORBID = '@id("ls-withdrawn") forbid (principal, action == Action::"system.run", resource == Command::"ls");\n';
const BROKEN = 'permit (principal, action, resource';

const stateDir = policyStateDirs('policy-watch', { 'run.cedar': PERMIT });

/** A gateway on a fresh state directory whose run.cedar permits ls, and what its log was told of its policy set. */
async function gateway(): Promise<{ t: GovernedGateway; logged: PolicyLogEntry[] }> {
  const logged: PolicyLogEntry[] = [];
  const log = (line: GatewayLogLine) => void (line.event.startsWith('policy-') && logged.push(line as PolicyLogEntry));
  const t = await governedGateway({ state: stateDir(), gateway: { log } });
  return { t, logged };
}

/**
 * `ask`'s last answer, for until, which asks this every 10 ms: `ask` is
 * called again whenever its last call has settled (a rejection answers false).
 */
function lastAnswer(ask: () => Promise<boolean>): () => boolean {
  let answer = false;
  let asking = false;
  return () => {
    if (!asking) {
      asking = true;
      ask()
        .then(
          (value) => (answer = value),
          () => (answer = false),
        )
        .finally(() => (asking = false));
    }
    return answer;
  };
}

/** Whether a run of ls is denied by the set in force. */
const lsDenied = (t: GovernedGateway) => lastAnswer(() => t.run(['ls']).then(() => false, (error) => refusedWith('SYSTEM_RUN_DENIED')(error)));

/** The hand edits recorded in the state directory's audit log, as policy.activate records: the hash of each set adopted. */
async function editsRecorded(state: string): Promise<string[]> {
  return (await auditEvents(state)).filter((e) => e.action === 'policy.activate' && (e.details as { editedByHand?: boolean } | undefined)?.editedByHand === true).map((e) => e.resource.id);
}

/** Waits until the audit log holds a record of a hand edit, then answers every one it holds. */
async function recordedEdits(state: string): Promise<string[]> {
  await until('the edit is recorded in the audit log', lastAnswer(async () => (await editsRecorded(state)).length > 0), 5_000);
  return editsRecorded(state);
}

/** How many inotify watches this process holds, over every inotify instance it has open. */
function inotifyWatches(): number {
  let watches = 0;
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    try {
      watches += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((line) => line.startsWith('inotify wd:')).length;
    } catch {
      // An fd closed meanwhile.
    }
  }
  return watches;
}

describe('a running gateway whose policy directory is edited by hand', () => {
  it('decides with the edited run.cedar shortly after it is saved, and records the change in the audit log with the new hash', async () => {
    const { t } = await gateway();
    try {
      await t.run(['ls']);
      writeFileSync(join(t.policies, 'run.cedar'), `${PERMIT}${FORBID}`);
      await until('a run of ls is denied by the edited set', lsDenied(t), 5_000);
      assert.deepEqual(await recordedEdits(t.state), [hashFiles([{ name: 'run.cedar', text: `${PERMIT}${FORBID}` }])]);
    } finally {
      await t.close();
    }
  });

  it('takes up an editor-style save (a temporary file written, then renamed over run.cedar) once', async () => {
    const { t, logged } = await gateway();
    try {
      await t.run(['ls']);
      const temp = join(t.policies, '.run.cedar.swp');
      writeFileSync(temp, PERMIT);
      writeFileSync(temp, FORBID, { flag: 'a' });
      renameSync(temp, join(t.policies, 'run.cedar'));
      await until('a run of ls is denied by the saved set', lsDenied(t), 5_000);
      assert.deepEqual(await recordedEdits(t.state), [hashFiles([{ name: 'run.cedar', text: `${PERMIT}${FORBID}` }])]);
      assert.deepEqual(logged, []);
    } finally {
      await t.close();
    }
  });

  it('keeps deciding with the set in use when the edit does not validate, and tells its log once', async () => {
    const { t, logged } = await gateway();
    try {
      await t.run(['ls']);
      writeFileSync(join(t.policies, 'run.cedar'), `${PERMIT}${BROKEN}`);
      await until('the log is told the edit was refused', () => logged.length > 0, 5_000);
      await t.run(['ls']);
      assert.deepEqual(logged.map((e) => [e.event, e.code]), [['policy-edit-refused', 'POLICY_SET_INVALID']]);
      assert.deepEqual(await editsRecorded(t.state), []);
    } finally {
      await t.close();
    }
  });

  it('takes up a hand edit of the version an activation through the API put in force (the watch follows the link it swapped)', async () => {
    const { t } = await gateway();
    try {
      await t.gw.identity.localUsers.create('root', TEST_PASSWORD, ['admin']);
      const admin = new ApiClient(t.gw.httpUrl);
      assert.equal((await admin.signIn('root')).status, 200);
      const { hash } = (await admin.get('/api/policies')).body;
      const activated = await admin.post('/api/policies/activate', { files: [{ name: 'run.cedar', text: `${PERMIT}// activated\n` }], baseHash: hash });
      assert.equal(activated.status, 200, JSON.stringify(activated.body));
      await t.run(['ls']);
      writeFileSync(join(t.policies, 'run.cedar'), `${PERMIT}// activated\n${FORBID}`);
      await until('a run of ls is denied by the edited version', lsDenied(t), 5_000);
    } finally {
      await t.close();
    }
  });

  it('holds no watch of the directory once it is closed', async () => {
    const before = inotifyWatches();
    const { t } = await gateway();
    const watching = inotifyWatches();
    await t.close();
    assert.ok(watching > before, `${watching} inotify watches while it ran, ${before} before`);
    assert.equal(inotifyWatches(), before);
  });
});

describe('a policy directory whose watch cannot be set up', () => {
  it('tells the log once, and takes up a hand edit when the set is next read, as without a watch', () => {
    // Its parent not there yet: there is nothing to watch.
    const parent = join(stateDir(), 'not-yet');
    const logged: PolicyLogEntry[] = [];
    const control = PolicyControl.open(join(parent, 'policies'), { log: (e) => logged.push(e) });
    control.watch();
    assert.deepEqual(logged.map((e) => [e.event, e.code]), [['policy-watch-failed', 'ENOENT']]);
    mkdirSync(join(parent, 'policies'), { recursive: true });
    writeFileSync(join(parent, 'policies', 'run.cedar'), PERMIT);
    assert.equal(control.refresh().files[0]?.text, PERMIT);
    control.close();
    assert.equal(logged.length, 1);
  });
});
