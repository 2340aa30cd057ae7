import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { commandLine } from './command-line.ts';
import { decideRun } from './decide.ts';
import { readGit } from './git.ts';

const POLICY = `
@id("git-allowed")
permit (principal == Human::"alice", action == Action::"system.run", resource == Command::"git");

@id("echo-allowed")
permit (principal == Human::"alice", action == Action::"system.run", resource == Command::"echo");
`;

function decide(command: string[]) {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: POLICY }]));
  return decideRun(point, { type: 'Human', id: 'alice' }, canonicalRun({ command }));
}

/** A git argv as each form canonicalRun looks through sends it: plain, by its system path, behind env, inside sh -c and bash -c after another command. */
function forms(argv: readonly string[]): string[][] {
  const rest = argv.slice(1);
  return [[...argv], ['/usr/bin/git', ...rest], ['env', 'LANG=C', ...argv], ['sh', '-c', commandLine(argv)], ['bash', '-c', `echo start; ${commandLine(['/usr/bin/git', ...rest])}`]];
}

/** A file the caller may have planted in the repository, which git appends to a command as an argument. */
const CMD = 'touch /tmp/pwned';

describe('when git is asked for a command that is not its own', () => {
  for (const [name, argv, handed] of [
    ['a name git would look up as git-<name> on PATH', ['git', 'foo', 'a', 'b'], ['git-foo', 'a', 'b']],
    ['an external command after git options', ['git', '-C', 'dir', '--no-pager', 'lfs', 'pull'], ['git-lfs', 'pull']],
    ['a name with a slash, which git runs from the working directory (./git-x/y)', ['git', 'x/y', 'a'], ['git-x/y', 'a']],
    ['a built-in name in another case (git-Status, or an alias)', ['git', 'Status'], ['git-Status']],
    ['a contrib command that runs programs of its own (git p4)', ['git', 'p4', 'sync'], ['git-p4', 'sync']],
  ] as [string, string[], string[]][]) {
    it(`decides ${name} on git-<name> as well as git, in every form it is sent (regression: a permit for git ran it)`, () => {
      for (const command of forms(argv)) {
        const run = canonicalRun({ command });
        assert.equal(run.opaque, false, `${command.join(' ')}: ${run.opaqueReason}`);
        assert.deepEqual(run.commands.at(-1), handed, command.join(' '));
        assert.equal(decide(command).decision, 'deny', command.join(' '));
      }
    });
  }

  it('hands back git-<name> for any name with a character none of git\'s commands has (an upper-case letter, a digit, a dot, a slash, a space)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 16 }), fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), (name, rest) => {
        if (/^-|^[a-z-]*$/.test(name) || /ext::/i.test(name) || rest.some((a) => /ext::/i.test(a))) return;
        assert.deepEqual(readGit(['git', name, ...rest], 'git'), { runs: [{ argv: [`git-${name}`, ...rest] }] }, name);
      }),
    );
  });

  it('reads a dashed git-<name> that is not git\'s as that program alone, not handed back again', () => {
    assert.deepEqual(canonicalRun({ command: ['git-foo', 'x'] }).commands, [['git-foo', 'x']]);
    assert.deepEqual(readGit(['git-foo', 'x'], 'git-foo'), { runs: [] });
  });

  for (const argv of [['git', 'status'], ['git', 'stash', 'list'], ['git', 'worktree', 'list'], ['git', 'sparse-checkout', 'list'], ['git', 'range-diff', 'a...b'], ['git', 'subtree', 'split', '-P', 'x'], ['git', 'maintenance', 'run'], ['git', 'version']]) {
    it(`still decides git's own ${argv[1]} as git alone`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [] });
    });
  }
});

describe('when git difftool runs a diff tool', () => {
  for (const [name, argv] of [
    ['with no -x (the tool its configuration or guess names)', ['git', 'difftool', 'HEAD']],
    ['with --tool', ['git', 'difftool', '--tool=vimdiff', 'HEAD']],
    ['with -t as two words', ['git', 'difftool', '-t', 'meld']],
    ['with --gui', ['git', 'difftool', '-g']],
    ['with -x taken back by --no-extcmd', ['git', 'difftool', '-x', 'echo', '--no-extcmd']],
    ['with -x after -- (a path, not an option)', ['git', 'difftool', '--', '-x', 'echo']],
    ['with -x as the value of -t', ['git', 'difftool', '-t', '-x', 'echo']],
    ['with x inside the value of a clustered -t (-txecho is the tool xecho)', ['git', 'difftool', '-txecho']],
    ['with x after a letter difftool passes to git diff (-Rx)', ['git', 'difftool', '-Rx', 'echo']],
    ['with an abbreviated --ext, which difftool passes to git diff', ['git', 'difftool', '--ext=echo']],
    ['with --extc as two words', ['git', 'difftool', '--extc', 'echo']],
  ] as [string, string[]][]) {
    it(`makes git difftool ${name} opaque (regression: decided as git alone)`, () => {
      for (const command of forms(argv)) assert.equal(canonicalRun({ command }).opaque, true, command.join(' '));
    });
  }

  for (const [name, argv, handed] of [
    ['-x CMD', ['git', 'difftool', '-x', CMD, 'HEAD'], ['touch', '/tmp/pwned']],
    ['-xCMD', ['git', 'difftool', '-xecho', 'HEAD'], ['echo']],
    ['-yx CMD', ['git', 'difftool', '-yx', CMD], ['touch', '/tmp/pwned']],
    ['-dyxCMD', ['git', 'difftool', '-dyxecho'], ['echo']],
    ['--extcmd CMD', ['git', 'difftool', '--extcmd', CMD], ['touch', '/tmp/pwned']],
    ['--extcmd=CMD', ['git', 'difftool', `--extcmd=${CMD}`, '--dir-diff'], ['touch', '/tmp/pwned']],
    ['a tool and -x (the command wins)', ['git', 'difftool', '-t', 'meld', '-x', 'echo'], ['echo']],
  ] as [string, string[], string[]][]) {
    it(`decides git difftool ${name} on git and the command, in every form it is sent`, () => {
      for (const command of forms(argv)) {
        const run = canonicalRun({ command });
        assert.equal(run.opaque, false, `${command.join(' ')}: ${run.opaqueReason}`);
        assert.deepEqual(run.commands.at(-1), handed, command.join(' '));
      }
    });
  }

  it('decides git difftool --tool-help, which only lists the tools, as git alone', () => {
    assert.deepEqual(readGit(['git', 'difftool', '--tool-help'], 'git'), { runs: [] });
  });

  for (const [name, argv] of [
    ['a blank -x (git evals "$LOCAL" "$REMOTE" as the command)', ['git', 'difftool', '-x', ' ']],
    ['an -x ending in ; (the paths git appends run as a command of their own)', ['git', 'difftool', '-x', 'echo;']],
    ['an --extcmd ending in &&', ['git', 'difftool', '--extcmd=echo &&']],
    ['an -x ending in a pipe', ['git', 'difftool', '-xecho |']],
  ] as [string, string[]][]) {
    it(`makes git difftool with ${name} opaque (regression: decided on the command alone)`, () => {
      assert.match(canonicalRun({ command: argv }).opaqueReason ?? '', /appends/);
    });
  }
});

describe('when git grep opens files in a pager of the caller\'s choosing', () => {
  for (const [name, argv, handed] of [
    ['-OCMD', ['git', 'grep', '-Oecho', 'needle'], ['echo']],
    ['-iOCMD (a cluster)', ['git', 'grep', '-iOecho', 'needle'], ['echo']],
    ['--open-files-in-pager=CMD', ['git', 'grep', `--open-files-in-pager=${CMD}`, 'needle'], ['touch', '/tmp/pwned']],
    ['an abbreviated --open=CMD', ['git', 'grep', `--open=${CMD}`, 'needle'], ['touch', '/tmp/pwned']],
    ['an abbreviated --open-files=CMD', ['git', 'grep', '--open-files=echo', 'needle'], ['echo']],
  ] as [string, string[], string[]][]) {
    it(`decides git grep ${name} on git and the pager it names, in every form it is sent`, () => {
      for (const command of forms(argv)) {
        const run = canonicalRun({ command });
        assert.equal(run.opaque, false, `${command.join(' ')}: ${run.opaqueReason}`);
        assert.deepEqual(run.commands.at(-1), handed, command.join(' '));
      }
    });
  }

  for (const [name, argv] of [
    ['-O ending in ; (git runs each matching file as a command)', ['git', 'grep', '-Otrue;', 'needle', '--', 'sub']],
    ['a blank -O', ['git', 'grep', '-O ', 'needle']],
    ['--open-files-in-pager= ending in &&', ['git', 'grep', '--open-files-in-pager=true &&', 'needle']],
    ['an abbreviated --open= ending in a pipe', ['git', 'grep', '--open=true |', 'needle']],
    ['-O ending in &', ['git', 'grep', '-Otrue &', 'needle']],
  ] as [string, string[]][]) {
    it(`makes git grep ${name} opaque, in every form it is sent (regression: a matching file of the repository ran under a permit for git)`, () => {
      for (const command of forms(argv)) assert.equal(canonicalRun({ command }).opaque, true, command.join(' '));
    });
  }
});

describe('when git runs a program its configuration chooses, or leaves one to run later', () => {
  for (const [name, argv, reason] of [
    ['mergetool', ['git', 'mergetool'], /mergetool/],
    ['mergetool --tool', ['git', 'mergetool', '--tool=vimdiff'], /mergetool/],
    ['difftool--helper', ['git', 'difftool--helper', 'a', 'b'], /difftool--helper/],
    ['web--browse', ['git', 'web--browse', '-b', 'firefox', 'http://example.com'], /web--browse/],
    ['maintenance start (timers that run git later, outside governance)', ['git', 'maintenance', 'start'], /maintenance start/],
    ['maintenance start --scheduler', ['git', 'maintenance', 'start', '--scheduler=crontab'], /maintenance start/],
    ['maintenance register', ['git', 'maintenance', 'register'], /maintenance register/],
    ['maintenance register --config-file', ['git', 'maintenance', 'register', '--config-file', '/tmp/c'], /maintenance register/],
  ] as [string, string[], RegExp][]) {
    it(`makes git ${name} opaque, in every form it is sent and dashed (regression: decided as git alone)`, () => {
      for (const command of [...forms(argv), [`git-${argv[1]!}`, ...argv.slice(2)]]) assert.match(canonicalRun({ command }).opaqueReason ?? '', reason, command.join(' '));
    });
  }

  for (const action of ['run', 'stop', 'unregister']) {
    it(`decides git maintenance ${action} as git alone`, () => {
      assert.deepEqual(readGit(['git', 'maintenance', action], 'git'), { runs: [] });
    });
  }
});

describe('when scalar, git\'s companion, is read as git', () => {
  for (const [name, argv, reason] of [
    ['-c core.fsmonitor=CMD', ['scalar', '-c', `core.fsmonitor=${CMD}`, 'list'], /core\.fsmonitor/],
    ['-c with the key stuck to it', ['scalar', `-ccore.fsmonitor=${CMD}`, 'run', 'all'], /core\.fsmonitor/],
    ['-c alias.x=!CMD after -C', ['scalar', '-C', 'dir', '-c', `alias.x=!${CMD}`, 'run', 'all'], /alias\.x/],
    ['an option it does not model', ['scalar', '--bogus', 'list'], /--bogus/],
    ['register (it starts maintenance timers that run git later)', ['scalar', 'register', 'dir'], /scalar register/],
    ['clone (it registers the clone for maintenance)', ['scalar', 'clone', 'https://example.com/r.git'], /scalar clone/],
    ['reconfigure', ['scalar', 'reconfigure', '--all'], /scalar reconfigure/],
    ['a subcommand it does not know', ['scalar', 'cache-server', '--set', 'x'], /cache-server/],
    ['an ext:: address', ['scalar', 'clone', `ext::sh -c ${CMD}`], /ext::/],
  ] as [string, string[], RegExp][]) {
    it(`makes scalar ${name} opaque`, () => {
      const reading = readGit(argv, 'scalar');
      assert.ok('opaqueReason' in reading, argv.join(' '));
      assert.match(reading.opaqueReason, reason);
    });
  }

  for (const argv of [['scalar', 'list'], ['scalar', '-C', 'dir', '-c', 'user.name=Alice', 'run', 'all'], ['scalar', 'unregister', 'dir'], ['scalar', 'diagnose'], ['scalar', 'version'], ['scalar']]) {
    it(`reads ${commandLine(argv)} as git alone`, () => {
      assert.deepEqual(readGit(argv, 'scalar'), { runs: [] });
    });
  }
});

describe('when a git address names a remote helper, which git runs as git-remote-<name> from its exec path or PATH', () => {
  for (const [name, argv] of [
    ['fetch <name>::<address>', ['git', 'fetch', 'hg::https://example.com/r']],
    ['clone <scheme>://, a scheme git does not speak itself', ['git', 'clone', 'evil://example.com/r', 'dst']],
    ['push <name>::<address>', ['git', 'push', 'gcrypt::rsync://example.com/r', 'main']],
    ['ls-remote with a scheme in another case', ['git', 'ls-remote', 'S3://bucket/r']],
    ['archive --remote=<name>::<address>', ['git', 'archive', '--remote=evil::x', 'HEAD']],
    ['remote add, which a later fetch runs', ['git', 'remote', 'add', 'x', 'evil::y']],
    ['remote set-url', ['git', 'remote', 'set-url', 'origin', 'evil://y']],
    ['submodule add', ['git', 'submodule', 'add', 'evil::y', 'sub']],
    ['clone after -C', ['git', '-C', 'dir', 'clone', 'fd::0,1', 'dst']],
  ] as [string, string[]][]) {
    it(`makes git ${name} opaque, in every form it is sent (regression: a permit for git ran the helper)`, () => {
      for (const command of forms(argv)) assert.match(canonicalRun({ command }).opaqueReason ?? '', /git-remote-/, command.join(' '));
    });
  }

  for (const argv of [
    ['git', 'clone', 'https://example.com/r.git', 'dst'],
    ['git', 'fetch', 'git://host/r'],
    ['git', 'fetch', 'file:///srv/r'],
    ['git', 'push', 'origin', 'HEAD:refs/heads/x'],
    ['git', 'remote', 'add', 'up', 'https://example.com/r'],
    ['git', 'commit', '-m', 'std::vector no longer leaks'],
    ['git', 'log', '-S', 'std::move'],
  ]) {
    it(`decides ${commandLine(argv)} as git alone`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [] });
    });
  }
});

describe('when git shows a manual, through the man, info or browser its configuration names', () => {
  for (const argv of [
    ['git', 'help', 'commit'],
    ['git', '--help', 'commit'],
    ['git', '-h', 'commit'],
    ['git', 'commit', '--help'],
    ['git', 'help', '--man', 'commit'],
    ['git', 'help', '--ma', 'commit'],
    ['git', 'help', '-w', 'commit'],
    ['git', 'help', '--info', 'commit'],
    ['git', 'foo', '--help'],
  ]) {
    it(`makes ${commandLine(argv)} opaque, in every form it is sent (regression: a permit for git ran man)`, () => {
      for (const command of forms(argv)) assert.match(canonicalRun({ command }).opaqueReason ?? '', /manual/, command.join(' '));
    });
  }

  for (const argv of [['git', 'help'], ['git', 'help', '-a'], ['git', 'help', '--guides'], ['git', 'help', '-c'], ['git', '--help'], ['git', 'commit', '-h'], ['git', 'commit', '-a', '--help']]) {
    it(`decides ${commandLine(argv)}, which only prints, as git alone`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [] });
    });
  }
});

describe('when a merge strategy that is not git\'s own is named, which git runs as git-merge-<name> from its exec path or PATH', () => {
  for (const argv of [
    ['git', 'merge', '-s', 'evil', 'topic'],
    ['git', 'merge', '-sevil', 'topic'],
    ['git', 'merge', '-nsevil', 'topic'],
    ['git', 'merge', '-ns', 'evil', 'topic'],
    ['git', 'merge', '--strategy=evil', 'topic'],
    ['git', 'merge', '--strategy', 'evil', 'topic'],
    ['git', 'merge', '--strat=evil', 'topic'],
    ['git', 'merge', '-s', 'ort', '-s', 'evil', 'a', 'b'],
    ['git', 'pull', '-s', 'evil', 'origin'],
    ['git', 'rebase', '--strategy=evil', 'main'],
    ['git', 'rebase', '-ms', 'evil', 'main'],
    ['git', 'cherry-pick', '--strategy', 'evil', 'abc'],
    ['git', 'revert', '--strategy=evil', 'abc'],
  ]) {
    it(`makes ${commandLine(argv)} opaque, in every form it is sent (regression: a permit for git ran git-merge-evil)`, () => {
      for (const command of forms(argv)) assert.match(canonicalRun({ command }).opaqueReason ?? '', /git-merge-evil/, command.join(' '));
    });
  }

  for (const argv of [
    ['git', 'merge', '-s', 'ort', 'topic'],
    ['git', 'merge', '--strategy=recursive', '-Xsubtree=lib', 'topic'],
    ['git', 'merge', '-Xsubtree=lib', 'topic'],
    ['git', 'merge', '-mfixes', 'topic'],
    ['git', 'merge', '-Fsevil', 'topic'],
    ['git', 'merge', '-s', 'octopus', 'a', 'b'],
    ['git', 'pull', '--strategy=resolve'],
    ['git', 'rebase', '-s', 'ours', 'main'],
    ['git', 'cherry-pick', '-s', 'abc'],
    ['git', 'revert', '-s', 'abc'],
    ['git', 'merge', '--squash', 'topic'],
    ['git', 'merge', '--stat', 'topic'],
  ]) {
    it(`decides ${commandLine(argv)} as git alone`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [] });
    });
  }
});

describe('a subcommand named like a property every object has', () => {
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
    it(`hands back git ${name} as git-${name}, and reads ${name} -s x as no merge (regression: the tables of subcommands answered for Object.prototype's own names)`, () => {
      assert.deepEqual(readGit(['git', name, '-s', 'x'], 'git'), { runs: [{ argv: [`git-${name}`, '-s', 'x'] }] });
    });
  }
});

describe('when git signs or verifies, which runs the program its configuration names (gpg, gpgsm for gpg.format=x509, ssh-keygen for ssh, or any gpg.program)', () => {
  for (const argv of [
    ['git', 'commit', '-S', '-m', 'msg'],
    ['git', 'commit', '-Smykey', '-m', 'msg'],
    ['git', 'commit', '-aS', '-m', 'msg'],
    ['git', 'commit', '-sS', '-m', 'msg'],
    ['git', 'commit', '--gpg-sign', '-m', 'msg'],
    ['git', 'commit', '--gpg-sign=mykey', '-m', 'msg'],
    ['git', 'commit', '--gpg', '-m', 'msg'],
    ['git', 'commit', '--amend', '--no-edit', '-S'],
    ['git', 'tag', '-s', 'v1', '-m', 'release'],
    ['git', 'tag', '-u', 'mykey', 'v1', '-m', 'release'],
    ['git', 'tag', '-umykey', 'v1'],
    ['git', 'tag', '-as', 'v1', '-m', 'release'],
    ['git', 'tag', '--sign', 'v1'],
    ['git', 'tag', '--local-user=mykey', 'v1'],
    ['git', 'tag', '-v', 'v1'],
    ['git', 'tag', '--verify', 'v1'],
    ['git', 'merge', '-S', 'topic'],
    ['git', 'merge', '--gpg-sign=mykey', 'topic'],
    ['git', 'merge', '--verify-signatures', 'topic'],
    ['git', 'merge', '--verify-sig', 'topic'],
    ['git', 'pull', '-S', 'origin', 'main'],
    ['git', 'pull', '--verify-signatures', 'origin'],
    ['git', 'rebase', '-S', 'main'],
    ['git', 'rebase', '-iS', 'main'],
    ['git', 'rebase', '--gpg-sign', 'main'],
    ['git', 'cherry-pick', '-S', 'abc'],
    ['git', 'cherry-pick', '-xS', 'abc'],
    ['git', 'revert', '--gpg-sign', 'abc'],
    ['git', 'am', '-S', 'patch.mbox'],
    ['git', 'am', '-3S', 'patch.mbox'],
    ['git', 'commit-tree', '-S', '-m', 'msg', 'HEAD^{tree}'],
    ['git', 'commit-tree', '--gpg-sign=mykey', 'HEAD^{tree}'],
    ['git', 'push', '--signed', 'origin', 'main'],
    ['git', 'push', '--signed=if-asked', 'origin', 'main'],
    ['git', 'push', '--sig', 'origin', 'main'],
    ['git', 'push', '--signed=no', '--signed', 'origin'],
    ['git', 'push', '--no-signed', '--signed=yes', 'origin'],
    ['git', 'send-pack', '--signed', 'remote', 'main'],
    ['git', 'verify-commit', 'HEAD'],
    ['git', 'verify-tag', 'v1'],
    ['git', 'verify-tag', '--raw', 'v1'],
    ['git', 'log', '--show-signature'],
    ['git', 'show', '--show-signature', 'HEAD'],
    ['git', 'log', '--format=%h %G?'],
    ['git', 'log', '--pretty=format:%GK %s'],
    ['git', 'rev-list', '--format=%GS', 'HEAD'],
    ['git', 'for-each-ref', '--format', '%(signature:grade)', 'refs/tags'],
    ['git', 'for-each-ref', '--format=%(signature)'],
    ['git', 'branch', '--format=%(signature:key)'],
    ['git', 'tag', '-l', '--format=%(signature)'],
    ['git', 'fast-import'],
    ['git', 'fast-import', '--signed-commits=sign-if-invalid'],
  ]) {
    it(`makes ${commandLine(argv)} opaque, in every form it is sent and dashed (regression: a permit for git ran gpg)`, () => {
      for (const command of [...forms(argv), [`git-${argv[1]!}`, ...argv.slice(2)]]) assert.match(canonicalRun({ command }).opaqueReason ?? '', /sign|verif/, command.join(' '));
    });
  }

  for (const argv of [
    ['git', '-c', 'commit.gpgSign=true', 'commit', '-m', 'msg'],
    ['git', '-c', 'tag.gpgSign=true', 'tag', '-a', 'v1', '-m', 'release'],
    ['git', '-c', 'push.gpgSign=true', 'push'],
    ['git', '-c', 'log.showSignature=true', 'log'],
    ['git', '-c', 'merge.verifySignatures=true', 'merge', 'topic'],
    ['git', '-c', 'gpg.program=gpg', 'commit', '-S', '-m', 'msg'],
    ['git', '-c', 'gpg.format=ssh', 'log'],
    ['git', '-c', 'gpg.ssh.defaultKeyCommand=ssh-add -L', 'commit', '-m', 'msg'],
    ['git', 'config', 'commit.gpgsign', 'true'],
    ['git', 'config', 'gpg.program', 'gpg2'],
  ]) {
    it(`makes ${commandLine(argv)} opaque: a setting that signs, verifies or names the signing program is not known to name no command`, () => {
      assert.ok('opaqueReason' in readGit(argv, 'git'), argv.join(' '));
    });
  }

  for (const argv of [
    ['git', 'commit', '-m', 'msg'],
    ['git', 'commit', '-s', '-m', 'msg'],
    ['git', 'commit', '-mSigned', '-a'],
    ['git', 'commit', '-amSome message'],
    ['git', 'commit', '-CS'],
    ['git', 'commit', '--no-gpg-sign', '-m', 'msg'],
    ['git', 'commit', '-m', '100%Good, %G? stays text in a message'],
    ['git', 'tag', 'v1'],
    ['git', 'tag', '-a', 'v1', '-m', 'release'],
    ['git', 'tag', '-msigned', 'v1'],
    ['git', 'tag', '-l', '-n5'],
    ['git', 'tag', '-d', 'v1'],
    ['git', 'merge', '--verify', 'topic'],
    ['git', 'merge', '--no-verify-signatures', 'topic'],
    ['git', 'merge', '-mSigned', 'topic'],
    ['git', 'merge', '-sort', 'topic'],
    ['git', 'rebase', '-XSubtree', 'main'],
    ['git', 'cherry-pick', '-s', 'abc'],
    ['git', 'push', '--no-signed', 'origin'],
    ['git', 'push', '--signed=no', 'origin'],
    ['git', 'push', '--signed=false', 'origin'],
    ['git', 'log', '--no-show-signature'],
    ['git', 'log', '--format=%h %s'],
    ['git', 'log', '-G', 'needle'],
    ['git', 'for-each-ref', '--format=%(refname)'],
    ['git', 'am', '-s', 'patch.mbox'],
    ['git', 'fast-export', '--all'],
  ]) {
    it(`decides ${commandLine(argv)}, which neither signs nor verifies, as git alone`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [] });
    });
  }
});

describe('when git grep -O is given no command, so that git runs the pager its configuration or environment names', () => {
  for (const argv of [
    ['git', 'grep', '-O', 'needle'],
    ['git', 'grep', '-iO', 'needle'],
    ['git', 'grep', '--open-files-in-pager', 'needle'],
    ['git', 'grep', '--open', 'needle'],
  ]) {
    it(`makes ${commandLine(argv)} opaque, in every form it is sent (regression: decided as git alone; git runs core.pager, GIT_PAGER, PAGER or less without a terminal)`, () => {
      for (const command of forms(argv)) assert.match(canonicalRun({ command }).opaqueReason ?? '', /pager/, command.join(' '));
    });
  }

  it('decides git grep -e -O (the pattern -O) as git alone', () => {
    assert.deepEqual(readGit(['git', 'grep', '-e', '-O'], 'git'), { runs: [] });
  });
});

describe('when git starts a daemon that would outlive the command', () => {
  // Every run is contained (packages/contain): bubblewrap's --unshare-all gives it a PID namespace whose
  // first process ends with the command, and the kernel then kills every process left in it, a detached
  // daemon (setsid, double fork) included; the run's cgroups are killed whole on a timeout or an abort.
  // These daemons are git's own and run nothing of the caller's choosing, so they are git alone.
  for (const argv of [
    ['git', 'daemon', '--detach', '--base-path=/srv'],
    ['git', 'credential-cache--daemon', '/tmp/socket'],
    ['git', 'fsmonitor--daemon', 'start'],
    ['git', 'credential-cache', 'store'],
  ]) {
    it(`decides ${commandLine(argv)} as git alone: the contained run ends every process it started`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [] });
    });
  }

  it('still makes git daemon --access-hook opaque', () => {
    assert.ok('opaqueReason' in readGit(['git', 'daemon', '--detach', '--access-hook=/tmp/hook'], 'git'));
  });
});

describe('when git -C changes folder before running a git-<name> given with a slash', () => {
  for (const [argv, handed] of [
    [['git', '-C', 'dir', 'x/y', 'a'], ['dir/git-x/y', 'a']],
    [['git', '-C', 'a', '-C', 'b', 'x/y'], ['a/b/git-x/y']],
    [['git', '-C', 'a', '-C', '/abs', 'x/y'], ['/abs/git-x/y']],
    [['git', '-C', '', 'x/y'], ['git-x/y']],
    [['git', '-C', 'dir/', 'x/y'], ['dir/git-x/y']],
    [['git', '-C', '/', '-C', 'srv', 'x/y'], ['/srv/git-x/y']],
    [['git', '-C', '/', 'x/y'], ['/git-x/y']],
  ] as [string[], string[]][]) {
    it(`hands back ${commandLine(argv)} as ${handed[0]}, the path git runs from the folder -C names (regression: handed back as git-x/y, a path in the run's own folder)`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [{ argv: handed }] });
    });
  }

  it('hands back a name with no slash as git-<name>, which git takes from its exec path or PATH whatever -C says', () => {
    assert.deepEqual(readGit(['git', '-C', 'dir', 'lfs', 'pull'], 'git'), { runs: [{ argv: ['git-lfs', 'pull'] }] });
  });
});

describe('when git bisect visualize is given nothing to run', () => {
  for (const argv of [['git', 'bisect', 'visualize'], ['git', 'bisect', 'view']]) {
    it(`makes ${commandLine(argv)} opaque, in every form it is sent (regression: decided as git alone; with a display granted to the sandbox, git runs gitk)`, () => {
      for (const command of forms(argv)) assert.match(canonicalRun({ command }).opaqueReason ?? '', /gitk/, command.join(' '));
    });
  }

  it('decides git bisect view --stat, which runs git log, as git alone', () => {
    assert.deepEqual(readGit(['git', 'bisect', 'view', '--stat'], 'git'), { runs: [] });
  });
});

/** The argv git's ssh transport runs for HOST and the remote command REMOTE, with protocol v1 or v2's `-o SendEnv=GIT_PROTOCOL` unless `v0`, and any options before the host. */
function ssh(host: string, remote: string, options: string[] = [], v0 = false): string[] {
  return ['ssh', ...(v0 ? [] : ['-o', 'SendEnv=GIT_PROTOCOL']), ...options, host, remote];
}

describe('when a git address reaches another machine over ssh, which git runs as ssh HOST "git-upload-pack \'PATH\'"', () => {
  // Each argv is the one git 2.39 ran with GIT_SSH pointing at a recorder named ssh and no configuration (archive: git 2.41 and later).
  for (const [argv, handed] of [
    [['git', 'fetch', 'ssh://host/r'], ssh('host', "git-upload-pack '/r'")],
    [['git', 'fetch', 'ssh://git@host:2222/~u/r.git'], ssh('git@host', "git-upload-pack '~u/r.git'", ['-p', '2222'])],
    [['git', 'fetch', 'git+ssh://host:/r'], ssh('host', "git-upload-pack '/r'")],
    [['git', 'fetch', 'ssh+git://u@host/p q'], ssh('u@host', "git-upload-pack '/p q'")],
    [['git', 'fetch', 'ssh://user:pw@host:22/r'], ssh('user:pw@host:22', "git-upload-pack '/r'")],
    [['git', 'fetch', 'ssh://host:65536/x'], ssh('host:65536', "git-upload-pack '/x'")],
    [['git', 'fetch', 'host:a~b'], ssh('host', "git-upload-pack '~b'")],
    [['git', 'fetch', "host:it's!"], ssh('host', "git-upload-pack 'it'\\''s'\\!''")],
    [['git', 'fetch', '--depth', '3', 'host:/abs/r'], ssh('host', "git-upload-pack '/abs/r'")],
    [['git', 'fetch', '-j4', '--', 'host:r', 'main:main'], ssh('host', "git-upload-pack 'r'")],
    [['git', 'fetch', '--ipv6', 'host:r'], ssh('host', "git-upload-pack 'r'", ['-6'])],
    [['git', 'clone', 'git@github.com:o/r.git', 'dst'], ssh('git@github.com', "git-upload-pack 'o/r.git'")],
    [['git', 'clone', '-c', 'protocol.version=1', '--depth', '1', 'host:r', 'dst'], ssh('host', "git-upload-pack 'r'")],
    [['git', 'pull', '-4', 'git+ssh://host/r', 'main'], ssh('host', "git-upload-pack '/r'", ['-4'])],
    [['git', 'ls-remote', 'host:r'], ssh('host', "git-upload-pack 'r'")],
    [['git', 'push', 'git@host:r', 'HEAD:main'], ssh('git@host', "git-receive-pack 'r'", [], true)],
    [['git', 'push', '--repo=host:r'], ssh('host', "git-receive-pack 'r'", [], true)],
    [['git', '-c', 'protocol.version=1', 'push', 'host:r'], ssh('host', "git-receive-pack 'r'")],
    [['git', '-c', 'protocol.version=0', 'fetch', 'host:r'], ssh('host', "git-upload-pack 'r'", [], true)],
    [['git', 'archive', '--remote=host:r', 'HEAD'], ssh('host', "git-upload-archive 'r'", [], true)],
    [['git', 'archive', '--remote', 'ssh://host:22/r', 'HEAD'], ssh('host', "git-upload-archive '/r'", ['-p', '22'], true)],
    [['git', 'send-pack', 'host:r', 'main'], ssh('host', "git-receive-pack 'r'", [], true)],
    [['git', 'fetch-pack', '--depth=1', 'host:r'], ssh('host', "git-upload-pack 'r'")],
    [['git', 'remote', 'add', '-f', 'x', 'host:r'], ssh('host', "git-upload-pack 'r'")],
    [['git', 'submodule', 'add', 'host:r', 'sub'], ssh('host', "git-upload-pack 'r'")],
  ] as [string[], string[]][]) {
    it(`hands back ${commandLine(handed)} for ${commandLine(argv)}, and a permit for git alone does not run it, in every form it is sent (regression: a permit for git ran ssh)`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [{ argv: handed, transport: 'ssh' }] });
      for (const command of forms(argv)) {
        assert.deepEqual(canonicalRun({ command }).commands.at(-1), handed, command.join(' '));
        assert.equal(decide(command).decision, 'deny', command.join(' '));
      }
    });
  }

  for (const [name, argv] of [
    ['an address git percent-decodes', ['git', 'fetch', 'ssh://host/r%27x']],
    ['a bracketed host', ['git', 'clone', 'ssh://[host:22]/r']],
    ['an address with no path', ['git', 'fetch', 'ssh://host']],
    ['a host starting with -, which git refuses', ['git', 'fetch', 'ssh://-oProxyCommand=x/r']],
    ['a port git reads with a sign', ['git', 'fetch', 'ssh://host:+22/r']],
    ['an option Corral does not know before a word that may be the address', ['git', 'fetch', '--newer-option', 'origin', 'host:r']],
  ] as [string, string[]][]) {
    it(`makes git with ${name} opaque (regression: decided as git alone)`, () => {
      assert.match(canonicalRun({ command: argv }).opaqueReason ?? '', /ssh address/);
    });
  }

  for (const argv of [
    ['git', 'clone', 'https://example.com/r.git', 'dst'],
    ['git', 'fetch', 'git://host/r'],
    ['git', 'fetch', 'file:///srv/r'],
    ['git', 'fetch', './x:y'],
    ['git', 'fetch', '/srv/x:y'],
    ['git', 'clone', '../a:b', 'dst'],
    ['git', 'fetch', 'origin'],
    ['git', 'fetch', 'origin', 'main:main'],
    ['git', 'push', 'origin', 'HEAD:refs/heads/x'],
    ['git', 'push', '-o', 'ci.skip', 'origin', 'a:b'],
    ['git', 'pull', '-s', 'ours', 'origin', 'main'],
    ['git', 'remote', 'add', 'x', 'host:r'],
    ['git', 'remote', 'set-url', 'origin', 'git@host:r'],
    ['git', 'archive', 'HEAD', 'a:b'],
    ['git', 'ls-remote', '--get-url'],
  ]) {
    it(`decides ${commandLine(argv)}, which reaches no ssh address on its command line, as git alone`, () => {
      assert.deepEqual(readGit(argv, 'git'), { runs: [] });
    });
  }

});
