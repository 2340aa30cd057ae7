// An upstream's HTTP/1.1 response read off raw bytes, for the egress proxy's
// plain-HTTP relay: the head (status line and fields, checked strictly), then
// the body as slices of the bytes read, framed as RFC 9112 section 6.3 says, so
// that the proxy knows where the response ends without copying or re-parsing
// the body through an HTTP client. The upstream is hostile input: anything
// outside the grammar is a fault, and the proxy then ends the response.

/** The response head, copied out of the bytes read. */
export interface ResponseHead {
  status: number;
  reason: string;
  /** Field names and values, alternating, as received (latin1, as Node's `rawHeaders`). */
  rawHeaders: string[];
  /** The body length, when the body is framed by Content-Length. */
  length?: number;
}

/** Where a reader sends what it finds. `start`..`end` index into the chunk given to push(). */
export interface ResponseSink {
  head(head: ResponseHead): void;
  body(chunk: Buffer, start: number, end: number): void;
}

/**
 * Why a response cannot be passed on:
 * - `head-too-large`: no end of head within the limit;
 * - `bad-head`: a status line or field outside RFC 9112's grammar (obs-fold included), or a 101;
 * - `bad-length`: Content-Length values that are not one whole number;
 * - `bad-chunk`: chunked framing outside the grammar, or a size line or trailer section too long;
 * - `truncated`: the upstream ended before the framing said the body ends.
 */
export type ResponseFault = 'head-too-large' | 'bad-head' | 'bad-length' | 'bad-chunk' | 'truncated';

/** What the reader waits for: `head`, `body`, or nothing more (`done`). */
export type ReadProgress = 'head' | 'body' | 'done';

const CR = 0x0d;
const LF = 0x0a;
/** A chunk-size line (extensions included) and each trailer line may be this long. */
const MAX_CHUNK_LINE = 4096;

const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DECIMAL = /^\d{1,15}$/;
const HEX = /^[0-9A-Fa-f]{1,13}$/;

type Framing = 'none' | 'length' | 'chunked' | 'close';
type ChunkState = 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer';

/**
 * Reads one response. Feed each read to push() and the upstream's end to
 * end(); each says how far the response got, or the fault.
 *
 * @param headRequest the request was HEAD: the response has no body whatever its fields say.
 * @param maxHeadBytes the longest head accepted (interim 1xx heads count separately).
 */
export class ResponseReader {
  readonly #headRequest: boolean;
  readonly #maxHeadBytes: number;
  #progress: ReadProgress = 'head';
  #head: Buffer[] = [];
  #headBytes = 0;
  /** The head's last (up to 3) bytes so far: its end may straddle reads. */
  #carry: Buffer = Buffer.alloc(0);
  #framing: Framing = 'none';
  /** Bytes of body left: of the whole body (length), of the current chunk (chunked). */
  #left = 0;
  #chunk: ChunkState = 'size';
  #line = '';
  #trailerBytes = 0;

  constructor(headRequest: boolean, maxHeadBytes: number) {
    this.#headRequest = headRequest;
    this.#maxHeadBytes = maxHeadBytes;
  }

  get progress(): ReadProgress {
    return this.#progress;
  }

  /** Reads `chunk` (bytes past the response's end are ignored). */
  push(chunk: Buffer, sink: ResponseSink): ReadProgress | ResponseFault {
    let at = 0;
    while (at < chunk.length && this.#progress !== 'done') {
      const step = this.#progress === 'head' ? this.#readHead(chunk, at, sink) : this.#readBody(chunk, at, sink);
      if (typeof step === 'string') return step;
      at = step;
    }
    return this.#progress;
  }

  /** The upstream ended: `done` when that ends a close-delimited body (or the response was done), else the fault. */
  end(): 'done' | ResponseFault {
    if (this.#progress === 'done') return 'done';
    if (this.#progress === 'body' && this.#framing === 'close') {
      this.#progress = 'done';
      return 'done';
    }
    return 'truncated';
  }

  #readHead(chunk: Buffer, at: number, sink: ResponseSink): number | ResponseFault {
    const end = this.#headEnd(chunk, at);
    const taken = end === -1 ? chunk.length - at : end - at;
    if (this.#headBytes + taken > this.#maxHeadBytes) return 'head-too-large';
    const piece = Buffer.from(chunk.subarray(at, at + taken));
    this.#head.push(piece);
    this.#headBytes += taken;
    // Only the last bytes are kept aside: joining the whole head at every read is quadratic in a
    // head sent a byte at a time.
    this.#carry = piece.length >= 3 ? piece.subarray(piece.length - 3) : Buffer.concat([this.#carry, piece]).subarray(-3);
    if (end === -1) return chunk.length;
    const text = Buffer.concat(this.#head, this.#headBytes).toString('latin1', 0, this.#headBytes - 4);
    this.#head = [];
    this.#headBytes = 0;
    this.#carry = Buffer.alloc(0);
    const fault = this.#startBody(text, sink);
    return fault ?? end;
  }

  /** Where in `chunk` the head's blank line ends (just past it), searching from `at` and the bytes carried; -1 when not yet. */
  #headEnd(chunk: Buffer, at: number): number {
    const carried = this.#carry.length;
    if (carried > 0) {
      const bridge = Buffer.concat([this.#carry, chunk.subarray(at, at + 3)]);
      const found = bridge.indexOf('\r\n\r\n');
      if (found !== -1) return at + found + 4 - carried;
    }
    const found = chunk.indexOf('\r\n\r\n', at);
    return found === -1 ? -1 : found + 4;
  }

  #startBody(text: string, sink: ResponseSink): ResponseFault | undefined {
    const [statusLine = '', ...lines] = text.split('\r\n');
    const status = STATUS_LINE.exec(statusLine);
    if (status === null) return 'bad-head';
    const code = Number(status[1]);
    const rawHeaders: string[] = [];
    const lengths: string[] = [];
    let codings: string | undefined;
    for (const line of lines) {
      const field = parseField(line);
      if (field === null) return 'bad-head';
      const [name, value] = field;
      rawHeaders.push(name, value);
      const lower = name.toLowerCase();
      if (lower === 'content-length') lengths.push(...value.split(','));
      else if (lower === 'transfer-encoding') codings = codings === undefined ? value : `${codings},${value}`;
    }
    // An interim answer (103 Early Hints, a stray 100): not passed on; the final head follows.
    if (code >= 100 && code < 200) {
      if (code === 101) return 'bad-head';
      return undefined;
    }
    const head: ResponseHead = { status: code, reason: status[2] ?? '', rawHeaders };
    // A 204 has no Content-Length (RFC 9110 section 8.6): whatever one says is not read, nor passed on.
    if (codings === undefined && lengths.length > 0 && code !== 204) {
      const values = new Set(lengths.map((v) => v.trim()));
      const only = [...values][0] as string;
      if (values.size !== 1 || !DECIMAL.test(only)) return 'bad-length';
      head.length = Number(only);
    }
    if (this.#headRequest || code === 204 || code === 304) this.#framing = 'none';
    else if (codings !== undefined) this.#framing = codings.split(',').at(-1)?.trim().toLowerCase() === 'chunked' ? 'chunked' : 'close';
    else if (head.length !== undefined) this.#framing = 'length';
    else this.#framing = 'close';
    this.#left = head.length ?? 0;
    sink.head(head);
    this.#progress = this.#framing === 'none' || (this.#framing === 'length' && this.#left === 0) ? 'done' : 'body';
    return undefined;
  }

  #readBody(chunk: Buffer, at: number, sink: ResponseSink): number | ResponseFault {
    if (this.#framing === 'close') {
      sink.body(chunk, at, chunk.length);
      return chunk.length;
    }
    if (this.#framing === 'length') {
      const end = Math.min(chunk.length, at + this.#left);
      sink.body(chunk, at, end);
      this.#left -= end - at;
      if (this.#left === 0) this.#progress = 'done';
      return end;
    }
    return this.#readChunked(chunk, at, sink);
  }

  #readChunked(chunk: Buffer, at: number, sink: ResponseSink): number | ResponseFault {
    switch (this.#chunk) {
      case 'data': {
        const end = Math.min(chunk.length, at + this.#left);
        sink.body(chunk, at, end);
        this.#left -= end - at;
        if (this.#left === 0) this.#chunk = 'data-cr';
        return end;
      }
      case 'data-cr':
        if (chunk[at] !== CR) return 'bad-chunk';
        this.#chunk = 'data-lf';
        return at + 1;
      case 'data-lf':
        if (chunk[at] !== LF) return 'bad-chunk';
        this.#chunk = 'size';
        return at + 1;
      case 'size':
      case 'trailer': {
        const lf = chunk.indexOf(LF, at);
        const end = lf === -1 ? chunk.length : lf;
        this.#line += chunk.toString('latin1', at, end);
        if (this.#line.length > MAX_CHUNK_LINE + 1) return 'bad-chunk';
        if (lf === -1) return end;
        const line = this.#line;
        this.#line = '';
        if (!line.endsWith('\r')) return 'bad-chunk';
        return this.#chunk === 'size' ? this.#sizeLine(line.slice(0, -1), lf + 1) : this.#trailerLine(line.slice(0, -1), lf + 1);
      }
    }
  }

  /** `chunk-size [ chunk-ext ]`: the extensions are not used, only checked for line breaks. */
  #sizeLine(line: string, next: number): number | ResponseFault {
    const semicolon = line.indexOf(';');
    const size = (semicolon === -1 ? line : line.slice(0, semicolon)).trimEnd();
    if (!HEX.test(size) || /[\0-\x08\x0a-\x1f\x7f]/.test(line)) return 'bad-chunk';
    this.#left = Number.parseInt(size, 16);
    this.#chunk = this.#left === 0 ? 'trailer' : 'data';
    return next;
  }

  /** Trailer fields are read and dropped (Node re-frames the body for the client); the empty line ends the response. */
  #trailerLine(line: string, next: number): number | ResponseFault {
    if (line === '') {
      this.#progress = 'done';
      return next;
    }
    this.#trailerBytes += line.length + 2;
    if (this.#trailerBytes > this.#maxHeadBytes || parseField(line) === null) return 'bad-chunk';
    return next;
  }
}

/**
 * `field-name ":" OWS field-value OWS` (RFC 9110 section 5), or null. Checked
 * and trimmed without a backtracking pattern: a hostile upstream's long runs
 * of blanks cost linear time.
 */
function parseField(line: string): [string, string] | null {
  const colon = line.indexOf(':');
  if (colon <= 0) return null;
  const name = line.slice(0, colon);
  if (!TOKEN.test(name)) return null;
  let start = colon + 1;
  let end = line.length;
  while (start < end && (line[start] === ' ' || line[start] === '\t')) start++;
  while (end > start && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  const value = line.slice(start, end);
  return FIELD_VALUE.test(value) ? [name, value] : null;
}
