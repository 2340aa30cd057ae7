// The SQLite writer thread: owns the connection that appends. Hashing a batch,
// inserting it and waiting for its fsync happen here, beside the event loop
// of the process that asked, so that process keeps accepting (and
// canonicalising) the next appends meanwhile. Group commit: a transaction
// takes every request waiting once it holds the write lock.
import { DatabaseSync } from 'node:sqlite';
import { Worker, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { MAX_TRANSACTION, type WriterConfig } from './batch.ts';
import { BatchWriter, sqliteError } from './sqlite-write.ts';
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
  // synchronous is per connection: FULL makes every commit durable before it is acknowledged.
  db.exec('PRAGMA synchronous = FULL');
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

port.on('message', (first: WriterMessage) => {
  if (first === 'close') return close();
  const ids = [first.id];
  const requests = [first.request];
  let closing = false;
  try {
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
    port.postMessage({ replies: ids.map((id, i) => ({ id, result: parts[i]! })) } satisfies WriterReply);
  } catch (error) {
    const e = sqliteError(path, error);
    port.postMessage({ replies: ids.map((id) => ({ id, error: { code: e.code, message: e.message } })) } satisfies WriterReply);
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
