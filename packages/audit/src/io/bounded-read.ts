// Reading a small file a person names (a public key, a kept checkpoint, the
// witness): at most a bound, so that a path to /dev/zero or an endless pipe
// ends in a clear error instead of a process reading for ever, and a path to
// a FIFO (which blocks on open until something writes to it), a socket or a
// device is refused before anything is read from it.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

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

/** Not a regular file (a FIFO, a socket, a device, a directory): the caller names the file in its own error. */
export class NotRegularFile extends Error {
  /** What it is instead, in words: "a FIFO (named pipe)", "a directory", … */
  readonly kind: string;
  constructor(kind: string) {
    super(`it is ${kind}, not a regular file`);
    this.kind = kind;
  }
}

/**
 * The text of the regular file `path`, read up to `limit` bytes. Throws
 * NotRegularFile for anything else, TooLarge past the bound, and the file
 * system's own error (ENOENT, EACCES) as it is.
 *
 * Opened without blocking and checked with fstat on the descriptor opened, so
 * no rename between a check and the open can swap a FIFO in: opening a FIFO
 * for reading blocks until a writer comes, for ever when none does. (A socket
 * file cannot be opened at all: ENXIO.)
 */
export function readBoundedText(path: string, limit: number = SMALL_FILE_LIMIT): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') throw new NotRegularFile('a socket');
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      const kind = stat.isFIFO() ? 'a FIFO (named pipe)' : stat.isDirectory() ? 'a directory' : stat.isCharacterDevice() || stat.isBlockDevice() ? 'a device' : stat.isSocket() ? 'a socket' : 'not a file';
      throw new NotRegularFile(kind);
    }
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (let n; length <= limit && (n = readSync(fd, buffer, length, limit + 1 - length, null)) > 0; ) length += n;
    if (length > limit) throw new TooLarge(limit);
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}
