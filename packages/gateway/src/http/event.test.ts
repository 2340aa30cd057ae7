// How an audit record reads in the activity feed and the audit explorer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEvent, AuditRecord } from '@corral/audit';
import { toEvent } from './event.ts';

function record(event: Partial<AuditEvent>): AuditRecord {
  const full = { v: 1, time: '2026-11-26T00:00:00.000Z', actor: { kind: 'agent', id: 'a1' }, action: 'node.invoke.decide', resource: { kind: 'command', id: 'printf' }, ...event } as AuditEvent;
  return { seq: 7, prev: '0'.repeat(64), hash: '1'.repeat(64), event: full, canonical: '' };
}

describe('an audit record summarised for people', () => {
  it("quotes each argument of a command as a shell would need it, so that printf 'a b' and printf a b never read the same (regression: both read printf a b)", () => {
    const spaced = toEvent(record({ details: { argv: ['printf', 'a b'] } }), new Map([['a1', 'invoice-bot']])).summary;
    const split = toEvent(record({ details: { argv: ['printf', 'a', 'b'] } })).summary;
    assert.equal(spaced, "agent invoice-bot node.invoke.decide printf 'a b'");
    assert.equal(split, 'agent a1 node.invoke.decide printf a b');
    assert.equal(toEvent(record({ details: { argv: ['sh', '-c', "echo 'hi'; ls"] } })).summary, `agent a1 node.invoke.decide sh -c 'echo '\\''hi'\\''; ls'`);
  });

  it('marks a summary it cut short with …, so the end of a long command line never looks like all of it (regression: cut at 300 characters without a mark, `… && rm -rf ~` hidden)', () => {
    const long = toEvent(record({ details: { argv: ['sh', '-c', `${'echo fine; '.repeat(40)}rm -rf ~`] } })).summary;
    assert.equal(long.length, 300);
    assert.ok(long.endsWith('…'), long.slice(-20));
    const short = toEvent(record({ details: { argv: ['true'] } })).summary;
    assert.ok(!short.endsWith('…'));
    // Not inside a surrogate pair: the last character before the mark is whole.
    const emoji = toEvent(record({ details: { argv: ['printf', '😀'.repeat(200)] } })).summary;
    assert.ok(emoji.endsWith('…') && emoji.slice(0, -1).isWellFormed());
  });
});
