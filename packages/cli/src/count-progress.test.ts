import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CountProgress } from './count-progress.ts';
import { until } from '../../../scripts/testing/until.ts';

function stream(isTTY: boolean): { write(text: string): boolean; isTTY: boolean; text: () => string } {
  let out = '';
  return { isTTY, write: (t: string) => ((out += t), true), text: () => out };
}

/** Waits until `ready()`, however slow the machine: no deadline of its own (the test runner's applies). */
describe('CountProgress', () => {
  it('shows nothing for work that ends before afterMs', () => {
    const out = stream(false);
    const progress = new CountProgress(out, 'export: %d lines written', { afterMs: 60_000 });
    progress.add(5);
    progress.done();
    assert.equal(out.text(), '');
  });

  it('when stderr is not a terminal, writes the count as plain lines, none once done', async () => {
    const out = stream(false);
    const progress = new CountProgress(out, 'export: %d lines written', { afterMs: 0, everyMs: 5 });
    progress.add(2);
    await until('two lines are told', () => out.text().includes('corral: export: 2 lines written\n'));
    progress.add();
    await until('three lines are told', () => out.text().includes('corral: export: 3 lines written\n'));
    progress.done();
    const shown = out.text();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(out.text(), shown);
    assert.doesNotMatch(shown, /\x1b|\r/);
  });

  it('on a terminal, redraws one line in place and clears it once done', async () => {
    const out = stream(true);
    const progress = new CountProgress(out, 'replay: %d recorded decisions read', { afterMs: 0, everyMs: 5 });
    progress.add(7);
    await until('seven decisions are told', () => out.text().includes('corral: replay: 7 recorded decisions read'));
    progress.note('corral: a warning\n');
    progress.done();
    assert.match(out.text(), /^(\r\x1b\[2Kcorral: replay: 7 recorded decisions read)+\r\x1b\[2Kcorral: a warning\n$/);
  });
});
