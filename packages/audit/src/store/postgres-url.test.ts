// A PostgreSQL log's URL with a setting Corral reads mistyped: refused before
// anything connects, naming the parameter and what it must be, never the password.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort } from '../../../../scripts/testing/free-port.ts';
import { PostgresStore } from './postgres.ts';
import { urlTimeouts } from './postgres-url.ts';

describe('a PostgreSQL URL with a mistyped setting', () => {
  for (const [setting, names] of [
    ['sslmode=disabled', /sslmode="disabled".*disable, prefer, require, verify-ca, verify-full/],
    ['statement_timeout=abc', /statement_timeout="abc".*whole number of milliseconds/],
    ['statement_timeout=0', /statement_timeout="0".*above 0/],
    ['connect_timeout=5s', /connect_timeout="5s".*whole number of seconds/],
  ] as const) {
    it(`refuses ${setting} with AUDIT_BAD_ARGUMENT naming it, before connecting and without the password (it was sent to the server, taken for TLS, or silently replaced by the default)`, async () => {
      // Nothing listens there: a store that tried to connect would fail otherwise.
      const url = `postgres://corral:s3cret-pw@127.0.0.1:${await freePort()}/audit?${setting}`;
      await assert.rejects(PostgresStore.connect({ url }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'AUDIT_BAD_ARGUMENT');
        assert.match(e.message, names);
        assert.doesNotMatch(e.message, /s3cret-pw|corral:/);
        return true;
      });
    });
  }

  it('reads connect_timeout in seconds and statement_timeout in milliseconds, and leaves out what is not given', () => {
    assert.deepEqual(urlTimeouts('postgres://h/db?connect_timeout=2&statement_timeout=1500&sslmode=verify-full'), { connectMs: 2000, statementMs: 1500 });
    assert.deepEqual(urlTimeouts('postgres://h/db'), {});
  });
});
