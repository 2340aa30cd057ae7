import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
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

/** Linux names every open descriptor of the process here: opening `${PROC_FD}/N/name` looks `name` up in the directory N holds, as openat(2) would. */
const PROC_FD = '/proc/self/fd';
const byDescriptor = (() => {
  try {
    return statSync(PROC_FD).isDirectory();
  } catch {
    return false;
  }
})();

/**
 * A directory held open by descriptor, so that what is read inside it stays
 * inside it. `name` is how messages call it.
 */
export interface HeldDir {
  readonly fd: number;
  readonly name: string;
  /** Where its entries are looked up: the descriptor itself on Linux, else the directory's resolved path when it was opened. */
  readonly base: string;
}

/**
 * Opens a directory and holds it. `parent` and `entry` open the entry of a
 * held directory, never following a symbolic link (nor any other name: one
 * component is looked up, in the directory the parent's descriptor holds);
 * a bare path is resolved once, links included. Throws POLICY_UNREADABLE
 * naming `name`: for a link, a directory that is not one, or one that
 * cannot be opened.
 */
export function openHeldDir(at: { path: string } | { parent: HeldDir; entry: string }, name: string): HeldDir {
  const child = 'parent' in at;
  let fd: number | undefined;
  try {
    // Without /proc, the path it is opened by is the one its entries are looked up under: resolved first, then checked against the descriptor.
    const path = child ? entryPath(at.parent, at.entry) : byDescriptor ? at.path : realpathSync(at.path);
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | (child ? constants.O_NOFOLLOW : 0));
    const held = { fd, name, base: byDescriptor ? `${PROC_FD}/${fd}` : path };
    if (child) stillHeld(at.parent);
    stillHeld(held);
    return held;
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    if (error instanceof PolicyError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (child && (code === 'ELOOP' || code === 'ENOTDIR')) throw new PolicyError('POLICY_UNREADABLE', `${name} is no longer a directory (${code === 'ELOOP' ? 'a symbolic link' : 'something else'} took its place while the policy directory was read)`, { cause: error });
    throw new PolicyError('POLICY_UNREADABLE', `cannot open the directory ${name}`, { cause: error });
  }
}

/** The path that opens `entry` of `dir`: through its descriptor on Linux. */
export function entryPath(dir: HeldDir, entry: string): string {
  return `${dir.base}/${entry}`;
}

/**
 * Throws POLICY_UNREADABLE unless `dir`'s entries are still those of the
 * directory its descriptor holds. Through /proc they are by construction;
 * elsewhere its path is checked to name the same inode — which cannot see a
 * swap undone before the check.
 */
export function stillHeld(dir: HeldDir): void {
  if (byDescriptor) return;
  const held = fstatSync(dir.fd);
  const named = statSync(dir.base, { throwIfNoEntry: false });
  if (named?.dev !== held.dev || named.ino !== held.ino) {
    throw new PolicyError('POLICY_UNREADABLE', `${dir.name} was moved or replaced while the policy directory was read`);
  }
}

export function closeHeldDir(dir: HeldDir): void {
  closeSync(dir.fd);
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
