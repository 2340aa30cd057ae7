// Git runs a command it is handed (`rebase --exec`, `bisect run`, `submodule
// foreach`) at the top of its work tree, where its `-C` options and
// `--work-tree` lead, not where git was started: a policy that reads
// context.cwd must see each folder that may be.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { decideRun } from './decide.ts';

const POLICY = `
${['git', 'ls', 'echo', 'cd', 'pwd', 'sh']
  .map((name) => `@id("${name}-allowed") permit (principal == Agent::"bot", action == Action::"system.run", resource == Command::"${name}");`)
  .join('\n')}
@id("no-ls-in-secret") forbid (principal, action == Action::"system.run", resource == Command::"ls") when { context has cwd && context.cwd like "*/secret" };
`;

function decide(command: string[], cwd: string | null, env?: Record<string, string>): string {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: POLICY }]));
  return decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command, cwd, ...(env ? { env } : {}) })).decision;
}

/** The folder real git runs `rebase --exec pwd` in, started in `cwd` with `options` before `rebase`; `out`, a file outside the work tree. */
function gitExecFolder(cwd: string, options: string[], out: string): string {
  const ran = spawnSync('git', [...options, '-c', 'user.name=a', '-c', 'user.email=a@b', 'rebase', '-q', '--exec', `pwd > '${out}'`, 'HEAD~1'], { cwd, encoding: 'utf8' });
  assert.equal(ran.status, 0, ran.stderr);
  const shown = spawnSync('cat', [out], { encoding: 'utf8' }).stdout.trim();
  rmSync(out, { force: true });
  return shown;
}

describe('a command git is handed, decided where git runs it', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-gitcwd-'));
    const repo = join(dir, 'secret');
    mkdirSync(join(repo, 'sub'), { recursive: true });
    for (const args of [['init', '-q'], ['-c', 'user.name=a', '-c', 'user.email=a@b', 'commit', '-q', '--allow-empty', '-m', 'one'], ['-c', 'user.name=a', '-c', 'user.email=a@b', 'commit', '-q', '--allow-empty', '-m', 'two']]) {
      assert.equal(spawnSync('git', args, { cwd: repo }).status, 0);
    }
    mkdirSync(join(dir, 'tree'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decides ls of git -C secret rebase --exec ls in secret, where a policy forbids it (regression: decided in the request\'s folder, and allowed)', () => {
    assert.equal(gitExecFolder(dir, ['-C', 'secret'], join(dir, 'pwd.txt')), join(dir, 'secret'), 'git runs the command in the folder -C names');
    assert.equal(decide(['ls'], dir), 'allow');
    assert.equal(decide(['git', '-C', 'secret', 'rebase', '--exec', 'ls', 'HEAD~1'], dir), 'deny');
    assert.equal(decide(['git', '-C', 'secret', 'bisect', 'run', 'ls'], dir), 'deny');
    assert.equal(decide(['git', '-C', 'secret', 'rebase', '--exec', 'echo hi', 'HEAD~1'], dir), 'allow');
  });

  it('reads each -C from the folder the one before it leads to', () => {
    assert.equal(gitExecFolder('/', ['-C', dir, '-C', 'secret'], join(dir, 'pwd.txt')), join(dir, 'secret'));
    assert.equal(decide(['git', '-C', dir, '-C', 'secret', 'rebase', '--exec', 'ls', 'HEAD~1'], '/'), 'deny');
    assert.equal(decide(['git', '-C', 'nowhere', '-C', join(dir, 'secret'), 'rebase', '--exec', 'ls', 'HEAD~1'], '/'), 'deny');
  });

  it('decides it at the top of the work tree too, a folder above the one git is started in (rebase --exec from secret/sub runs in secret)', () => {
    assert.equal(gitExecFolder(join(dir, 'secret', 'sub'), [], join(dir, 'pwd.txt')), join(dir, 'secret'), 'git runs the command at the top of its work tree');
    assert.equal(decide(['ls'], join(dir, 'secret', 'sub')), 'allow');
    assert.equal(decide(['git', 'rebase', '--exec', 'ls', 'HEAD~1'], join(dir, 'secret', 'sub')), 'deny');
    assert.equal(decide(['git', '-C', 'secret/sub', 'rebase', '--exec', 'ls', 'HEAD~1'], dir), 'deny');
    assert.equal(decide(['git', 'rebase', '--exec', 'ls', 'HEAD~1'], dir), 'allow', 'no folder above the request\'s is a secret');
  });

  it('decides it in the folder --work-tree names', () => {
    assert.equal(gitExecFolder(dir, ['--git-dir=secret/.git', '--work-tree=tree'], join(dir, 'pwd.txt')), join(dir, 'tree'), 'git runs the command in its work tree');
    const point = POLICY.replace('"*/secret"', '"*/tree"');
    const decider = new DecisionPoint();
    decider.load(loadPolicies([{ file: 'test.cedar', text: point }]));
    const verdict = (command: string[]) => decideRun(decider, { type: 'Agent', id: 'bot' }, canonicalRun({ command, cwd: dir })).decision;
    assert.equal(verdict(['git', '--git-dir=secret/.git', '--work-tree=tree', 'rebase', '--exec', 'ls', 'HEAD~1']), 'deny');
    assert.equal(verdict(['git', '--git-dir', 'secret/.git', '--work-tree', join(dir, 'tree'), 'rebase', '--exec', 'ls', 'HEAD~1']), 'deny');
  });

  it('follows a cd before git, and a cd in the payload git is handed, from where git runs it', () => {
    assert.equal(decide(['sh', '-c', 'cd secret/sub && git rebase --exec ls HEAD~1'], dir), 'deny');
    assert.equal(decide(['git', '-C', dir, 'rebase', '--exec', 'cd secret && ls', 'HEAD~1'], null), 'deny');
    assert.equal(decide(['git', '-C', dir, 'rebase', '--exec', 'git -C secret rebase --exec ls HEAD~1', 'HEAD~1'], null), 'deny');
  });

  it('lists the folders: the request\'s, where -C leads and each folder above it', () => {
    assert.deepEqual(canonicalRun({ command: ['git', '-C', 'b', 'rebase', '--exec', 'ls', 'HEAD~1'], cwd: '/a' }).cwds, [['/a'], ['/a', '/a/b', '/']]);
    assert.deepEqual(canonicalRun({ command: ['git', '--work-tree=/w', 'bisect', 'run', 'ls'], cwd: '/a' }).cwds, [['/a'], ['/a', '/w']]);
    assert.deepEqual(canonicalRun({ command: ['git', '-C', 'b', 'rebase', '--exec', 'ls', 'HEAD~1'], cwd: null }).cwds, [[null], [null]]);
    assert.equal(canonicalRun({ command: ['git', '-C', 'b', 'status'], cwd: '/a' }).cwds, undefined, 'git handed nothing runs nothing elsewhere');
  });

  it('makes the run opaque where git\'s folder cannot be told: -C or --work-tree with .., GIT_WORK_TREE, a ./program, too many folders', () => {
    for (const command of [
      ['git', '-C', '../secret', 'rebase', '--exec', 'ls', 'HEAD~1'],
      ['git', '--work-tree=a/../secret', 'rebase', '--exec', 'ls', 'HEAD~1'],
      ['git', '--work-tree', '..', 'bisect', 'run', 'ls'],
      ['sh', '-c', 'export GIT_WORK_TREE=secret; git rebase --exec ls HEAD~1'],
      ['git', '-C', 'secret', 'rebase', '--exec', './check.sh', 'HEAD~1'],
      ['git', 'bisect', 'run', 'bin/check'],
    ]) assert.equal(canonicalRun({ command, cwd: dir }).opaque, true, command.join(' '));
    assert.equal(canonicalRun({ command: ['git', 'rebase', '--exec', 'ls', 'HEAD~1'], cwd: dir, env: { GIT_WORK_TREE: join(dir, 'secret') } }).opaque, true);
    assert.equal(canonicalRun({ command: ['git', 'rebase', '--exec', 'ls', 'HEAD~1'], cwd: '/d'.repeat(100) }).opaque, true);
    assert.equal(canonicalRun({ command: ['git', 'rebase', '--exec', 'ls', 'HEAD~1'], cwd: '/d'.repeat(40) }).opaque, false);
  });
});

describe('other programs that change the working directory', () => {
  it('makes env -C DIR and env --chdir=DIR opaque, as a shell payload too', () => {
    for (const command of [['env', '-C', 'secret', 'ls'], ['env', '--chdir=secret', 'ls'], ['env', '--chdir', 'secret', 'ls'], ['sh', '-c', 'env -C secret ls'], ['/usr/bin/env', '-iC', 'secret', 'ls']]) {
      assert.equal(canonicalRun({ command, cwd: '/w' }).opaque, true, command.join(' '));
    }
  });
});

describe('the request\'s working directory, however it is written', () => {
  const policy = (dir: string) => `@id("all") permit (principal, action, resource);\n@id("no-ls-in-secret") forbid (principal, action, resource == Command::"ls") when { context has cwd && context.cwd like "${dir}/secret*" };`;
  const verdict = (command: string[], cwd: string) => {
    const point = new DecisionPoint();
    point.load(loadPolicies([{ file: 'test.cedar', text: policy('/srv') }]));
    return decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command, cwd })).decision;
  };

  it('decides in the folder the node runs in: /srv//secret and /srv/./secret are /srv/secret (regression: a forbid on /srv/secret* did not see them)', () => {
    assert.equal(verdict(['ls'], '/srv/public'), 'allow');
    for (const cwd of ['/srv/secret', '/srv//secret', '/srv/./secret', '//srv/secret/', '/./srv/secret/.']) assert.equal(verdict(['ls'], cwd), 'deny', cwd);
    assert.equal(verdict(['sh', '-c', 'cd sub; ls'], '/srv//secret'), 'deny');
  });

  it('makes a working directory with .. opaque: the node follows it through symlinks', () => {
    assert.equal(canonicalRun({ command: ['ls'], cwd: '/srv/public/../secret' }).opaque, true);
    assert.equal(verdict(['ls'], '/srv/public/../secret'), 'deny');
    assert.equal(canonicalRun({ command: ['ls'], cwd: '/srv/public/..x' }).opaque, false);
  });
});

describe('a shell looked through in another working directory', () => {
  it('is denied by a forbid on it there: cd secret && bash -c ls, git -C secret rebase --exec "bash -c ls" (regression: its forbid was asked in the request\'s folder only)', () => {
    const point = new DecisionPoint();
    point.load(loadPolicies([{ file: 'test.cedar', text: `@id("all") permit (principal, action, resource);\n@id("no-bash-in-secret") forbid (principal, action, resource == Command::"bash") when { context has cwd && context.cwd like "*/secret" };` }]));
    const verdict = (command: string[]) => decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command, cwd: '/w' })).decision;
    assert.equal(verdict(['sh', '-c', 'cd public && bash -c ls']), 'allow');
    assert.equal(verdict(['sh', '-c', 'cd secret && bash -c ls']), 'deny');
    assert.equal(verdict(['git', '-C', 'secret', 'rebase', '--exec', 'bash -c ls', 'HEAD~1']), 'deny');
  });
});

