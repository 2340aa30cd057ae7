// `corral tokens verify` when the identity store cannot answer: that is no verdict on the token.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { corral } from '../../test/corral.ts';
import { damageTable } from '../../../../scripts/testing/damage-sqlite.ts';

describe('corral tokens verify', () => {
  describe('when the identity store is damaged where the agent is kept', () => {
    it('exits 3 naming the store\'s failure, not 1 as an invalid token (also with --json)', async () => {
      // Before: "invalid token (refused): the identity store … is damaged", exit 1, and {"valid":false,"kind":"refused"}:
      // a store that could not be read was reported as a verdict on the token.
      const dir = mkdtempSync(join(tmpdir(), 'corral-cli-tokens-'));
      try {
        assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'bot', '--process', 'p', '--owner', 'o@example.com'])).code, 0);
        const issued = await corral(['--state-dir', dir, 'agents', 'token', 'bot']);
        assert.equal(issued.code, 0, issued.stderr);
        const token = issued.stdout.trim();
        damageTable(join(dir, 'identity.db'), 'agents');
        for (const json of [[], ['--json']]) {
          const r = await corral(['--state-dir', dir, 'tokens', 'verify', '-', ...json], { input: token });
          assert.equal(r.code, 3, `${json.join(' ')}: ${r.stderr}`);
          assert.match(r.stdout + r.stderr, /IDENTITY_STORE_FAILED/);
          assert.doesNotMatch(r.stdout + r.stderr, /invalid token|"valid"/);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
