// Which folders on a sandbox's PATH a command inside could put a program in.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SandboxPlan } from '@corral/contain';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { lookUp, refuseWritableLoadPaths, refuseWritablePrograms, writablePathEntry } from './sandbox-path.ts';

const plan = (PATH: string, mounts: SandboxPlan['mounts'] = []): SandboxPlan => ({ env: { PATH }, mounts }) as unknown as SandboxPlan;

describe("a folder on the sandbox's PATH", () => {
  it('is safe in the system directories, and where nothing is mounted (the root is read-only)', () => {
    assert.equal(writablePathEntry(plan('/usr/local/bin:/usr/bin:/bin')), undefined);
    assert.equal(writablePathEntry(plan('/nonexistent/corral/bin:/usr/bin')), undefined);
  });

  it('is writable when relative or empty (the working directory)', () => {
    assert.equal(writablePathEntry(plan('/usr/bin::/bin')), '.');
    assert.equal(writablePathEntry(plan('bin:/usr/bin')), 'bin');
  });

  it("is writable in the sandbox's own /tmp, /dev/shm and ingress folder, unless a read-only grant is bound there", () => {
    assert.equal(writablePathEntry(plan('/usr/bin:/tmp/bin')), '/tmp/bin');
    assert.equal(writablePathEntry(plan('/dev/shm/x')), '/dev/shm/x');
    assert.equal(writablePathEntry(plan('/run/corral/ingress/bin')), '/run/corral/ingress/bin');
    assert.equal(writablePathEntry(plan('/tmp/tools/bin', [{ kind: 'ro', path: '/tmp/tools' }])), undefined);
  });

  it('is writable below a read-write grant, unless a deeper read-only one holds it; a denied folder is no such place', () => {
    const mounts: SandboxPlan['mounts'] = [{ kind: 'rw', path: '/nonexistent/home' }, { kind: 'ro', path: '/nonexistent/home/tools' }, { kind: 'deny', path: '/nonexistent/home/secret', directory: true }];
    assert.equal(writablePathEntry(plan('/nonexistent/home/tools/bin', mounts)), undefined);
    assert.equal(writablePathEntry(plan('/nonexistent/home/secret/bin', mounts)), undefined);
    assert.equal(writablePathEntry(plan('/nonexistent/home/bin', mounts)), '/nonexistent/home/bin');
    assert.equal(writablePathEntry(plan('/nonexistent/home/tools/../bin', mounts)), '/nonexistent/home/tools/../bin');
  });
});

describe("a variable of the sandbox's environment that loads code", () => {
  const allowlist = { version: 1, defaults: { security: 'allowlist' } } as const;
  const mounts: SandboxPlan['mounts'] = [{ kind: 'rw', path: '/nonexistent/ws' }, { kind: 'ro', path: '/nonexistent/lib' }];
  const load = (env: Record<string, string>) => ({ env: { PATH: '/usr/bin', HOME: '/tmp', ...env }, mounts }) as unknown as SandboxPlan;

  it('is refused under an allowlist when it names a place the sandbox can write, or a relative one', () => {
    for (const env of ([{ LD_PRELOAD: '/nonexistent/ws/x.so' }, { LD_LIBRARY_PATH: '/nonexistent/lib:/tmp/lib' }, { PYTHONPATH: 'vendor' }, { LD_LIBRARY_PATH: '/nonexistent/lib::/usr/lib' }, { LUA_PATH: './?.lua;/usr/share/lua/?.lua' }, { NODE_OPTIONS: '--require /nonexistent/ws/hook.js' }, { JAVA_TOOL_OPTIONS: '@/tmp/opts' }] as Record<string, string>[])) {
      assert.throws(() => refuseWritableLoadPaths(allowlist, load(env)), { code: 'NODE_RUN_DENIED' }, JSON.stringify(env));
    }
  });

  it('is let through when everything it names is read-only there, or when it names no path', () => {
    for (const env of ([{ LD_LIBRARY_PATH: '/nonexistent/lib:/usr/lib' }, { LD_PRELOAD: 'libfaketime.so.1' }, { NODE_OPTIONS: '--max-old-space-size=512' }, { GREETING: '/tmp/anything' }] as Record<string, string>[])) {
      assert.doesNotThrow(() => refuseWritableLoadPaths(allowlist, load(env)), JSON.stringify(env));
    }
    assert.doesNotThrow(() => refuseWritableLoadPaths({ version: 1, defaults: { security: 'full' } }, load({ LD_PRELOAD: '/tmp/x.so' })));
  });
});

describe('a bare program name under an allowlist, looked up on the sandbox\'s PATH', () => {
  const allowlist = { version: 1, defaults: { security: 'allowlist' } } as const;
  /** A read-write grant `ws` with an empty bin/ and a planted `echo` in it, and a read-only grant `tools` whose bin/ holds `tool` and an `echo` that is a link into `ws`. */
  function folders() {
    const ws = tempDir('corral-path-ws-');
    const tools = tempDir('corral-path-tools-');
    mkdirSync(join(ws, 'bin'));
    mkdirSync(join(tools, 'bin'));
    for (const file of [join(ws, 'bin', 'echo'), join(ws, 'planted'), join(tools, 'bin', 'tool')]) {
      writeFileSync(file, '#!/bin/sh\nprintf planted\n');
      chmodSync(file, 0o755);
    }
    symlinkSync(join(ws, 'planted'), join(tools, 'bin', 'echo'));
    const mounts: SandboxPlan['mounts'] = [{ kind: 'ro', path: '/usr/bin' }, { kind: 'rw', path: ws }, { kind: 'ro', path: tools }];
    const at = (PATH: string) => ({ env: { PATH }, mounts, cwd: '/tmp' }) as unknown as SandboxPlan;
    const run = (program: string) => ({ commands: [[program, 'hi']], wrappers: [] });
    return { ws, tools, at, run };
  }

  it('runs the program found before a folder the sandbox can write: the lookup never reaches it (regression: PATH=/usr/bin:<grant>/bin refused echo, found in /usr/bin)', () => {
    const { ws, tools, at, run } = folders();
    assert.deepEqual(lookUp(at(`/usr/bin:${ws}/bin`), 'echo'), { found: '/usr/bin/echo' });
    assert.doesNotThrow(() => refuseWritablePrograms(allowlist, run('echo'), at(`/usr/bin:${ws}/bin`)));
    assert.doesNotThrow(() => refuseWritablePrograms(allowlist, run('tool'), at(`${tools}/bin:${ws}/bin:/usr/bin`)));
  });

  it('refuses one whose lookup passes a folder the sandbox can write first, naming that entry and what it finds after it', () => {
    const { ws, at, run } = folders();
    assert.throws(() => refuseWritablePrograms(allowlist, run('echo'), at(`${ws}/bin:/usr/bin`)), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && e.message.includes(`entry ${ws}/bin is a folder the sandbox can write, and it holds the echo found now`));
    assert.throws(() => refuseWritablePrograms(allowlist, run('ls'), at(`${ws}/bin:/usr/bin`)), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && e.message.includes(`entry ${ws}/bin is a folder the sandbox can write, searched before /usr/bin/ls`));
    assert.throws(() => refuseWritablePrograms(allowlist, run('echo'), at(`/nonexistent/corral/bin:/tmp/bin:/usr/bin`)), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && e.message.includes('entry /tmp/bin '));
    assert.throws(() => refuseWritablePrograms(allowlist, run('echo'), at('/usr/local/bin::/usr/bin')), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && e.message.includes('entry . '));
  });

  it('refuses one found nowhere yet when any entry is a folder the sandbox can write: one put there later is what runs', () => {
    const { ws, at, run } = folders();
    assert.deepEqual(lookUp(at(`/usr/bin:${ws}/bin`), 'corral-no-such-tool'), { writable: `${ws}/bin` });
    assert.throws(() => refuseWritablePrograms(allowlist, run('corral-no-such-tool'), at(`/usr/bin:${ws}/bin`)), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && e.message.includes(`entry ${ws}/bin`) && e.message.includes('no folder after it holds one'));
    assert.doesNotThrow(() => refuseWritablePrograms(allowlist, run('corral-no-such-tool'), at('/usr/bin')));
  });

  it('refuses one found in a read-only folder that is a link to where the sandbox can write (regression: <read-only>/bin/echo leading into a read-write grant ran as the listed echo)', () => {
    const { ws, tools, at, run } = folders();
    assert.deepEqual(lookUp(at(`${tools}/bin:/usr/bin`), 'echo'), { found: `${tools}/bin/echo` });
    assert.throws(() => refuseWritablePrograms(allowlist, run('echo'), at(`${tools}/bin:/usr/bin`)), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && e.message.includes(`${tools}/bin/echo, which leads where the sandbox can write`));
    assert.ok(ws);
  });

  it("skips a folder the sandbox does not see, whatever this host holds there", () => {
    const { ws, at } = folders();
    // A host folder holding a `node`, bound nowhere in this plan: its node is not what the sandbox runs. Outside
    // /tmp, whatever this checkout's: the sandbox's /tmp is its own, and a PATH entry there is one it can write.
    const unseen = mkdtempSync('/var/tmp/corral-unseen-');
    try {
      writeFileSync(join(unseen, 'node'), '#!/bin/sh\n');
      chmodSync(join(unseen, 'node'), 0o755);
      assert.deepEqual(lookUp(at(`${unseen}:/usr/bin:${ws}/bin`), 'node'), existsSync('/usr/bin/node') ? { found: '/usr/bin/node' } : { writable: `${ws}/bin` });
    } finally {
      rmSync(unseen, { recursive: true, force: true });
    }
  });
});
