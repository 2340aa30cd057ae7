// Making the SQLite write-ahead log durable outside SQLite's write lock.
//
// With synchronous=FULL a commit fsyncs the log while it holds the write
// lock, so with several processes appending the lock sits idle through every
// fsync (half a millisecond here) while the others wait for it. The writer
// thread commits with synchronous=NORMAL instead — SQLite writes the frames
// and lets the lock go — and then calls syncWal() before it acknowledges
// anything: fdatasync on the log file writes back every frame written to it
// before the call, by any process, so an acknowledged append is exactly as
// durable as before, and one process's fsync overlaps the next one's insert.
//
// What changes is that a commit is visible to readers a fsync before it is
// durable; a kill -9 loses nothing of it (the frames are in the kernel's
// cache), a power cut could. So readers that hand on what they read (a head,
// a checkpoint: verify's witness, an export, a proof) call syncWal() after
// reading it: what they saw is then durable too.
import { closeSync, fdatasyncSync, openSync } from 'node:fs';

/**
 * Writes back the write-ahead log of the SQLite database at `dbPath`. No log
 * file means nothing is pending: SQLite removes it only after copying it into
 * the database and syncing that.
 * @throws the file system's error (EIO: what was written may be lost).
 */
export function syncWal(dbPath: string): void {
  let fd: number;
  try {
    // SQLite's WAL locks live in the -shm file and the database, never in the
    // log file, so opening and closing a descriptor of it here releases no lock of SQLite's.
    fd = openSync(`${dbPath}-wal`, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
