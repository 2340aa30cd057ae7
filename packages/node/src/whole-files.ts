// Files the node writes whole, so that no reader and no crash ever sees one
// half-written: made once and kept (its device key, the receipt key it pins),
// or replaced (its policy, the device tokens its gateways gave it).
import { randomUUID } from 'node:crypto';
import { closeSync, constants, fstatSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { NodeError, type NodeErrorCode } from './errors.ts';

/** Far more than any file the node keeps (a key, a policy, a few tokens). */
export const MAX_STATE_FILE_BYTES = 1024 * 1024;

/**
 * The text of the node's own file at `path`: a regular file of at most
 * MAX_STATE_FILE_BYTES, opened without waiting on a FIFO, so a file swapped
 * for one (or a link to /dev/zero) is refused instead of hanging the node or
 * filling its memory. Throws the file system's error for one it cannot open
 * (ENOENT…), and NodeError `code` for anything else there.
 */
export function readStateFile(path: string, code: NodeErrorCode): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new NodeError(code, `${path} is not a regular file`);
    if (stat.size > MAX_STATE_FILE_BYTES) throw new NodeError(code, `${path} is larger than ${MAX_STATE_FILE_BYTES} bytes`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `text` to a new file beside `path` (mode 0600) and flushes it to
 * disk; returns its name. O_EXCL and a name of its own per call: nobody could
 * have planted a link there beforehand, and two writers never share one.
 */
function writeBeside(path: string, text: string): string {
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  return tmp;
}

/**
 * The text of the file at `path`, after writing `make()` there when there is
 * none: written whole and linked into place, which fails rather than replaces
 * when another process got there first; that one's file is then the one
 * read (readStateFile). A crash leaves nothing at `path`, never a half-written file. Throws
 * the file system's error (ENOENT of the folder, EACCES…), NodeError `code`
 * for a file there that is no regular file or too large, and what `make` throws.
 */
export function createOnce(path: string, make: () => string, code: NodeErrorCode = 'NODE_CONFIG_INVALID'): { text: string; created: boolean } {
  try {
    return { text: readStateFile(path, code), created: false };
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
  }
  const text = make();
  const tmp = writeBeside(path, text);
  try {
    linkSync(tmp, path);
    return { text, created: true };
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
    return { text: readStateFile(path, code), created: false };
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Replaces the file at `path` with `text` (mode 0600): written whole and
 * renamed into place, so a reader sees the old file or the new one, and a
 * crash leaves one of them. Throws the file system's error.
 */
export function replaceFile(path: string, text: string): void {
  const tmp = writeBeside(path, text);
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}
