import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LOCAL_POLICY_FILE, LocalPolicy, localAllows, parseLocalPolicy } from './local-policy.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function stateWith(policy?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'corral-localpol-'));
  dirs.push(dir);
  if (policy !== undefined) writeFileSync(join(dir, LOCAL_POLICY_FILE), JSON.stringify(policy));
  return dir;
}

const allowlist = { version: 1, defaults: { security: 'allowlist', ask: 'off' }, agents: { '*': { allowlist: [{ pattern: 'echo' }, { pattern: 'git' }] } } };

describe('the node\'s local policy', () => {
  it('defaults to full (every command still runs contained)', () => {
    const policy = new LocalPolicy(stateWith());
    assert.equal(policy.current.defaults.security, 'full');
    assert.equal(policy.snapshot().exists, false);
  });

  it('allows only listed programs under allowlist, by name or exact path, for every command in a chain', () => {
    const policy = parseLocalPolicy(allowlist);
    assert.equal(localAllows(policy, [['echo', 'x'], ['/usr/bin/git', 'status']]).allowed, true);
    assert.equal(localAllows(policy, [['echo', 'x'], ['rm', '-rf', '/']]).allowed, false);
  });

  it('denies everything under deny', () => {
    assert.equal(localAllows(parseLocalPolicy({ version: 1, defaults: { security: 'deny' } }), [['echo']]).allowed, false);
  });

  it('accepts a remote change that tightens it, given the current hash', () => {
    const policy = new LocalPolicy(stateWith(allowlist));
    const { hash } = policy.snapshot();
    policy.replace({ ...allowlist, agents: { '*': { allowlist: [{ pattern: 'echo' }] } } }, hash);
    assert.equal(localAllows(policy.current, [['git']]).allowed, false);
    // and it persisted
    assert.deepEqual(new LocalPolicy(policy.path.slice(0, -LOCAL_POLICY_FILE.length - 1)).current, policy.current);
  });

  it('refuses a remote change that loosens it: security, ask, or a new allowlist entry (NODE_POLICY_CHANGE_REFUSED)', () => {
    const policy = new LocalPolicy(stateWith(allowlist));
    const { hash } = policy.snapshot();
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'full' } }, hash), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    assert.throws(() => policy.replace({ ...allowlist, agents: { '*': { allowlist: [{ pattern: 'echo' }, { pattern: 'rm' }] } } }, hash), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    const asking = new LocalPolicy(stateWith({ version: 1, defaults: { security: 'full', ask: 'always' } }));
    assert.throws(() => asking.replace({ version: 1, defaults: { security: 'full', ask: 'off' } }, asking.snapshot().hash), { code: 'NODE_POLICY_CHANGE_REFUSED' });
  });

  it('refuses a change based on an old hash (compare-and-swap)', () => {
    const policy = new LocalPolicy(stateWith(allowlist));
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'deny' } }, '0'.repeat(64)), { code: 'NODE_POLICY_CHANGE_REFUSED' });
  });

  it('refuses a malformed policy file with NODE_POLICY_INVALID, and unknown fields too', () => {
    assert.throws(() => new LocalPolicy(stateWith('not an object')), { code: 'NODE_POLICY_INVALID' });
    assert.throws(() => parseLocalPolicy({ version: 1, defaults: { security: 'full' }, socket: { path: '/tmp/x' } }), { code: 'NODE_POLICY_INVALID' });
    assert.throws(() => parseLocalPolicy({ version: 1, defaults: { security: 'everything' } }), { code: 'NODE_POLICY_INVALID' });
  });
});
