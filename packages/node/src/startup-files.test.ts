// Which shells looked through read a startup file the sandbox could have written.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SandboxPlan } from '@corral/contain';
import { refuseWritableStartupFiles } from './startup-files.ts';
import type { LocalPolicyFile } from './local-policy.ts';

const allowlist: LocalPolicyFile = { version: 1, defaults: { security: 'allowlist' } };
const plan = (env: Record<string, string>, mounts: SandboxPlan['mounts'] = []): SandboxPlan => ({ env: { PATH: '/usr/bin', ...env }, mounts }) as unknown as SandboxPlan;
const outer = ['/bin/sh', '-c', "sh -lc 'echo hi'"];

describe('a shell looked through, under an allowlist', () => {
  it("refuses a nested login shell, which reads its profile from the sandbox's own home, and not the outermost, which starts before anything of the run", () => {
    assert.throws(() => refuseWritableStartupFiles(allowlist, { wrappers: [outer, ['sh', '-lc', 'echo hi']] }, plan({ HOME: '/tmp' })), { code: 'NODE_RUN_DENIED' });
    assert.doesNotThrow(() => refuseWritableStartupFiles(allowlist, { wrappers: [['sh', '-lc', 'echo hi']] }, plan({ HOME: '/tmp' })));
    assert.doesNotThrow(() => refuseWritableStartupFiles(allowlist, { wrappers: [outer, ['sh', '-c', 'echo hi']] }, plan({ HOME: '/tmp' })));
  });

  it('refuses any shell when BASH_ENV or ENV names a file in a read-write grant, and none when the home is read-only', () => {
    const mounts: SandboxPlan['mounts'] = [{ kind: 'rw', path: '/nonexistent/ws' }, { kind: 'ro', path: '/nonexistent/home' }];
    assert.throws(() => refuseWritableStartupFiles(allowlist, { wrappers: [['bash', '-c', 'echo hi']] }, plan({ HOME: '/nonexistent/home', BASH_ENV: '/nonexistent/ws/env.sh' }, mounts)), { code: 'NODE_RUN_DENIED' });
    assert.throws(() => refuseWritableStartupFiles(allowlist, { wrappers: [['sh', '-c', 'echo hi']] }, plan({ ENV: 'relative.sh' }, mounts)), { code: 'NODE_RUN_DENIED' });
    assert.doesNotThrow(() => refuseWritableStartupFiles(allowlist, { wrappers: [outer, ['sh', '-lc', 'echo hi'], ['bash', '--login', '-c', 'echo hi']] }, plan({ HOME: '/nonexistent/home' }, mounts)));
  });

  it('reads -o option names as names, not as a cluster holding l', () => {
    assert.doesNotThrow(() => refuseWritableStartupFiles(allowlist, { wrappers: [outer, ['sh', '-o', 'allexport', '-c', 'echo hi']] }, plan({ HOME: '/tmp' })));
  });

  it('leaves security=full and deny to their own rules', () => {
    assert.doesNotThrow(() => refuseWritableStartupFiles({ version: 1, defaults: { security: 'full' } }, { wrappers: [outer, ['sh', '-lc', 'echo hi']] }, plan({ HOME: '/tmp' })));
  });
});
