// A node policy that is a link to one kept elsewhere is trusted only as far as
// the way to it is: every folder and link on it this user's or root's, none
// that others may write unless sticky (as OpenSSH's StrictModes has it).
import assert from 'node:assert/strict';
import { chmodSync, lchownSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NodeError } from './errors.ts';
import { LOCAL_POLICY_FILE, LocalPolicy } from './local-policy.ts';

const root = mkdtempSync(join(tmpdir(), 'corral-policy-path-'));
after(() => rmSync(root, { recursive: true, force: true }));

const deny = { version: 1, defaults: { security: 'deny' } };
const OTHER_UID = 4321;
const noModes = process.getuid === undefined && 'no owners or modes on this platform';
const asRoot = process.getuid?.() !== 0 && 'giving a file to another user takes root';

/** A node state directory (0700) and a managed folder `shared/managed` (0755) holding a deny policy of this user's. */
function layout(name: string): { dir: string; shared: string; managed: string; policy: string } {
  const base = mkdtempSync(join(root, `${name}-`));
  chmodSync(base, 0o755);
  const dir = join(base, 'state');
  const shared = join(base, 'shared');
  const managed = join(shared, 'managed');
  mkdirSync(dir, { mode: 0o700 });
  mkdirSync(managed, { recursive: true, mode: 0o755 });
  chmodSync(shared, 0o755);
  const policy = join(managed, LOCAL_POLICY_FILE);
  writeFileSync(policy, JSON.stringify(deny), { mode: 0o644 });
  return { dir, shared, managed, policy };
}

/** Refused as NODE_POLICY_INVALID naming `path` as the first bad part of the way. */
const refusedAt = (path: string) => (error: unknown) => error instanceof NodeError && error.code === 'NODE_POLICY_INVALID' && error.message.includes(`through ${path}, which`);

describe('a node policy linked to one kept elsewhere', { skip: noModes }, () => {
  it('is read when every folder and link on the way is this user\'s or root\'s and only they may write it', () => {
    const { dir, policy } = layout('sound');
    symlinkSync(policy, join(dir, LOCAL_POLICY_FILE));
    assert.equal(new LocalPolicy(dir).current.defaults.security, 'deny');
  });

  it('is refused when others may write a folder on the way, naming that folder (regression: only the final file was checked, so whoever could write the folder could swap in a looser policy of the node user\'s)', () => {
    const { dir, shared, policy } = layout('writable');
    chmodSync(shared, 0o777);
    symlinkSync(policy, join(dir, LOCAL_POLICY_FILE));
    assert.throws(() => new LocalPolicy(dir), refusedAt(shared));
  });

  it('is refused when its group may write the folder holding it, naming that folder', () => {
    const { dir, managed, policy } = layout('group');
    chmodSync(managed, 0o775);
    symlinkSync(policy, join(dir, LOCAL_POLICY_FILE));
    assert.throws(() => new LocalPolicy(dir), refusedAt(managed));
  });

  it('is read through a folder others may write that is sticky (as /tmp is), the entries in it this user\'s', () => {
    const { dir, shared, policy } = layout('sticky');
    chmodSync(shared, 0o1777);
    symlinkSync(policy, join(dir, LOCAL_POLICY_FILE));
    assert.equal(new LocalPolicy(dir).current.defaults.security, 'deny');
  });

  it('is refused through a folder on the way that belongs to another user, naming it', { skip: asRoot }, () => {
    const { dir, managed, policy } = layout('foreign-folder');
    chownSync(managed, OTHER_UID, OTHER_UID);
    symlinkSync(policy, join(dir, LOCAL_POLICY_FILE));
    assert.throws(() => new LocalPolicy(dir), refusedAt(managed));
  });

  it('is refused through a link on the way that belongs to another user, naming that link', { skip: asRoot }, () => {
    const { dir, shared, policy } = layout('foreign-link');
    const hop = join(shared, 'current');
    symlinkSync(policy, hop);
    lchownSync(hop, OTHER_UID, OTHER_UID);
    symlinkSync(hop, join(dir, LOCAL_POLICY_FILE));
    assert.throws(() => new LocalPolicy(dir), refusedAt(hop));
  });

  it('is refused when a relative link on the way leads through a folder others may write, naming the folder the link leads through', () => {
    const { dir, shared, policy } = layout('relative');
    const open = join(shared, 'open');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o777);
    symlinkSync(policy, join(open, 'policy'));
    // state/../shared/open/policy: '..' taken from the folder the link is in.
    symlinkSync(join('..', 'shared', 'open', 'policy'), join(dir, LOCAL_POLICY_FILE));
    assert.throws(() => new LocalPolicy(dir), refusedAt(open));
  });
});
