// How a node reads the script a run runs, to bind an approval to it: never
// opening what is not a regular file (a device can act on being opened: a
// watchdog arms, a tape rewinds; a FIFO's writer is let through).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import type { Mount } from '@corral/contain';
import { snapshotOperand } from './file-operand.ts';

/** The mounts of a sandbox granted `dir` read-write, as the folder a run works in. */
const granting = (dir: string) => (): Mount[] => [{ kind: 'rw', path: dir }];

describe('snapshotOperand', () => {
  it('refuses a script that is a FIFO without opening it: a writer waiting on it stays blocked (regression: the node opened it, and let the writer through, before it saw it was no regular file)', async () => {
    const dir = realpathSync(tempDir('corral-operand-'));
    const fifo = join(dir, 'x.sh');
    const writer = spawn('sh', ['-c', `mkfifo ${fifo} && echo ready && echo data > ${fifo} && touch ${join(dir, 'opened')}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => writer.stdout.once('data', resolve));
      assert.throws(() => snapshotOperand(['./x.sh'], dir, granting(dir)), (e: Error & { code?: string }) => e.code === 'NODE_RUN_DENIED' && /the script x\.sh is not a regular file/.test(e.message));
      await sleep(200);
      assert.equal(existsSync(join(dir, 'opened')), false, 'the FIFO was never opened');
    } finally {
      writer.kill();
    }
  });

  it('binds the file the kernel opens by a word with .. after a link (link/../x.sh is beside where the link leads), not the one its text names (regression: the node read ./x.sh, and the sandbox ran sub/x.sh)', () => {
    const dir = realpathSync(tempDir('corral-operand-'));
    mkdirSync(join(dir, 'sub/deeper'), { recursive: true });
    writeFileSync(join(dir, 'x.sh'), 'echo beside\n');
    writeFileSync(join(dir, 'sub/x.sh'), 'echo where the link leads\n');
    symlinkSync('sub/deeper', join(dir, 'link'));
    assert.equal(snapshotOperand(['./link/../x.sh'], dir, granting(dir))?.operand.path, join(dir, 'sub/x.sh'));
    assert.equal(snapshotOperand([`${dir}/link/../x.sh`], null, granting(dir))?.operand.path, join(dir, 'sub/x.sh'));
  });
});
