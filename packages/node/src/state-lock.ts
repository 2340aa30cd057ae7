// A state directory held by one process at a time (a node, `corral up`): two
// on one would use one device key, each connection replacing the other's at
// the gateway, each drop stopping the other's runs. A lock file in it names
// the pid of the process holding it; one left by a process that is gone (a
// crash, SIGKILL) is taken over, so it never blocks a restart.
import { linkSync, lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '@corral/contain';
import { NodeError } from './errors.ts';

/** The lock a node holds on its state directory while its host is open. */
export const NODE_LOCK = 'node.lock';

/**
 * Takes the state directory `dir` (which must exist) for this process:
 * `dir/name` holding its pid. The lock is written whole under a name of this
 * process's, then linked into place: it never exists without its pid, so
 * another process starting at the same moment never reads a half-written lock
 * as one left behind. A lock naming a process that is gone, or this one, is
 * taken over; one naming no process (written by none of these) is left for
 * the user to judge. `holder` names what holds it in messages ("corral node").
 * Returns the release, which removes the lock only while it is still this
 * call's. Throws NODE_STATE_DIR_UNAVAILABLE naming the directory and the pid
 * of the process that holds it, or the lock file, also when the lock cannot
 * be written (its cause the file system's error).
 */
export function lockStateDir(dir: string, name: string, holder: string): () => void {
  try {
    return take(dir, name, holder);
  } catch (error) {
    if (error instanceof NodeError) throw error;
    const path = join(dir, name);
    throw new NodeError('NODE_STATE_DIR_UNAVAILABLE', `cannot write the lock ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}): the state directory must be a folder this user can write`, { cause: error });
  }
}

/** lockStateDir, throwing the file system's error as it is. */
function take(dir: string, name: string, holder: string): () => void {
  const path = join(dir, name);
  const draft = join(dir, `${name}.${process.pid}`);
  // Made anew, never opened through what is there: a link planted under that name is removed, not written through.
  rmSync(draft, { force: true });
  writeFileSync(draft, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(draft, path);
        const ino = lstatSync(path, { bigint: true }).ino;
        return () => removeIfSame(path, ino);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const read = readLock(path);
      // Released since: try again.
      if (read === undefined) continue;
      const pid = /^\d+\n?$/.test(read.text) ? Number(read.text.trim()) : Number.NaN;
      if (!Number.isSafeInteger(pid) || pid <= 0) {
        throw new NodeError('NODE_STATE_DIR_UNAVAILABLE', `${path} names no process, so ${holder} cannot tell whether one holds it: remove it if no ${holder} is running on ${dir}`);
      }
      if (pid !== process.pid && processAlive(pid)) {
        throw new NodeError('NODE_STATE_DIR_UNAVAILABLE', `another ${holder} (pid ${pid}) is running on the state directory ${dir}: stop it first, or choose another state directory for this one (--state-dir, or CORRAL_STATE_DIR)`);
      }
      removeIfSame(path, read.ino);
    }
  } finally {
    rmSync(draft, { force: true });
  }
  throw new NodeError('NODE_STATE_DIR_UNAVAILABLE', `cannot take ${path}: remove it if no ${holder} is running on ${dir}`);
}

/** The lock's text and the file it was read from (its inode); undefined when there is none, or it changed while read. */
function readLock(path: string): { text: string; ino: bigint } | undefined {
  try {
    const before = lstatSync(path, { bigint: true }).ino;
    const text = readFileSync(path, 'utf8');
    return lstatSync(path, { bigint: true }).ino === before ? { text, ino: before } : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Removes the lock at `path` that `ino` is, and nothing else: two starts
 * that both found it left behind must not have the second remove the lock
 * the first has taken since. It is moved aside (rename(2) moves whatever is
 * there, at once) and looked at: a lock other than the one judged is put
 * back.
 */
export function removeIfSame(path: string, ino: bigint): void {
  const aside = `${path}.stale.${process.pid}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    if (lstatSync(aside, { bigint: true }).ino === ino) return;
    try {
      linkSync(aside, path);
    } catch {
      // Taken by a third start meanwhile: that one holds it now.
    }
  } finally {
    rmSync(aside, { force: true });
  }
}
