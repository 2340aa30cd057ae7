import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { readYamlDocument } from './yaml-read.ts';

const options = { uniqueKeys: false, resolveKnownTags: false } as const;

function firstByPlace<T extends { pos: [number, number] }>(errors: readonly T[], n: number): T[] {
  return errors.toSorted((a, b) => a.pos[0] - b.pos[0]).slice(0, n);
}

/** The document's value, or why it has none (an alias to no anchor). */
function valueOf(doc: Document): unknown {
  try {
    return doc.toJS();
  } catch (error) {
    return String(error);
  }
}

describe('reading a YAML document in time linear in the text', () => {
  it("reads what the YAML library's parseDocument reads, and its first errors where it has more than the bound (property)", () => {
    const piece = fc.constantFrom('[', '{', ']', '}', ', ', 'a: ', '- ', '? ', '\n', '  ', 'x', '"q"', '# c', '&a ', '*a', '!!str ', '|\n', '---\n', '...\n', '%YAML 1.2\n', ': ');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), fc.integer({ min: 0, max: 5 }), (pieces, bound) => {
        const text = pieces.join('');
        const theirs = parseDocument(text, { ...options, prettyErrors: false });
        const ours = readYamlDocument(text, new LineCounter(), options, bound);
        assert.equal(ours.doc.errors.length + ours.strayErrorsLeftOut, theirs.errors.length);
        // Errors are compared by place and code: a second document's is worded for whoever wrote the file.
        const listed = Math.min(bound, theirs.errors.length);
        const place = (e: { pos: [number, number]; code: string }) => [e.pos[0], e.code];
        assert.deepEqual(firstByPlace(ours.doc.errors, listed).map(place), firstByPlace(theirs.errors, listed).map(place));
        if (theirs.errors.length === 0) assert.deepEqual(valueOf(ours.doc), valueOf(theirs));
      }),
      { numRuns: 400 },
    );
  });

  it("leaves out of the count the tokens a second document's directives are followed by, as parseDocument drops that document's errors (regression: `...`, `%YAML 1.2`, `]` with a bound of 0 counted one error more than the library made)", () => {
    for (const [text, bound] of [['...\n%YAML 1.2\n]', 0], ['a: 1\n...\n%YAML 1.2\n' + '}'.repeat(1000), 3], ['...\n]', 0]] as const) {
      const theirs = parseDocument(text, { ...options, prettyErrors: false });
      const ours = readYamlDocument(text, new LineCounter(), options, bound);
      assert.equal(ours.doc.errors.length + ours.strayErrorsLeftOut, theirs.errors.length, JSON.stringify(text.slice(0, 30)));
      assert.deepEqual(ours.doc.errors.map((e) => [e.pos[0], e.code]).slice(0, bound), theirs.errors.map((e) => [e.pos[0], e.code]).slice(0, bound));
    }
  });

  it('counts the stray tokens past the bound instead of reading them: 130,000 `}` leave 20 errors and 129,980 counted (regression: each read took microseconds and made a stack, 2.4 s of CPU)', () => {
    const { doc, strayErrorsLeftOut } = readYamlDocument('}'.repeat(130_000), new LineCounter(), options, 20);
    assert.equal(doc.errors.length, 20);
    assert.equal(strayErrorsLeftOut, 129_980);
  });

  it('says a second document is one too many, where it starts, in words for whoever wrote the file', () => {
    const lines = new LineCounter();
    const { doc } = readYamlDocument('a: 1\n---\nb: 2\n', lines, options, 20);
    assert.equal(doc.errors.length, 1);
    assert.equal(doc.errors[0]!.code, 'MULTIPLE_DOCS');
    assert.deepEqual(lines.linePos(doc.errors[0]!.pos[0]), { line: 2, col: 1 });
    assert.match(doc.errors[0]!.message, /^a second document starts here/);
  });

  it('makes its errors without a stack and leaves Error.stackTraceLimit as it was', () => {
    const before = Error.stackTraceLimit;
    const { doc } = readYamlDocument('a: [1\n', new LineCounter(), options, 20);
    assert.equal(Error.stackTraceLimit, before);
    assert.ok(doc.errors.length > 0);
    assert.doesNotMatch(doc.errors[0]!.stack ?? '', /\n\s+at /);
  });
});
