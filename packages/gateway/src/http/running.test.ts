// The count of each agent's governed commands running now, read from the
// records the gateway appends: a run starts with its allow (or its approval)
// and ends with its `node.invoke` result.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEvent, AuditRecord } from '@corral/audit';
import { AuditFeed } from './feed.ts';
import { RunningCommands } from './running.ts';

const AGENT = { id: 'agt_1', name: 'invoice-bot' };
let seq = 0;
const record = (event: Omit<AuditEvent, 'v' | 'time'>): AuditRecord => ({ seq: seq++, event: { time: '2026-11-26T10:00:00.000Z', ...event } }) as unknown as AuditRecord;
const decide = (digest: string, effect: 'allow' | 'ask', command = 'system.run') =>
  record({ actor: { kind: 'agent', id: AGENT.id }, action: 'node.invoke.decide', resource: { kind: 'command', id: 'sleep' }, decision: { effect }, details: { digest, command } });
const result = (command: string) => record({ actor: { kind: 'agent', id: AGENT.id }, action: 'node.invoke', resource: { kind: 'command', id: command }, outcome: { status: 'success' } });

describe('running commands', () => {
  it('counts a run from its allow to its result', () => {
    const feed = new AuditFeed();
    const running = new RunningCommands(feed);
    feed.notify(decide('a'.repeat(64), 'allow'));
    assert.equal(running.count(AGENT), 1);
    feed.notify(result('system.run'));
    assert.equal(running.count(AGENT), 0);
  });

  it('keeps counting a long run while a read-only command of the same agent finishes (regression: its result, which no allow started, ended the run)', () => {
    const feed = new AuditFeed();
    const running = new RunningCommands(feed);
    feed.notify(decide('b'.repeat(64), 'allow'));
    feed.notify(result('system.which'));
    assert.equal(running.count(AGENT), 1, 'the long run still runs');
    feed.notify(result('system.run'));
    assert.equal(running.count(AGENT), 0);
  });

  it('starts a run that asked when its approval is granted, and ends it with its result', () => {
    const feed = new AuditFeed();
    const running = new RunningCommands(feed);
    const digest = 'c'.repeat(64);
    feed.notify(decide(digest, 'ask'));
    assert.equal(running.count(AGENT), 0);
    feed.notify(record({ actor: { kind: 'human', id: 'alice' }, action: 'approval.resolve', resource: { kind: 'approval', id: 'x' }, details: { digest, status: 'allowed' } }));
    assert.equal(running.count(AGENT), 1);
    feed.notify(result('system.run'));
    assert.equal(running.count(AGENT), 0);
  });

  it("counts an approved run once when it carries its own allow record naming the approval (regression: counted at the approval's record and again at the run's)", () => {
    const feed = new AuditFeed();
    const running = new RunningCommands(feed);
    const digest = 'd'.repeat(64);
    const approvedRun = () => record({ actor: { kind: 'agent', id: AGENT.id }, action: 'node.invoke.decide', resource: { kind: 'command', id: 'sleep' }, decision: { effect: 'allow', approval: 'x' }, details: { digest, command: 'system.run' } });
    feed.notify(decide(digest, 'ask'));
    feed.notify(record({ actor: { kind: 'human', id: 'alice' }, action: 'approval.resolve', resource: { kind: 'approval', id: 'x' }, details: { digest, status: 'allowed' } }));
    feed.notify(approvedRun());
    assert.equal(running.count(AGENT), 1);
    feed.notify(result('system.run'));
    assert.equal(running.count(AGENT), 0);
    // The approval's own record refused: the run's record is the only start.
    feed.notify(decide(digest, 'ask'));
    feed.notify(approvedRun());
    assert.equal(running.count(AGENT), 1);
  });
});
