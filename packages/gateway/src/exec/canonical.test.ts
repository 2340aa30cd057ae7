import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { actionDigest, canonicalRun } from './canonical.ts';
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
  return decideRun((input) => point.decide(input), alice, canonicalRun({ command, ...(env ? { env } : {}) }));
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

  it("marks a run opaque when its environment names a configuration that runs a command: git's (GIT_CONFIG_COUNT/KEY/VALUE, GIT_CONFIG_PARAMETERS), one read from another HOME, npm's, Lua's (regression: a permit for git ran core.fsmonitor)", () => {
    const gitConfig = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'core.fsmonitor', GIT_CONFIG_VALUE_0: 'touch /tmp/pwned; false' };
    for (const env of [gitConfig as Record<string, string>, { GIT_CONFIG_KEY_0: 'core.pager' }, { GIT_CONFIG_SYSTEM: '/tmp/x' }, { GIT_PROXY_COMMAND: '/tmp/x' }, { HOME: '/tmp/planted' }, { XDG_CONFIG_HOME: '/tmp/planted' }, { npm_config_script_shell: '/tmp/x' }, { LUA_INIT: 'os.execute("x")' }, { PYTHONWARNINGS: 'ignore::evil.Warning' }]) {
      assert.equal(canonicalRun({ command: ['git', 'status'], env }).opaque, true, Object.keys(env)[0]);
    }
    assert.equal(canonicalRun({ command: ['env', 'GIT_CONFIG_COUNT=1', 'GIT_CONFIG_KEY_0=core.fsmonitor', 'GIT_CONFIG_VALUE_0=x', 'git', 'status'] }).opaque, true);
  });

  it('marks a nested login shell or zsh opaque, which reads startup files the commands before it could have written (regression: printf … | tee /tmp/.profile; sh -lc \'echo hi\' was decided as printf, tee and echo, and ran what the profile held)', () => {
    for (const command of [
      ['sh', '-c', "printf 'id\\n' | tee /tmp/.profile; sh -lc 'echo hi'"],
      ['sh', '-c', "echo x; bash --login -c 'echo hi'"],
      ['bash', '-c', "echo x && sh -e -l -c 'echo hi'"],
      ['sh', '-c', "zsh -c 'echo hi'"],
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
    const verdict = decideRun(() => {
      throw new Error('unreachable');
    }, alice, canonicalRun({ command: ['ls'] }));
    assert.equal(verdict.decision, 'deny');
  });

  it('denies by default a command no policy names', () => {
    assert.equal(decide(['curl', 'http://example.com']).decision, 'deny');
  });
});
