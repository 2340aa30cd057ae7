// What approvers read of a script bound by its content: the very bytes hashed,
// as text, never more than the gateway takes, and nothing that is not text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SCRIPT_PREVIEW_BYTES, scriptPreviewOf } from '@corral/gateway';
import { scriptPreview } from './file-operand.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('scriptPreview', () => {
  it('shows a script whole as its text, with its size', () => {
    assert.deepEqual(scriptPreview(bytes('#!/bin/sh\necho ünïcödé\n')), { bytes: 27, truncated: false, text: '#!/bin/sh\necho ünïcödé\n' });
    assert.deepEqual(scriptPreview(new Uint8Array()), { bytes: 0, truncated: false, text: '' });
  });

  it('shows the first 64 KiB of a longer one, cut before a character the cut would split, and says it is cut', () => {
    // "é" is two bytes: the 65,536th byte is the first half of one.
    const content = bytes(`${'a'.repeat(SCRIPT_PREVIEW_BYTES - 1)}é and more`);
    const preview = scriptPreview(content);
    assert.equal(preview.truncated, true);
    assert.equal(preview.bytes, content.length);
    assert.equal(preview.text, 'a'.repeat(SCRIPT_PREVIEW_BYTES - 1));
  });

  it('shows no text for bytes that are not UTF-8 text: a NUL, or invalid UTF-8 (an approver cannot read a binary as a script)', () => {
    assert.deepEqual(scriptPreview(Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x00])), { bytes: 7, truncated: false });
    assert.deepEqual(scriptPreview(Uint8Array.from([0x65, 0x63, 0x68, 0x6f, 0xff, 0x0a])), { bytes: 6, truncated: false });
    // Not cut: a last character left unfinished is no text either.
    assert.deepEqual(scriptPreview(Uint8Array.from([0x65, 0xc3])), { bytes: 2, truncated: false });
  });

  it('keeps a byte-order mark and hidden characters as they are, for the console to spell out', () => {
    const text = '\uFEFFecho "\u202Eevil\u202C"\n';
    assert.equal(scriptPreview(bytes(text)).text, text);
  });

  it('for any bytes: the text is the UTF-8 of a prefix of them, at most 64 KiB, all of them unless cut; and the gateway takes it as it is', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }).map(bytes), fc.uint8Array({ minLength: SCRIPT_PREVIEW_BYTES - 3, maxLength: SCRIPT_PREVIEW_BYTES + 3 })), (content) => {
        const preview = scriptPreview(content);
        assert.equal(preview.bytes, content.length);
        assert.equal(preview.truncated, content.length > SCRIPT_PREVIEW_BYTES);
        if (preview.text !== undefined) {
          const shown = bytes(preview.text);
          assert.ok(shown.length <= SCRIPT_PREVIEW_BYTES);
          assert.deepEqual(shown, content.subarray(0, shown.length), 'a prefix of the bytes hashed');
          if (!preview.truncated) assert.equal(shown.length, content.length, 'all of them');
        }
        assert.deepEqual(scriptPreviewOf(JSON.parse(JSON.stringify(preview))), preview);
      }),
      { numRuns: 300 },
    );
  });
});

describe("scriptPreviewOf, the gateway's reading of a node's preview", () => {
  it('leaves out a preview not of its shape or too long, never refusing the run: approvers see the path and sha256 alone', () => {
    for (const given of [null, 'text', [], { bytes: -1, truncated: false }, { bytes: 1.5, truncated: false }, { bytes: 3, truncated: 'no' }, { bytes: 3, truncated: false, text: 7 }, { bytes: 3, truncated: true, text: 'x'.repeat(SCRIPT_PREVIEW_BYTES + 1) }]) {
      assert.equal(scriptPreviewOf(given), undefined, JSON.stringify(given)?.slice(0, 80));
    }
  });

  it('keeps only its three fields, and makes a lone surrogate U+FFFD', () => {
    assert.deepEqual(scriptPreviewOf({ bytes: 3, truncated: false, text: 'a\uD800b', extra: 'dropped' }), { bytes: 3, truncated: false, text: 'a\uFFFDb' });
  });
});
