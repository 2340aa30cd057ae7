import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalRun } from '../exec/canonical.ts';
import { runsCode, runsCodeOfAction } from './runs-code.ts';

/** Where a program may be named from: its bare name, a system directory, anywhere. */
const dir = fc.constantFrom('', '/usr/bin/', '/usr/local/bin/', '/opt/tools/bin/', './');
/** Any text at all as the code an agent hands over: long, empty, unicode, lone surrogates. */
const code = fc.string({ unit: 'binary', maxLength: 2000 });
/** Text that does not start with a dash (an operand, not an option). */
const operand = fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }).filter((s) => !s.startsWith('-'));

/**
 * Every program of the table with each way it is given code: [file names,
 * argv after the program (CODE stands for the code), what `via` must say].
 */
const COMBINATIONS: Array<[string[], string[], string]> = [
  [['python', 'python3', 'python3.12', 'python2.7', 'pypy3'], ['-c', 'CODE'], '-c'],
  [['python3', 'python3.12'], ['-cCODE'], '-c'],
  [['python3'], ['-I', '-S', '-c', 'CODE'], '-c'],
  [['python3'], ['-Sc', 'CODE'], '-c'],
  [['python3'], ['-W', 'ignore', '-c', 'CODE'], '-c'],
  [['python3', 'python3.12'], ['-'], 'stdin'],
  [['python3'], [], 'stdin'],
  [['python3'], ['-u'], 'stdin'],
  [['node', 'nodejs'], ['-e', 'CODE'], '-e'],
  [['node'], ['-p', 'CODE'], '-p'],
  [['node'], ['--eval', 'CODE'], '--eval'],
  [['node'], ['--eval=CODE'], '--eval'],
  [['node'], ['--print', 'CODE'], '--print'],
  [['node'], ['--input-type', 'module', '-e', 'CODE'], '-e'],
  [['node'], ['-r', 'dotenv/config', '-e', 'CODE'], '-e'],
  [['node'], ['-'], 'stdin'],
  [['deno'], ['eval', 'CODE'], 'eval'],
  [['deno'], ['eval', '--print', 'CODE'], 'eval'],
  [['deno'], ['repl', '--eval', 'CODE'], 'repl'],
  [['deno'], ['run', '--allow-all', '-'], 'stdin'],
  [['bun'], ['-e', 'CODE'], '-e'],
  [['bun'], ['--eval', 'CODE'], '--eval'],
  [['bun'], ['-p', 'CODE'], '-p'],
  [['bun'], ['--print=CODE'], '--print'],
  [['bun'], ['--cwd', '/srv/app', '-e', 'CODE'], '-e'],
  [['julia', 'julia1.10'], ['-e', 'CODE'], '-e'],
  [['julia'], ['-E', 'CODE'], '-E'],
  [['julia'], ['--eval', 'CODE'], '--eval'],
  [['julia'], ['-t', '4', '--startup-file=no', '-e', 'CODE'], '-e'],
  [['julia'], ['-'], 'stdin'],
  [['julia'], [], 'stdin'],
  [['psql'], ['-h', 'db', '-U', 'app', 'app'], 'stdin'],
  [['mysql', 'mariadb'], ['-u', 'app', 'app'], 'stdin'],
  [['sqlite3'], ['app.db'], 'stdin'],
  [['sqlite3'], ['-cmd', '.mode json', 'app.db'], 'stdin'],
  [['perl', 'perl5.36'], ['-e', 'CODE'], '-e'],
  [['perl'], ['-E', 'CODE'], '-E'],
  [['perl'], ['-lne', 'CODE'], '-e'],
  [['perl'], ['-lane', 'CODE'], '-e'],
  [['perl'], ['-pi.bak', '-e', 'CODE'], '-e'],
  [['perl'], ['-0777', '-ne', 'CODE'], '-e'],
  [['perl'], ['-MJSON::PP', '-e', 'CODE'], '-e'],
  [['perl'], [], 'stdin'],
  [['ruby', 'ruby3.2'], ['-e', 'CODE'], '-e'],
  [['ruby'], ['-ne', 'CODE'], '-e'],
  [['ruby'], ['-r', 'json', '-e', 'CODE'], '-e'],
  [['php', 'php8.2'], ['-r', 'CODE'], '-r'],
  [['php'], ['-R', 'CODE'], '-R'],
  [['php'], [], 'stdin'],
  [['lua', 'lua5.4', 'luajit'], ['-e', 'CODE'], '-e'],
  [['Rscript'], ['-e', 'CODE'], '-e'],
  [['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'csh', 'tcsh'], ['-c', 'CODE'], '-c'],
  [['bash'], ['-ec', 'CODE'], '-c'],
  [['bash'], ['-o', 'pipefail', '-c', 'CODE'], '-c'],
  [['bash', 'sh'], ['-s'], 'stdin'],
  [['sh'], [], 'stdin'],
  [['fish'], ['-c', 'CODE'], '-c'],
  [['fish'], ['--command', 'CODE'], '--command'],
  [['pwsh', 'powershell'], ['-c', 'CODE'], '-c'],
  [['pwsh'], ['-Command', 'CODE'], '-command'],
  [['pwsh'], ['-NoProfile', '-EncodedCommand', 'CODE'], '-encodedcommand'],
  [['pwsh'], ['-ec', 'CODE'], '-ec'],
  [['pwsh'], ['-ENC', 'CODE'], '-enc'],
  [['pwsh'], ['-ExecutionPolicy', 'Bypass', '-Command', 'CODE'], '-command'],
  [['pwsh'], ['-NoProfile'], 'stdin'],
  [['awk', 'gawk', 'mawk', 'nawk'], ['BEGIN{CODE}'], 'program text'],
  [['awk'], ['-F', ':', '{CODE}', '/etc/passwd'], 'program text'],
  [['awk'], ['-F:', '-v', 'x=1', '{CODE}'], 'program text'],
  [['awk'], ['--', '-CODE'], 'program text'],
  [['gawk'], ['-f', 'lib.awk', '-e', 'CODE'], '-e'],
  [['gawk'], ['--source', 'CODE'], '--source'],
  [['find'], ['.', '-name', '*.log', '-exec', 'CODE', ';'], '-exec'],
  [['find'], ['/srv', '-execdir', 'CODE', '{}', '+'], '-execdir'],
  [['find'], ['.', '-ok', 'CODE', ';'], '-ok'],
  [['xargs'], [], 'stdin'],
  [['xargs'], ['-0', 'rm', 'CODE'], 'stdin'],
  [['env'], ['-S', 'CODE'], '-S'],
  [['env'], ['-SCODE'], '-S'],
  [['env'], ['--split-string=CODE'], '--split-string'],
  [['env'], ['-u', 'HOME', '-vS', 'CODE'], '-S'],
  [['ssh'], ['build-host', 'CODE'], 'remote host'],
  [['ssh'], ['-p', '2222', 'deploy@example.com'], 'remote host'],
  [['rsync'], ['-e', 'CODE', 'a', 'host:b'], '-e'],
  [['rsync'], ['-avze', 'CODE', 'a', 'host:b'], '-e'],
  [['rsync'], ['--rsync-path=CODE', 'a', 'host:b'], '--rsync-path'],
  [['docker', 'podman', 'nerdctl'], ['run', '--rm', 'alpine', 'CODE'], 'run'],
  [['docker'], ['-H', 'tcp://builder:2375', 'run', 'image'], 'run'],
  [['docker'], ['exec', 'web', 'CODE'], 'exec'],
  [['docker'], ['container', 'run', 'image', 'CODE'], 'run'],
  [['docker'], ['compose', 'up'], 'up'],
  [['docker'], ['build', '.'], 'build'],
  [['kubectl', 'oc'], ['exec', 'web-0', '--', 'CODE'], 'exec'],
  [['kubectl'], ['-n', 'prod', '--context', 'eu', 'exec', '-it', 'web-0', '--', 'CODE'], 'exec'],
  [['kubectl'], ['run', 'tmp', '--image=alpine', '--', 'CODE'], 'run'],
  [['kubectl'], ['debug', 'node/n1', '-it', '--image=busybox'], 'debug'],
  [['npx', 'pnpx', 'bunx', 'uvx'], ['some-package', 'CODE'], 'package'],
  [['npx'], ['--yes', 'create-thing@latest', 'CODE'], 'package'],
  [['npm'], ['exec', 'some-package', '--', 'CODE'], 'exec'],
  [['npm'], ['--prefix', 'app', 'x', 'some-package'], 'x'],
  [['pnpm', 'yarn'], ['dlx', 'some-package', 'CODE'], 'dlx'],
  [['pipx'], ['run', 'some-package', 'CODE'], 'run'],
  [['gdb'], ['-batch', '-ex', 'CODE'], '-ex'],
  [['gdb'], ['./prog', '--eval-command=CODE'], '--eval-command'],
  [['flock'], ['/tmp/lock', '-c', 'CODE'], '-c'],
  [['flock'], ['-w', '5', '/tmp/lock', '--command', 'CODE'], '--command'],
];

describe('runsCode: the table of programs that run code their argv does not show', () => {
  it('flags every program of the table with every way it is given code, from any directory, whatever the code (fast-check)', () => {
    const combination = fc.constantFrom(...COMBINATIONS).chain(([programs, args, via]) => fc.record({ name: fc.constantFrom(...programs), args: fc.constant(args), via: fc.constant(via), dir, code }));
    fc.assert(
      fc.property(combination, ({ name, args, via, dir: where, code: text }) => {
        // An awk program or a find command standing where an operand must cannot start with a dash.
        const body = text.startsWith('-') ? ` ${text}` : text;
        const argv = [`${where}${name}`, ...args.map((a) => a.replace('CODE', body))];
        const found = runsCode(argv);
        assert.ok(found, `not flagged: ${JSON.stringify(argv).slice(0, 300)}`);
        assert.equal(found.program, name);
        assert.equal(found.via, via);
        assert.ok(found.reason.startsWith(`${name} `) && found.reason.includes('Corral cannot see'), found.reason);
      }),
      { numRuns: 2000 },
    );
  });

  it('says it in the words an approver reads: "python3 runs the code given with -c; Corral cannot see what it does"', () => {
    assert.deepEqual(runsCode(['python3', '-c', 'import os; os.system("id")']), { program: 'python3', via: '-c', reason: 'python3 runs the code given with -c; Corral cannot see what it does' });
    assert.equal(runsCode(['/usr/bin/python3.12', '-'])?.reason, 'python3.12 reads the code it runs from stdin; Corral cannot see what it does');
    assert.equal(runsCode(['env', 'LANG=C', '/usr/bin/python3', '-c', 'x'])?.reason, 'python3 runs the code given with -c; Corral cannot see what it does', 'the command env runs is read in turn');
    assert.equal(runsCode(['ssh', 'host', 'rm -rf /'])?.reason, 'ssh runs commands on another host; Corral cannot see what runs there');
  });

  it('flags a script run from a file, whatever follows it, as the script it names: python3 build.py, node app.js, sh x.sh, awk -f prog.awk (fast-check; regression: allow-always made a standing grant that covered whatever build.py held at each later run)', () => {
    const scripts: Array<[string, string[]]> = [
      ['python3', []], ['python3', ['-u', '-W', 'ignore']], ['python3.12', ['-I']], ['node', []], ['bun', []], ['bun', ['--cwd', '/srv/app']], ['julia', ['-t', '4']], ['node', ['--enable-source-maps', '-r', 'ts-node/register']], ['perl', ['-w']], ['ruby', ['-w']], ['php', []], ['bash', ['-e']], ['sh', []], ['lua', []], ['Rscript', []], ['fish', []], ['dc', []],
      ['java', ['-jar']], ['java', ['-cp', 'lib/*', '-jar']], ['swift', []], ['tclsh', []], ['tclsh8.6', ['-encoding', 'utf-8']], ['wish', []],
    ];
    const script = operand.filter((s) => !['install', 'i', 'add', 'a', 'remove', 'rm', 'update', 'outdated', 'link', 'unlink', 'pm', 'build', 'init', 'create', 'c', 'upgrade', 'publish', 'patch', 'audit', 'info', 'completions', 'run', 'test', 'package', 'help'].includes(s) && !/^\/(?:usr\/)?(?:local\/)?s?bin\//.test(s));
    fc.assert(
      fc.property(fc.constantFrom(...scripts), dir, script, fc.array(code, { maxLength: 8 }), ([name, options], where, file, rest) => {
        const found = runsCode([`${where}${name}`, ...options, file, ...rest]);
        assert.equal(found?.program, name);
        assert.equal(found?.via, 'script');
        assert.match(found.reason, /^[\x20-\x7e]{1,200}$/);
      }),
      { numRuns: 1000 },
    );
    assert.equal(runsCode(['perl', '-ie', 'script.pl'])?.reason, 'perl runs the script script.pl; what it does is what script.pl holds when it runs: an approval covers what it holds now', "perl's -i takes the rest of its word: `e` is the backup suffix, script.pl the script");
    assert.equal(runsCode(['awk', '-f', 'prog.awk', 'data.csv'])?.reason, 'awk runs the script prog.awk; what it does is what prog.awk holds when it runs: an approval covers what it holds now');
    assert.equal(runsCode(['gawk', '--file=lib/prog.awk', 'data.csv'])?.via, 'script');
    assert.equal(runsCode(['pwsh', '-NoProfile', '-File', 'deploy.ps1'])?.via, 'script');
    assert.equal(runsCode(['python3', `${'a'.repeat(41)}.py`])?.reason, 'python3 runs the script it names; what it does is what that file holds when it runs: an approval covers what it holds now', 'a long name is not spelled out');
  });

  it('says so in the words an approver reads: "python3 runs the script build.py; what it does is what build.py holds when it runs"', () => {
    assert.deepEqual(runsCode(['python3', 'build.py']), { program: 'python3', via: 'script', reason: 'python3 runs the script build.py; what it does is what build.py holds when it runs: an approval covers what it holds now', operand: 1 });
    assert.deepEqual(runsCode(['./deploy.sh', '--prod']), { program: 'deploy.sh', via: 'path', reason: "./deploy.sh is a file outside the system's program folders; what it does is what it holds when it runs: an approval covers what it holds now", operand: 0 });
    assert.equal(runsCode(['make', 'deploy'])?.reason, 'make runs the recipes of Makefile in its working directory; what it does is what they hold when it runs: approve it once, or permit it in policy');
    assert.equal(runsCode(['npm', 'test'])?.reason, 'npm test runs the scripts of package.json in its working directory; what it does is what package.json holds when it runs: approve it once, or permit it in policy');
    assert.equal(runsCode(['python3', '-m', 'pytest'])?.reason, 'python3 -m runs code from files on disk; what it does is what they hold when it runs: approve it once, or permit it in policy');
  });

  it('names the argv index of the one file a script run runs (what a node binds an approval to), null where a word names it with more, none for a script of package.json', () => {
    assert.equal(runsCode(['python3', '-W', 'ignore', 'build.py', 'x'])?.operand, 3);
    assert.equal(runsCode(['sh', 'x.sh'])?.operand, 1);
    assert.equal(runsCode(['node', '--', 'x.js'])?.operand, 2);
    assert.equal(runsCode(['./x.sh', 'a'])?.operand, 0);
    assert.equal(runsCode(['env', '-u', 'HOME', 'A=1', 'python3', 'build.py'])?.operand, 5, "in env's argv, not the command's it reads");
    assert.equal(runsCode(['awk', '-f', 'prog.awk', 'data.csv'])?.operand, 2);
    assert.equal(runsCode(['pwsh', '-NoProfile', '-File', 'deploy.ps1'])?.operand, 3);
    assert.equal(runsCode(['pwsh', '-NoProfile', 'deploy.ps1'])?.operand, 2);
    assert.equal(runsCode(['awk', '-fprog.awk', 'data.csv'])?.operand, null);
    assert.equal(runsCode(['gawk', '--file=prog.awk'])?.operand, null);
    assert.equal(runsCode(['yarn', 'build'])?.via, 'script');
    assert.equal(runsCode(['yarn', 'build'])?.operand, undefined);
    assert.equal(runsCode(['make'])?.operand, undefined);
    assert.equal(runsCode(['python3', '-c', 'x'])?.operand, undefined);
  });

  it('names no file for a script run whose options load code from another (node --require, --import, ruby -r, perl -M, php -d, lua -l, python3 -X pycache_prefix, java -javaagent, gawk -i, cmake -C), or that name more than one script file (awk -f a.awk -f b.awk, sed -f twice): the script is not all of it (regression: the script was bound alone, and what the option loaded ran unbound, allowed always)', () => {
    for (const argv of [['node', '--require', './evil.js', 'x.js'], ['node', '-r', './evil.js', 'x.js'], ['node', '--import=./evil.mjs', 'x.js'], ['node', '--loader', './e.mjs', 'x.js'], ['node', '--env-file=.env', 'x.js'], ['bun', '--preload', './e.ts', 'x.ts'], ['ruby', '-r./evil', 'x.rb'], ['ruby', '-r', './evil', 'x.rb'], ['perl', '-Mevil', 'x.pl'], ['perl', '-d:Evil', 'x.pl'], ['php', '-d', 'auto_prepend_file=evil.php', 'x.php'], ['php', '-c', 'evil.ini', 'x.php'], ['lua', '-l', 'evil', 'x.lua'], ['python3', '-X', 'pycache_prefix=/w/cache', 'build.py'], ['python3', '-Xpycache_prefix=/w/cache', 'build.py'], ['awk', '-f', 'a.awk', '-f', 'b.awk', 'd'], ['gawk', '-f', 'a.awk', '--file=b.awk'], ['gawk', '-f', 'a.awk', '-i', 'inc.awk'], ['gawk', '-f', 'a.awk', '--load', 'ext'], ['sed', '-f', 'a.sed', '-f', 'b.sed', 'd'], ['sed', '--file=a.sed', '-fb.sed', 'd'], ['java', '-javaagent:evil.jar', '-jar', 'x.jar'], ['java', '-agentpath:/w/e.so', 'Main.java'], ['java', '-XX:OnOutOfMemoryError=sh', '-jar', 'x.jar'], ['cmake', '-C', 'init.cmake', '-P', 'x.cmake']]) {
      const found = runsCode(argv);
      assert.equal(found?.via, 'script', JSON.stringify(argv));
      assert.equal(found?.operand, undefined, JSON.stringify(argv));
      assert.match(found?.reason ?? '', /and the code .+ loads; what it does is what those files hold when it runs: approve it once, or permit it in policy$/, JSON.stringify(argv));
    }
    assert.equal(runsCode(['node', '-r', './evil.js', '/usr/lib/node/x.js'])?.operand, undefined, 'a system script with code loaded besides is flagged too');
    assert.equal(runsCode(['node', '--enable-source-maps', 'x.js'])?.operand, 2);
    assert.equal(runsCode(['python3', '-X', 'dev', 'build.py'])?.operand, 3, 'an -X that loads nothing');
    assert.equal(runsCode(['java', '-Dapp.mode=prod', '-jar', 'x.jar'])?.operand, 3);
    assert.equal(runsCode(['sed', '-f', 'a.sed', '-e', 's/x/y/', 'd'])?.operand, 2, 'code given with -e is shown in the argv');
    assert.equal(runsCode(['cmake', '-P', 'x.cmake'])?.operand, 2);
  });

  it('names no file for a script found elsewhere than by its name from the working directory (ruby -C DIR, bun --cwd DIR, perl -S and ruby -S on PATH): the file a node reads by that name is not the one run (regression: the node bound ./x.rb and ruby ran DIR/x.rb)', () => {
    for (const argv of [['ruby', '-C', 'dir', 'x.rb'], ['ruby', '-Cdir', 'x.rb'], ['ruby', '-S', 'x.rb'], ['ruby', '-wS', 'x.rb'], ['perl', '-S', 'x.pl'], ['bun', '--cwd', 'dir', 'x.ts'], ['bun', '--cwd=dir', 'x.ts']]) {
      const found = runsCode(argv);
      assert.equal(found?.via, 'script', JSON.stringify(argv));
      assert.equal(found?.operand, undefined, JSON.stringify(argv));
      assert.match(found?.reason ?? '', /runs the script x\.(rb|pl|ts), found through (-C|-S|--cwd); what it does is what that file holds when it runs: approve it once, or permit it in policy$/, JSON.stringify(argv));
    }
    assert.equal(runsCode(['ruby', '-w', 'x.rb'])?.operand, 2);
  });

  it('names the word the interpreter runs after an option given its value as the next word, which it would otherwise take for the script (node --redirect-warnings FILE x.js, ruby --disable gems x.rb) (regression: the node bound the value, benign.js, and node ran evil.js unseen)', () => {
    assert.equal(runsCode(['node', '--redirect-warnings', 'benign.js', 'evil.js'])?.operand, 3);
    assert.equal(runsCode(['node', '--report-dir', 'd', '--title', 't', 'x.js'])?.operand, 5);
    assert.equal(runsCode(['node', '--inspect', 'x.js'])?.operand, 2, 'an optional value only ever follows =');
    assert.equal(runsCode(['ruby', '--disable', 'gems', 'x.rb'])?.operand, 3);
    assert.equal(runsCode(['php', '--php-ini', 'evil.ini', 'x.php'])?.operand, undefined, 'an ini file that may name code to prepend');
    assert.equal(runsCode(['php', '--define', 'auto_prepend_file=evil.php', 'x.php'])?.operand, undefined);
    assert.equal(runsCode(['node', '--openssl-config', 'o.cnf', 'x.js'])?.operand, undefined, 'OpenSSL loads the engines its configuration names');
    assert.equal(runsCode(['node', '--snapshot-blob', 's.blob', 'x.js'])?.operand, undefined, 'a startup snapshot holds code');
    assert.equal(runsCode(['php', '--process-file', 'x.php'])?.operand, undefined);
  });

  it('flags a script run by interpreters it did not know (tsx, ts-node, elixir, groovy, raku, gnuplot…), binding the script named first, and none after an option it does not know, which may take the next word (regression: tsx x.ts was no code at all, allowed always for whatever x.ts held)', () => {
    for (const program of ['tsx', 'ts-node', 'babel-node', 'esno', 'vite-node', 'zx', 'coffee', 'qjs', 'gjs', 'elixir', 'escript', 'groovy', 'jython', 'ipython', 'raku', 'expect', 'octave', 'gnuplot', 'xonsh', 'nu', 'racket', 'guile', 'sbcl', 'runghc', 'runhaskell', 'jshell', 'jbang']) {
      assert.equal(runsCode([program, 'x.src'])?.operand, 1, program);
      const unsure = runsCode([program, '--some-option', 'value', 'x.src']);
      assert.equal(unsure?.via, 'script', program);
      assert.equal(unsure?.operand, undefined, program);
      assert.match(unsure?.reason ?? '', /approve it once, or permit it in policy$/, program);
    }
    assert.equal(runsCode(['tsx', '-e', 'CODE'])?.via, '-e');
    assert.equal(runsCode(['gnuplot', '-e', 'system("x")'])?.via, '-e');
    assert.equal(runsCode(['tsx', '--version']), null);
  });

  it('keeps the verdict of code given by option or stdin over the script: python3 -c CODE build.py is code by -c, ./python3 -c CODE too', () => {
    assert.equal(runsCode(['python3', '-c', 'x', 'build.py'])?.via, '-c');
    assert.equal(runsCode(['./python3', '-c', 'x'])?.via, '-c');
    assert.equal(runsCode(['bash', '-s', 'x.sh'])?.via, 'stdin');
    assert.equal(runsCode(['node', '-'])?.via, 'stdin');
  });

  it('flags a program run from outside the system\'s folders, whatever its name and arguments: ./deploy.sh, ../tools/x, /opt/app/bin/x, /tmp/ls, /usr/bin/../../tmp/x (fast-check)', () => {
    const place = fc.constantFrom('./', '../tools/', 'bin/', '/opt/app/bin/', '/tmp/', '/home/agent/', '/usr/lib/x/', '/usr/bin/../../tmp/', '/usr/local/', '/snap/bin/');
    const name = fc.oneof(fc.constantFrom('deploy.sh', 'ls', 'git', 'x', 'gradlew', 'r\u00e9sum\u00e9', 'a b'), fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).filter((s) => !s.includes('/')));
    fc.assert(
      fc.property(place, name, fc.array(fc.oneof(code, fc.constantFrom('--version', '-h', '-c')), { maxLength: 6 }), (where, file, args) => {
        const found = runsCode([`${where}${file}`, ...args]);
        assert.ok(found, `not flagged: ${where}${file}`);
        assert.match(found.program, /^[A-Za-z0-9._+-]{1,64}$/);
        assert.match(found.reason, /^[\x20-\x7e]{1,200}$/);
      }),
      { numRuns: 1000 },
    );
    assert.equal(runsCode(['../tools/x'])?.via, 'path');
    assert.equal(runsCode(['/usr/bin/../../tmp/x'])?.via, 'path', '.. is not followed');
    assert.equal(runsCode(['env', 'A=1', './deploy.sh'])?.program, 'deploy.sh', 'the command env runs is read in turn');
  });

  it('flags a build tool that runs recipes from its working directory: make, npm test, npm run build, yarn build, pnpm test, just, rake, ninja, gradle, mvn, cargo, go test, node --run, deno task, bun run', () => {
    const cases: Array<[string[], string]> = [
      [['make'], 'recipes'], [['make', '-j8', 'all'], 'recipes'], [['gmake', '-C', 'src'], 'recipes'], [['just', 'deploy'], 'recipes'], [['rake', 'db:migrate'], 'recipes'], [['ninja', '-C', 'out'], 'recipes'],
      [['gradle', 'build'], 'recipes'], [['mvn', 'package'], 'recipes'], [['ant'], 'recipes'], [['scons'], 'recipes'], [['sbt', 'test'], 'recipes'], [['bazel', 'run', '//x'], 'recipes'], [['cargo', 'build'], 'recipes'], [['pytest', '-q'], 'recipes'], [['tox'], 'recipes'], [['nox'], 'recipes'],
      [['npm', 'test'], 'test'], [['npm', 'run', 'build'], 'run'], [['npm', '--prefix', 'app', 'start'], 'start'], [['npm', 't'], 't'], [['npm', 'run-script', 'lint'], 'run-script'],
      [['yarn', 'build'], 'script'], [['yarn', 'run', 'build'], 'run'], [['yarn', 'test'], 'script'], [['pnpm', 'build'], 'script'], [['pnpm', 'run', 'build'], 'run'],
      [['node', '--run', 'build'], '--run'], [['node', '--test'], '--test'], [['php', '-S', 'localhost:8000'], '-S'], [['php', '-f', 'x.php'], '-f'], [['python3', '-m', 'http.server'], '-m'],
      [['deno', 'run', '--allow-read', 'main.ts'], 'run'], [['deno', 'test'], 'test'], [['deno', 'task', 'build'], 'task'], [['bun', 'run', 'build'], 'run'], [['bun', 'test'], 'test'], [['bun', 'x.ts'], 'script'],
      [['go', 'run', '.'], 'run'], [['go', 'test', './...'], 'test'], [['go', 'generate'], 'generate'],
    ];
    for (const [argv, via] of cases) {
      for (const where of ['', '/usr/bin/', '/usr/local/bin/']) {
        const found = runsCode([`${where}${argv[0]!}`, ...argv.slice(1)]);
        assert.equal(found?.via, via, JSON.stringify(argv));
        // A script its node binds is approved for its content; the recipes and files of a project, once only.
        assert.match(found.reason, typeof found.operand === 'number' ? /when it runs: an approval covers what it holds now$/ : /when it runs: approve it once, or permit it in policy$/, JSON.stringify(argv));
      }
    }
  });

  it('does not flag programs outside the table named bare or in a system folder, whatever their options: ls -c, grep -e, git, cat, printf (fast-check)', () => {
    const others = fc.constantFrom('ls', 'grep', 'cat', 'printf', 'cp', 'tee', 'jq', 'curl', 'git', 'python3-config', 'nodemon', 'perldoc', 'shasum', 'awkward', 'sshd', 'dockerd', 'makepkg', 'npm-check');
    const system = fc.constantFrom('', '/usr/bin/', '/bin/', '/usr/sbin/', '/sbin/', '/usr/local/bin/', '/usr/local/sbin/', '/usr//bin/', '/usr/./bin/');
    fc.assert(
      fc.property(others, system, fc.array(fc.oneof(code, fc.constantFrom('-c', '-e', '-exec', 'run', 'exec', '-S', '--eval', '-')), { maxLength: 12 }), (name, where, args) => {
        assert.equal(runsCode([`${where}${name}`, ...args]), null);
      }),
      { numRuns: 1000 },
    );
    assert.equal(runsCode(['ls', '-c']), null);
    assert.equal(runsCode(['/usr/local/bin/x', 'y']), null, '/usr/local/bin is an administrator\'s install, not the agent\'s');
  });

  it('does not flag a program that only prints and exits, or reads state: python3 --version, make --version, ssh -V, docker ps, npm install --ignore-scripts, kubectl get pods', () => {
    for (const argv of [['python3', '--version'], ['python3', '-V'], ['node', '--version'], ['perl', '-v'], ['ssh', '-V'], ['xargs', '--version'], ['awk', '--version'], ['docker', 'ps', '-a'], ['kubectl', 'get', 'pods', '-n', 'prod'], ['find', '.', '-name', '*.ts'], ['env'], ['env', 'LANG=C', 'ls'], ['rsync', '-av', 'a', 'b'], ['deno', '--version'], ['bun', '--version'], ['bun', 'install', '--ignore-scripts'], ['julia', '--version'], ['npx', '--version'], ['npm', 'install', '--ignore-scripts'], ['npm', '--version'], ['pnpm', 'install', '--ignore-scripts'], ['yarn', 'add', '--ignore-scripts', 'left-pad'], ['yarn', '--version'], ['pipx', 'list'], ['make', '--version'], ['make', '-v'], ['gradle', '--version'], ['mvn', '-v'], ['cargo', '--version'], ['go', 'version'], ['go', 'build', './...'], ['bash', '--version'], ['sh', '/usr/bin/gettext.sh'], ['python3', '/usr/local/bin/tool']]) {
      assert.equal(runsCode(argv), null, JSON.stringify(argv));
    }
  });

  it("does not flag the ssh git's own transport runs (git-upload-pack 'PATH'), which the canonical run names as a command of its own", () => {
    assert.equal(runsCode(['ssh', '-o', 'SendEnv=GIT_PROTOCOL', '-p', '2222', 'git@example.com', "git-upload-pack 'org/repo.git'"]), null);
    assert.equal(runsCode(['ssh', 'git@example.com', "git-receive-pack 'it'\\''s.git'"]), null);
    assert.ok(runsCode(['ssh', 'git@example.com', "git-upload-pack 'x'; rm -rf ~"]), 'a command after it runs too');
  });

  it('flags a command a wrapper runs exactly as the command alone, its file counted in the whole argv: timeout 5 ./deploy.sh as ./deploy.sh, sudo -u root python3 build.py as python3 build.py (fast-check; regression: no warning, and an allow-always grant could be made)', () => {
    const wrappers = fc.constantFrom(
      ['nohup'], ['timeout', '5'], ['timeout', '-s', 'KILL', '-k5', '30s'], ['nice'], ['nice', '-n', '5'], ['nice', '-10'], ['sudo'], ['sudo', '-u', 'root', '-E'], ['sudo', '--user=root', 'A=1'], ['doas', '-u', 'root'], ['stdbuf', '-oL'], ['stdbuf', '-o', '0', '-eL'],
      ['setsid', '-w'], ['ionice', '-c', '3'], ['ionice', '-c2', '-n7'], ['chrt', '-o', '0'], ['chrt', '--idle', '0'], ['taskset', '0x1'], ['taskset', '-c', '0-3'], ['flock', '/tmp/lock'], ['flock', '-w', '5', '-x', '/tmp/lock'],
      ['xvfb-run', '-a', '-s', '-screen 0 1x1x8'], ['time', '-f', '%e'], ['/usr/bin/timeout', '--', '5'], ['env', 'A=1'], ['busybox'], ['sudo', 'timeout', '5', 'nice'],
    );
    const command = fc.oneof(
      fc.tuple(fc.constantFrom('./deploy.sh', '../tools/x', '/opt/app/bin/x'), fc.array(code, { maxLength: 4 })).map(([path, rest]) => [path, ...rest]),
      fc.tuple(fc.constantFrom(['python3'], ['sh', '-e'], ['node'], ['awk', '-f']), operand.filter((s) => !s.includes('/')), fc.array(code, { maxLength: 4 })).map(([head, file, rest]) => [...head, file, ...rest]),
      fc.tuple(fc.constantFrom(['python3', '-c'], ['make'], ['npm', 'install'], ['ls', '-l'], ['cat']), fc.array(code, { maxLength: 4 })).map(([head, rest]) => [...head, ...rest]),
    );
    fc.assert(
      fc.property(wrappers, command, (wrapper, inner) => {
        const alone = runsCode(inner);
        const wrapped = runsCode([...wrapper, ...inner]);
        assert.deepEqual(wrapped, alone === null || typeof alone.operand !== 'number' ? alone : { ...alone, operand: alone.operand + wrapper.length });
      }),
      { numRuns: 2000 },
    );
    assert.deepEqual(runsCode(['timeout', '5', './deploy.sh', '--prod']), { ...runsCode(['./deploy.sh', '--prod']), operand: 2 });
  });

  it('does not flag a wrapper of a command that runs none, or one that names processes rather than a command: timeout 5 ls, sudo -l, taskset -p 1234, busybox ls', () => {
    for (const argv of [['timeout', '5', 'ls'], ['nohup', 'sleep', '1'], ['nice', '-n', '5', 'tar', 'cf', 'a.tar', 'src'], ['sudo', '-l'], ['sudo', '-l', './deploy.sh'], ['sudo', '-v'], ['taskset', '-p', '1234'], ['taskset', '-pc', '0', '1234'], ['chrt', '-p', '1234'], ['chrt', '-m'], ['ionice', '-p', '1234'], ['flock', '/tmp/lock', 'true'], ['flock', '9'], ['busybox', 'ls', '-l'], ['busybox', '--list'], ['timeout', '--version'], ['timeout', '5']]) {
      assert.equal(runsCode(argv), null, JSON.stringify(argv));
    }
  });

  describe('given hostile input', () => {
    it('never throws, and any reason it gives is printable ASCII of at most 200 characters, whatever the value (fast-check)', () => {
      const program = fc.oneof(fc.constantFrom('python3', '/usr/bin/python3.12', 'awk', 'aw\u212A', 'PYTHON3', 'pytho\u0578', 'env', 'pwsh', 'find', 'ssh', 'docker', 'timeout', 'flock', 'sudo', 'busybox', 'npm', 'yarn', 'composer', 'uv', 'bundle', 'sed', 'java', 'gdb', 'cmake', 'tclsh'), fc.string({ unit: 'binary' }));
      const word = fc.oneof(code, fc.constantFrom('-c', '-e', '--', '-', '-S', '--eval=', '-exec', 'run', 'LANG=C', '-Comm\u0430nd', 'install', 'exec', '-f', '-x', '-jar', '-P', '--ignore-scripts', '-cp', './x', 'python3', 'x.py'));
      fc.assert(
        fc.property(fc.oneof(fc.anything(), fc.tuple(program, fc.array(word, { maxLength: 20 })).map(([p, rest]) => [p, ...rest])), (value) => {
          for (const found of [runsCode(value), runsCodeOfAction({ argv: value }), runsCodeOfAction({ commands: [value] }), runsCodeOfAction(value)]) {
            if (found === null) continue;
            assert.match(found.reason, /^[\x20-\x7e]{1,200}$/);
            assert.match(found.program, /^[\x20-\x7e]{1,64}$/);
          }
        }),
        { numRuns: 3000 },
      );
    });

    it('does not take a name that lowercases into one of the table for it (the Kelvin sign K of "awK")', () => {
      assert.equal(runsCode(['aw\u212A', 'BEGIN{}']), null);
    });

    it('reads a very long argv: 4096 words, a program name of 100,000 digits, an env chain 1,000 deep', () => {
      const many = ['python3', ...Array.from({ length: 4094 }, () => '-W' + 'x'.repeat(30)), '-c'];
      assert.equal(runsCode(many)?.via, '-c');
      assert.equal(runsCode([`python${'3.'.repeat(50_000)}`, '-c', 'x']), null, 'longer than any name in the table');
      assert.equal(runsCode([...Array.from({ length: 1000 }, () => 'env'), 'python3', '-c', 'x']), null, 'past the depth it reads');
      assert.equal(runsCode(['env', 'env', 'python3', '-c', 'x'])?.program, 'python3');
    });
  });
});

describe('runsCodeOfAction: an approval action', () => {
  it('reads every command of the run, so a wrapper looked through is not what is judged: sh -c "curl … | python3 -" is flagged by its python3', () => {
    const found = runsCodeOfAction({ argv: ['sh', '-c', 'curl -s https://x | python3 -'], commands: [['curl', '-s', 'https://x'], ['python3', '-']] });
    assert.equal(found?.program, 'python3');
    assert.equal(found?.via, 'stdin');
  });

  it('reads the command a wrapper runs, which the canonical run does not: timeout 5 ./deploy.sh is one command, not ./deploy.sh, and is flagged as ./deploy.sh is (regression: not flagged)', () => {
    for (const argv of [['timeout', '5', './deploy.sh'], ['nohup', './deploy.sh'], ['sudo', '-u', 'root', './deploy.sh']]) {
      const run = canonicalRun({ command: argv, cwd: '/srv/app' });
      assert.deepEqual(run.commands, [argv], 'the wrapper is not looked through');
      assert.equal(run.opaque, true, 'and the run is opaque: policy denies it before any approver sees it');
      assert.deepEqual(runsCodeOfAction({ argv: run.argv, commands: run.commands }), runsCodeOfAction({ argv: ['./deploy.sh'] }));
    }
  });

  it('does not flag a shell wrapper the canonical run looked through (sh -c "ls -la"): its commands are what runs', () => {
    assert.equal(runsCodeOfAction({ argv: ['sh', '-c', 'ls -la'], commands: [['ls', '-la']] }), null);
  });

  it('reads the argv when the action has no commands, and nothing of a named command (payment.create)', () => {
    assert.equal(runsCodeOfAction({ argv: ['node', '-e', '1'] })?.via, '-e');
    assert.equal(runsCodeOfAction({ command: 'payment.create', params: { amount: 1 } }), null);
    assert.equal(runsCodeOfAction(null), null);
  });
});

describe('a package manager command that starts a program its settings name, or fetches code later runs execute', () => {
  it("warns of npm docs, bugs, repo, home, fund PKG and help TOPIC, by every name npm reads as them: they start the browser or viewer npm's settings name, any program a project's .npmrc sets (regression: npm docs x was read as npm x, npm help install as an install, npm repo x not at all)", () => {
    for (const argv of [['npm', 'docs', 'left-pad'], ['npm', 'home', 'left-pad'], ['npm', 'ho'], ['npm', 'bugs'], ['npm', 'b', 'left-pad'], ['npm', 'issues'], ['npm', 'repo', 'left-pad'], ['npm', 'rep'], ['npm', 'fund', 'left-pad'], ['npm', 'help', 'install'], ['npm', 'hlep', 'config'], ['npm', '--prefix', 'app', 'docs']]) {
      const found = runsCode(argv);
      assert.equal(found?.via, argv.find((word, i) => i > 0 && !word.startsWith('-') && word !== 'app'), argv.join(' '));
      assert.match(found?.reason ?? '', /^npm [a-z]+ starts the browser or viewer npm's settings name, any program a project's \.npmrc sets; Corral cannot see what it does$/, argv.join(' '));
    }
    assert.equal(runsCode(['npm', 'view', 'left-pad', 'homepage']), null, 'npm view prints the address and starts nothing');
  });

  it('warns of yarn plugin import, yarn set version and yarn policies set-version: they fetch code every later yarn command of the project runs (regression: set version and policies set-version were not flagged, plugin import was told as an install that --ignore-scripts stopped)', () => {
    for (const [argv, via] of [[['yarn', 'plugin', 'import', 'https://example.com/plugin.js'], 'plugin import'], [['yarn', 'plugin', 'import', './plugin.cjs', '--ignore-scripts'], 'plugin import'], [['yarn', 'set', 'version', 'https://example.com/yarn.cjs'], 'set version'], [['yarn', 'set', 'version', 'from', 'sources'], 'set version'], [['yarnpkg', 'policies', 'set-version', '1.22.22'], 'policies set-version'], [['yarn', '--cwd', 'app', 'set', 'version', 'stable'], 'set version']] as const) {
      const found = runsCode([...argv]);
      assert.equal(found?.via, via, argv.join(' '));
      assert.match(found?.reason ?? '', /fetches code that every later yarn(?:pkg)? command in the project runs \(a plugin, or yarn(?:pkg)? itself\); Corral cannot see what it does, nor what later runs will do$/, argv.join(' '));
    }
    for (const argv of [['yarn', 'plugin', 'list'], ['yarn', 'set', 'resolution', 'x@npm:1', '1.0.0'], ['yarn', 'policies', 'list']]) assert.equal(runsCode(argv), null, argv.join(' '));
  });

  it('warns of yarn global add, whose install scripts run, unless given --ignore-scripts', () => {
    assert.equal(runsCode(['yarn', 'global', 'add', 'left-pad'])?.via, 'add');
    assert.equal(runsCode(['yarn', 'global', 'add', 'left-pad', '--ignore-scripts']), null);
  });
});
