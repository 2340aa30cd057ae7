// A state directory given as a symbolic link (`--state-dir /srv/link`, the
// link in a folder others may write): `corral up` keeps to the directory it
// named when the start claimed it, never going through the link again, which
// whoever may write beside it could point elsewhere since.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../../../../scripts/testing/free-port.ts';
import { startUp } from '../../test/corral-up.ts';
import { UP_LOCK } from './state.ts';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'corral-up-linked-')));
after(() => rmSync(root, { recursive: true, force: true }));

describe('corral up on a state directory given as a link', { timeout: 120_000 }, () => {
  it('does nothing in the directory the link is pointed to once started, and names the one it uses (regression: stopping removed the up.lock of another corral up there, and left its own behind)', async () => {
    const state = join(root, 'state');
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    // Another corral up's, on the directory the link is made to name.
    writeFileSync(join(elsewhere, UP_LOCK), `${process.pid}\n`);
    const link = join(root, 'link');
    symlinkSync(state, link);
    mkdirSync(state, { mode: 0o700 });
    const up = startUp(link, ['--port', String(await freePort()), '--no-console', '--json']);
    try {
      await up.waitFor(/"readyMs"/);
      assert.equal((JSON.parse(up.stdout()) as { stateDir: string }).stateDir, state);
      // Pointed elsewhere while it runs, as whoever may write beside the link could.
      symlinkSync(elsewhere, `${link}.new`);
      renameSync(`${link}.new`, link);
      assert.equal(await up.stop(), 0, up.stderr());
    } finally {
      await up.stop('SIGKILL');
    }
    assert.deepEqual(readdirSync(elsewhere), [UP_LOCK]);
    assert.equal(readFileSync(join(elsewhere, UP_LOCK), 'utf8'), `${process.pid}\n`);
    assert.equal(readdirSync(state).includes(UP_LOCK), false, 'its own lock released');
  });
});
