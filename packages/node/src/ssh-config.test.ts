// Which ssh runs read a configuration file the sandbox could have written, or name a program to run on their command line.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { planSandbox, Runner, validatePolicy, type ContainerPolicyInput, type SandboxPlan } from '@corral/contain';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { refuseWritableSshConfig } from './ssh-config.ts';
import type { LocalPolicyFile } from './local-policy.ts';

const allowlist: LocalPolicyFile = { version: 1, defaults: { security: 'allowlist' } };
const denied = (path: string) => (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && e.message.includes(`at ${path},`);
const refused = (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED';

const plan = (cwd: string, mounts: SandboxPlan['mounts'], env: Record<string, string> = {}): SandboxPlan => ({ env: { PATH: '/usr/bin', HOME: '/nonexistent-home', ...env }, mounts: [{ kind: 'ro', path: '/usr/bin' }, ...mounts], cwd }) as unknown as SandboxPlan;
const ssh = (...args: string[]) => ({ commands: [['ssh', ...args]] });

/** A home folder with `.ssh/config` holding `config`. */
function home(config: string): string {
  const dir = tempDir('corral-ssh-home-');
  mkdirSync(join(dir, '.ssh'));
  writeFileSync(join(dir, '.ssh', 'config'), config);
  return dir;
}

describe('an allowed ssh run, under an allowlist', () => {
  it('is refused when HOME is a read-write grant, naming its ~/.ssh/config: an earlier run may have set a ProxyCommand there', () => {
    const dir = home('Host *\n  ProxyCommand /tmp/planted\n');
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('example.org', 'true'), plan(dir, [{ kind: 'rw', path: dir }], { HOME: dir })), denied(join(dir, '.ssh', 'config')));
    assert.throws(() => refuseWritableSshConfig(allowlist, { commands: [['/usr/bin/ssh', 'example.org']] }, plan(dir, [{ kind: 'rw', path: dir }], { HOME: dir })), denied(join(dir, '.ssh', 'config')));
  });

  it('runs with a read-only, machine-owned configuration, even one that sets a ProxyCommand', () => {
    const dir = home('Host *\n  ProxyCommand /usr/bin/nc %h %p\n');
    assert.doesNotThrow(() => refuseWritableSshConfig(allowlist, ssh('example.org', 'true'), plan(dir, [{ kind: 'ro', path: dir }], { HOME: dir })));
    assert.doesNotThrow(() => refuseWritableSshConfig(allowlist, ssh('-F', join(dir, '.ssh', 'config'), 'example.org'), plan(dir, [{ kind: 'ro', path: dir }])));
  });

  it('is refused for a -F file in a read-write grant, joined or apart, and runs with -F none', () => {
    const dir = tempDir('corral-ssh-f-');
    writeFileSync(join(dir, 'cfg'), 'Host *\n');
    const mounts: SandboxPlan['mounts'] = [{ kind: 'rw', path: dir }];
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('-F', join(dir, 'cfg'), 'example.org'), plan('/', mounts)), denied(join(dir, 'cfg')));
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('-qF', 'cfg', 'example.org'), plan(dir, mounts)), denied(join(dir, 'cfg')));
    // With HOME in the grant too, -F none reads neither file.
    assert.doesNotThrow(() => refuseWritableSshConfig(allowlist, ssh('-F', 'none', 'example.org'), plan(dir, mounts, { HOME: dir })));
  });

  it("is refused when a read-only configuration includes a file the sandbox can write, relative ones taken from ~/.ssh, globs by their folder", () => {
    const dir = home('Include conf.d/*.conf\n');
    mkdirSync(join(dir, '.ssh', 'conf.d'));
    const mounts: SandboxPlan['mounts'] = [{ kind: 'ro', path: dir }, { kind: 'rw', path: join(dir, '.ssh', 'conf.d') }];
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('example.org'), plan(dir, mounts, { HOME: dir })), denied(join(dir, '.ssh', 'conf.d')));
    const other = tempDir('corral-ssh-inc-');
    writeFileSync(join(other, 'extra'), 'Include ' + join(other, 'rw', 'planted') + '\n');
    mkdirSync(join(other, 'rw'));
    const chain = home(`Include ${join(other, 'extra')}\n`);
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('example.org'), plan(chain, [{ kind: 'ro', path: chain }, { kind: 'ro', path: other }, { kind: 'rw', path: join(other, 'rw') }], { HOME: chain })), denied(join(other, 'rw', 'planted')));
  });

  it('is refused when Includes loop deeper than ssh follows them, or a file included cannot be read', () => {
    const dir = tempDir('corral-ssh-loop-');
    for (let i = 0; i < 20; i++) writeFileSync(join(dir, `c${i}`), `Include ${join(dir, `c${i + 1}`)}\n`);
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('-F', join(dir, 'c0'), 'example.org'), plan('/', [{ kind: 'ro', path: dir }])), refused);
    const odd = tempDir('corral-ssh-dir-');
    mkdirSync(join(odd, 'sub'));
    writeFileSync(join(odd, 'cfg'), `Include ${join(odd, 'sub')}\n`);
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('-F', join(odd, 'cfg'), 'example.org'), plan('/', [{ kind: 'ro', path: odd }])), refused);
  });

  it('is refused with HOME in its own /tmp when an earlier command of the run could write ~/.ssh/config, and runs as the only command', () => {
    const tmpHome = '/tmp/corral-ssh-home-that-is-not-there';
    const ro = tempDir('corral-ssh-ro-');
    assert.throws(() => refuseWritableSshConfig(allowlist, { commands: [['tee', `${tmpHome}/.ssh/config`], ['ssh', 'example.org']] }, plan(ro, [{ kind: 'ro', path: ro }], { HOME: tmpHome })), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && /an earlier command of this run can write/.test(e.message));
    assert.doesNotThrow(() => refuseWritableSshConfig(allowlist, ssh('example.org'), plan(ro, [{ kind: 'ro', path: ro }], { HOME: tmpHome })));
    // git's ssh transport, handed over by the git right before it, runs too.
    assert.doesNotThrow(() => refuseWritableSshConfig(allowlist, { commands: [['git', 'fetch'], ['ssh', '-o', 'SendEnv=GIT_PROTOCOL', 'git@example.org', "git-upload-pack 'x.git'"]] }, plan(ro, [{ kind: 'ro', path: ro }], { HOME: tmpHome })));
  });

  it('is refused, with HOME a read-only folder, when an earlier command of the run could write /tmp/.ssh/config: ssh reads the passwd home, not HOME', () => {
    const dir = home('Host *\n  BatchMode yes\n');
    const mounts: SandboxPlan['mounts'] = [{ kind: 'ro', path: dir }];
    const after = (...args: string[]) => ({ commands: [['sh', '-c', 'mkdir -p /tmp/.ssh && echo "ProxyCommand /tmp/x" > /tmp/.ssh/config'], ['ssh', ...args]] });
    assert.throws(() => refuseWritableSshConfig(allowlist, after('example.org'), plan(dir, mounts, { HOME: dir })), denied('/tmp/.ssh/config'));
    // `~` in -F and Include is the passwd home too.
    assert.throws(() => refuseWritableSshConfig(allowlist, after('-F', '~/.ssh/config', 'example.org'), plan(dir, mounts, { HOME: dir })), denied('/tmp/.ssh/config'));
    writeFileSync(join(dir, 'cfg'), 'Include ~/planted\n');
    assert.throws(() => refuseWritableSshConfig(allowlist, after('-F', join(dir, 'cfg'), 'example.org'), plan(dir, mounts, { HOME: dir })), denied('/tmp/planted'));
    // HOME is checked as well: a read-write grant there is refused even though ssh would not read it.
    const rw = home('Host *\n');
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('-F', '~/.ssh/config', 'example.org'), plan(dir, [...mounts, { kind: 'rw', path: rw }], { HOME: rw })), denied(join(rw, '.ssh', 'config')));
    // As the only command, the sandbox's fresh /tmp holds nothing of ssh's.
    assert.doesNotThrow(() => refuseWritableSshConfig(allowlist, ssh('example.org'), plan(dir, mounts, { HOME: dir })));
  });

  it('is refused when a read-write grant holds the passwd home\'s .ssh, whatever HOME is and even as the only command', () => {
    const dir = home('Host *\n');
    assert.throws(() => refuseWritableSshConfig(allowlist, ssh('example.org'), plan(dir, [{ kind: 'ro', path: dir }, { kind: 'rw', path: '/tmp/.ssh' }], { HOME: dir })), denied('/tmp/.ssh/config'));
  });

  it('is refused for a -o option that names a program to run or a library to load, in any spelling, unless it is none', () => {
    const ro = tempDir('corral-ssh-o-');
    const run = (...args: string[]) => () => refuseWritableSshConfig(allowlist, ssh(...args), plan(ro, [{ kind: 'ro', path: ro }]));
    for (const args of [['-o', 'ProxyCommand=/tmp/x %h'], ['-oProxyCommand=/tmp/x'], ['-o', 'proxycommand /tmp/x'], ['-vo', 'LocalCommand=/tmp/x'], ['-o', 'PermitLocalCommand=yes'], ['-o', 'KnownHostsCommand /tmp/x'], ['-o', 'PKCS11Provider=/tmp/lib.so'], ['-o', 'SecurityKeyProvider=/tmp/sk.so'], ['-o', 'XAuthLocation=/tmp/xauth'], ['-I', '/tmp/lib.so']]) {
      assert.throws(run(...args, 'example.org'), refused, args.join(' '));
    }
    // After the host, before the remote command, ssh still reads options.
    assert.throws(run('example.org', '-oProxyCommand=/tmp/x', 'true'), refused);
    assert.doesNotThrow(run('-o', 'ProxyCommand=none', '-o', 'PermitLocalCommand=no', '-o', 'BatchMode=yes', 'example.org', 'true', '-o', 'ProxyCommand=/tmp/x'));
  });

  it("is refused for ProxyJump or -J when the ssh it runs again would be looked up through a folder the sandbox can write", () => {
    const ro = tempDir('corral-ssh-j-');
    assert.throws(() => refuseWritableSshConfig(allowlist, { commands: [['/usr/bin/ssh', '-J', 'hop', 'example.org']] }, plan(ro, [{ kind: 'ro', path: ro }], { PATH: `/tmp/bin:/usr/bin` })), refused);
    assert.throws(() => refuseWritableSshConfig(allowlist, { commands: [['/usr/bin/ssh', '-oProxyJump=hop', 'example.org']] }, plan(ro, [{ kind: 'ro', path: ro }], { PATH: `/tmp/bin:/usr/bin` })), refused);
    assert.doesNotThrow(() => refuseWritableSshConfig(allowlist, ssh('-J', 'hop', 'example.org'), plan(ro, [{ kind: 'ro', path: ro }])));
  });

  it('is left alone without an allowlist, and for programs that are not ssh', () => {
    const dir = home('ProxyCommand /tmp/x\n');
    assert.doesNotThrow(() => refuseWritableSshConfig({ version: 1, defaults: { security: 'full' } }, ssh('-oProxyCommand=/tmp/x', 'h'), plan(dir, [{ kind: 'rw', path: dir }], { HOME: dir })));
    assert.doesNotThrow(() => refuseWritableSshConfig(allowlist, { commands: [['ssh-keygen', '-l', '-f', 'k']] }, plan(dir, [{ kind: 'rw', path: dir }], { HOME: dir })));
  });
});

describe("the home ssh takes from a sandbox's passwd, in a real sandbox", () => {
  const runner = new Runner();
  after(() => runner.close());
  const base = realpathSync(tempDir('corral-ssh-passwd-'));
  for (const name of ['ro', 'rw']) {
    mkdirSync(join(base, name, '.ssh'), { recursive: true });
    writeFileSync(join(base, name, '.ssh', 'config'), `Host corral-test\n  Hostname from-${name}\n`);
  }
  const policies: [string, ContainerPolicyInput][] = [
    ['the default HOME', { runtime: ['shell'], filesystem: { readonly: ['./ro'] } }],
    ['HOME set to a read-only grant', { runtime: ['shell'], filesystem: { readonly: ['./ro'] }, environment: { set: { HOME: join(base, 'ro') } } }],
    ['HOME set to a read-write grant', { runtime: ['shell'], filesystem: { readwrite: ['./rw'] }, environment: { set: { HOME: join(base, 'rw') } } }],
    ["the host's HOME passed", { runtime: ['shell'], filesystem: { readonly: ['./ro'] }, environment: { pass: ['HOME'] } }],
  ];
  const ssh = existsSync('/usr/bin/ssh');
  for (const [what, policy] of policies) {
    it(`is /tmp, whatever HOME is, with ${what}: the file refuseWritableSshConfig checks is the one ssh reads`, async () => {
      const p = planSandbox({ policy: validatePolicy(policy), source: 'test', baseDir: base });
      const script = 'getent passwd "$(id -u)" | cut -d: -f6' + (ssh ? "; mkdir -p /tmp/.ssh && printf 'Host corral-test\\n  Hostname from-tmp\\n' > /tmp/.ssh/config && ssh -G corral-test | grep '^hostname '" : '');
      const r = await runner.run(p, ['/bin/sh', '-c', script]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, '/tmp\n' + (ssh ? 'hostname from-tmp\n' : ''));
    });
  }
});

describe('Include given to ssh on its command line', () => {
  it('is refused at once, as ssh itself refuses it, and nothing it names is globbed (regression: -o "Include /**/*" walked the whole file system on the node)', () => {
    for (const args of [['-o', 'Include /**/*', 'example.org'], ['-oInclude=/etc/*', 'example.org']]) {
      assert.throws(() => refuseWritableSshConfig(allowlist, ssh(...args), plan('/', [])), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && /-o Include/.test(e.message));
    }
  });
});
