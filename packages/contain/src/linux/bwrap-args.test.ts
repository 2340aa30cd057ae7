import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PROC_MASKED_FILES, procMasks } from './bwrap-args.ts';

describe("the masks over the sandbox's /proc", () => {
  it('hide the listed files and folders the kernel has, and every other file it keeps from other users (a newer kernel may add one)', () => {
    const proc = mkdtempSync(join(tmpdir(), 'corral-proc-'));
    writeFileSync(join(proc, 'kallsyms'), 'x', { mode: 0o444 });
    writeFileSync(join(proc, 'meminfo'), 'x', { mode: 0o444 });
    writeFileSync(join(proc, 'new_kernel_secret'), 'x', { mode: 0o400 });
    mkdirSync(join(proc, '42'), { mode: 0o555 });
    mkdirSync(join(proc, 'bus'));
    mkdirSync(join(proc, 'tty'));
    assert.deepEqual(procMasks(proc), { files: ['kallsyms', 'new_kernel_secret'], folders: ['bus'] });
  });

  it('hide nothing of a /proc that has none of them (bubblewrap cannot make a mount point there)', () => {
    assert.deepEqual(procMasks(mkdtempSync(join(tmpdir(), 'corral-proc-'))), { files: [], folders: [] });
  });

  it('leave what ps, top, Node and Python read', () => {
    for (const name of ['meminfo', 'stat', 'cpuinfo', 'loadavg', 'uptime', 'self', 'tty', 'sys']) assert.ok(!PROC_MASKED_FILES.includes(name), name);
  });
});
