import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Identity } from './identity.ts';
import type { HumanIdentity } from './oidc.ts';

const ISSUER = 'https://sso.example.com';
const dana = (roles: HumanIdentity['roles'], groups: string[]): HumanIdentity => ({ issuer: ISSUER, subject: 'u-7', email: 'dana@example.com', groups, roles });

describe('HumanRegistry.signIn', () => {
  let dir: string;
  let identity: Identity;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-humans-'));
    identity = Identity.open(dir);
  });
  afterEach(() => {
    identity.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records a sign-in that maps a role and answers the person as recorded', () => {
    const record = identity.humans.signIn(dana(['admin'], ['corral-admins']));
    assert.deepEqual([record.email, record.roles], ['dana@example.com', ['admin']]);
    assert.deepEqual(identity.humans.get(ISSUER, 'u-7')?.roles, ['admin']);
  });

  describe('when the sign-in maps no role', () => {
    it('refuses it, and records a person who signed in before as holding none (so their sessions end)', () => {
      identity.humans.signIn(dana(['admin'], ['corral-admins']));
      assert.throws(() => identity.humans.signIn(dana([], ['marketing'])), { code: 'IDENTITY_OIDC_NO_ROLE' });
      const now = identity.humans.get(ISSUER, 'u-7');
      assert.deepEqual([now?.roles, now?.groups], [[], ['marketing']]);
    });

    it('refuses it and records no one who never signed in: not every person the issuer knows is kept', () => {
      assert.throws(() => identity.humans.signIn(dana([], ['marketing'])), { code: 'IDENTITY_OIDC_NO_ROLE' });
      assert.deepEqual(identity.humans.list(), []);
    });
  });
});
