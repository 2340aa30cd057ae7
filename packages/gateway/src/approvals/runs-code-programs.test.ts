// Programs better known for something else that run a command their argv
// names: the approver is told, and no standing grant is made for them. Each
// is run for real, where installed, to show the command runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
