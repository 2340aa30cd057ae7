// The audit record of a contained run, built without running anything.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_EVENT_BYTES, canonicalEvent, normalizeEvent } from '@corral/audit';
import type { ConnectionRecord, RunResult } from '@corral/contain';
import { MAX_RECORD_BYTES, notStartedRunEvent, runEvent, unrecordable } from './run-record.ts';

const DIGEST = `sha256:${'0'.repeat(64)}`;
const OUTPUTS = { stdout: DIGEST, stderr: DIGEST };

function result(connections: ConnectionRecord[]): RunResult {
  return { exitCode: 0, signal: null, notFound: false, durationMs: 5, warm: false, peakMemoryBytes: null, limitsHit: [], refused: [], connections, connectionsDropped: 0, ingress: [], warnings: [], policyDigest: '0'.repeat(64), stdoutBytes: 0, stderrBytes: 0 };
}

/** What the audit log's append() does to an event before writing it: it throws AUDIT_EVENT_INVALID where append() would. */
function written(event: ReturnType<typeof runEvent | typeof notStartedRunEvent>): string {
  return canonicalEvent(normalizeEvent(event));
}

describe('the record of corral run', () => {
  it('is checked against the audit log\'s own limit', () => {
    assert.equal(MAX_RECORD_BYTES, MAX_EVENT_BYTES);
  });

  describe('when the command made many connections to hosts with long names', () => {
    it('leaves out the last ones so the record can still be written, and counts them all (regression: the record was refused after the run)', () => {
      const host = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(60)}`;
      const connections = Array.from({ length: 300 }, (_, i): ConnectionRecord => ({ id: i + 1, startedAt: new Date(0).toISOString(), method: 'CONNECT', host, port: 443, address: '2001:db8::1', allowed: false, reason: 'not-allowed', bytesSent: 0, bytesReceived: 0 }) as ConnectionRecord);
      const argv = ['/bin/sh', '-c', 'x'.repeat(50_000)];
      assert.equal(unrecordable(argv, '/p.yaml', '0'.repeat(64), []), undefined);
      const event = runEvent(argv, '/p.yaml', result(connections), OUTPUTS);
      assert.ok(Buffer.byteLength(written(event)) <= MAX_EVENT_BYTES);
      const details = event.details as { connections: unknown[]; connectionCount: number; argv: string[] };
      assert.equal(details.connectionCount, 300);
      assert.ok(details.connections.length > 0 && details.connections.length < 100, `${details.connections.length} recorded`);
      assert.deepEqual(details.argv, argv, 'the command line is never cut');
    });
  });

  describe('when the proxy left connection records out past its bound', () => {
    it('counts those too (regression: the count stopped at the records kept)', () => {
      const kept = [{ id: 7, startedAt: new Date(0).toISOString(), method: 'CONNECT', host: 'api.example', port: 443, allowed: false, reason: 'not-allowed', bytesSent: 0, bytesReceived: 0 } as ConnectionRecord];
      const event = runEvent(['/bin/true'], '/p.yaml', { ...result(kept), connectionsDropped: 6 }, OUTPUTS);
      assert.equal((event.details as { connectionCount: number }).connectionCount, 7);
    });
  });

  describe('when the command made a hundred allowed connections before one it was refused', () => {
    const at = (id: number, host: string, allowed: boolean): ConnectionRecord =>
      ({ id, startedAt: new Date(id).toISOString(), method: 'CONNECT', host, port: 443, address: '192.0.2.1', allowed, ...(allowed ? {} : { reason: 'not-allowed' }), bytesSent: 0, bytesReceived: 0, durationMs: 0, open: false }) as ConnectionRecord;

    it('still lists the refused one, with its host (regression: the list held the first hundred, and the refused host was only counted)', () => {
      const connections = [...Array.from({ length: 100 }, (_, i) => at(i + 1, 'api.example.com', true)), at(101, 'exfil.example.net', false)];
      const event = runEvent(['/bin/true'], '/p.yaml', { ...result(connections), refused: [{ kind: 'network', host: 'exfil.example.net', port: 443, reason: 'not-allowed', at: new Date(101).toISOString() }] }, OUTPUTS);
      const details = event.details as { connections: { host: string; allowed: boolean }[]; connectionCount: number; refusedConnections: number };
      assert.deepEqual(details.connections.filter((c) => !c.allowed).map((c) => c.host), ['exfil.example.net']);
      assert.equal(details.connections.length, 100);
      assert.deepEqual([details.connectionCount, details.refusedConnections], [101, 1]);
    });

    it('keeps the refused ones when the record must leave connections out to fit, and lists what it keeps in the order they came', () => {
      const host = (name: string) => `${name}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(60)}`;
      const connections = Array.from({ length: 300 }, (_, i) => at(i + 1, host(i === 250 ? 'refused' : 'allowed'), i !== 250));
      const event = runEvent(['/bin/sh', '-c', 'x'.repeat(50_000)], '/p.yaml', result(connections), OUTPUTS);
      assert.ok(Buffer.byteLength(written(event)) <= MAX_EVENT_BYTES);
      const listed = (event.details as { connections: { host: string; allowed: boolean }[] }).connections;
      assert.ok(listed.length > 1 && listed.length < 100, `${listed.length} listed`);
      assert.deepEqual(listed.filter((c) => !c.allowed).map((c) => c.host), [host('refused')]);
      assert.equal(listed.at(-1)?.allowed, false, 'the refused one, the latest of those kept, comes last');
    });
  });

  describe('unrecordable', () => {
    it('passes a command line whose record fits, with room for its results', () => {
      assert.equal(unrecordable(['/bin/true'], '/p.yaml', '0'.repeat(64), []), undefined);
    });
    for (const [name, argv, policyFile] of [
      ['a command line of 70,000 bytes', ['/bin/sh', '-c', 'x'.repeat(70_000)], '/p.yaml'],
      ['a command line of 22,000 three-byte characters', ['/bin/echo', '€'.repeat(22_000)], '/p.yaml'],
      ['a command name longer than 4096 characters', [`/${'x'.repeat(4096)}`], '/p.yaml'],
      ['a policy path longer than the reason of a record holds', ['/bin/true'], `/${'p'.repeat(4090)}.yaml`],
    ] as const) {
      it(`names ${name}, whose record the audit log would refuse`, () => {
        const why = unrecordable([...argv], policyFile, '0'.repeat(64), []);
        assert.ok(why, 'refused before it runs');
        assert.throws(() => written(runEvent([...argv], policyFile, result([]), OUTPUTS)), { code: 'AUDIT_EVENT_INVALID' });
      });
    }
  });

  describe('of a run that did not start', () => {
    for (const refused of [false, true]) {
      it(`fits the audit log's limit for the longest command line that may run, however long the reason (${refused ? 'a refusal' : 'a sandbox that could not be set up'})`, () => {
        const argv = ['/bin/echo', '"'.repeat(28_000)];
        assert.equal(unrecordable(argv, '/p.yaml', '0'.repeat(64), []), undefined);
        const event = notStartedRunEvent(argv, '/p.yaml', '0'.repeat(64), { code: 'CONTAIN_SPAWN_FAILED', message: `could not start: ${'\u0001'.repeat(10_000)}`, refused });
        assert.ok(Buffer.byteLength(written(event)) <= MAX_EVENT_BYTES);
        assert.deepEqual(event.outcome, { status: 'failure', detail: 'not started: CONTAIN_SPAWN_FAILED' });
        assert.equal(event.decision?.effect, refused ? 'deny' : 'allow');
        assert.deepEqual(event.details?.argv, argv, 'the command line is never cut');
      });
    }
  });
});
