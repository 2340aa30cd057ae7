// The SQLite writer thread: owns the connection that appends. Hashing a batch,
// inserting it and waiting for its fsync happen here, beside the event loop
// of the process that asked, so that process keeps accepting (and
// canonicalising) the next appends meanwhile. Group commit: a transaction
// takes every request waiting once it holds the write lock. The fsync comes
// after the commit, outside the write lock (sqlite-wal-sync.ts).
import { DatabaseSync } from 'node:sqlite';
import { Worker, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { MAX_TRANSACTION, type WriterConfig } from './batch.ts';
import { AuditError } from '../errors.ts';
import { BatchWriter, sqliteError } from './sqlite-write.ts';
import { syncWal } from './sqlite-wal-sync.ts';
import { noteClosing, noteCommit, type CommitCount } from './sqlite-commit-count.ts';
import type { WriterMessage, WriterReply } from './sqlite-writer.ts';

const { path, config, committed } = workerData as { path: string; config: WriterConfig; committed: CommitCount };
const port = parentPort!;

let checkpointer: Worker;
let checkpointerRunning = true;
let writer: BatchWriter;
let db: DatabaseSync;
try {
  db = new DatabaseSync(path);
  // synchronous is per connection. NORMAL: a commit lets the write lock go
  // without an fsync, and syncWal() below makes it durable before it is
  // acknowledged. Measured with eight writer processes on this project's
  // 2-core test machines: 113,700–128,000 appends/s against 98,100–112,700
  // with FULL (four alternating rounds each); one writer alone the same.
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA cache_size = -32768');
  // The checkpointer thread copies the log into the file as it grows. Under
  // steady appending its passes never catch the writer between two commits,
  // so the log never wraps to its start; the writer's own checkpoint, due
  // every 128 MiB of log, copies the little left and lets it wrap.
  db.exec('PRAGMA wal_autocheckpoint = 8192');
  writer = new BatchWriter(db, path);
  checkpointer = new Worker(new URL('./sqlite-checkpointer-thread.ts', import.meta.url), { workerData: { path, committed } });
  checkpointer.on('exit', () => (checkpointerRunning = false));
  // The writer is ready once the checkpointer is (its start-up is then no
  // append's cost); without it, the writer's automatic checkpoint does the work.
  await new Promise<void>((resolve) => {
    checkpointer.once('message', () => resolve());
    checkpointer.once('exit', () => resolve());
    checkpointer.on('error', () => resolve());
  });
  port.postMessage({ ready: true } satisfies WriterReply);
} catch (error) {
  const e = sqliteError(path, error);
  port.postMessage({ ready: false, error: { code: e.code, message: e.message } } satisfies WriterReply);
  port.close();
}

/**
 * Set once writing back the log failed. After a failed fsync the kernel may
 * have dropped the pages it could not write and a later fsync can succeed
 * without them, so nothing this connection committed can be vouched for:
 * every later request fails with this error.
 */
let broken: AuditError | null = null;

port.on('message', (first: WriterMessage) => {
  if (first === 'close') return close();
  const ids = [first.id];
  const requests = [first.request];
  let closing = false;
  try {
    if (broken) throw broken;
    const parts = writer.transaction((head) => {
      // Now that the lock is held, take every request that arrived meanwhile
      // (while an earlier commit or another process held it): group commit.
      for (let records = first.request.bodies.length; records < MAX_TRANSACTION; ) {
        const m = receiveMessageOnPort(port)?.message as WriterMessage | undefined;
        if (m === undefined) break;
        if (m === 'close') {
          closing = true;
          break;
        }
        ids.push(m.id);
        requests.push(m.request);
        records += m.request.bodies.length;
      }
      return writer.appendAll(head, requests, config);
    });
    noteCommit(committed, parts.reduce((n, p) => n + p.hashes.length, 0));
    try {
      syncWal(path);
    } catch (error) {
      broken = new AuditError(
        'AUDIT_STORE_UNAVAILABLE',
        `audit log ${path}: writing its write-ahead log to disk failed (${(error as Error).message}); appends since the last acknowledged one may be lost, so this log acknowledges no more: close it, check the disk, and run 'corral audit verify'`,
        { cause: error },
      );
      throw broken;
    }
    port.postMessage({ replies: ids.map((id, i) => ({ id, result: parts[i]! })) } satisfies WriterReply);
  } catch (error) {
    const e = sqliteError(path, error);
    port.postMessage({ replies: ids.map((id) => ({ id, error: { code: e.code, message: e.message } })), ...(broken ? { broken: { code: broken.code, message: broken.message } } : {}) } satisfies WriterReply);
  }
  if (closing) close();
});

/** Stops the checkpointer, then closes the connection; the thread ends. */
function close(): void {
  const end = () => {
    db.close();
    port.close();
  };
  if (!checkpointerRunning) return end();
  noteClosing(committed);
  checkpointer.once('exit', end);
}
