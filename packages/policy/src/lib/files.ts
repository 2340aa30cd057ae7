import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { PolicyError } from '../errors.ts';

/**
 * Reads one regular file, at most `budget` bytes, never waiting on a FIFO or
 * reading a device forever; with `noFollow`, a symbolic link is refused too.
 * `name` is how messages call the file. Throws POLICY_UNREADABLE.
 */
export function readRegularFile(path: string, name: string, budget: number, options: { noFollow?: boolean } = {}): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (options.noFollow ? constants.O_NOFOLLOW : 0));
    if (!fstatSync(fd).isFile()) throw new PolicyError('POLICY_UNREADABLE', `${name} is not a regular file`);
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.alloc(64 * 1024);
    for (let n; (n = readSync(fd, chunk)) > 0; ) {
      total += n;
      if (total > budget) throw new PolicyError('POLICY_UNREADABLE', `${name} goes over the size limit (${budget} bytes left to read)`);
      chunks.push(Buffer.from(chunk.subarray(0, n)));
    }
    return Buffer.concat(chunks);
  } catch (error) {
    if (error instanceof PolicyError) throw error;
    throw new PolicyError('POLICY_UNREADABLE', `cannot read ${name}`, { cause: error });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * `bytes` as text, or the byte offset of the first byte that is not UTF-8.
 * Not Buffer's decoding, which puts U+FFFD in silently: a policy would then
 * name something other than what its file says.
 */
export function utf8Text(bytes: Uint8Array): { text: string } | { badByte: number } {
  try {
    return { text: UTF8.decode(bytes) };
  } catch {
    // The lossy decoding re-encodes to the same bytes up to the first bad one.
    const lossy = Buffer.from(Buffer.from(bytes).toString('utf8'), 'utf8');
    let at = 0;
    while (at < bytes.length && lossy[at] === bytes[at]) at++;
    return { badByte: at };
  }
}
