// Files the node writes whole, so that no reader and no crash ever sees one
// half-written: made once and kept (its device key, the receipt key it pins),
// or replaced (its policy, the device tokens its gateways gave it).
import { randomUUID } from 'node:crypto';
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { NodeError, type NodeErrorCode } from './errors.ts';

/** Far more than any file the node keeps (a key, a policy, a few tokens). */
export const MAX_STATE_FILE_BYTES = 1024 * 1024;

/**
 * The text of the node's own file at `path`: a regular file of at most
 * MAX_STATE_FILE_BYTES, opened without waiting on a FIFO, so a file swapped
 * for one (or a link to /dev/zero) is refused instead of hanging the node or
 * filling its memory; and one no other user of this machine could have
 * written or may change (refuseShared), nor read when it is `secret` (a
 * private key). Throws the file system's error for one it cannot open
 * (ENOENT…), and NodeError `code` for anything else there.
 */
export function readStateFile(path: string, code: NodeErrorCode, secret = false): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new NodeError(code, `${path} is not a regular file`);
    if (stat.size > MAX_STATE_FILE_BYTES) throw new NodeError(code, `${path} is larger than ${MAX_STATE_FILE_BYTES} bytes`);
    refuseShared(stat, path, code, secret);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Refuses a state file (the one `stat` describes) that another user of this
 * machine could have written or may change: one that belongs to neither this
 * user nor root (a policy kept for many nodes may be root's), or that its
 * group or others may write; when `secret`, also one they may read. Owners
 * and modes mean nothing where there are no user ids (Windows). Throws
 * NodeError `code`.
 */
function refuseShared(stat: Stats, path: string, code: NodeErrorCode, secret: boolean): void {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const mode = stat.mode & 0o777;
  if (stat.uid !== uid && stat.uid !== 0) throw new NodeError(code, `${path} belongs to another user (uid ${stat.uid}), who could have written anything in it`);
  if ((mode & 0o022) !== 0) throw new NodeError(code, `${path} can be changed by other users (mode ${mode.toString(8)})`);
  if (secret && (mode & 0o077) !== 0) throw new NodeError(code, `${path} can be read by other users (mode ${mode.toString(8)}), any of whom may have a copy`);
}

/** What a refusal of another user's state directory says: what that user could do there, and what to do instead. */
export interface ForeignDirWords {
  risk: string;
  /** Given this user's uid. */
  remedy: (uid: number) => string;
}

const NODE_STATE_WORDS: ForeignDirWords = {
  risk: "could read or replace the node's device key and policy in it",
  remedy: (uid) => `run the node as that user, or give it a state directory of this user's (uid ${uid})`,
};

/**
 * Makes `dir` (the node's state directory) a folder only this user may use
 * before anything in it is read: made 0700 (with any missing parent) when it
 * does not exist, made 0700 when this user's and others may enter or write
 * it. Whoever else may write it could remove the node's policy (the default
 * then runs everything) or put files of theirs in its place. Throws the file
 * system's error when it cannot be made or opened, and NodeError `code` when
 * another user owns it (saying `words`), or others may write it and it cannot be made 0700.
 */
export function privateStateDir(dir: string, code: NodeErrorCode, words: ForeignDirWords = NODE_STATE_WORDS): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.();
  if (uid === undefined) return;
  // Checked and changed through one descriptor, opened by the path with its links resolved: what is changed is what was checked.
  const fd = openSync(realpathSync(dir), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const found = fstatSync(fd);
    if (found.uid !== uid) throw new NodeError(code, `the state directory ${dir} belongs to another user (uid ${found.uid}), who ${words.risk}: ${words.remedy(uid)}`);
    if ((found.mode & 0o077) === 0) return;
    try {
      fchmodSync(fd, 0o700);
    } catch {
      // Said below, if others may still write it.
    }
    const mode = fstatSync(fd).mode & 0o777;
    if ((mode & 0o022) !== 0) throw new NodeError(code, `the state directory ${dir} may be written by others (mode ${mode.toString(8)}) and cannot be made private: make it so with chmod 700 ${dir}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `text` to a new file beside `path` (mode `mode`, whatever the umask)
 * and flushes it to disk; returns its name. O_EXCL and a name of its own per
 * call: nobody could have planted a link there beforehand, and two writers
 * never share one.
 */
function writeBeside(path: string, text: string, mode = 0o600): string {
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    if (mode !== 0o600) fchmodSync(fd, mode);
    // Written until all of it is, or it fails: one write may take only part (a full disk, a file size limit) and say so without an error.
    writeFileSync(fd, text);
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
 * read (readStateFile, `secret` as it takes it). A crash leaves nothing at `path`, never a
 * half-written file. Throws the file system's error (ENOENT of the folder, EACCES…), NodeError
 * `code` for a file there that readStateFile refuses, and what `make` throws.
 */
export function createOnce(path: string, make: () => string, code: NodeErrorCode = 'NODE_CONFIG_INVALID', secret = false): { text: string; created: boolean } {
  try {
    return { text: readStateFile(path, code, secret), created: false };
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
    return { text: readStateFile(path, code, secret), created: false };
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Replaces the file at `path` with `text` (mode `mode`, default 0600): written
 * whole and renamed into place, so a reader sees the old file or the new one,
 * and a crash leaves one of them. Throws the file system's error.
 */
export function replaceFile(path: string, text: string, mode = 0o600): void {
  const tmp = writeBeside(path, text, mode);
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}
