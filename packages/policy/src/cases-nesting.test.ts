import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCases } from './cases.ts';
import { PolicyError } from './errors.ts';

/** A cases file is read in a worker for the console too: a hostile one must not hold it for long. */
const BOUND_MS = 2000;
const MiB = 1024 * 1024;

function refusalWithin(text: string): PolicyError {
  const started = performance.now();
  let refusal: unknown;
  try {
    parseCases(text);
  } catch (error) {
    refusal = error;
  }
  const took = performance.now() - started;
  assert.ok(took < BOUND_MS, `took ${took.toFixed(0)} ms`);
  assert.ok(refusal instanceof PolicyError, String(refusal));
  return refusal;
}

describe('parseCases when the cases file nests deeper than any cases need', () => {
  for (const [name, text, at] of [
    ['1 MiB of [', `cases: ${'['.repeat(MiB - 7)}`, 'line 1, column 70'],
    ['1 MiB of nested flow mappings', `cases: ${'{a: '.repeat(MiB / 4 - 2)}`, 'line 1, column 256'],
    ['1 MiB of - on one line', `cases:\n${'- '.repeat(MiB / 2 - 4)}`, 'line 2, column 129'],
    ['a block sequence indented one column deeper each line', Array.from({ length: 1400 }, (_, i) => `${' '.repeat(i)}-`).join('\n'), 'line 65, column 65'],
  ] as const) {
    it(`refuses ${name} at once, naming the line and column where it became too deep (regression: 1 MiB of [ took 23 s to say "Maximum call stack size exceeded")`, () => {
      const refusal = refusalWithin(text);
      assert.equal(refusal.code, 'POLICY_CASES_INVALID');
      assert.match(refusal.message, new RegExp(`nested more than 64 deep at ${at};`));
    });
  }

  it('reads entity data nested as deep as entities may be (32)', () => {
    const record = `${'{a: '.repeat(32)}1${'}'.repeat(32)}`;
    const cases = parseCases(`cases:\n  - name: deep\n    principal: {type: Agent, id: a}\n    action: x\n    resource: {type: R, id: r}\n    context: ${record}\n    expect: allow\n`);
    assert.equal(cases.cases.length, 1);
  });

  it('answers any nesting up to 1 MiB within the bound, refusing or reading it (property)', () => {
    // Each repetition of the unit opens at least one more level (block ones on one line): what is built is nesting, however it is written.
    const opener = fc.constantFrom('[', '{', '{a: ', '[a, ', '[\n', '{a:\n', '- ', '? ', '- a: ', '&a [', '!!seq [', '[# c\n');
    const filler = fc.constantFrom('', ' ', '  ', '&a ', '!!map ');
    fc.assert(
      fc.property(fc.array(fc.tuple(opener, filler), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: MiB }), (pieces, size) => {
        const unit = pieces.flat().join('');
        const text = unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
        const started = performance.now();
        try {
          parseCases(text);
        } catch (error) {
          assert.ok(error instanceof PolicyError, String(error));
        }
        const took = performance.now() - started;
        assert.ok(took < BOUND_MS, `took ${took.toFixed(0)} ms for ${JSON.stringify(unit)} × ${size}`);
      }),
      { numRuns: 40 },
    );
  });
});
