import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkHardLinks } from './hard-links.ts';

function tree(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-links-')));
  for (const d of ['denied/deep/er', 'granted', 'other']) mkdirSync(join(dir, d), { recursive: true });
  return dir;
}

describe('checking denied paths for files with other names', () => {
  it('finds a file deep in a denied folder whose other name lies outside it', () => {
    const dir = tree();
    writeFileSync(join(dir, 'denied/deep/er/key'), 'k');
    linkSync(join(dir, 'denied/deep/er/key'), join(dir, 'granted/key'));
    assert.deepEqual(checkHardLinks([join(dir, 'denied')], []), {
      exposed: [{ denied: join(dir, 'denied'), path: join(dir, 'denied/deep/er/key'), names: 2, covered: 1 }],
      unchecked: [],
    });
  });

  it('finds nothing in an empty folder, or one whose files have one name each', () => {
    const dir = tree();
    assert.deepEqual(checkHardLinks([join(dir, 'denied')], []), { exposed: [], unchecked: [] });
    writeFileSync(join(dir, 'denied/a'), 'a');
    assert.deepEqual(checkHardLinks([join(dir, 'denied')], []), { exposed: [], unchecked: [] });
  });

  it('does not follow a symlink in the folder, to a file with several names or to a folder', () => {
    const dir = tree();
    writeFileSync(join(dir, 'granted/b'), 'b');
    linkSync(join(dir, 'granted/b'), join(dir, 'granted/b2'));
    symlinkSync(join(dir, 'granted/b'), join(dir, 'denied/to-b'));
    symlinkSync(join(dir, 'granted'), join(dir, 'denied/to-granted'));
    assert.deepEqual(checkHardLinks([join(dir, 'denied')], []), { exposed: [], unchecked: [] });
  });

  it('accounts for names under another denied path, walking a folder no grant holds only when a name is missing', () => {
    const dir = tree();
    writeFileSync(join(dir, 'denied/a'), 'a');
    linkSync(join(dir, 'denied/a'), join(dir, 'other/a'));
    assert.deepEqual(checkHardLinks([join(dir, 'denied')], [join(dir, 'other')]), { exposed: [], unchecked: [] });
    // The budget is spent on the folder that must be checked; the other, needed, cannot be walked: the name stays unaccounted for.
    const short = checkHardLinks([join(dir, 'denied')], [join(dir, 'other')], 3);
    assert.deepEqual([short.exposed.map((f) => f.path), short.unchecked], [[join(dir, 'denied/a')], []]);
  });

  it('reports a folder with more entries than the budget as unchecked, and the budget counts over all folders', () => {
    const dir = tree();
    for (const name of ['a', 'b', 'c']) writeFileSync(join(dir, `other/${name}`), name);
    assert.deepEqual(checkHardLinks([join(dir, 'other')], [], 2).unchecked, [{ denied: join(dir, 'other'), reason: 'it holds more than the 2 entries Corral reads, over all denied folders, to plan a sandbox' }]);
    assert.deepEqual(
      checkHardLinks([join(dir, 'other'), join(dir, 'denied')], [], 4).unchecked.map((u) => u.denied),
      [join(dir, 'denied')],
    );
  });

  it('looks at a denied file itself', () => {
    const dir = tree();
    writeFileSync(join(dir, 'granted/a'), 'a');
    linkSync(join(dir, 'granted/a'), join(dir, 'other/a'));
    assert.deepEqual(checkHardLinks([join(dir, 'granted/a')], []).exposed, [{ denied: join(dir, 'granted/a'), path: join(dir, 'granted/a'), names: 2, covered: 1 }]);
    assert.deepEqual(checkHardLinks([join(dir, 'granted/a'), join(dir, 'other/a')], []).exposed, []);
  });
});
