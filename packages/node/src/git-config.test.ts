// Which git runs read a configuration file or hook the sandbox could have written.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SandboxPlan } from '@corral/contain';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { refuseWritableGitConfig } from './git-config.ts';
import type { LocalPolicyFile } from './local-policy.ts';

const allowlist: LocalPolicyFile = { version: 1, defaults: { security: 'allowlist' } };
const denied = (path: string) => (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && e.message.includes(`at ${path},`);

/** A real repository made by git on this host, with `config` appended to its .git/config. */
function repository(config = ''): string {
  const dir = tempDir('corral-git-repo-');
  execFileSync('git', ['init', '-q', dir]);
  if (config !== '') writeFileSync(join(dir, '.git', 'config'), config, { flag: 'a' });
  return dir;
}

const plan = (cwd: string, mounts: SandboxPlan['mounts'], env: Record<string, string> = {}): SandboxPlan => ({ env: { PATH: '/usr/bin', HOME: '/tmp', ...env }, mounts: [{ kind: 'ro', path: '/usr/bin' }, ...mounts], cwd }) as unknown as SandboxPlan;
const git = (...args: string[]) => ({ commands: [['git', ...args]] });

describe('an allowed git run, under an allowlist', () => {
  it("is refused in a repository of a read-write grant, naming its .git: an earlier run may have set core.fsmonitor or a hook there (regression: an allowlist of git ran the alias an earlier run wrote into .git/config)", () => {
    const repo = repository();
    assert.throws(() => refuseWritableGitConfig(allowlist, git('status'), plan(repo, [{ kind: 'rw', path: repo }])), denied(join(repo, '.git')));
    // Below the repository's top, by path, the first .git git looks for is one the sandbox could make there.
    mkdirSync(join(repo, 'src'));
    assert.throws(() => refuseWritableGitConfig(allowlist, { commands: [['/usr/bin/git', 'log']] }, plan(join(repo, 'src'), [{ kind: 'rw', path: repo }])), denied(join(repo, 'src', '.git')));
    // A read-only .git below a read-write top is still found first; what it names is what counts.
    assert.doesNotThrow(() => refuseWritableGitConfig(allowlist, git('status'), plan(repo, [{ kind: 'rw', path: repo }, { kind: 'ro', path: join(repo, '.git') }])));
  });

  it('runs in a repository the sandbox sees read-only, whose configuration and hooks were not the sandbox\'s to write', () => {
    const repo = repository();
    assert.doesNotThrow(() => refuseWritableGitConfig(allowlist, git('status'), plan(repo, [{ kind: 'ro', path: repo }])));
  });

  it('is refused when a read-only repository includes a file, or names hooks, where the sandbox can write', () => {
    const ws = tempDir('corral-git-ws-');
    const included = repository(`[include]\n\tpath = ${join(ws, 'extra.config')}\n`);
    assert.throws(() => refuseWritableGitConfig(allowlist, git('status'), plan(included, [{ kind: 'ro', path: included }, { kind: 'rw', path: ws }])), denied(join(ws, 'extra.config')));
    const hooks = repository(`[core]\n\thooksPath = "${join(ws, 'hooks')}" ; shared hooks\n`);
    assert.throws(() => refuseWritableGitConfig(allowlist, git('commit'), plan(hooks, [{ kind: 'ro', path: hooks }, { kind: 'rw', path: ws }])), denied(join(ws, 'hooks')));
  });

  it('follows a .git file to the repository it names', () => {
    const ws = tempDir('corral-git-ws-');
    const real = repository();
    const worktree = tempDir('corral-git-tree-');
    writeFileSync(join(worktree, '.git'), `gitdir: ${join(real, '.git')}\n`);
    assert.throws(() => refuseWritableGitConfig(allowlist, git('status'), plan(worktree, [{ kind: 'ro', path: worktree }, { kind: 'rw', path: real }, { kind: 'ro', path: ws }])), denied(join(real, '.git')));
    assert.doesNotThrow(() => refuseWritableGitConfig(allowlist, git('status'), plan(worktree, [{ kind: 'ro', path: worktree }, { kind: 'ro', path: real }])));
  });

  it('looks where -C, --git-dir and a cd of the run send git', () => {
    const ro = tempDir('corral-git-ro-');
    const repo = repository();
    const mounts: SandboxPlan['mounts'] = [{ kind: 'ro', path: ro }, { kind: 'rw', path: repo }];
    assert.doesNotThrow(() => refuseWritableGitConfig(allowlist, git('status'), plan(ro, mounts)));
    assert.throws(() => refuseWritableGitConfig(allowlist, git('-C', repo, 'status'), plan(ro, mounts)), denied(join(repo, '.git')));
    assert.throws(() => refuseWritableGitConfig(allowlist, git(`--git-dir=${join(repo, '.git')}`, 'status'), plan(ro, mounts)), denied(join(repo, '.git')));
    assert.throws(() => refuseWritableGitConfig(allowlist, { commands: [['cd', repo], ['git', 'status']] }, plan(ro, mounts, { HOME: ro })), denied(join(repo, '.git')));
  });

  it('is refused when its global configuration lies in a read-write grant, and in the sandbox\'s own home only when another command of the run may have written it first', () => {
    const home = tempDir('corral-git-home-');
    const ro = tempDir('corral-git-ro-');
    assert.throws(() => refuseWritableGitConfig(allowlist, git('hi'), plan(ro, [{ kind: 'ro', path: ro }, { kind: 'rw', path: home }], { HOME: home })), denied(join(home, '.config', 'git', 'config')));
    assert.throws(() => refuseWritableGitConfig(allowlist, git('hi'), plan(ro, [{ kind: 'ro', path: ro }, { kind: 'rw', path: home }], { HOME: '/nonexistent', XDG_CONFIG_HOME: home })), denied(join(home, 'git', 'config')));
    // HOME=/tmp, the sandbox's own: fresh when git is all the run does; written by `printf … | tee /tmp/.gitconfig` before it otherwise.
    assert.doesNotThrow(() => refuseWritableGitConfig(allowlist, git('hi'), plan(ro, [{ kind: 'ro', path: ro }])));
    assert.throws(() => refuseWritableGitConfig(allowlist, { commands: [['printf', '[alias]'], ['tee', '/tmp/.gitconfig'], ['git', 'hi']] }, plan(ro, [{ kind: 'ro', path: ro }])), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && /an earlier command of this run can write/.test(e.message));
    // GIT_CONFIG_GLOBAL set by the container policy replaces both global files.
    assert.doesNotThrow(() => refuseWritableGitConfig(allowlist, git('hi'), plan(ro, [{ kind: 'ro', path: ro }, { kind: 'rw', path: home }], { HOME: home, GIT_CONFIG_GLOBAL: '/dev/null' })));
  });

  it('leaves other programs, and security=full, to their own rules', () => {
    const repo = repository();
    assert.doesNotThrow(() => refuseWritableGitConfig(allowlist, { commands: [['ls'], ['gitk-like-name-not-git']] }, plan(repo, [{ kind: 'rw', path: repo }])));
    assert.doesNotThrow(() => refuseWritableGitConfig({ version: 1, defaults: { security: 'full' } }, git('status'), plan(repo, [{ kind: 'rw', path: repo }])));
  });
});

describe('an allowed scalar run, under an allowlist', () => {
  it('is refused in a repository of a read-write grant, as git is: scalar runs git on that repository\'s configuration (regression: scalar was not checked)', () => {
    const repo = repository();
    assert.throws(() => refuseWritableGitConfig(allowlist, { commands: [['scalar', 'run', 'all']] }, plan(repo, [{ kind: 'rw', path: repo }])), denied(join(repo, '.git')));
    assert.doesNotThrow(() => refuseWritableGitConfig(allowlist, { commands: [['/usr/bin/scalar', 'list']] }, plan(repo, [{ kind: 'ro', path: repo }])));
  });
});

describe('git NAME handed over to git-NAME, or git\'s ssh transport to ssh, under an allowlist', () => {
  it('counts git-NAME as no earlier command: git has read its configuration before it starts, so a configuration the sandbox could only write in this run does not refuse git NAME alone (regression: every git NAME was refused where HOME is the sandbox\'s own)', () => {
    const repo = repository();
    // HOME is /tmp, the sandbox's own: only a command of this run can write there.
    const run = (...commands: string[][]) => () => refuseWritableGitConfig(allowlist, { commands }, plan(repo, [{ kind: 'ro', path: repo }]));
    const refused = (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && /global configuration at \/tmp\//.test(e.message);
    assert.doesNotThrow(run(['git', 'hi', 'x'], ['git-hi', 'x']));
    assert.doesNotThrow(run(['git', '-C', 'sub', 'hi'], ['sub/git-hi']));
    assert.doesNotThrow(run(['git', 'clone', 'git@example.com:x.git'], ['ssh', '-o', 'SendEnv=GIT_PROTOCOL', 'git@example.com', "git-upload-pack 'x.git'"]));
    // A command before git, or a git-NAME that is not what the git before it hands over to, may write that configuration first.
    assert.throws(run(['printf', 'x'], ['git', 'hi'], ['git-hi']), refused);
    assert.throws(run(['git', 'hi', 'x'], ['git-other', 'x']), refused);
    assert.throws(run(['git', 'clone', 'git@example.com:x.git'], ['ssh', 'git@example.com', 'touch /tmp/.gitconfig']), refused);
  });
});
