// Programs better known for something else that run a command their argv
// names: the approver is told, and no standing grant is made for them. Each
// is run for real, where installed, to show the command runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runsCode } from './runs-code.ts';

const installed = (program: string): boolean => spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;

describe('a program that runs a command its options or script name', () => {
  let dir = '';
  let marker = '';
  let cmd = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-runs-code-'));
    marker = join(dir, 'ran');
    cmd = join(dir, 'cmd');
    writeFileSync(cmd, `#!/bin/sh\n: > '${marker}'\ncat >/dev/null\n`);
    chmodSync(cmd, 0o755);
    writeFileSync(join(dir, 'f.txt'), 'hi\n');
    if (installed('tar')) spawnSync('tar', ['cf', 'a.tar', 'f.txt'], { cwd: dir });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ran = (argv: string[]): boolean => {
    rmSync(marker, { force: true });
    spawnSync(argv[0]!, argv.slice(1), { cwd: dir, input: '', timeout: 60_000, stdio: ['pipe', 'ignore', 'ignore'] });
    return existsSync(marker);
  };

  // [argv, what `via` must say]; CMD stands for the command.
  const cases: Array<[string[], string]> = [
    [['sed', '-n', '1e CMD', 'f.txt'], 'e command'],
    [['sed', 's|.*|CMD|e', 'f.txt'], 'e command'],
    [['sed', '-e', 's,hi,CMD,e', 'f.txt'], 'e command'],
    [['sed', '--expression=1e CMD', 'f.txt'], 'e command'],
    [['tar', 'xf', 'a.tar', '--to-command=CMD'], '--to-command'],
    [['tar', 'xf', 'a.tar', '--to-com=CMD'], '--to-command'],
    [['tar', '-tf', 'a.tar', '--checkpoint=1', '--checkpoint-action=exec=CMD'], '--checkpoint-action'],
    [['tar', '-cf', 'b.tar', '-I', 'CMD', 'f.txt'], '-I'],
    [['tar', 'cIf', 'CMD', 'b.tar', 'f.txt'], '-I'],
    [['zip', '-q', 'b.zip', 'f.txt', '-T', '-TT', 'CMD'], '-TT'],
    [['vim', '-es', '-c', '!CMD', '-c', 'qa!'], '-c'],
    [['vim', '-es', '+!CMD', '+qa!'], '+'],
    [['man', '-P', 'CMD', 'ls'], '-P'],
    [['socat', '-', 'EXEC:CMD'], 'EXEC:'],
    [['dc', '-e', '!CMD'], '-e'],
    [['ncat', '-l', '--sh-exec', 'CMD'], '--sh-exec'],
    [['emacs', '--batch', '--eval', '(shell-command "CMD")'], '--eval'],
    [['sqlite3', ':memory:', '.shell CMD'], 'dot-command'],
    [['sqlite3', ':memory:', '.sy CMD'], 'dot-command'],
    [['sqlite3', '-cmd', '.system CMD', ':memory:', 'select 1'], 'dot-command'],
    [['sqlite3', ':memory:', '.once |CMD', 'select 1'], 'dot-command'],
    [['psql', '-h', 'db', '-c', '\\! CMD'], 'meta-command'],
    [['psql', '-c', 'select 1 \\g |CMD'], 'meta-command'],
    [['psql', '-c', "\\copy t from program 'CMD'"], 'meta-command'],
    [['mysql', '-e', 'select 1; system CMD'], 'client command'],
    [['mariadb', '--execute=\\! CMD'], 'client command'],
    [['scp', '-S', 'CMD', 'f.txt', 'host:f.txt'], '-S'],
    [['scp', '-qrSCMD', 'f.txt', 'host:f.txt'], '-S'],
    [['scp', '-o', 'ProxyCommand=CMD', 'f.txt', 'host:f.txt'], '-o ProxyCommand'],
    [['scp', '-oproxycommand CMD', 'f.txt', 'host:f.txt'], '-o ProxyCommand'],
    [['sftp', '-o', 'LocalCommand=CMD', '-o', 'PermitLocalCommand=yes', 'host'], '-o LocalCommand'],
    [['sftp', '-D', 'CMD'], '-D'],
  ];
  for (const [template, via] of cases) {
    it(`warns of ${template.join(' ')}: it runs CMD (regression: no warning, and an allow-always grant could be made)`, () => {
      const argv = template.map((word) => word.replace('CMD', cmd));
      // ncat -l and socat would wait for a peer, man runs its pager only on a terminal, psql and mysql need a server, scp and sftp wait on the program they start: only what runs here by itself is run.
      if (installed(argv[0]!) && !['ncat', 'socat', 'man', 'psql', 'mysql', 'mariadb', 'scp', 'sftp'].includes(argv[0]!)) assert.equal(ran(argv), true, `${argv[0]} runs the command`);
      assert.equal(runsCode(argv)?.via, via);
    });
  }

  for (const argv of [['sed', '-n', 's/^vendor: //p', 'f.txt'], ['sed', 's/e/E/g', 'f.txt'], ['tar', '-xzf', 'a.tar.gz'], ['tar', 'tvf', 'a.tar'], ['zip', '-r', 'b.zip', 'dir'], ['vim', '+10', 'f.txt'], ['man', 'ls'], ['socat', '-', 'TCP:host:80'], ['sqlite3', 'app.db', 'select * from t'], ['sqlite3', 'app.db', '.tables'], ['sqlite3', 'app.db', '.show'], ['sqlite3', '-json', 'app.db', '.schema'], ['psql', '-c', 'select 1'], ['psql', '-Atc', 'select 1'], ['psql', '-f', 'migrate.sql'], ['psql', '--list'], ['mysql', '-e', 'show databases'], ['mysql', '--version'], ['scp', '-oStrictHostKeyChecking=no', '-i', 'id_Sx', 'f.txt', 'host:f.txt'], ['scp', '-P', '2222', '-o', 'ProxyJump=bastion', 'f.txt', 'host:'], ['sftp', '-b', 'batch.txt', 'host']]) {
    it(`does not warn of ${argv.join(' ')}, which runs no command`, () => assert.equal(runsCode(argv), null));
  }
});

// Programs that run code from files or packages that may change (a project's
// install scripts, its build files, a script file), that start it outside the
// run (cron, at, a service), or that wrap a command which does: the approver
// is told, and the run may be allowed once only. Each is run for real, where
// installed and where it runs nothing beyond the test's folder.
describe('a program that runs a project\'s install scripts or build files, a script file, or a wrapped command', () => {
  let dir = '';
  let marker = '';
  let cmd = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-runs-code-files-'));
    marker = join(dir, 'ran');
    cmd = join(dir, 'cmd');
    writeFileSync(cmd, `#!/bin/sh\n: > '${marker}'\n`);
    chmodSync(cmd, 0o755);
    writeFileSync(join(dir, 'f.txt'), 'hi\n');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0', private: true, scripts: { preinstall: cmd } }));
    writeFileSync(join(dir, 'x.sed'), `1e ${cmd}\n`);
    writeFileSync(join(dir, 'x.gdb'), `shell ${cmd}\n`);
    writeFileSync(join(dir, 'x.cmake'), `execute_process(COMMAND ${cmd})\n`);
    mkdirSync(join(dir, 'project'));
    writeFileSync(join(dir, 'project', 'CMakeLists.txt'), `cmake_minimum_required(VERSION 3.10)\nproject(x NONE)\nexecute_process(COMMAND ${cmd})\n`);
    writeFileSync(join(dir, 'Main.java'), `class Main { public static void main(String[] a) throws Exception { new ProcessBuilder("${cmd}").start().waitFor(); } }\n`);
    writeFileSync(join(dir, 'x.tcl'), `exec ${cmd}\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ran = (argv: string[]): boolean => {
    rmSync(marker, { force: true });
    spawnSync(argv[0]!, argv.slice(1), { cwd: dir, input: '', timeout: 120_000, stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
    return existsSync(marker);
  };

  // What `via` must say, and the argv index of the file it runs where it names one; `run`: run it here to show CMD runs. CMD stands for the command, a file outside the system's folders.
  const cases: Array<{ argv: string[]; via: string; operand?: number; run?: true }> = [
    { argv: ['npm', 'install'], via: 'install', run: true },
    { argv: ['npm', 'ci'], via: 'ci' },
    { argv: ['npm', 'i', 'left-pad'], via: 'i' },
    { argv: ['npm', '--prefix', 'app', 'rebuild'], via: 'rebuild' },
    { argv: ['pnpm', 'install'], via: 'install' },
    { argv: ['yarn'], via: 'install' },
    { argv: ['yarn', 'add', 'left-pad'], via: 'add' },
    { argv: ['bun', 'install'], via: 'install' },
    { argv: ['pip', 'install', '.'], via: 'install' },
    { argv: ['pip3', 'install', '-e', '.'], via: 'install' },
    { argv: ['pip3.12', 'install', 'requests'], via: 'install' },
    { argv: ['pipx', 'install', 'black'], via: 'install' },
    { argv: ['composer', 'install'], via: 'install' },
    { argv: ['composer', 'update'], via: 'update' },
    { argv: ['composer', 'test'], via: 'script' },
    { argv: ['composer', 'run-script', 'post-install-cmd'], via: 'run-script' },
    { argv: ['bundle', 'exec', 'rspec'], via: 'exec' },
    { argv: ['bundle', 'exec', 'ruby', 'x.rb'], via: 'exec' },
    { argv: ['bundle', 'exec', 'ruby', '-e', 'CMD'], via: '-e' },
    { argv: ['bundle', 'install'], via: 'install' },
    { argv: ['uv', 'run', 'black', '.'], via: 'run' },
    { argv: ['uv', 'run', '--', 'python3', 'x.py'], via: 'run' },
    { argv: ['uv', 'run', 'python3', '-c', 'CMD'], via: '-c' },
    { argv: ['uv', 'sync'], via: 'sync' },
    { argv: ['poetry', 'run', 'pytest'], via: 'recipes' },
    { argv: ['poetry', 'install'], via: 'install' },
    { argv: ['pipenv', 'run', 'python', 'manage.py', 'migrate'], via: 'run' },
    { argv: ['pipenv', 'run', './deploy.sh'], via: 'run' },
    { argv: ['dotnet', 'run'], via: 'run' },
    { argv: ['dotnet', 'test'], via: 'test' },
    { argv: ['cmake', '-S', 'project', '-B', 'build'], via: 'recipes', run: true },
    { argv: ['cmake', '--build', 'build'], via: 'recipes' },
    { argv: ['cmake', '-P', 'x.cmake'], via: 'script', operand: 2, run: true },
    { argv: ['meson', 'compile'], via: 'compile' },
    { argv: ['meson', 'test', '-C', 'build'], via: 'test' },
    { argv: ['task', 'build'], via: 'recipes' },
    { argv: ['mise', 'run', 'build'], via: 'run' },
    { argv: ['mise', 'r', 'build'], via: 'r' },
    { argv: ['mise', 'tasks', 'run', 'build'], via: 'run' },
    { argv: ['mise', 'watch', 'build'], via: 'watch' },
    { argv: ['terraform', 'apply'], via: 'apply' },
    { argv: ['terraform', '-chdir=infra', 'plan'], via: 'plan' },
    { argv: ['tofu', 'apply', '-auto-approve'], via: 'apply' },
    { argv: ['ansible-playbook', '-i', 'hosts', 'site.yml'], via: 'playbook' },
    { argv: ['java', 'Main.java'], via: 'script', operand: 1, run: true },
    { argv: ['java', '-cp', 'lib/*', '-jar', 'app.jar'], via: 'script', operand: 4 },
    { argv: ['java', '-cp', '.', 'Main'], via: 'class' },
    { argv: ['java', '-m', 'app/app.Main'], via: '-m' },
    { argv: ['swift', 'x.swift'], via: 'script', operand: 1 },
    { argv: ['swift', 'build'], via: 'build' },
    { argv: ['tclsh', 'x.tcl'], via: 'script', operand: 1, run: true },
    { argv: ['wish', 'x.tcl'], via: 'script', operand: 1 },
    { argv: ['gdb', '-batch', '-x', 'x.gdb'], via: 'script', operand: 3, run: true },
    { argv: ['gdb', '-batch', '-ex', 'shell CMD'], via: '-ex', run: true },
    { argv: ['sed', '-n', '-f', 'x.sed', 'f.txt'], via: 'script', operand: 3, run: true },
    { argv: ['sed', '--file', 'x.sed', 'f.txt'], via: 'script', operand: 2 },
    { argv: ['busybox', 'sh', 'x.sh'], via: 'script', operand: 2 },
    { argv: ['busybox', 'ash', '-c', 'CMD'], via: '-c' },
    { argv: ['crontab', 'jobs.txt'], via: 'schedule' },
    { argv: ['crontab', '-'], via: 'schedule' },
    { argv: ['at', 'now', '+', '1', 'minute'], via: 'schedule' },
    { argv: ['at', '-f', 'job.sh', 'midnight'], via: 'schedule' },
    { argv: ['batch'], via: 'schedule' },
    { argv: ['systemd-run', '--user', '--on-calendar=hourly', 'CMD'], via: 'service' },
    { argv: ['nohup', 'CMD'], via: 'path', operand: 1, run: true },
    { argv: ['timeout', '5', 'CMD'], via: 'path', operand: 2, run: true },
    { argv: ['nice', '-n', '5', 'CMD'], via: 'path', operand: 3, run: true },
    { argv: ['sudo', '-u', 'root', 'CMD'], via: 'path', operand: 3 },
    { argv: ['stdbuf', '-oL', 'CMD'], via: 'path', operand: 2, run: true },
    { argv: ['setsid', '-w', 'CMD'], via: 'path', operand: 2, run: true },
    { argv: ['ionice', '-c', '3', 'CMD'], via: 'path', operand: 3, run: true },
    { argv: ['chrt', '-o', '0', 'CMD'], via: 'path', operand: 3, run: true },
    { argv: ['taskset', '-c', '0', 'CMD'], via: 'path', operand: 3, run: true },
    { argv: ['flock', 'f.txt', 'CMD'], via: 'path', operand: 2, run: true },
    { argv: ['flock', 'f.txt', '-c', 'CMD'], via: '-c', run: true },
    { argv: ['xvfb-run', '-a', 'CMD'], via: 'path', operand: 2 },
  ];
  for (const { argv: template, via, operand, run } of cases) {
    it(`warns of ${template.join(' ')}${operand === undefined ? '' : `, naming word ${operand}`} (regression: no warning, and an allow-always grant could be made)`, () => {
      const argv = template.map((word) => word.replace('CMD', cmd));
      if (run && installed(argv[0]!)) assert.equal(ran(argv), true, `${argv[0]} runs the command`);
      const found = runsCode(argv);
      assert.equal(found?.via, via);
      assert.equal(found.operand, operand);
      assert.match(found.reason, /^[\x20-\x7e]{1,200}$/);
    });
  }

  it('does not warn of npm install --ignore-scripts, which runs no install script (run here where npm is)', () => {
    if (installed('npm')) assert.equal(ran(['npm', 'install', '--ignore-scripts']), false);
    assert.equal(runsCode(['npm', 'install', '--ignore-scripts']), null);
  });

  for (const argv of [['npm', 'ci', '--ignore-scripts'], ['npm', 'install', '--help'], ['pnpm', 'add', 'x', '--ignore-scripts=true'], ['composer', 'install', '--no-scripts'], ['composer', 'show'], ['pip', '--version'], ['pip', 'list'], ['pip', 'show', 'requests'], ['uv', '--version'], ['poetry', 'show'], ['bundle', '--version'], ['dotnet', '--info'], ['cmake', '--version'], ['meson', '--version'], ['task', '--list'], ['mise', 'ls'], ['mise', 'install'], ['terraform', 'fmt'], ['terraform', 'version'], ['java', '-version'], ['java'], ['swift', '--version'], ['gdb', '--version'], ['gdb', '-batch', './prog'], ['sed', '-n', '1p', 'f.txt'], ['crontab', '-l'], ['at', '-l'], ['systemd-run', '--version'], ['busybox', 'ls']]) {
    it(`does not warn of ${argv.join(' ')}, which runs no code of its files`, () => assert.equal(runsCode(argv), null));
  }
});
