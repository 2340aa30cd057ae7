import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { scriptBoundByContent } from '../approvals/bound-script.ts';
import { actionDigest, canonicalRun } from './canonical.ts';
import { commandLine } from './command-line.ts';
import { decideRun } from './decide.ts';

const POLICY = `
@id("ls-allowed")
permit (principal == Human::"alice", action == Action::"system.run", resource == Command::"ls");

@id("echo-allowed")
permit (principal == Human::"alice", action == Action::"system.run", resource == Command::"echo");

@id("git-asks")
@approval("required")
@quorum("2")
permit (principal == Human::"alice", action == Action::"system.run", resource == Command::"git");

@id("sh-allowed")
permit (principal == Human::"alice", action == Action::"system.run", resource == Command::"sh");
`;

function decisionPoint(): DecisionPoint {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: POLICY }]));
  return point;
}

const alice = { type: 'Human' as const, id: 'alice' };

function decide(command: string[], env?: Record<string, string>) {
  const point = decisionPoint();
  return decideRun(point, alice, canonicalRun({ command, ...(env ? { env } : {}) }));
}

describe('canonicalRun', () => {
  it('keeps a plain argv as one command', () => {
    const run = canonicalRun({ command: ['ls', '-la', '/tmp'], cwd: '/srv', env: { B: '2', A: '1' } });
    assert.deepEqual(run.commands, [['ls', '-la', '/tmp']]);
    assert.deepEqual(Object.keys(run.env), ['A', 'B']);
    assert.equal(run.opaque, false);
  });

  it('looks through sh -c and yields every command of a pipe, ;, &&, || and newline chain', () => {
    const run = canonicalRun({ command: ['/bin/sh', '-lc', "ls -l | rm -rf /; echo 'a b' && git push || true\nid"] });
    assert.deepEqual(run.commands, [['ls', '-l'], ['rm', '-rf', '/'], ['echo', 'a b'], ['git', 'push'], ['true'], ['id']]);
  });

  it('moves env VAR=value prefixes into env and decides on the program behind them', () => {
    const run = canonicalRun({ command: ['env', 'FOO=1', '/usr/bin/rm', '-rf', '/'] });
    assert.deepEqual(run.argv, ['/usr/bin/rm', '-rf', '/']);
    assert.deepEqual(run.env, { FOO: '1' });
    assert.deepEqual(run.commands, [['/usr/bin/rm', '-rf', '/']]);
  });

  for (const [name, payload] of [
    ['command substitution $(…)', 'ls $(rm -rf /)'],
    ['backticks', 'ls `rm -rf /`'],
    ['a variable expansion', 'ls $HOME'],
    ['a redirection', 'ls > /etc/passwd'],
    ['a subshell', '(rm -rf /)'],
    ['an expansion inside double quotes', 'echo "$(id)"'],
    ['eval', 'eval rm -rf /'],
    ['an assignment prefix', 'PATH=/tmp ls'],
  ] as const) {
    it(`marks a shell payload with ${name} opaque`, () => {
      assert.equal(canonicalRun({ command: ['sh', '-c', payload] }).opaque, true);
    });
  }

  it('marks wrappers that run another program (sudo, xargs, timeout, nohup) opaque', () => {
    for (const wrapper of [['sudo', 'rm'], ['xargs', 'rm'], ['timeout', '5', 'rm'], ['nohup', 'rm']]) assert.equal(canonicalRun({ command: wrapper }).opaque, true, wrapper.join(' '));
  });

  it('marks wrappers that run another program opaque: nice, ionice, stdbuf, setsid, chroot, nsenter, pkexec, ssh, systemd-run', () => {
    for (const wrapper of [['nice', '-n', '5', 'rm'], ['ionice', 'rm'], ['stdbuf', '-oL', 'rm'], ['setsid', 'rm'], ['chroot', '/', 'rm'], ['nsenter', '-t', '1', 'rm'], ['pkexec', 'rm'], ['ssh', 'host', 'rm'], ['systemd-run', 'rm'], ['/usr/bin/timeout', '5', 'rm']]) {
      assert.equal(canonicalRun({ command: wrapper }).opaque, true, wrapper.join(' '));
    }
  });

  it('marks find with -exec, -execdir, -ok or -okdir opaque, and keeps a plain find as it is', () => {
    for (const option of ['-exec', '-execdir', '-ok', '-okdir']) assert.equal(canonicalRun({ command: ['find', '.', option, 'rm', '{}', ';'] }).opaque, true, option);
    assert.equal(canonicalRun({ command: ['find', '.', '-name', '*.log'] }).opaque, false);
  });

  it('marks a run opaque when its environment changes what runs (PATH, LD_PRELOAD, BASH_ENV…), set directly, through env or inside a payload', () => {
    for (const env of [{ PATH: '/tmp/evil' } as Record<string, string>, { LD_PRELOAD: '/tmp/x.so' }, { BASH_ENV: '/tmp/x.sh' }, { ENV: '/tmp/x.sh' }, { PS4: '$(rm -rf /)' }, { GIT_SSH_COMMAND: 'rm -rf /' }, { BASH_FUNC_ls: '() { rm; }' }]) {
      assert.equal(canonicalRun({ command: ['ls'], env }).opaque, true, Object.keys(env)[0]);
    }
    assert.equal(canonicalRun({ command: ['env', 'LD_PRELOAD=/tmp/x.so', 'ls'] }).opaque, true);
    assert.equal(canonicalRun({ command: ['sh', '-c', 'env BASH_ENV=/tmp/x.sh bash -c ls'] }).opaque, true);
    assert.equal(canonicalRun({ command: ['ls'], env: { LANG: 'C.UTF-8', TZ: 'UTC' } }).opaque, false);
  });

  it('marks a run opaque when its environment has the interpreter load code from a file besides its script: PHPRC, PHP_INI_SCAN_DIR (auto_prepend_file), R_PROFILE, R_PROFILE_USER, R_ENVIRON, R_ENVIRON_USER, JDK_JAVA_OPTIONS (-javaagent), PYTHONPYCACHEPREFIX (compiled modules in place of the standard library\'s), PYTHONPLATLIBDIR, NODE_REPL_EXTERNAL_MODULE (regression: a run of php x.php bound to x.php was allowed always, and the file the variable named ran unbound)', () => {
    for (const [argv, name] of [[['php', 'x.php'], 'PHPRC'], [['php', 'x.php'], 'PHP_INI_SCAN_DIR'], [['Rscript', 'x.R'], 'R_PROFILE'], [['Rscript', 'x.R'], 'R_PROFILE_USER'], [['Rscript', 'x.R'], 'R_ENVIRON'], [['Rscript', 'x.R'], 'R_ENVIRON_USER'], [['java', '-jar', 'x.jar'], 'JDK_JAVA_OPTIONS'], [['python3', 'build.py'], 'PYTHONPYCACHEPREFIX'], [['python3', 'build.py'], 'PYTHONPLATLIBDIR'], [['node', 'x.js'], 'NODE_REPL_EXTERNAL_MODULE']] as const) {
      const run = canonicalRun({ command: [...argv], cwd: '/w', env: { [name]: '/w/evil' } });
      assert.equal(run.opaque, true, name);
      assert.equal(scriptBoundByContent({ argv, cwd: '/w', env: { [name]: '/w/evil' }, mutableFileOperand: { argvIndex: argv.length - 1, path: '/w/x', sha256: 'a'.repeat(64) } }), undefined, name);
    }
  });

  it("marks a run opaque when its environment names a configuration that runs a command: git's (GIT_CONFIG_COUNT/KEY/VALUE, GIT_CONFIG_PARAMETERS), one read from another HOME, npm's, Lua's (regression: a permit for git ran core.fsmonitor)", () => {
    const gitConfig = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'core.fsmonitor', GIT_CONFIG_VALUE_0: 'touch /tmp/pwned; false' };
    for (const env of [gitConfig as Record<string, string>, { GIT_CONFIG_KEY_0: 'core.pager' }, { GIT_CONFIG_SYSTEM: '/tmp/x' }, { GIT_PROXY_COMMAND: '/tmp/x' }, { HOME: '/tmp/planted' }, { XDG_CONFIG_HOME: '/tmp/planted' }, { npm_config_script_shell: '/tmp/x' }, { LUA_INIT: 'os.execute("x")' }, { PYTHONWARNINGS: 'ignore::evil.Warning' }]) {
      assert.equal(canonicalRun({ command: ['git', 'status'], env }).opaque, true, Object.keys(env)[0]);
    }
    assert.equal(canonicalRun({ command: ['env', 'GIT_CONFIG_COUNT=1', 'GIT_CONFIG_KEY_0=core.fsmonitor', 'GIT_CONFIG_VALUE_0=x', 'git', 'status'] }).opaque, true);
  });

  it('marks a nested login shell opaque, which reads startup files the commands before it could have written (regression: printf … | tee /tmp/.profile; sh -lc \'echo hi\' was decided as printf, tee and echo, and ran what the profile held)', () => {
    for (const command of [
      ['sh', '-c', "printf 'id\\n' | tee /tmp/.profile; sh -lc 'echo hi'"],
      ['sh', '-c', "echo x; bash --login -c 'echo hi'"],
      ['bash', '-c', "echo x && sh -e -l -c 'echo hi'"],
    ]) {
      const run = canonicalRun({ command });
      assert.equal(run.opaque, true, command.join(' '));
      assert.match(run.opaqueReason!, /startup files/);
    }
    // At the top, before anything of the run has executed, its startup files are the sandbox's fresh ones (as upstream runs `sh -lc TEXT`).
    assert.deepEqual(canonicalRun({ command: ['sh', '-lc', 'echo hi'] }).commands, [['echo', 'hi']]);
    assert.deepEqual(canonicalRun({ command: ['bash', '-c', "sh -c 'ls -l'"] }).commands, [['ls', '-l']]);
  });

  it('marks a shell opaque when options follow -c (the payload is then not the next word)', () => {
    assert.equal(canonicalRun({ command: ['bash', '-c', '-x', 'rm -rf /'] }).opaque, true);
    assert.equal(canonicalRun({ command: ['sh', '-c', '+e', 'rm -rf /'] }).opaque, true);
  });

  it('keeps a backslash inside double quotes unless it escapes $ ` " \\ or a newline, as the shell does', () => {
    assert.deepEqual(canonicalRun({ command: ['sh', '-c', '"\\l\\s" "a\\"b" "c\\\\d"'] }).commands, [['\\l\\s', 'a"b', 'c\\d']]);
  });

  it('refuses an argv that is empty, not strings, or holds NUL (GATEWAY_PARAMS_INVALID)', () => {
    assert.throws(() => canonicalRun({ command: [] }), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.throws(() => canonicalRun({ command: ['ls', 1 as unknown as string] }), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.throws(() => canonicalRun({ command: ['ls\0rm'] }), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.throws(() => canonicalRun({ command: ['ls'], env: { 'BAD NAME': 'x' } }), { code: 'GATEWAY_PARAMS_INVALID' });
  });
});

describe('actionDigest', () => {
  const digest = (command: string[], extra: { nodeId?: string; cwd?: string; env?: Record<string, string> } = {}) =>
    actionDigest({ principal: 'Human::alice', nodeId: extra.nodeId ?? 'n1', command: 'system.run', run: canonicalRun({ command, ...(extra.cwd ? { cwd: extra.cwd } : {}), ...(extra.env ? { env: extra.env } : {}) }) });

  it('is stable for the same action and changes with argv, cwd, env and node', () => {
    const base = digest(['ls', '-l']);
    assert.equal(digest(['ls', '-l']), base);
    assert.notEqual(digest(['ls', '-la']), base);
    assert.notEqual(digest(['ls', '-l'], { cwd: '/etc' }), base);
    assert.notEqual(digest(['ls', '-l'], { env: { LD_PRELOAD: '/tmp/x.so' } }), base);
    assert.notEqual(digest(['ls', '-l'], { nodeId: 'n2' }), base);
  });

  it('differs between a command and the same command with another chained to it', () => {
    assert.notEqual(digest(['sh', '-c', 'ls']), digest(['sh', '-c', 'ls | rm -rf /']));
    assert.notEqual(digest(['sh', '-c', 'ls']), digest(['sh', '-c', 'ls\nrm -rf /']));
  });
});

describe('decideRun', () => {
  it('allows a command every part of which policy allows', () => {
    assert.equal(decide(['ls', '-l']).decision, 'allow');
    assert.equal(decide(['sh', '-c', 'ls -l && echo done']).decision, 'allow');
  });

  it('denies an allowed command with a pipe to one policy does not allow (upstream #128470)', () => {
    const verdict = decide(['sh', '-c', 'ls | rm -rf /']);
    assert.equal(verdict.decision, 'deny');
    assert.deepEqual(verdict.commands.map((c) => c.decision), ['allow', 'deny']);
  });

  for (const [name, payload] of [
    [';', 'ls; rm -rf /'],
    ['&&', 'ls && rm -rf /'],
    ['||', 'ls || rm -rf /'],
    ['a newline', 'ls\nrm -rf /'],
    ['&', 'ls & rm -rf /'],
    ['$(…)', 'ls $(rm -rf /)'],
    ['backticks', 'ls `rm -rf /`'],
  ] as const) {
    it(`denies an allowed command chained with ${name} to another`, () => {
      assert.equal(decide(['sh', '-c', payload]).decision, 'deny');
    });
  }

  it("decides a shell or env of the caller's choosing (/tmp/x/sh, ./env) as the program it is, not the commands it is handed (regression: /tmp/x/sh -c 'echo hi' was allowed by a permit for echo)", () => {
    for (const argv of [['/tmp/x/sh', '-c', 'echo hi'], ['./env', 'echo', 'hi'], ['sh', '-c', '/tmp/x/env echo hi'], ['sh', '-c', "/tmp/x/bash -c 'echo hi'"], ['/usr/../tmp/sh', '-c', 'echo hi']]) {
      const verdict = decide(argv);
      assert.equal(verdict.decision, 'deny', argv.join(' '));
    }
    assert.deepEqual(canonicalRun({ command: ['/tmp/x/sh', '-c', 'echo hi'] }).commands, [['/tmp/x/sh', '-c', 'echo hi']]);
    assert.deepEqual(canonicalRun({ command: ['./env', 'FOO=1', 'echo'] }).argv, ['./env', 'FOO=1', 'echo']);
    // The system's own, under any spelling of a system directory, are looked through.
    for (const argv of [['/usr//bin/sh', '-c', 'echo hi'], ['/bin/./bash', '-c', 'echo hi'], ['/usr/bin/env', 'X=1', 'echo', 'hi']]) assert.equal(decide(argv).decision, 'allow', argv.join(' '));
  });

  it('denies an env wrapper around a command policy does not allow, even though env itself is harmless', () => {
    assert.equal(decide(['env', 'X=1', 'rm', '-rf', '/']).decision, 'deny');
    assert.equal(decide(['env', 'X=1', 'ls']).decision, 'allow');
  });

  it('asks with the quorum of the strictest policy when one command needs approval', () => {
    const verdict = decide(['sh', '-c', 'ls && git push']);
    assert.equal(verdict.decision, 'ask');
    assert.equal(verdict.quorum, 2);
  });

  it('denies when the decision point throws (control plane cannot decide)', () => {
    const unreachable = {
      decideEach(): never {
        throw new Error('unreachable');
      },
    };
    const verdict = decideRun(unreachable, alice, canonicalRun({ command: ['ls'] }));
    assert.equal(verdict.decision, 'deny');
  });

  it('denies by default a command no policy names', () => {
    assert.equal(decide(['curl', 'http://example.com']).decision, 'deny');
  });
});

/** A git argv as each form canonicalRun looks through sends it: plain, by its system path, behind env, inside sh -c and bash -c after another command. */
function gitForms(argv: readonly string[]): string[][] {
  const rest = argv.slice(1);
  return [[...argv], ['/usr/bin/git', ...rest], ['env', 'LANG=C', ...argv], ['sh', '-c', commandLine(argv)], ['bash', '-c', `echo start; ${commandLine(['/usr/bin/git', ...rest])}`]];
}

describe('when git is handed a command to run', () => {
  const CMD = 'touch /tmp/pwned';
  describe('through a setting on its command line, its environment or a transport (regression: a permit for git ran each of these)', () => {
    for (const [name, argv, reason] of [
      ['-c core.fsmonitor', ['git', '-c', `core.fsmonitor=${CMD}`, 'status'], /core\.fsmonitor/],
      ['-c with the key in another case', ['git', '-c', `Core.FSMonitor=${CMD}`, 'status'], /Core\.FSMonitor/],
      ['-c alias.x=!CMD', ['git', '-c', `alias.x=!${CMD}`, 'x'], /alias\.x/],
      ['-c core.sshCommand', ['git', '-c', `core.sshCommand=${CMD}`, 'fetch'], /core\.sshCommand/],
      ['-c core.pager', ['git', '-c', `core.pager=${CMD}`, 'log'], /core\.pager/],
      ['-c core.editor', ['git', '-c', `core.editor=${CMD}`, 'commit'], /core\.editor/],
      ['-c diff.<driver>.textconv', ['git', '-c', `diff.x.textconv=${CMD}`, 'diff'], /diff\.x\.textconv/],
      ['-c filter.<driver>.clean', ['git', '-c', `filter.x.clean=${CMD}`, 'add', '.'], /filter\.x\.clean/],
      ['-c credential.helper', ['git', '-c', `credential.helper=!${CMD}`, 'fetch'], /credential\.helper/],
      ['-c core.hooksPath', ['git', '-c', 'core.hooksPath=/tmp/hooks', 'commit', '-m', 'x'], /core\.hooksPath/],
      ['-c include.path', ['git', '-c', 'include.path=/tmp/planted', 'status'], /include\.path/],
      ['-c pager.<command> naming a pager', ['git', '-c', `pager.log=${CMD}`, 'log'], /pager\.log/],
      ['-c protocol.ext.allow with an ext:: address', ['git', '-c', 'protocol.ext.allow=always', 'fetch', `ext::sh -c ${CMD}`], /ext::|protocol/],
      ['an ext:: address', ['git', 'clone', `ext::sh -c ${CMD}`, 'dst'], /ext::/],
      ['--config-env', ['git', '--config-env=core.pager=EVIL', 'log'], /--config-env/],
      ['--config-env as two words', ['git', '--config-env', 'core.editor=EVIL', 'commit'], /--config-env/],
      ['--exec-path=', ['git', '--exec-path=/tmp/x', 'status'], /--exec-path/],
      ['an option of git it does not model', ['git', '--bogus', 'status'], /--bogus/],
      ['fetch --upload-pack=', ['git', 'fetch', `--upload-pack=${CMD}`, 'origin'], /--upload-pack/],
      ['fetch --upload-pack as two words', ['git', 'fetch', '--upload-pack', CMD, 'origin'], /--upload-pack/],
      ['an abbreviated --upload-pack', ['git', 'pull', `--upl=${CMD}`], /--upload-pack/],
      ['ls-remote --upload-pack', ['git', 'ls-remote', `--upload-pack=${CMD}`, '.'], /--upload-pack/],
      ['push --receive-pack', ['git', 'push', `--receive-pack=${CMD}`, 'origin'], /--receive-pack/],
      ['push --exec', ['git', 'push', `--exec=${CMD}`, 'origin'], /--exec/],
      ['archive --exec', ['git', 'archive', '--remote=.', `--exec=${CMD}`, 'HEAD'], /--exec/],
      ['clone -u', ['git', 'clone', '-u', CMD, 'src', 'dst'], /-u/],
      ['clone --template, whose hooks it runs', ['git', 'clone', '--template=/tmp/t', 'src', 'dst'], /--template/],
      ['clone -c core.fsmonitor', ['git', 'clone', '-c', `core.fsmonitor=${CMD}`, 'src', 'dst'], /core\.fsmonitor/],
      ['clone --config=core.fsmonitor', ['git', 'clone', `--config=core.fsmonitor=${CMD}`, 'src', 'dst'], /core\.fsmonitor/],
      ['filter-branch', ['git', 'filter-branch', '--tree-filter', CMD, 'HEAD'], /filter-branch/],
      ['send-email', ['git', 'send-email', `--to-cmd=${CMD}`, 'x.patch'], /send-email/],
      ['submodule--helper foreach', ['git', 'submodule--helper', 'foreach', CMD], /submodule--helper/],
      ['remote-ext', ['git', 'remote-ext', 'origin', CMD], /remote-ext/],
      ['for-each-repo', ['git', 'for-each-repo', '--config=x', 'rebase', '--exec', CMD], /for-each-repo/],
      ['bisect visualize with a git command', ['git', 'bisect', 'visualize', 'rebase', '--exec', CMD], /bisect visualize/],
      ['config setting core.fsmonitor for a later git', ['git', 'config', 'core.fsmonitor', CMD], /git config sets core\.fsmonitor/],
      ['config --global setting alias.x', ['git', 'config', '--global', 'alias.st', `!${CMD}`], /alias\.st/],
      ['config --add with a file', ['git', 'config', '-f', '.git/config', '--add', 'filter.x.clean', CMD], /filter\.x\.clean/],
      ['config set (git 2.46)', ['git', 'config', 'set', 'core.pager', CMD], /core\.pager/],
      ['config --rename-section (user.x.clean becomes filter.x.clean)', ['git', 'config', '--rename-section', 'user.x', 'filter.x'], /--rename-section/],
      ['config --edit', ['git', 'config', '--edit'], /--edit/],
      ['daemon --access-hook', ['git', 'daemon', `--access-hook=${CMD}`], /--access-hook/],
      ['svn --authors-prog', ['git', 'svn', 'clone', `--authors-prog=${CMD}`, 'url'], /--authors-prog/],
      ['a rebase --exec holding a newline (a todo line of its own)', ['git', 'rebase', '--exec', 'echo hi\nx rm -rf /', 'main'], /newline/],
      ['a difftool -x ending in a backslash (it would escape what git appends)', ['git', 'difftool', '-x', 'echo \\'], /backslash/],
      ['a rebase --exec the shell analysis cannot read', ['git', 'rebase', '--exec', 'echo $(rm -rf /)', 'main'], /expansion|substitution/],
      ['a submodule foreach using the variables git sets', ['git', 'submodule', 'foreach', 'rm -rf $sm_path'], /expansion/],
      ['a submodule foreach whose first word git hands the shell', ['git', 'submodule', 'foreach', 'rm -rf x;id', 'y'], /shell/],
    ] as const) {
      it(`makes git ${name} opaque, in every form it is sent`, () => {
        for (const command of gitForms(argv)) {
          const run = canonicalRun({ command });
          assert.equal(run.opaque, true, command.join(' '));
          assert.match(run.opaqueReason!, reason, command.join(' '));
          assert.equal(decide(command).decision, 'deny', command.join(' '));
        }
      });
    }

    for (const env of [
      { GIT_ALLOW_PROTOCOL: 'ext' },
      { GIT_TEST_FSMONITOR: '/tmp/x' },
      { GIT_DIFF_PATH_COUNTER: '1', GIT_MERGETOOL_EXTCMD: CMD },
      { GIT_TRACE: '/home/agent/.bashrc' },
    ] as Record<string, string>[]) {
      const name = Object.keys(env).join(', ');
      it(`makes git commit and merge opaque with ${name} in the request's environment, behind env or exported in a payload (regression: only the GIT_* variables Corral listed were)`, () => {
        for (const argv of [['git', 'commit'], ['git', 'merge', 'topic']]) {
          assert.equal(canonicalRun({ command: argv, env }).opaque, true, `${name} ${argv.join(' ')}`);
          assert.equal(canonicalRun({ command: ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv] }).opaque, true, `env ${name} ${argv.join(' ')}`);
          assert.equal(canonicalRun({ command: ['sh', '-c', `export ${commandLine(Object.entries(env).map(([k, v]) => `${k}=${v}`))}; ${commandLine(argv)}`] }).opaque, true, `export ${name}`);
        }
      });
    }

    for (const env of [
      { GIT_PAGER: 'less' },
      { GIT_EDITOR: 'vim' },
      { GIT_SEQUENCE_EDITOR: CMD },
      { GIT_SSH_COMMAND: CMD },
      { GIT_EXTERNAL_DIFF: CMD },
      { GIT_ASKPASS: '/tmp/x' },
      { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'core.fsmonitor', GIT_CONFIG_VALUE_0: CMD },
      { GIT_CONFIG_PARAMETERS: `'core.fsmonitor'='${CMD}'` },
    ] as Record<string, string>[]) {
      const name = Object.keys(env).join(', ');
      it(`keeps git commit and merge opaque with ${name} in the request's environment, behind env or exported in a payload`, () => {
        for (const argv of [['git', 'commit'], ['git', 'merge', 'topic']]) {
          assert.equal(canonicalRun({ command: argv, env }).opaque, true, `${name} ${argv.join(' ')}`);
          assert.equal(canonicalRun({ command: ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv] }).opaque, true, `env ${name} ${argv.join(' ')}`);
          assert.equal(canonicalRun({ command: ['sh', '-c', `export ${commandLine(Object.entries(env).map(([k, v]) => `${k}=${v}`))}; ${commandLine(argv)}`] }).opaque, true, `export ${name}`);
        }
      });
    }

    // Keys whose value git runs, or that name a file, folder or address that leads to one (`*` is any subsection or name).
    const COMMAND_KEYS = [
      'core.fsmonitor', 'core.sshCommand', 'core.pager', 'core.editor', 'core.askPass', 'core.gitProxy', 'core.hooksPath', 'core.alternateRefsCommand', 'sequence.editor', 'diff.external',
      'alias.*', 'diff.*.textconv', 'diff.*.command', 'filter.*.clean', 'filter.*.smudge', 'filter.*.process', 'merge.*.driver', 'credential.helper', 'credential.*.helper',
      'gpg.program', 'gpg.ssh.program', 'gpg.ssh.defaultKeyCommand', 'include.path', 'includeIf.*.path', 'remote.*.uploadpack', 'remote.*.receivepack', 'remote.*.url', 'url.*.insteadOf',
      'uploadpack.packObjectsHook', 'interactive.diffFilter', 'pager.*', 'web.browser', 'browser.*.cmd', 'difftool.*.cmd', 'mergetool.*.cmd', 'mergetool.*.path', 'trailer.*.command',
      'sendemail.smtpServer', 'submodule.*.update', 'protocol.allow', 'protocol.*.allow', 'hook.*.command', 'tar.*.command', 'init.templateDir', 'safe.directory', 'core.worktree',
    ];
    /** A key of COMMAND_KEYS, its section and name in any case (git reads them so), `*` replaced by a subsection or name. */
    const commandKey = fc
      .tuple(fc.constantFrom(...COMMAND_KEYS), fc.stringMatching(/^[A-Za-z0-9-]{1,8}$/))
      .chain(([template, sub]) => fc.array(fc.boolean(), { minLength: template.length, maxLength: template.length }).map((upper) => [...template].map((c, k) => (upper[k] ? c.toUpperCase() : c.toLowerCase())).join('').replace('*', sub)));
    /** Any value but those inert for some key (empty, `cat`, `:`, a boolean). */
    const commandValue = fc.string({ maxLength: 24 }).filter((v) => !/^(?:|cat|:|true|yes|on|false|no|off|-?\d+)$/i.test(v) && !v.includes('\0'));

    it('makes git -c KEY=VALUE and --config-env=KEY=VAR opaque for every key that runs or leads to a command, in any case, subsection and form (regression: a permit for git ran them)', () => {
      fc.assert(
        fc.property(commandKey, commandValue, fc.nat(4), fc.constantFrom('status', 'log', 'commit', 'fetch', 'x'), (key, value, form, subcommand) => {
          assert.equal(canonicalRun({ command: gitForms(['git', '-c', `${key}=${value}`, subcommand])[form]! }).opaque, true);
          assert.equal(canonicalRun({ command: gitForms(['git', `--config-env=${key}=VAR`, subcommand])[form]! }).opaque, true);
        }),
      );
    });

    it('hands git rebase -x CMD exactly the commands sh -c CMD yields, and is opaque whenever sh -c CMD is', () => {
      fc.assert(
        fc.property(fc.constantFrom('ls', 'rm -rf /', 'echo a; rm x', 'a && b | c', "sh -c 'rm x'", 'x $(y)', 'a `b`', 'a > b', "a 'b c' \\d", 'env X=1 rm', 'git -c core.fsmonitor=x status'), fc.string({ maxLength: 12 }), (base, noise) => {
          const payload = `${base}${noise}`;
          if (payload.includes('\0')) return;
          const viaShell = canonicalRun({ command: ['sh', '-c', payload] });
          const viaGit = canonicalRun({ command: ['git', 'rebase', '-x', payload, 'main'] });
          if (viaShell.opaque && viaShell.opaqueReason !== 'an empty shell payload') assert.equal(viaGit.opaque, true, payload);
          if (!viaGit.opaque && !viaShell.opaque) assert.deepEqual(viaGit.commands.slice(1), viaShell.commands, payload);
        }),
      );
    });

    it('makes a run opaque that exports a git variable of unknown value in a payload (export GIT_PAGER)', () => {
      assert.equal(canonicalRun({ command: ['sh', '-c', 'export GIT_PAGER; git log'] }).opaque, true);
    });
  });

  describe('explicitly, as an argument of a subcommand', () => {
    for (const [name, argv, handed] of [
      ['rebase --exec CMD', ['git', 'rebase', '--exec', 'rm -rf /', 'main'], [['rm', '-rf', '/']]],
      ['rebase --exec=CMD', ['git', 'rebase', '--exec=rm -rf /', 'main'], [['rm', '-rf', '/']]],
      ['rebase with --exec abbreviated', ['git', 'rebase', '--exe', 'rm -rf /', 'main'], [['rm', '-rf', '/']]],
      ['rebase -x CMD', ['git', 'rebase', '-x', 'rm -rf /', 'main'], [['rm', '-rf', '/']]],
      ['rebase -xCMD', ['git', 'rebase', '-xrm', 'main'], [['rm']]],
      ['rebase -ix CMD (a cluster)', ['git', 'rebase', '-ix', 'rm -rf /', 'main'], [['rm', '-rf', '/']]],
      ['rebase with two --exec and a chained command', ['git', 'rebase', '-x', 'echo a', '--exec', 'echo b && rm -rf /', 'main'], [['echo', 'a'], ['echo', 'b'], ['rm', '-rf', '/']]],
      ['bisect run CMD ARGS', ['git', 'bisect', 'run', 'rm', '-rf', '/'], [['rm', '-rf', '/']]],
      ['bisect run -- CMD', ['git', 'bisect', 'run', '--', 'rm', '-rf', '/'], [['rm', '-rf', '/']]],
      ['submodule foreach CMD', ['git', 'submodule', 'foreach', 'rm -rf /'], [['rm', '-rf', '/']]],
      ['submodule foreach --recursive CMD ARGS', ['git', 'submodule', '--quiet', 'foreach', '--recursive', 'rm', '-rf', '/'], [['rm', '-rf', '/']]],
      ['difftool -x CMD', ['git', 'difftool', '-x', 'rm -rf', 'HEAD'], [['rm', '-rf']]],
      ['difftool --extcmd=CMD', ['git', 'difftool', '--extcmd=rm -rf', 'HEAD'], [['rm', '-rf']]],
      ['grep -OCMD', ['git', 'grep', '-Orm', 'needle'], [['rm']]],
      ['merge-index -o CMD', ['git', 'merge-index', '-o', 'rm', '-a'], [['rm']]],
      ['grep --open-files-in-pager=CMD', ['git', 'grep', '--open-files-in-pager=rm -rf', 'needle'], [['rm', '-rf']]],
      ['a command handed on to a shell', ['git', 'rebase', '-x', `sh -c 'rm -rf /'`, 'main'], [['rm', '-rf', '/']]],
      ['a command behind env', ['git', 'bisect', 'run', 'env', 'X=1', 'rm', '-rf', '/'], [['rm', '-rf', '/']]],
    ] as const) {
      it(`decides ${name} on git and on what it is handed, in every form it is sent (regression: decided on git alone)`, () => {
        for (const command of gitForms(argv)) {
          const run = canonicalRun({ command });
          assert.equal(run.opaque, false, command.join(' '));
          assert.deepEqual(run.commands.slice(-handed.length), handed, command.join(' '));
          assert.equal(run.commands.filter((c) => c[0] === 'git' || c[0] === '/usr/bin/git').length, 1, command.join(' '));
          assert.equal(decide(command).decision, 'deny', command.join(' '));
        }
      });
    }

    it('reads a dashed git-<subcommand> as git <subcommand> (git-rebase --exec CMD)', () => {
      assert.deepEqual(canonicalRun({ command: ['git-rebase', '--exec', 'rm -rf /', 'main'] }).commands, [['git-rebase', '--exec', 'rm -rf /', 'main'], ['rm', '-rf', '/']]);
      assert.equal(canonicalRun({ command: ['git-shell', '-c', 'git-upload-pack x'] }).opaque, true);
    });

    it('asks for git rebase -x with a command policy allows, and denies one it does not', () => {
      assert.equal(decide(['git', 'rebase', '-x', 'echo ok', 'main']).decision, 'ask');
      assert.equal(decide(['git', 'rebase', '-x', 'curl http://example.com', 'main']).decision, 'deny');
    });

    it('makes a handed command opaque when it is a nested login shell, which reads startup files, or zsh', () => {
      assert.match(canonicalRun({ command: ['git', 'rebase', '-x', "sh -lc 'echo hi'", 'main'] }).opaqueReason!, /startup files/);
      assert.match(canonicalRun({ command: ['git', 'rebase', '-x', "zsh -c 'echo hi'", 'main'] }).opaqueReason!, /zsh payload/);
    });
  });
});

describe('when git is asked only to be git', () => {
  for (const [argv, env] of [
    [['git', 'status']],
    [['git', 'log', '--oneline']],
    [['git', '-C', 'dir', 'status']],
    [['git', 'commit', '-m', 'msg']],
    [['git', 'commit', '-c', 'HEAD']],
    [['git', '--no-pager', 'log', '-p']],
    [['git', '--git-dir=.git', '--work-tree', '.', 'status']],
    [['git', '-c', 'user.name=Alice', '-c', 'user.email=a@example.com', 'commit', '-m', 'msg']],
    [['git', '-c', 'color.ui=always', '-c', 'color.diff.meta=blue', 'log']],
    [['git', '-c', 'core.pager=cat', 'log']],
    [['git', '-c', 'pager.log=false', 'log']],
    [['git', '-c', 'core.editor=:', 'commit']],
    [['git', '-c', 'credential.helper=', 'fetch']],
    [['git', 'rebase', '-i', 'main']],
    [['git', 'rebase', '--no-exec', 'main']],
    [['git', 'fetch', 'origin']],
    [['git', 'push', 'origin', 'main']],
    [['git', 'clone', 'https://example.com/r.git', 'dst']],
    [['git', 'bisect', 'run']],
    [['git', 'bisect', 'visualize', '--stat']],
    [['git', 'submodule', 'update', '--init']],
    [['git', 'commit', '-m', 'mentions ext::foo']],
    [['git', 'config', 'user.email', 'a@example.com']],
    [['git', 'config', '--global', 'user.name', 'Mr. Smith']],
    [['git', 'config', '--get', 'core.fsmonitor']],
    [['git', 'config', 'core.pager']],
    [['git', 'config', '--unset', 'core.pager']],
    [['git', 'config', '--list', '--show-origin']],
    [['git', 'log'], { GIT_PAGER: 'cat' }],
    [['git', 'rebase', '--continue'], { GIT_EDITOR: ':' }],
    [['git', 'commit', '-m', 'msg'], { GIT_AUTHOR_NAME: 'Alice', GIT_COMMITTER_EMAIL: 'a@example.com', GIT_TERMINAL_PROMPT: '0' }],
  ] as [string[], Record<string, string>?][]) {
    it(`decides ${commandLine(argv)}${env ? ` with ${Object.keys(env).join(', ')}` : ''} as git alone`, () => {
      for (const command of gitForms(argv)) {
        const run = canonicalRun({ command, ...(env ? { env } : {}) });
        assert.equal(run.opaque, false, `${command.join(' ')}: ${run.opaqueReason}`);
        assert.equal(run.commands.at(-1)!.length, argv.length, command.join(' '));
        assert.equal(decide(command, env).decision, 'ask', command.join(' '));
      }
    });
  }
});

describe('a run of scalar, git\'s companion', () => {
  it('is decided as git is read: scalar -c core.fsmonitor=CMD is opaque and denied under a permit for scalar, scalar list is allowed (regression: scalar was a plain program, its -c unread)', () => {
    const point = new DecisionPoint();
    point.load(loadPolicies([{ file: 'p.cedar', text: '@id("scalar") permit (principal, action == Action::"system.run", resource == Command::"scalar");' }]));
    const run = (command: string[]) => decideRun(point, alice, canonicalRun({ command }));
    assert.equal(run(['scalar', '-c', 'core.fsmonitor=touch /tmp/x', 'list']).decision, 'deny');
    assert.equal(canonicalRun({ command: ['scalar', '-c', 'core.fsmonitor=touch /tmp/x', 'list'] }).opaque, true);
    assert.equal(run(['scalar', 'list']).decision, 'allow');
  });
});

describe("a git run over git's ssh transport", () => {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'p.cedar', text: '@id("git") permit (principal, action == Action::"system.run", resource == Command::"git");\n@id("ssh-github") permit (principal, action == Action::"system.run", resource == Command::"ssh") when { context has argv && context.argv.contains("git@github.com") };' }]));
  const run = (command: string[]) => decideRun(point, alice, canonicalRun({ command }));

  it('is decided on the ssh git runs as well: allowed to the host a policy permits ssh to, denied to another (regression: every run over ssh was opaque, or a permit for git ran ssh)', () => {
    assert.deepEqual(canonicalRun({ command: ['git', 'clone', 'git@github.com:corral/x.git'] }).commands.map((argv) => argv[0]), ['git', 'ssh']);
    assert.equal(run(['git', 'clone', 'git@github.com:corral/x.git']).decision, 'allow');
    assert.equal(run(['git', 'clone', 'git@example.com:corral/x.git']).decision, 'deny');
    assert.equal(run(['git', 'clone', 'https://github.com/corral/x.git']).decision, 'allow');
  });
});
