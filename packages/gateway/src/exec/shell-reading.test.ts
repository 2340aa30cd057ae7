// Each test here runs the real shell on a payload to show what it runs, and
// that Corral no longer decides the payload as something else: an agent that
// holds a permit for a harmless program (echo, printf, ls) must not run
// another one through a shell reading Corral did not share.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { decideRun } from './decide.ts';

const HARMLESS = ['echo', 'printf', 'ls', 'export', 'read', 'env'];
const POLICY = HARMLESS.map((name) => `@id("${name}-allowed") permit (principal == Agent::"bot", action == Action::"system.run", resource == Command::"${name}");`).join('\n');
/** A policy that permits any program but forbids touch: a forbid must catch every way of naming it. */
const ALL_BUT_TOUCH = `
@id("anything") permit (principal == Agent::"bot", action == Action::"system.run", resource);
@id("no-touch") forbid (principal, action == Action::"system.run", resource == Command::"touch");
`;

function decide(policy: string, command: string[], env?: Record<string, string>): string {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: policy }]));
  return decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command, ...(env ? { env } : {}) })).decision;
}

const bash = spawnSync('bash', ['-c', 'true']).status === 0;

describe('a shell payload Corral reads otherwise than the shell', () => {
  let dir = '';
  let marker = '';
  /** Runs argv with the node's environment and `env` over it, in the test folder; the shell's stdout. */
  const run = (argv: string[], env: Record<string, string> = {}): string => {
    const result = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
    return result.stdout;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-shell-reading-'));
    marker = join(dir, 'ran');
    // An `ls` of the agent's making, and a script bash reads as its BASH_ENV: each leaves the marker when it runs.
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'ls'), `#!/bin/sh\n: > '${marker}'\n`);
    chmodSync(join(dir, 'bin', 'ls'), 0o755);
    writeFileSync(join(dir, 'startup.sh'), `: > '${marker}'\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ran = (): boolean => {
    const found = existsSync(marker);
    rmSync(marker, { force: true });
    return found;
  };

  describe('when an assignment prefix is NAME+=value (bash, ksh, zsh)', () => {
    it('denies bash -c "X+=1 touch F" under a policy forbidding touch (regression: decided as the program X+=1)', { skip: !bash }, () => {
      run(['bash', '-c', `X+=1 touch '${marker}'`]);
      assert.equal(ran(), true, 'bash runs touch after the X+=1 prefix');
      assert.equal(decide(ALL_BUT_TOUCH, ['bash', '-c', `X+=1 touch '${marker}'`]), 'deny');
    });

    it('denies env X+=1 touch F and env a/b=1 touch F, whose every word with = env takes for an assignment (regression: decided as the program X+=1)', () => {
      for (const assignment of ['X+=1', 'a/b=1', 'BASH_FUNC_ls%%=() { :; }']) {
        run(['env', assignment, 'touch', marker]);
        assert.equal(ran(), true, `env runs touch after ${assignment}`);
        assert.equal(decide(ALL_BUT_TOUCH, ['env', assignment, 'touch', marker]), 'deny', assignment);
        assert.equal(decide(ALL_BUT_TOUCH, ['sh', '-c', `env '${assignment}' touch F`]), 'deny', `${assignment} in a payload`);
      }
    });

    it('denies export LD_PRELOAD+=… or BASH_ENV+=…, which set the variable (regression: judged as the harmless name BASH_ENV+)', { skip: !bash }, () => {
      const payload = `export BASH_ENV+='${join(dir, 'startup.sh')}'; bash -c 'echo hi'`;
      run(['bash', '-c', payload]);
      assert.equal(ran(), true, 'the inner bash reads the startup file');
      assert.equal(decide(POLICY, ['bash', '-c', payload]), 'deny');
      assert.equal(decide(POLICY, ['bash', '-c', "export LD_PRELOAD+=/tmp/x.so; ls"]), 'deny');
    });
  });

  describe('when a builtin assigns a variable that changes what runs', () => {
    it('denies printf -vPATH DIR; ls under a permit for printf and ls (regression: only a separate -v word was seen)', { skip: !bash }, () => {
      const payload = `printf -vPATH '${join(dir, 'bin')}'; ls`;
      run(['bash', '-c', payload]);
      assert.equal(ran(), true, "bash runs the agent's ls");
      assert.equal(decide(POLICY, ['bash', '-c', payload]), 'deny');
      assert.equal(decide(POLICY, ['bash', '-ac', `printf -vBASH_ENV '${join(dir, 'startup.sh')}'; bash -c 'printf hi'`]), 'deny');
    });

    it('denies echo DIR | read PATH; ls under bash -O lastpipe, which reads in the shell itself (regression: read was a plain program)', { skip: !bash }, () => {
      const payload = `echo '${join(dir, 'bin')}' | read PATH; ls`;
      run(['bash', '-O', 'lastpipe', '-c', payload]);
      assert.equal(ran(), true, "bash runs the agent's ls");
      assert.equal(decide(POLICY, ['bash', '-O', 'lastpipe', '-c', payload]), 'deny');
      assert.equal(decide(POLICY, ['sh', '-c', 'read -aPATH; ls']), 'deny');
      assert.equal(decide(POLICY, ['sh', '-c', 'read -r line; echo done']), 'allow');
    });
  });

  describe('when the shell expands a word Corral keeps as written', () => {
    it('makes ~, ~user and a=~ opaque, which the shell turns into a home folder (regression: rm -rf ~ was decided as rm -rf "~")', { skip: !bash }, () => {
      const home = join(dir, 'home');
      assert.equal(run(['bash', '-c', 'printf "%s\\n" ~ a=~ x=a:~/b HEAD~1'], { HOME: home }), `${home}\na=${home}\nx=a:${home}/b\nHEAD~1\n`);
      for (const payload of ['rm -rf ~', 'ls ~root', 'echo a=~', 'echo x=a:~/b', 'ls =ls']) assert.equal(canonicalRun({ command: ['bash', '-c', payload] }).opaque, true, payload);
      assert.deepEqual(canonicalRun({ command: ['bash', '-c', "git log HEAD~1 '~'"] }).commands, [['git', 'log', 'HEAD~1', '~']]);
    });

    it('keeps a backslash that ends the payload, as the shell does (regression: it was dropped)', { skip: !bash }, () => {
      assert.equal(run(['bash', '-c', 'printf "%s\\n" a\\']), 'a\\\n');
      assert.equal(run(['sh', '-c', 'printf "%s\\n" a\\']), 'a\\\n');
      assert.deepEqual(canonicalRun({ command: ['sh', '-c', 'printf "%s\\n" a\\'] }).commands, [['printf', '%s\\n', 'a\\']]);
    });
  });

  describe('when the environment chooses a character set other than UTF-8', () => {
    // In Big5 the bytes of U+4EA1 (E4 BA A1) end with a lead byte that takes the next `\` as its second half.
    const payload = "echo \u4ea1\\' '\ntouch ran #'";

    it('denies a payload bash reads as echo then touch where Corral read one echo (regression: allowed by a permit for echo)', () => {
      const locales = join(dir, 'locales');
      mkdirSync(locales, { recursive: true });
      spawnSync('localedef', ['-f', 'BIG5', '-i', 'zh_TW', join(locales, 'zh_TW.BIG5')], { timeout: 120_000 });
      const env = { LOCPATH: locales, LC_ALL: 'zh_TW.BIG5' };
      if (bash && existsSync(join(locales, 'zh_TW.BIG5'))) {
        run(['bash', '-c', payload], env);
        assert.equal(ran(), true, 'bash runs touch');
      }
      assert.equal(decide(POLICY, ['bash', '-c', payload], env), 'deny');
      assert.equal(decide(POLICY, ['bash', '-c', payload], { LC_ALL: 'zh_TW.BIG5' }), 'deny', 'a Big5 locale installed on the node');
      assert.equal(decide(POLICY, ['bash', '-c', payload], { LANG: 'ja_JP.SJIS' }), 'deny');
      assert.equal(decide(POLICY, ['env', 'LC_CTYPE=zh_CN.GBK', 'bash', '-c', payload]), 'deny');
      assert.equal(decide(POLICY, ['bash', '-c', 'echo hi'], { LOCPATH: locales, LC_ALL: 'en_US.UTF-8' }), 'deny', 'a locale of the caller may give any name any character set');
    });

    it('still allows C, POSIX and UTF-8 locales', () => {
      for (const value of ['C', 'POSIX', 'C.UTF-8', 'C.utf8', 'en_US.UTF-8', 'de_DE.utf8@euro', '']) assert.equal(decide(POLICY, ['bash', '-c', 'echo hi'], { LC_ALL: value, LANG: value }), 'allow', value);
    });
  });

  describe('when the environment makes bash read a startup file', () => {
    it("denies printf … | tee ~/.bashrc; bash -c 'echo hi' with SSH_CLIENT set and SHLVL low, whose inner bash reads ~/.bashrc as if sshd started it (regression: decided as printf, tee and echo)", { skip: !bash }, () => {
      const home = join(dir, 'sshhome');
      mkdirSync(home, { recursive: true });
      const env = { SSH_CLIENT: '10.0.0.1 22 22', SHLVL: '0' };
      const payload = `printf '%s\\n' ': > ran' | tee '${join(home, '.bashrc')}'; bash -c 'echo hi'`;
      const permitted = ['printf', 'tee', 'echo'].map((name) => `@id("${name}") permit (principal == Agent::"bot", action == Action::"system.run", resource == Command::"${name}");`).join('\n');
      assert.equal(decide(permitted, ['bash', '-c', 'printf hi | tee x; bash -c "echo hi"']), 'allow', 'each command is permitted');
      // Debian and Ubuntu build bash so (SSH_SOURCE_BASHRC); with another build only the decision is checked.
      writeFileSync(join(home, '.bashrc'), ': > ran\n');
      run(['bash', '-c', 'true'], { ...env, HOME: home });
      const readsBashrc = ran();
      rmSync(join(home, '.bashrc'));
      run(['bash', '-c', payload], { ...env, HOME: home });
      assert.equal(ran(), readsBashrc, 'the inner bash runs what tee wrote, where bash reads ~/.bashrc so');
      assert.equal(decide(permitted, ['bash', '-c', payload], env), 'deny');
      assert.equal(decide(permitted, ['bash', '-c', payload], { SSH2_CLIENT: 'x' }), 'deny');
      assert.equal(decide(POLICY, ['sh', '-c', "export SHLVL=0; bash -c 'echo hi'"]), 'deny');
    });
  });

  describe("when zsh's own builtins and arrays are used", () => {
    it('denies read path and export path=…, which set PATH through the array zsh ties to it, and zparseopts, which assigns in forms Corral does not read', () => {
      for (const payload of ['echo /tmp/x | read path; ls', 'echo /tmp/x | read -A path; ls', 'export path=/tmp/x; ls', 'typeset fpath=/tmp/x', 'zparseopts a:=path; ls', 'integer x=1']) {
        assert.equal(decide(POLICY, ['zsh', '-c', payload]), 'deny', payload);
      }
    });
  });

  describe('when a shell option takes the next word', () => {
    it("makes mksh -cT 'echo hi' 'rm X' opaque: -T NAME takes the word Corral read as the payload", () => {
      assert.equal(canonicalRun({ command: ['mksh', '-cT', 'echo hi', 'rm -rf /'] }).opaque, true);
      assert.equal(canonicalRun({ command: ['ksh', '-Ec', 'echo hi'] }).opaque, true);
    });

    it("makes zsh -b -c 'echo hi' opaque: -b ends zsh's options, and zsh runs the file -c from the working directory", () => {
      assert.equal(canonicalRun({ command: ['zsh', '-b', '-c', 'echo hi'] }).opaque, true);
      assert.equal(canonicalRun({ command: ['zsh', '-xb', '-c', 'echo hi'] }).opaque, true);
      assert.deepEqual(canonicalRun({ command: ['bash', '-xe', '-c', 'echo hi'] }).commands, [['echo', 'hi']]);
    });
  });

  describe('when a builtin changes how the shell reads or finds what follows', () => {
    /** Permits for the builtins these payloads use, beside the harmless programs. */
    const BUILTINS = `${POLICY}\n${['set', 'unset', 'jobs', 'shopt', 'setopt', 'deploy', 'git'].map((name) => `@id("${name}-allowed") permit (principal == Agent::"bot", action == Action::"system.run", resource == Command::"${name}");`).join('\n')}`;

    it('denies set -k (or set -o keyword), which makes a later word an assignment (regression: set -k; … | bash -c ls BASH_ENV=/dev/stdin ran what stdin held)', { skip: !bash }, () => {
      const payload = `set -k; echo ": > '${marker}'" | bash -c ls BASH_ENV=/dev/stdin`;
      run(['bash', '-c', payload]);
      assert.equal(ran(), true, 'the inner bash reads stdin as its startup file');
      assert.equal(decide(BUILTINS, ['bash', '-c', payload]), 'deny');
      assert.equal(decide(BUILTINS, ['bash', '-c', 'set -o keyword; ls LD_PRELOAD=/tmp/x.so']), 'deny');
      // The options scripts use every day stay readable.
      for (const set of ['set -e', 'set -euo pipefail', 'set +x', 'set -- a b']) assert.equal(decide(BUILTINS, ['bash', '-c', `${set}; ls`]), 'allow', set);
    });

    it('denies shopt and setopt though permitted, since they change how the shell reads the commands after them', () => {
      assert.equal(decide(BUILTINS, ['bash', '-c', 'shopt -s expand_aliases; ls']), 'deny');
      assert.equal(decide(BUILTINS, ['sh', '-c', 'setopt keyword; ls']), 'deny');
    });

    it("denies bash's jobs -x CMD, which runs CMD (regression: decided as jobs)", { skip: !bash }, () => {
      run(['bash', '-c', `jobs -x touch '${marker}'`]);
      assert.equal(ran(), true, 'bash runs touch');
      assert.equal(decide(BUILTINS, ['bash', '-c', `jobs -x touch '${marker}'`]), 'deny');
    });

    it("denies unset with a subscript, whose arithmetic runs a variable's $(…) (regression: printf … | read x; unset 'SHLVL[x]' ran it), and unset PATH", { skip: !bash }, () => {
      const payload = `printf 'SHLVL[\\044(touch ${marker})]' | read x; unset 'SHLVL[x]'`;
      run(['bash', '-O', 'lastpipe', '-c', payload]);
      assert.equal(ran(), true, 'bash evaluates the subscript and runs touch');
      assert.equal(decide(BUILTINS, ['bash', '-O', 'lastpipe', '-c', payload]), 'deny');
      assert.equal(decide(BUILTINS, ['bash', '-c', 'unset PATH; bash -c deploy']), 'deny');
      assert.equal(decide(BUILTINS, ['bash', '-c', 'unset -f ls; ls']), 'allow');
    });

    it('denies a zsh, ksh or mksh payload: their builtins evaluate a name as arithmetic, where a value read from a pipe or the environment runs a command (regression: printf %d x in zsh ran the $(…) x held)', () => {
      const payload = `printf 'path[\\044(touch ${marker})]' | read x; printf %d x`;
      if (spawnSync('zsh', ['-c', 'true']).status === 0) {
        run(['zsh', '-c', payload]);
        assert.equal(ran(), true, 'zsh runs touch');
      }
      for (const shell of ['zsh', 'ksh', 'mksh']) {
        assert.equal(decide(BUILTINS, [shell, '-c', payload]), 'deny', shell);
        assert.equal(decide(BUILTINS, [shell, '-c', 'printf %d TERM'], { TERM: `path[$(touch ${marker})]` }), 'deny', `${shell}, the value in the environment`);
        assert.equal(decide(BUILTINS, ['sh', '-c', `${shell} -c 'echo hi'`]), 'deny', `${shell} nested`);
      }
    });

    it("denies env -i inside a payload, whose shell then searches the working directory (regression: env -i bash -c deploy ran the agent's ./deploy)", { skip: !bash }, () => {
      writeFileSync(join(dir, 'deploy'), `#!/bin/sh\n: > '${marker}'\n`);
      chmodSync(join(dir, 'deploy'), 0o755);
      run(['sh', '-c', 'env -i bash -c deploy']);
      assert.equal(ran(), true, "bash with no PATH runs the agent's ./deploy");
      assert.equal(decide(BUILTINS, ['sh', '-c', 'env -i bash -c deploy']), 'deny');
      // At the top the node starts the program itself, with its own PATH.
      assert.deepEqual(canonicalRun({ command: ['env', '-i', 'bash', '-c', 'deploy'] }).commands, [['deploy']]);
    });

    it("denies GIT_DIR set inside a payload, where the node's check of the repository git reads cannot see it (regression: sh -c 'env GIT_DIR=… git status' ran that repository's core.fsmonitor)", () => {
      for (const payload of ['env GIT_DIR=/srv/repo/.git git status', 'export GIT_DIR=/srv/repo/.git; git status', 'echo /srv/repo/.git | read GIT_DIR; git status', 'env GIT_CEILING_DIRECTORIES=/ git status']) {
        assert.equal(decide(BUILTINS, ['sh', '-c', payload]), 'deny', payload);
      }
      // At the top it is the run's own environment, which the node checks.
      const top = canonicalRun({ command: ['env', 'GIT_DIR=/srv/repo/.git', 'git', 'status'] });
      assert.equal(top.opaque, false);
      assert.deepEqual(top.env, { GIT_DIR: '/srv/repo/.git' });
    });
  });
});
