// Forbid rules hold however a command is spelled or wrapped: the bypasses a
// review found (issue 5, "Known bypasses to rule out"), each by name, under
// the reviewer's policy — everything permitted, `rm` and `~/.ssh` forbidden —
// and under the invoice-intake example's own policies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint, loadPolicies, loadPolicyDir } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { commandResource, decideRun, type PrincipalRef } from './decide.ts';

const REVIEW_POLICY = `
@id("operator-all") permit (principal == Human::"operator", action, resource);
@id("no-rm") forbid (principal, action, resource == Command::"rm");
@id("no-ssh") forbid (principal, action, resource) when { context has argv && context.argv.containsAny(["~/.ssh"]) };
`;

const operator: PrincipalRef = { type: 'Human', id: 'operator' };

function pointFor(text: string): DecisionPoint {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text }]));
  return point;
}

const review = pointFor(REVIEW_POLICY);
const decide = (command: string[], point = review, who = operator, cwd?: string) => decideRun(point, who, canonicalRun({ command, ...(cwd ? { cwd } : {}) }));

describe('forbid rules under a policy that permits everything else', () => {
  it('still allows what no forbid names (the baseline)', () => {
    assert.equal(decide(['ls', '-l']).decision, 'allow');
    assert.equal(decide(['sh', '-c', 'echo hi; id -u']).decision, 'allow');
  });

  describe('bypass 1: argv[0] spelled as a path (/bin/rm)', () => {
    for (const program of ['/bin/rm', '/usr/bin/rm', '/usr//bin/rm', '/usr/./bin/rm', './rm', '../../bin/rm', '/tmp/x/rm']) {
      it(`denies ${program} -rf X under forbid Command::"rm"`, () => {
        const verdict = decide([program, '-rf', 'X']);
        assert.equal(verdict.decision, 'deny');
        assert.deepEqual(verdict.policies, ['no-rm']);
      });
    }

    it(`denies sh -c 'echo; /bin/rm -rf X': the path inside a payload is caught too`, () => {
      const verdict = decide(['sh', '-c', 'echo; /bin/rm -rf X']);
      assert.equal(verdict.decision, 'deny');
      assert.deepEqual(verdict.commands.map((c) => c.decision), ['allow', 'deny']);
    });

    it('denies bare rm under a forbid written with its full path (Command::"/usr/bin/rm")', () => {
      const point = pointFor(`@id("all") permit (principal, action, resource);\n@id("no-usr-bin-rm") forbid (principal, action, resource == Command::"/usr/bin/rm");`);
      assert.equal(decide(['rm', '-rf', 'X'], point).decision, 'deny');
      assert.equal(decide(['/bin/rm', '-rf', 'X'], point).decision, 'deny');
    });
  });

  describe('a shell looked through needs no permit, but a forbid on it holds', () => {
    const point = pointFor(`@id("ls") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"ls");\n@id("no-bash") forbid (principal, action, resource == Command::"bash");`);
    it('allows sh -c ls under a permit for ls alone', () => assert.equal(decide(['sh', '-c', 'ls'], point).decision, 'allow'));
    for (const argv of [['bash', '-c', 'ls'], ['/bin/bash', '-lc', 'ls'], ['sh', '-c', 'bash -c ls']]) {
      it(`denies ${JSON.stringify(argv)} under forbid Command::"bash"`, () => {
        const verdict = decide(argv, point);
        assert.deepEqual([verdict.decision, verdict.policies], ['deny', ['no-bash']]);
      });
    }
  });

  describe('a permit stays exact: it admits the system program, never one placed elsewhere', () => {
    const point = pointFor(`@id("echo") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"echo");`);
    for (const program of ['echo', '/bin/echo', '/usr/bin/echo']) {
      it(`allows ${program} under a permit for Command::"echo"`, () => assert.equal(decide([program, 'hi'], point).decision, 'allow'));
    }
    for (const program of ['/tmp/evil/echo', './echo', '/home/agent/bin/echo', '/usr/bin/../../tmp/echo']) {
      it(`denies ${program} under a permit for Command::"echo"`, () => assert.equal(decide([program, 'hi'], point).decision, 'deny'));
    }

    it('names a system path by its file name and any other path literally', () => {
      assert.deepEqual(commandResource('/usr/bin/git').id, 'git');
      assert.deepEqual(commandResource('git').id, 'git');
      assert.deepEqual(commandResource('/opt/git/bin/git').id, '/opt/git/bin/git');
      assert.ok(commandResource('./git').spellings.includes('git'));
      assert.ok(commandResource('git').spellings.includes('/usr/bin/git'));
    });
  });

  describe('bypass 2: shell keywords and compound commands', () => {
    for (const payload of ['if true; then rm -rf X; fi', 'for i in 1; do rm -rf X; done', 'while true; do rm -rf X; done', 'until false; do rm -rf X; done', 'if false; then :; elif true; then rm -rf X; fi', 'if false; then :; else rm -rf X; fi', 'case a in a) rm -rf X;; esac', '{ rm -rf X; }', '( rm -rf X )', 'f() { rm -rf X; }; f', 'function f { rm -rf X; }; f', '! rm -rf X', 'time rm -rf X', 'coproc rm -rf X', '[[ -e X ]] && rm -rf X']) {
      it(`denies sh -c '${payload}' as opaque, not as a program named after the keyword`, () => {
        const run = canonicalRun({ command: ['sh', '-c', payload] });
        assert.equal(run.opaque, true);
        const verdict = decide(['sh', '-c', payload]);
        assert.equal(verdict.decision, 'deny');
        assert.match(verdict.reason, /cannot tell what would run/);
      });
    }
  });

  describe('bypass 3: shell options that take the next word (-o, -O, --rcfile)', () => {
    it(`reads sh -oc noglob 'rm -rf X' as the shell does, and denies rm`, () => {
      assert.deepEqual(canonicalRun({ command: ['sh', '-oc', 'noglob', 'rm -rf X'] }).commands, [['rm', '-rf', 'X']]);
      assert.equal(decide(['sh', '-oc', 'noglob', 'rm -rf X']).decision, 'deny');
    });

    it(`reads bash -Oc extglob 'rm -rf X' as the shell does, and denies rm`, () => {
      assert.deepEqual(canonicalRun({ command: ['bash', '-Oc', 'extglob', 'rm -rf X'] }).commands, [['rm', '-rf', 'X']]);
      assert.equal(decide(['bash', '-Oc', 'extglob', 'rm -rf X']).decision, 'deny');
    });

    it(`reads sh -o noglob -c 'id -u' as id -u, not as noglob`, () => {
      const run = canonicalRun({ command: ['sh', '-o', 'noglob', '-c', 'id -u'] });
      assert.deepEqual(run.commands, [['id', '-u']]);
      assert.equal(run.opaque, false);
    });

    it('reads -ec, -xc, -co NAME and +o NAME -c as the shell does', () => {
      assert.deepEqual(canonicalRun({ command: ['sh', '-ec', 'rm X'] }).commands, [['rm', 'X']]);
      assert.deepEqual(canonicalRun({ command: ['bash', '-xc', 'rm X'] }).commands, [['rm', 'X']]);
      assert.deepEqual(canonicalRun({ command: ['bash', '-co', 'pipefail', 'rm X'] }).commands, [['rm', 'X']]);
      assert.deepEqual(canonicalRun({ command: ['sh', '+o', 'noglob', '-c', 'rm X'] }).commands, [['rm', 'X']]);
    });

    for (const argv of [['bash', '--rcfile', '/tmp/x', '-c', 'id'], ['bash', '--init-file', '/tmp/x', '-c', 'id'], ['bash', '-ic', 'id'], ['sh', '-kc', 'id LD_PRELOAD=/tmp/x.so'], ['sh', '-o', 'vi', '-c', 'id'], ['sh', '-o'], ['sh', '-oc'], ['sh', '-s', '-c', 'id'], ['sh', '-c']]) {
      it(`marks ${JSON.stringify(argv)} opaque and denies it`, () => {
        assert.equal(canonicalRun({ command: argv }).opaque, true);
        assert.equal(decide(argv).decision, 'deny');
      });
    }
  });

  describe('bypass 4: builtins that run a string or change what a name runs', () => {
    for (const payload of [`trap 'rm -rf X' EXIT`, 'eval rm -rf X', '. /tmp/x', 'source /tmp/x', 'exec rm -rf X', 'command rm -rf X', 'builtin eval rm', `alias ls='rm -rf X'`, 'hash -p /bin/rm ls', 'enable -f /tmp/x.so rm', 'let x', 'printf -v x %s y', 'export PATH=/tmp/evil', 'declare -x y', `test -v 'a[$(rm -rf X)]'`, 'mapfile -C rm x', 'noglob rm -rf X']) {
      it(`denies sh -c "${payload}" as opaque`, () => {
        assert.equal(canonicalRun({ command: ['sh', '-c', payload] }).opaque, true);
        assert.equal(decide(['sh', '-c', payload]).decision, 'deny');
      });
    }

    it('still looks through export of an ordinary variable', () => {
      assert.deepEqual(canonicalRun({ command: ['sh', '-c', 'export LANG=C; ls'] }).commands, [['export', 'LANG=C'], ['ls']]);
    });
  });

  describe('globs and comments in a payload, whose meaning depends on the node', () => {
    for (const payload of ['cat /root/.ss?/id', 'cat /root/.ss[h]/id', 'ls *', `echo #'\nrm -rf X\n'`]) {
      it(`denies sh -c ${JSON.stringify(payload)} as opaque`, () => assert.equal(decide(['sh', '-c', payload]).decision, 'deny'));
    }

    it('keeps a quoted glob as a literal argument', () => {
      assert.deepEqual(canonicalRun({ command: ['sh', '-c', `grep -l '*.txt' notes`] }).commands, [['grep', '-l', '*.txt', 'notes']]);
    });
  });

  it('never allows an rm spelling in command position, however the payload is built (property)', () => {
    const rm = ['rm', '/bin/rm', '/usr/bin/rm', './rm', '/usr/local/bin/rm'];
    const separators = [';', '&&', '||', '|', '&', '\n'];
    const words = ['echo', 'x', 'if', 'then', 'elif', 'else', 'fi', 'for', 'i', 'in', 'do', 'done', 'while', 'case', 'esac', 'trap', 'eval', 'exec', 'command', 'builtin', 'source', '.', 'env', 'X=1', 'sh', '-c', '{', '}', '(', ')', '!', 'time', 'noglob'];
    const starters = new Set(['if', 'then', 'elif', 'else', 'do', 'while', 'until', 'exec', 'command', 'builtin', 'eval', 'env', 'X=1', 'time', 'noglob', '{', '(', '!']);
    const options = fc.constantFrom(['-c'], ['-ec'], ['-xc'], ['-oc', 'noglob'], ['-o', 'noglob', '-c'], ['-Oc', 'extglob'], ['+o', 'noglob', '-c'], ['-lc']);
    fc.assert(
      fc.property(fc.constantFrom('sh', 'bash', '/bin/sh', '/usr/bin/bash'), options, fc.array(fc.constantFrom(...rm, ...separators, ...words), { minLength: 1, maxLength: 12 }), (shell, opts, tokens) => {
        // A word is in command position at the start, after a separator, or after a keyword or wrapper that is itself in command position.
        const inCommandPosition: boolean[] = [];
        tokens.forEach((_, i) => inCommandPosition.push(i === 0 || separators.includes(tokens[i - 1]!) || (inCommandPosition[i - 1]! && starters.has(tokens[i - 1]!))));
        const runsRm = tokens.some((t, i) => rm.includes(t) && inCommandPosition[i]!);
        fc.pre(runsRm);
        const verdict = decide([shell, ...opts, tokens.join(' ')]);
        assert.equal(verdict.decision, 'deny', `${shell} ${opts.join(' ')} ${JSON.stringify(tokens.join(' '))}`);
      }),
      { numRuns: 500 },
    );
  });
});

describe('the invoice-intake example policy', () => {
  const EXAMPLE = new URL('../../../../examples/invoice-intake/cedar', import.meta.url).pathname;
  const point = new DecisionPoint();
  point.load(loadPolicyDir(EXAMPLE));
  point.setEntities([
    { uid: { type: 'Group', id: 'invoice-intake' }, attrs: { name: 'Invoice intake' }, parents: [] },
    { uid: { type: 'Agent', id: 'invoice-bot' }, attrs: { owner: 'alice@example.com', process: 'invoice-intake', status: 'active', scopes: [] }, parents: [{ type: 'Group', id: 'invoice-intake' }] },
  ]);
  const bot: PrincipalRef = { type: 'Agent', id: 'invoice-bot' };
  const run = (command: string[], cwd?: string) => decide(command, point, bot, cwd);

  for (const command of [['cat', 'inbox/invoice-0001.txt'], ['ls', 'inbox'], ['/bin/cat', 'inbox/invoice-0002.txt'], ['grep', '-c', 'amount', 'inbox/invoice-0001.txt'], ['sh', '-c', 'head -n 3 inbox/invoice-0001.txt | wc -l']]) {
    it(`allows its text tools on the inbox: ${command.join(' ')}`, () => assert.equal(run(command).decision, 'allow'));
  }

  describe('bypass 5: anything touching ~/.ssh is forbidden, not only the exact string', () => {
    for (const command of [['ls', '~/.ssh/'], ['cat', '/root/.ssh/id_ed25519'], ['ls', '.ssh'], ['cat', '.ssh/config'], ['cat', '/home/agent/.ssh'], ['grep', '-r', 'BEGIN', '/home/agent/.ssh/'], ['head', 'inbox/invoice-0001.txt', '/root/.ssh/authorized_keys'], ['sh', '-c', 'ls inbox; cat /root/.ssh/id_ed25519'], ['/usr/bin/cat', '/root/.ssh/id_ed25519']]) {
      it(`denies ${command.join(' ')} by no-ssh-commands`, () => {
        const verdict = run(command);
        assert.equal(verdict.decision, 'deny');
        assert.ok(verdict.policies.includes('no-ssh-commands'), verdict.reason);
      });
    }

    it('denies sh -c ls inbox; cat ~/.ssh/id_ed25519, whose tilde the shell expands, as a run Corral cannot read', () => {
      const verdict = run(['sh', '-c', 'ls inbox; cat ~/.ssh/id_ed25519']);
      assert.equal(verdict.decision, 'deny');
      assert.match(verdict.reason, /tilde/);
    });

    it('denies a command run in a working directory inside ~/.ssh', () => {
      const verdict = run(['cat', 'id_ed25519'], '/root/.ssh');
      assert.deepEqual([verdict.decision, verdict.policies], ['deny', ['no-ssh-commands']]);
    });

    it('does not forbid a name that only looks like .ssh (.sshrc, ssh.txt)', () => {
      assert.equal(run(['cat', 'inbox/.sshrc']).decision, 'allow');
      assert.equal(run(['ls', 'inbox/ssh.txt']).decision, 'allow');
    });
  });

  describe('bypass 5: sed, which runs commands of its own, is not permitted', () => {
    for (const command of [['sed', '-n', '1e id', 'inbox/invoice-0001.txt'], ['sed', 's/x/id/e', 'inbox/invoice-0001.txt'], ['sed', '-n', 's/^vendor: //p', 'inbox/invoice-0001.txt']]) {
      it(`denies ${command.join(' ')}`, () => assert.equal(run(command).decision, 'deny'));
    }
  });
});

describe('the node a command would run on', () => {
  const PER_NODE = `
@id("build-anywhere") permit (principal == Agent::"builder", action == Action::"system.run", resource == Command::"make");
@id("not-on-prod") forbid (principal, action, resource) when { context has node && context.node in Group::"prod" };
@id("deploy-on-n2") permit (principal == Agent::"builder", action == Action::"system.run", resource == Command::"deploy") when { context has node && context.node == Node::"n2" };
`;
  const point = pointFor(PER_NODE);
  point.setEntities([{ uid: { type: 'Node', id: 'n1' }, attrs: { platform: 'linux', paired: true }, parents: [{ type: 'Group', id: 'prod' }] }, { uid: { type: 'Group', id: 'prod' }, attrs: {}, parents: [] }]);
  const builder: PrincipalRef = { type: 'Agent', id: 'builder' };
  const on = (node: string, command: string[]) => decideRun(point, builder, canonicalRun({ command }), { node }).decision;

  it('is named in the context, so a policy can keep an agent off a machine or a group of them (a forbid on a node matched nothing before)', () => {
    assert.equal(on('n2', ['make']), 'allow');
    assert.equal(on('n1', ['make']), 'deny', 'n1 is in Group::"prod"');
    assert.equal(on('n1', ['sh', '-c', 'make']), 'deny', 'through a shell too');
    assert.equal(on('n2', ['deploy']), 'allow');
    assert.equal(on('n3', ['deploy']), 'deny', 'deploy is permitted on n2 alone');
  });
});

describe('the reason a run is decided for', () => {
  it('is text the audit log takes when it quotes a word cut where an emoji straddles the cut (property; regression: half a character, the record refused, the refusal unrecorded)', () => {
    const point = pointFor(REVIEW_POLICY);
    // A word whose emoji falls anywhere in the first 100 code units, so every quoting cut (40, 60, 80) meets one.
    const word = fc.tuple(fc.nat({ max: 100 }), fc.constantFrom('😀', '𝔸', '🇪🇺')).map(([n, emoji]) => `${'x'.repeat(n)}${emoji}${'y'.repeat(20)}`);
    const templates: Array<(w: string) => { command: string[]; cwd?: string }> = [
      (w) => ({ command: ['sh', '-o', w] }),
      (w) => ({ command: ['git', '-c', `${w}=1`, 'status'] }),
      (w) => ({ command: ['git', '--config-env', `${w}=V`, 'status'] }),
      (w) => ({ command: ['git', 'bisect', 'view', w] }),
      (w) => ({ command: ['git', 'help', w] }),
      (w) => ({ command: ['git', 'config', `-${w}`] }),
      (w) => ({ command: ['git', 'config', `a.${w}`, 'v'] }),
      (w) => ({ command: ['git', 'merge', '--strategy', w] }),
      (w) => ({ command: ['git', 'fetch', `${w}::x`] }),
      (w) => ({ command: ['scalar', w] }),
      (w) => ({ command: ['ls'], cwd: `/${w}/..` }),
      (w) => ({ command: ['sh', '-c', `cd /tmp && ./${w}`] }),
    ];
    fc.assert(
      fc.property(fc.constantFrom(...templates), word, (template, w) => {
        const verdict = decideRun(point, operator, canonicalRun(template(w)));
        assert.ok(verdict.reason.isWellFormed(), verdict.reason);
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('a run decided while no policy set may decide', () => {
  it('is denied saying why in the decision point\'s words (regression: "could not decide", and nothing of no policy set being loaded)', () => {
    const verdict = decideRun(new DecisionPoint(), operator, canonicalRun({ command: ['ls'] }));
    assert.deepEqual([verdict.decision, verdict.reason], ['deny', 'the policy decision point could not decide: no policy set is loaded']);
  });

  it('says only that it could not decide when the decision point failed otherwise', () => {
    const failing = { decideEach: () => { throw new Error('/srv/secret/path: EIO'); } } as unknown as DecisionPoint;
    assert.equal(decideRun(failing, operator, canonicalRun({ command: ['ls'] })).reason, 'the policy decision point could not decide');
  });
});
