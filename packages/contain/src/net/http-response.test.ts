import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseReader, type ReadProgress, type ResponseFault, type ResponseHead } from './http-response.ts';

interface Read {
  heads: ResponseHead[];
  body: string;
  /** What push() said last, then what end() said (when the upstream ended). */
  outcome: ReadProgress | ResponseFault;
}

/** Feeds `pieces` one push each; with `ended`, then tells the reader the upstream ended. */
function read(pieces: readonly string[], options: { headRequest?: boolean; ended?: boolean; maxHeadBytes?: number } = {}): Read {
  const reader = new ResponseReader(options.headRequest ?? false, options.maxHeadBytes ?? 1024);
  const heads: ResponseHead[] = [];
  const body: Buffer[] = [];
  const sink = { head: (h: ResponseHead) => heads.push(h), body: (c: Buffer, start: number, end: number) => body.push(Buffer.from(c.subarray(start, end))) };
  let outcome: ReadProgress | ResponseFault = reader.progress;
  for (const piece of pieces) {
    outcome = reader.push(Buffer.from(piece, 'latin1'), sink);
    if (outcome !== 'head' && outcome !== 'body') break;
  }
  if (options.ended && (outcome === 'head' || outcome === 'body')) outcome = reader.end();
  return { heads, body: Buffer.concat(body).toString('latin1'), outcome };
}

/** Every way of cutting `text` in two, and byte by byte: the framing must not depend on how reads fall. */
function splits(text: string): string[][] {
  const out: string[][] = [[text], [...text]];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

describe('ResponseReader', () => {
  describe('when the body is framed by Content-Length', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello';
    it('gives the head and exactly the body, however the reads fall', () => {
      for (const pieces of splits(text)) {
        const r = read(pieces);
        assert.equal(r.outcome, 'done');
        assert.deepEqual(r.heads, [{ status: 200, reason: 'OK', rawHeaders: ['Content-Type', 'text/plain', 'Content-Length', '5'], length: 5 }]);
        assert.equal(r.body, 'hello');
      }
    });

    it('ignores what the upstream sends after the body (a smuggled second response)', () => {
      const r = read([`${text}HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil`]);
      assert.equal(r.outcome, 'done');
      assert.equal(r.heads.length, 1);
      assert.equal(r.body, 'hello');
    });

    it('is done at the head when the length is 0', () => {
      assert.equal(read(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']).outcome, 'done');
    });

    it('accepts repeated equal values, as one length', () => {
      const r = read(['HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok']);
      assert.deepEqual([r.outcome, r.heads[0]?.length, r.body], ['done', 2, 'ok']);
    });

    for (const [why, field] of [
      ['differing values', 'Content-Length: 2\r\nContent-Length: 3'],
      ['a list of differing values', 'Content-Length: 2, 3'],
      ['a negative value', 'Content-Length: -1'],
      ['a value that is not a number', 'Content-Length: two'],
      ['a value too large to count', 'Content-Length: 99999999999999999'],
    ] as const) {
      it(`refuses ${why} with bad-length`, () => {
        assert.equal(read([`HTTP/1.1 200 OK\r\n${field}\r\n\r\nok`]).outcome, 'bad-length');
      });
    }

    it('says truncated when the upstream ends before the body does', () => {
      const r = read(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf'], { ended: true });
      assert.deepEqual([r.outcome, r.body], ['truncated', 'half']);
    });
  });

  describe('when the body is chunked', () => {
    const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;name="x"\r\n,\r\nA \r\n worldwide\r\n0\r\nX-Trailer: t\r\n\r\n';
    it('gives the data without the framing, and ends at the last chunk and trailer, however the reads fall', () => {
      for (const pieces of splits(text)) {
        const r = read(pieces);
        assert.equal(r.outcome, 'done', JSON.stringify(pieces));
        assert.equal(r.heads[0]?.length, undefined);
        assert.equal(r.body, 'hello, worldwide');
      }
    });

    it('ignores Content-Length beside Transfer-Encoding (RFC 9112 section 6.3)', () => {
      const r = read(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n']);
      assert.deepEqual([r.outcome, r.heads[0]?.length, r.body], ['done', undefined, 'ok']);
    });

    for (const [why, framing] of [
      ['a size that is not hexadecimal', 'zz\r\nok\r\n0\r\n\r\n'],
      ['an empty size line', '\r\nok\r\n0\r\n\r\n'],
      ['data longer than its size', '1\r\nok\r\n0\r\n\r\n'],
      ['a size line ended by a bare LF', '2\nok\r\n0\r\n\r\n'],
      ['a CR inside a chunk extension', '2;a=\rb\r\nok\r\n0\r\n\r\n'],
      ['a size too large to count', 'fffffffffffffff\r\n'],
      ['a malformed trailer', '0\r\nnot a field\r\n\r\n'],
    ] as const) {
      it(`refuses ${why} with bad-chunk`, () => {
        assert.equal(read([`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${framing}`]).outcome, 'bad-chunk');
      });
    }

    it('refuses a size line longer than 4 KiB', () => {
      assert.equal(read([`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'x'.repeat(5000)}`]).outcome, 'bad-chunk');
    });

    it('says truncated when the upstream ends before the last chunk', () => {
      assert.equal(read(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n'], { ended: true }).outcome, 'truncated');
    });
  });

  describe('when the body runs to the end of the connection', () => {
    it('passes everything on and is done when the upstream ends', () => {
      const r = read(['HTTP/1.0 200 OK\r\n\r\nall', ' of it'], { ended: true });
      assert.deepEqual([r.outcome, r.body], ['done', 'all of it']);
    });

    it('reads a Transfer-Encoding whose last coding is not chunked that way', () => {
      const r = read(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzz'], { ended: true });
      assert.deepEqual([r.outcome, r.body], ['done', 'zz']);
    });
  });

  describe('when the response has no body', () => {
    for (const [why, text, headRequest] of [
      ['to a HEAD request, whatever its Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n', true],
      ['with status 204', 'HTTP/1.1 204 No Content\r\n\r\n', false],
      ['with status 304', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n', false],
    ] as const) {
      it(`is done at the head ${why}`, () => {
        const r = read([text], { headRequest });
        assert.deepEqual([r.outcome, r.heads.length, r.body], ['done', 1, '']);
      });
    }

    it('gives a 204 no length, whatever Content-Length it sent (RFC 9110 section 8.6: a 204 has none)', () => {
      const r = read(['HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n']);
      assert.deepEqual([r.outcome, r.heads[0]?.status, r.heads[0]?.length], ['done', 204, undefined]);
    });

    it('keeps the length of a 304 (it names the length of the stored answer)', () => {
      assert.equal(read(['HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n']).heads[0]?.length, 99);
    });
  });

  describe('when interim answers come first', () => {
    it('skips 100 and 103 and gives the final head', () => {
      const r = read(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
      assert.deepEqual([r.outcome, r.heads.map((h) => h.status), r.body], ['done', [200], 'ok']);
    });

    it('refuses 101 Switching Protocols, which the proxy never asked for', () => {
      assert.equal(read(['HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n']).outcome, 'bad-head');
    });
  });

  describe('when the head is hostile or malformed', () => {
    for (const [why, text] of [
      ['no status line', '\r\n\r\n'],
      ['HTTP/2 in the status line', 'HTTP/2 200 OK\r\n\r\n'],
      ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
      ['a control character in the reason', 'HTTP/1.1 200 O\x01K\r\n\r\n'],
      ['a field without a colon', 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n'],
      ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok'],
      ['an obsolete folded line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\n\r\n'],
      ['a bare CR inside a value', 'HTTP/1.1 200 OK\r\nX-A: 1\r2\r\n\r\n'],
      ['a NUL inside a value', 'HTTP/1.1 200 OK\r\nX-A: 1\x002\r\n\r\n'],
    ] as const) {
      it(`refuses ${why} with bad-head`, () => {
        assert.equal(read([text]).outcome, 'bad-head');
      });
    }

    it('refuses a head longer than the limit with head-too-large, even without its end', () => {
      assert.equal(read([`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(2000)}`], { maxHeadBytes: 1024 }).outcome, 'head-too-large');
    });

    it('says truncated when the upstream ends inside the head, or before any byte', () => {
      assert.equal(read(['HTTP/1.1 200 OK\r\n'], { ended: true }).outcome, 'truncated');
      assert.equal(read([], { ended: true }).outcome, 'truncated');
    });
  });
});

describe('ResponseReader against a hostile upstream', () => {
  it('refuses a field of 16 KiB of blanks ending in a control character in linear time', () => {
    // The quickest of five reads: a busy machine may stall one, and backtracking over the
    // blanks (quadratic: seconds) would slow every one of them.
    const times = Array.from({ length: 5 }, () => {
      const started = performance.now();
      const r = read([`HTTP/1.1 200 OK\r\nX-A: ${' '.repeat(16_000)}\x01 \r\n\r\n`], { maxHeadBytes: 32_768 });
      assert.equal(r.outcome, 'bad-head');
      return performance.now() - started;
    });
    assert.ok(Math.min(...times) < 50, `took ${times.map((ms) => ms.toFixed(0)).join(', ')} ms`);
  });

  it('copies a 16 KiB head sent a byte at a time in linear, not quadratic, bytes', (t) => {
    // Every byte a reader joins with Buffer.concat is counted: re-joining the head read so far at
    // each read copies some 134 million bytes for this head, reading it once about 16 thousand.
    let copied = 0;
    const concat = Buffer.concat;
    t.mock.method(Buffer, 'concat', (list: readonly Uint8Array[], length?: number) => {
      for (const b of list) copied += b.length;
      return concat(list, length);
    });
    const text = `HTTP/1.1 200 OK\r\nX-A: ${'a'.repeat(16_000)}\r\nContent-Length: 2\r\n\r\nok`;
    const r = read([...text], { maxHeadBytes: 16_384 });
    t.mock.restoreAll();
    assert.deepEqual([r.outcome, r.heads[0]?.rawHeaders[1]?.length, r.body], ['done', 16_000, 'ok']);
    assert.ok(copied < 16 * text.length, `${copied} bytes copied for a head of ${text.length}`);
  });
});

