// An exclusive lock on a file that several node processes may change (a
// policy kept for many nodes, each node's own file a link to it), so that a
// compare-and-swap on it is one step for all of them: a lock file beside it,
// made whole and linked into place (which fails when one is there), holding
// the pid of the process that made it.
import { randomUUID } from 'node:crypto';
import { closeSync, constants, fstatSync, linkSync, openSync, readSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { processAlive } from '@corral/contain';
import { NodeError } from './errors.ts';

/**
 * How long a lock another process holds is waited for, from when it was
 * made: a holder keeps it for one write. Past that it is refused as busy at
 * once: a gateway sending changes without end, while a lock is stuck, never
 * has the node wait for each.
 */
export const LOCK_WAIT_MS = 1_000;

/**
 * Runs `work` (synchronous) holding `${path}.lock`, waiting for a lock
 * another process holds until it is LOCK_WAIT_MS old; blocking, since a
 * holder keeps it for one write alone. A lock that old whose process is gone
 * (it crashed holding it) is taken over, as is one naming this process, which
 * cannot be held: `work` never awaits, so no lock of this process outlives
 * its call. Never one younger: its pid may be that of a process another pid
 * namespace runs (a node in another container sharing the policy), which
 * this one cannot see. Throws NODE_POLICY_CHANGE_BUSY when the lock is not
 * free in time, the file system's error when the lock cannot be made, and
 * what `work` throws.
 */
export function withFileLock<T>(path: string, work: () => T): T {
  const lock = `${path}.lock`;
  const mine = `${lock}.${process.pid}.${randomUUID()}.tmp`;
  // Made whole first: another process never reads a lock without its pid.
  writeFileSync(mine, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  try {
    // Bounded also while other processes take it in turn, each lock of theirs young.
    const deadline = performance.now() + 2 * LOCK_WAIT_MS;
    while (!take(mine, lock)) {
      if (performance.now() >= deadline || heldFor(lock) >= LOCK_WAIT_MS) throw new NodeError('NODE_POLICY_CHANGE_BUSY', `another node is changing the node policy now (its lock file ${basename(lock)} is held): try again; if it stays so, remove that lock file beside the policy once no node is changing it`);
      Atomics.wait(SLEEP, 0, 0, 2 + Math.random() * 8);
    }
  } finally {
    rmSync(mine, { force: true });
  }
  try {
    return work();
  } finally {
    rmSync(lock, { force: true });
  }
}

const SLEEP = new Int32Array(new SharedArrayBuffer(4));

/** Links `mine` into place as `lock`, after moving a stale one away; false while another process holds it. */
function take(mine: string, lock: string): boolean {
  if (link(mine, lock)) return true;
  if (!stale(lock)) return false;
  // Moved away under a name of this call's own, then looked at again: of two processes taking over the same stale lock, the
  // second may have moved the first one's new lock, which it then puts back.
  const moved = `${lock}.${process.pid}.${randomUUID()}.stale`;
  try {
    renameSync(lock, moved);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return false;
    throw error;
  }
  try {
    if (!stale(moved)) linkSync(moved, lock);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
  } finally {
    rmSync(moved, { force: true });
  }
  return link(mine, lock);
}

/** Links `mine` into place as `lock`, made now (its age is how long it has been held); false when a lock is there. */
function link(mine: string, lock: string): boolean {
  try {
    const now = new Date();
    utimesSync(mine, now, now);
    linkSync(mine, lock);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
    return false;
  }
}

/** How long ago the lock at `path` was made, in ms (0 when it is gone). */
function heldFor(path: string): number {
  const made = statSync(path, { throwIfNoEntry: false })?.mtimeMs;
  return made === undefined ? 0 : Date.now() - made;
}

/** Whether the lock at `path` is LOCK_WAIT_MS old and names a process that is gone, or this one; false for one gone meanwhile. */
function stale(path: string): boolean {
  if (heldFor(path) < LOCK_WAIT_MS) return false;
  let text: string;
  try {
    text = readLock(path);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return false;
    throw error;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return true;
  return !processAlive(pid);
}

/**
 * The pid text of the lock at `path`, opened without waiting: a lock file is
 * a few bytes a node wrote whole. Anything else there (a FIFO, whose read
 * would wait for a writer for ever, and the node with it; a device) names no
 * process, as a lock of no pid does. Throws the file system's error.
 */
function readLock(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const buffer = Buffer.alloc(32);
    return fstatSync(fd).isFile() ? buffer.toString('utf8', 0, readSync(fd, buffer)) : '';
  } finally {
    closeSync(fd);
  }
}
