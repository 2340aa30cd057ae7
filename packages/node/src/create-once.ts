// Files the node makes once and keeps (its device key, the receipt key it
// pins): never seen half-written, and made once when two processes race.
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

/**
 * The text of the file at `path`, after writing `make()` there when there is
 * none: written whole (and flushed) to a file of its own, mode 0600, then
 * linked into place, which fails rather than replaces when another process
 * got there first; that one's file is then the one read. A crash leaves
 * nothing at `path`, never a half-written file. Throws the file system's
 * error (ENOENT of the folder, EACCES…) and what `make` throws.
 */
export function createOnce(path: string, make: () => string): { text: string; created: boolean } {
  try {
    return { text: readFileSync(path, 'utf8'), created: false };
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
  }
  const text = make();
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  // O_EXCL: a name nobody could have planted (a symlink) beforehand.
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return { text, created: true };
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
    return { text: readFileSync(path, 'utf8'), created: false };
  } finally {
    rmSync(tmp, { force: true });
  }
}
