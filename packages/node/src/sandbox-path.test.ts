// Which folders on a sandbox's PATH a command inside could put a program in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SandboxPlan } from '@corral/contain';
import { refuseWritableLoadPaths, writablePathEntry } from './sandbox-path.ts';

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
