// Reading a small file a person names (a public key, a kept checkpoint, the
// witness): at most a bound, so that a path to /dev/zero or an endless pipe
// ends in a clear error instead of a process reading for ever.
import { closeSync, openSync, readSync } from 'node:fs';

/** Far more than a checkpoint (about 500 bytes) or a PEM public key (about 110) takes. */
export const SMALL_FILE_LIMIT = 64 * 1024;

/** Past its bound: the caller names the file and the bound in its own error. */
export class TooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`larger than ${limit} bytes`);
    this.limit = limit;
  }
}

/**
 * The text of `path`, read up to `limit` bytes (a pipe too). Throws TooLarge past it, and
 * the file system's own error (ENOENT, EACCES, EISDIR) as it is.
 */
export function readBoundedText(path: string, limit: number = SMALL_FILE_LIMIT): string {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (let n; length <= limit && (n = readSync(fd, buffer, length, limit + 1 - length, null)) > 0; ) length += n;
    if (length > limit) throw new TooLarge(limit);
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}
