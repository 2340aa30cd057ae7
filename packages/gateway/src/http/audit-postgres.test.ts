// Whole-log verification from the console when the audit log lives in
// PostgreSQL: it is checked against that log's own witness, the one the
// log keeps beside the state (as `corral audit verify` reads it), not the
// SQLite log's. (This file starts a PostgreSQL cluster: if it cannot start,
// it fails, it never skips.)
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAuditLog, witnessPath, type AuditEventInput } from '@corral/audit';
import { startPostgres, type TestPostgres } from '../../../../scripts/testing/postgres.ts';
import { startTestGateway, type TestGateway } from './testing.ts';

const event = (i: number): AuditEventInput => ({ actor: { kind: 'human', id: 'alice' }, action: 'console.sign-in', resource: { kind: 'session', id: `s-${i}` }, outcome: { status: 'success' } });

describe('verifying a PostgreSQL audit log from the console', () => {
  let cluster: TestPostgres;
  let state: string;
  let t: TestGateway | undefined;
  before(async () => {
    cluster = await startPostgres();
    state = mkdtempSync(join(tmpdir(), 'corral-http-audit-pg-'));
  });
  after(async () => {
    await t?.close();
    cluster?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  it('reports damage when the log is behind its own witness, a checkpoint of a longer log it signed (regression: it read the SQLite witness, absent, and said the log verified)', async () => {
    // Another log of the same state (same signing key), longer: its witness is a checkpoint this log never reached.
    const otherUrl = cluster.createDatabase('other_log');
    const other = await openAuditLog({ stateDir: state, postgresUrl: otherUrl });
    for (let i = 0; i < 7; i++) await other.append(event(100 + i));
    await other.checkpoint();
    await other.close();
    const url = cluster.createDatabase('gateway_log');
    const log = await openAuditLog({ stateDir: state, postgresUrl: url });
    for (let i = 0; i < 3; i++) await log.append(event(i));
    await log.checkpoint();
    t = await startTestGateway({ stateDir: state, audit: log });
    const auditor = await t.as('audrey', ['auditor']);
    const ok = await auditor.get('/api/audit/verify');
    assert.deepEqual([ok.status, ok.body.ok], [200, true], JSON.stringify(ok.body));
    assert.equal(existsSync(join(state, 'audit-witness.json')), false, 'no SQLite log here');
    // The log is put back to an earlier state under the running gateway: its witness, kept apart, says it was longer.
    copyFileSync(witnessPath(state, other.store.where), witnessPath(state, log.store.where));
    const behind = await auditor.get('/api/audit/verify');
    assert.equal(behind.status, 200);
    assert.equal(behind.body.ok, false, JSON.stringify(behind.body));
    assert.notEqual(behind.body.damage, null);
  });
});
