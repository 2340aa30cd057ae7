// The SQLite writer thread: owns the connection that appends. Hashing a batch,
// inserting it and waiting for its fsync happen here, beside the event loop
// of the process that asked, so that process keeps accepting (and
// canonicalising) the next appends meanwhile. Group commit: every request
// that arrived while the last transaction committed goes into the next one.
import { DatabaseSync } from 'node:sqlite';
import { Worker, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { MAX_TRANSACTION, buildBatch, mergeRequests, splitResult, type AppendRequest, type WriterConfig } from './batch.ts';
import { BatchWriter, sqliteError } from './sqlite-write.ts';
import type { WriterMessage, WriterReply } from './sqlite-writer.ts';

const { path, config } = workerData as { path: string; config: WriterConfig };
const port = parentPort!;

/** Shared with the checkpointer: [records committed, closing]. */
const checkpointState = new Int32Array(new SharedArrayBuffer(8));
let checkpointer: Worker;
let writer: BatchWriter;
let db: DatabaseSync;
try {
  db = new DatabaseSync(path);
  // synchronous is per connection: FULL makes every commit durable before it is acknowledged.
  db.exec('PRAGMA synchronous = FULL');
  db.exec('PRAGMA cache_size = -32768');
  // The checkpointer thread copies the log into the file; the writer checkpoints
  // only if that thread falls far behind.
  db.exec('PRAGMA wal_autocheckpoint = 8192');
  writer = new BatchWriter(db, path);
  checkpointer = new Worker(new URL('./sqlite-checkpointer-thread.ts', import.meta.url), { workerData: { path, shared: checkpointState.buffer } });
  // Without it, the writer's automatic checkpoint does the work; appends go on.
  checkpointer.on('error', () => {});
  port.postMessage({ ready: true } satisfies WriterReply);
} catch (error) {
  const e = sqliteError(path, error);
  port.postMessage({ ready: false, error: { code: e.code, message: e.message } } satisfies WriterReply);
  port.close();
}

port.on('message', (first: WriterMessage) => {
  const ids: number[] = [];
  const requests: AppendRequest[] = [];
  let closing = false;
  let records = 0;
  for (let m: WriterMessage | undefined = first; m !== undefined; ) {
    if (m === 'close') {
      closing = true;
      break;
    }
    ids.push(m.id);
    requests.push(m.request);
    records += m.request.bodies.length;
    if (records >= MAX_TRANSACTION) break;
    m = receiveMessageOnPort(port)?.message as WriterMessage | undefined;
  }
  if (requests.length > 0) commit(ids, requests);
  if (closing) {
    Atomics.store(checkpointState, 1, 1);
    Atomics.notify(checkpointState, 0);
    checkpointer.once('exit', () => {
      db.close();
      port.close();
    });
  }
});

function commit(ids: number[], requests: AppendRequest[]): void {
  try {
    const merged = mergeRequests(requests);
    const result = writer.transaction((head) => {
      const { batch, result } = buildBatch(head, merged, config, Date.now());
      writer.write(batch);
      return result;
    });
    Atomics.add(checkpointState, 0, merged.bodies.length);
    Atomics.notify(checkpointState, 0);
    const parts = splitResult(result, requests);
    port.postMessage({ replies: ids.map((id, i) => ({ id, result: parts[i]! })) } satisfies WriterReply);
  } catch (error) {
    const e = sqliteError(path, error);
    port.postMessage({ replies: ids.map((id) => ({ id, error: { code: e.code, message: e.message } })) } satisfies WriterReply);
  }
}
