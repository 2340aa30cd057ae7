import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { until } from '../../../scripts/testing/until.ts';
import { validatePolicy } from './policy/load.ts';
import { planSandbox, type Mount } from './policy/plan.ts';
import type { ContainerPolicyInput } from './policy/schema.ts';
import { hostFileAt, sandboxPathsOf } from './pinned-files.ts';
import { Runner } from './runner.ts';

const text = (s: string) => new TextEncoder().encode(s);

describe('a run given a pinned file', () => {
  let runner: Runner;
  let work: string;
  const plan = (policy: ContainerPolicyInput) => planSandbox({ policy: validatePolicy(policy), source: 'test', baseDir: work });
  before(() => {
    runner = new Runner();
    work = realpathSync(mkdtempSync(join(tmpdir(), 'corral-pinned-')));
    mkdirSync(join(work, 'tools'));
  });
  after(async () => {
    await runner.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('runs the content it was given, not what the file holds on the host when the sandbox starts (a script rewritten after its check)', async () => {
    const script = join(work, 'tools/deploy.sh');
    writeFileSync(script, 'echo rewritten since it was checked\n');
    const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['.'] }, workingDirectory: '.' });
    const r = await runner.run(p, ['/bin/sh', './tools/deploy.sh'], { pinned: [{ path: script, content: text('echo as approved\n'), mode: 0o644 }] });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'as approved\n');
    // Without it, the same run reads the file as it is.
    assert.equal((await runner.run(p, ['/bin/sh', './tools/deploy.sh'])).stdout, 'rewritten since it was checked\n');
  });

  it('shows the pinned content under every path the sandbox reaches the file by, and lets no write through to it', async () => {
    const script = join(work, 'tools/build.sh');
    writeFileSync(script, 'echo on the host\n');
    const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['.'], readonly: ['./tools'] }, workingDirectory: '.' });
    const r = await runner.run(p, ['/bin/sh', '-c', `cat ${script} tools/build.sh; echo 'echo written' > tools/build.sh || echo refused`], { pinned: [{ path: script, content: text('echo pinned\n'), mode: 0o644 }] });
    assert.equal(r.stdout, 'echo pinned\necho pinned\nrefused\n');
    assert.equal(readFileSync(script, 'utf8'), 'echo on the host\n');
  });

  it('keeps the file\'s read and execute bits, never its write bits: a script run by its path runs', async () => {
    const script = join(work, 'tools/run-me');
    writeFileSync(script, '#!/bin/sh\necho on the host\n', { mode: 0o755 });
    const p = plan({ runtime: ['shell'], filesystem: { readonly: ['.'] }, workingDirectory: '.' });
    const r = await runner.run(p, ['/bin/sh', '-c', './tools/run-me; stat -c %a tools/run-me'], { pinned: [{ path: script, content: text('#!/bin/sh\necho pinned\n'), mode: 0o775 }] });
    assert.equal(r.stdout, 'pinned\n555\n', r.stderr);
  });

  it('never takes a warm sandbox, whose mounts were made before the file was given', async () => {
    const script = join(work, 'tools/warm.sh');
    writeFileSync(script, 'echo on the host\n');
    const p = plan({ runtime: ['shell'], filesystem: { readonly: ['.'] }, workingDirectory: '.' });
    await runner.keepWarm(p, 1);
    try {
      const r = await runner.run(p, ['/bin/sh', script], { pinned: [{ path: script, content: text('echo pinned\n'), mode: 0o644 }] });
      assert.equal(r.warm, false);
      assert.equal(r.stdout, 'pinned\n');
      assert.equal((await runner.run(p, ['/bin/sh', script])).warm, true);
    } finally {
      await runner.keepWarm(p, 0);
    }
  });

  it('gives the sandbox nothing it could not read without the pin, and leaves no copy behind', async () => {
    mkdirSync(join(work, 'private'));
    const secret = join(work, 'private/secret.sh');
    writeFileSync(secret, 'echo secret\n');
    const p = plan({ runtime: ['shell'], filesystem: { readonly: ['./tools'] }, workingDirectory: './tools' });
    const r = await runner.run(p, ['/bin/sh', secret], { pinned: [{ path: secret, content: text('echo pinned\n'), mode: 0o644 }] });
    assert.notEqual(r.exitCode, 0);
    assert.doesNotMatch(r.stdout, /pinned|secret/);
    assert.deepEqual(copiesOnTheHost(), []);
  });

  it('keeps no copy on the host while the run goes on: the sandbox holds the only one, bubblewrap\'s own (regression: a copy in the runner\'s folder was bound from the host, and a host /tmp mounted noexec would have kept a pinned script from running)', async () => {
    const script = join(work, 'tools/long.sh');
    writeFileSync(script, 'echo on the host\n');
    const p = plan({ runtime: ['shell'], filesystem: { readonly: ['.'] }, workingDirectory: '.' });
    const proc = runner.spawn(p, ['/bin/sh', '-c', `sh ${script}; read line`], { pinned: [{ path: script, content: text('echo pinned\n'), mode: 0o755 }], stdin: new PassThrough() });
    await until('the pinned script ran', () => Buffer.concat(proc.output.stdout).toString() === 'pinned\n');
    assert.deepEqual(copiesOnTheHost(), []);
    proc.kill();
    await proc.result;
  });
});

/** The pinned copies of this process left in any runner's folder. */
function copiesOnTheHost(): string[] {
  const runnerDirs = readdirSync(realpathSync(tmpdir())).filter((name) => name.startsWith('corral-') && !name.startsWith('corral-pinned-'));
  return runnerDirs.flatMap((name) => {
    try {
      return readdirSync(join(realpathSync(tmpdir()), name)).filter((file) => file.startsWith(`pinned-${process.pid}-`));
    } catch {
      return [];
    }
  });
}

describe('a runner whose own folder lies inside what a plan grants (TMPDIR in a granted folder)', () => {
  it('refuses to run it, rather than let the sandbox reach the seccomp program and pinned copies the runner keeps there (regression: a sandbox could rewrite the seccomp program the next sandbox starts with)', async () => {
    const home = realpathSync(mkdtempSync(join(tmpdir(), 'corral-runner-home-')));
    mkdirSync(join(home, 'tmp'));
    const was = process.env.TMPDIR;
    process.env.TMPDIR = join(home, 'tmp');
    let runner: Runner;
    try {
      runner = new Runner();
    } finally {
      if (was === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = was;
    }
    try {
      const p = planSandbox({ policy: validatePolicy({ runtime: ['shell'], filesystem: { readwrite: [home] }, workingDirectory: home }), source: 'test', baseDir: home });
      await assert.rejects(runner.run(p, ['/bin/sh', '-c', 'ls tmp/corral-*']), (e: Error & { code?: string }) => e.code === 'CONTAIN_UNENFORCEABLE' && /holds the runner's own folder/.test(e.message));
      await assert.rejects(runner.keepWarm(p, 1), (e: Error & { code?: string }) => e.code === 'CONTAIN_UNENFORCEABLE');
    } finally {
      await runner.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('sandboxPathsOf', () => {
  const ro = (path: string, source?: string): Mount => ({ kind: 'ro', path, ...(source ? { source } : {}) });
  it('finds a file through each bind whose source holds it, at the path that bind shows it', () => {
    assert.deepEqual(sandboxPathsOf([ro('/projects'), ro('/srv/app', '/data/app')], '/data/app/run.sh'), ['/srv/app/run.sh']);
    assert.deepEqual(sandboxPathsOf([ro('/projects'), ro('/alias', '/projects')], '/projects/run.sh'), ['/projects/run.sh', '/alias/run.sh']);
  });

  it('skips a spot a later mount covers: a deny, another bind, a symlink', () => {
    assert.deepEqual(sandboxPathsOf([ro('/projects'), { kind: 'deny', path: '/projects/private', directory: true }], '/projects/private/run.sh'), []);
    assert.deepEqual(sandboxPathsOf([ro('/projects'), ro('/projects/sub', '/elsewhere')], '/projects/sub/run.sh'), []);
    assert.deepEqual(sandboxPathsOf([ro('/projects'), { kind: 'symlink', path: '/projects/link', target: '/x' }], '/projects/link'), []);
    assert.deepEqual(sandboxPathsOf([ro('/projects'), ro('/projects/sub')], '/projects/sub/run.sh'), ['/projects/sub/run.sh']);
  });

  it('finds none for a file no bind shows, nor for one beside a bind of a similar name', () => {
    assert.deepEqual(sandboxPathsOf([ro('/projects')], '/projects-old/run.sh'), []);
    assert.deepEqual(sandboxPathsOf([], '/projects/run.sh'), []);
  });
});

describe('hostFileAt', () => {
  let root: string;
  const ro = (path: string, source?: string): Mount => ({ kind: 'ro', path, ...(source ? { source } : {}) });
  before(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'corral-reach-')));
    mkdirSync(join(root, 'app/node_modules/tool/bin'), { recursive: true });
    mkdirSync(join(root, 'app/node_modules/.bin'));
    mkdirSync(join(root, 'data'));
    writeFileSync(join(root, 'app/node_modules/tool/bin/cli.js'), '');
    symlinkSync('../tool/bin/cli.js', join(root, 'app/node_modules/.bin/tool'));
    writeFileSync(join(root, 'data/run.sh'), '');
    symlinkSync('/proc/self/cwd/run.sh', join(root, 'app/via-proc.sh'));
    symlinkSync(join(root, 'data/run.sh'), join(root, 'app/absolute.sh'));
    symlinkSync('node_modules/tool', join(root, 'app/current'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('follows a link inside a bind as the sandbox does: ./node_modules/.bin/tool is the file it leads to', () => {
    assert.equal(hostFileAt([ro(root)], `${root}/app/./node_modules/.bin/tool`), join(root, 'app/node_modules/tool/bin/cli.js'));
    assert.equal(hostFileAt([ro(root)], `${root}/app/current/../tool/bin/cli.js`), join(root, 'app/node_modules/tool/bin/cli.js'), '.. after a link is taken from where the link led');
  });

  it('reads a folder bound at another path through that bind, and an absolute link from the sandbox\'s root', () => {
    assert.equal(hostFileAt([ro('/srv/app', join(root, 'app')), ro(join(root, 'data'))], '/srv/app/absolute.sh'), join(root, 'data/run.sh'));
    assert.equal(hostFileAt([ro('/srv/app', join(root, 'app'))], '/srv/app/absolute.sh'), undefined, 'the link\'s target is not in the sandbox');
  });

  it('vouches for nothing of the sandbox\'s own (/proc/self/cwd is the run\'s folder there, not the node\'s), behind a deny, or missing', () => {
    assert.equal(hostFileAt([ro(root)], `${root}/app/via-proc.sh`), undefined);
    assert.equal(hostFileAt([ro(root), { kind: 'deny', path: join(root, 'data'), directory: true }], `${root}/data/run.sh`), undefined);
    assert.equal(hostFileAt([ro(root)], `${root}/app/missing.sh`), undefined);
    assert.equal(hostFileAt([ro(root)], `${root}/data/run.sh/`), undefined);
  });
});
