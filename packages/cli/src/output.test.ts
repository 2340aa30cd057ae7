import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { printable, table } from './output.ts';

describe('table', () => {
  it('puts a header over the rows with every column but the last aligned', () => {
    assert.equal(
      table(['NODE', 'STATUS', 'COMMANDS'], [['075e5a02', 'paired', 'system.run,system.which'], ['a1', 'pending', '-']]),
      'NODE      STATUS   COMMANDS\n075e5a02  paired   system.run,system.which\na1        pending  -\n',
    );
  });

  it('escapes what a node or agent chose before measuring it, so a control character neither reaches the terminal nor shifts the columns', () => {
    const out = table(['NAME', 'STATUS'], [['build\u001b[2J\u202e08', 'paired'], ['b', 'pending']]);
    assert.doesNotMatch(out, /[\u001b\u202e]/);
    const [header, first, second] = out.split('\n');
    assert.equal(first!.indexOf('paired'), header!.indexOf('STATUS'));
    assert.equal(second!.indexOf('pending'), header!.indexOf('STATUS'));
  });

  it('starts each column where its heading starts, on every line, whatever the cells hold', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string(), fc.string(), fc.string()), { maxLength: 8 }), (rows) => {
        const lines = table(['A', 'B', 'C'], rows).split('\n');
        assert.equal(lines.pop(), '');
        const b = lines[0]!.indexOf('B');
        const c = lines[0]!.indexOf('C');
        for (const [i, row] of rows.entries()) {
          const line = lines[i + 1]!;
          const [pa, pb, pc] = row.map(printable) as [string, string, string];
          assert.equal(line.slice(0, pa.length), pa);
          assert.equal(line.slice(b, b + pb.length), pb);
          assert.equal(line.slice(c), pc);
        }
      }),
    );
  });
});

describe('printable', () => {
  it('spells out what draws nothing though it is a letter or a mark, as the console does: a script whose identifier is the Hangul filler U+3164 reads as no identifier at all (regression: corral approvals show printed it as it was)', () => {
    assert.equal(printable('const \u3164 = require("child_process"); \u3164.execSync(x)'), 'const \\u3164 = require("child_process"); \\u3164.execSync(x)');
    assert.equal(printable('a\uFE0Fb\u2800c\u115Fd\u034Fe'), 'a\\ufe0fb\\u2800c\\u115fd\\u034fe');
    assert.equal(printable('plain text, Größe, 名前'), 'plain text, Größe, 名前');
  });
});
