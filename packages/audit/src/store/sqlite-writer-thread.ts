// The SQLite writer thread: owns the connection that appends. Hashing a batch,
// inserting it and waiting for its fsync happen here, beside the event loop
// of the process that asked, so that process keeps accepting (and
// canonicalising) the next appends meanwhile. Group commit: a transaction
// takes every request waiting once it holds the write lock. When other
// processes append to the same log, one writer thread commits for all of
// them (append-share.ts): this one either is that appender, taking the
// others' requests into its transactions, or forwards its process's
// requests to it.
import { statSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { Worker, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { Answer } from './append-share-frames.ts';
import { AppendForwarder, electAppender, shareSocketPath, unknownCommit, type Role, type ShareIdentity } from './append-share.ts';
import { MAX_TRANSACTION, type AppendRequest, type WriterConfig } from './batch.ts';
import { BatchWriter, BUSY_MS, sqliteError } from './sqlite-write.ts';
import { noteClosing, noteCommit, type CommitCount } from './sqlite-commit-count.ts';
import type { AppendRole, WriterMessage, WriterReply } from './sqlite-writer.ts';

const { path, config, committed } = workerData as { path: string; config: WriterConfig; committed: CommitCount };
/** While this thread commits alone, how often it looks again for an appender to hand its appends to. */
const LOOK_AGAIN_MS = 5000;
const port = parentPort!;

/** A request to commit here, and where its answer goes. */
interface Job {
  request: AppendRequest;
  answer: (a: Answer) => void;
}

let checkpointer: Worker;
let checkpointerRunning = true;
let writer: BatchWriter;
let db: DatabaseSync;
/** How this thread appends; 'electing' while it looks for (or becomes) the log's appender. */
let role: Role | 'electing' = 'electing';
let election: Promise<void> = Promise.resolve();
/** This process's requests that came while electing. */
let held: { id: number; request: AppendRequest }[] = [];
const jobs: Job[] = [];
/** Answers to this process's requests, posted once per commit. */
let replies: Extract<WriterReply, { replies: unknown }>['replies'] = [];
let commitScheduled = false;
let closing = false;
/** Set once 'ready' is sent: later role changes are told on their own. */
let ready = false;
/** The next look for an appender, while this thread commits alone. */
let lookAgain: NodeJS.Timeout | undefined;
/**
 * What an appender found while committing alone does (hand appends to it, or
 * elect), once the commits queued before it are done: until then this
 * process's requests are held, so that they stay in the order they were made.
 */
let change: { go: () => void; drop: () => void } | null = null;

try {
  // Waits for other processes' passing locks as the store's connection does (BUSY_MS); its waits for the write lock are BatchWriter's.
  db = new DatabaseSync(path, { timeout: BUSY_MS });
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
  await elect();
  ready = true;
  port.postMessage({ ready: true, role: roleName() } satisfies WriterReply);
} catch (error) {
  const e = sqliteError(path, error);
  port.postMessage({ ready: false, error: { code: e.code, message: e.message } } satisfies WriterReply);
  port.close();
}

port.on('message', onMessage);

function onMessage(m: WriterMessage): void {
  if (m === 'close') {
    closing = true;
    void close();
    return;
  }
  route(m.id, m.request);
}

/** Sends this process's request to the appender, or queues it for a commit here. */
function route(id: number, request: AppendRequest): void {
  if (role === 'electing' || change) {
    held.push({ id, request });
    return;
  }
  if (role && 'forward' in role && role.forward.send(id, request)) return;
  take(request, (a) => replies.push({ id, ...a }));
}

/** Queues a request for this thread's next commit. */
function take(request: AppendRequest, answer: (a: Answer) => void): void {
  jobs.push({ request, answer });
  scheduleCommit();
}

function scheduleCommit(): void {
  if (commitScheduled) return;
  commitScheduled = true;
  // After the event loop's poll: requests that arrived meanwhile, from this process or others, join the commit.
  setImmediate(commit);
}

/** One transaction for the queued requests (up to MAX_TRANSACTION records); schedules the next while any are left. */
function commit(): void {
  commitScheduled = false;
  if (jobs.length === 0) return;
  // An election holds the write lock on this connection while it looks for the appender.
  if (role === 'electing') return void election.then(scheduleCommit);
  let taken: Job[] = [];
  try {
    const parts = writer.transaction((head) => {
      // Now that the lock is held, take every request that arrived meanwhile
      // (while an earlier commit or another process held it): group commit.
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) onMessage(m.message as WriterMessage);
      let n = 0;
      for (let records = 0; n < jobs.length && (n === 0 || records + jobs[n]!.request.bodies.length <= MAX_TRANSACTION); n++) records += jobs[n]!.request.bodies.length;
      taken = jobs.splice(0, n);
      return writer.appendAll(
        head,
        taken.map((j) => j.request),
        config,
      );
    });
    noteCommit(committed, parts.reduce((n, p) => n + p.hashes.length, 0));
    taken.forEach((j, i) => j.answer({ result: parts[i]! }));
  } catch (error) {
    const e = sqliteError(path, error);
    // The lock was not taken: every request waiting fails with it.
    if (taken.length === 0) taken = jobs.splice(0);
    for (const j of taken) j.answer({ error: { code: e.code, message: e.message } });
  }
  answer();
  if (jobs.length > 0) scheduleCommit();
  else changeIfDrained();
}

/**
 * Makes the change waiting for this thread's queued commits, once there are
 * none. Only the queue counts, not a commit scheduled: commits run whole, so
 * an empty queue between them means everything taken is committed, and a
 * commit scheduled then finds nothing to do.
 */
function changeIfDrained(): void {
  if (!change || jobs.length > 0) return;
  const { go } = change;
  change = null;
  go();
}

/** Sends the answers of the last commit: this process's in one message, each other process's in one frame. */
function answer(): void {
  if (replies.length > 0) {
    port.postMessage({ replies } satisfies WriterReply);
    replies = [];
  }
  if (role && role !== 'electing' && 'serve' in role) role.serve.flush();
}

function identity(): ShareIdentity {
  const st = statSync(path, { bigint: true });
  return { dev: String(st.dev), ino: String(st.ino), keyId: config.keyId };
}

/** Finds the log's appender or becomes it; commits here when neither can be (then every process commits its own). */
function elect(): Promise<void> {
  role = 'electing';
  election = (async () => {
    const socket = shareSocketPath(path);
    let found: Role = null;
    if (socket && !closing) {
      const lock = () => {
        writer.begin();
        return () => db.exec('ROLLBACK');
      };
      found = await electAppender(socket, identity(), lock, take).catch(() => null);
    }
    adopt(found);
  })();
  return election;
}

/** Appends as `found` says from now on, and sends it the requests held meanwhile. */
function adopt(found: Role): void {
  role = found;
  if (ready) port.postMessage({ role: roleName() } satisfies WriterReply);
  if (found && 'forward' in found) {
    found.forward.onReplies = (answers) => port.postMessage({ replies: answers } satisfies WriterReply);
    found.forward.onEnd = (unanswered) => {
      if (unanswered.length > 0) {
        const e = unknownCommit(path);
        port.postMessage({ replies: unanswered.map((id) => ({ id, error: { code: e.code, message: e.message } })) } satisfies WriterReply);
      }
      if (closing) role = null;
      else void elect();
    };
  }
  // An election that found no appender it could use (one too slow to welcome this process in time, one of
  // another log or key, something else at the socket's path): this thread commits alone, and looks again later.
  if (!found && !closing && shareSocketPath(path)) lookAgain = setTimeout(() => void lookForAppender(), LOOK_AGAIN_MS);
  const waiting = held;
  held = [];
  for (const h of waiting) route(h.id, h.request);
}

/**
 * Looks for an appender while this thread commits alone, without holding
 * appends or the write lock meanwhile: one that welcomes this process gets
 * its appends; where none listens, an election may make this thread the
 * appender; anything else, it looks again later.
 */
async function lookForAppender(): Promise<void> {
  if (closing || role !== null) return;
  // The log's file gone or unreadable is 'refused' too: commits here report that.
  const found = await (async () => AppendForwarder.connect(shareSocketPath(path)!, identity()))().catch(() => 'refused' as const);
  if (closing || role !== null) {
    if (typeof found !== 'string') await found.close();
    return;
  }
  if (found === 'refused') {
    lookAgain = setTimeout(() => void lookForAppender(), LOOK_AGAIN_MS);
    return;
  }
  change = found === 'none' ? { go: () => void elect(), drop: () => {} } : { go: () => adopt({ forward: found }), drop: () => void found.close() };
  changeIfDrained();
}

function roleName(): AppendRole {
  return role && role !== 'electing' ? ('serve' in role ? 'appender' : 'forwarding') : 'alone';
}

/** Answers everything asked before 'close', hands the appender's part over, stops the checkpointer, then closes the connection; the thread ends. */
async function close(): Promise<void> {
  clearTimeout(lookAgain);
  if (change) {
    change.drop();
    change = null;
    const waiting = held;
    held = [];
    for (const h of waiting) route(h.id, h.request);
  }
  await election;
  const current = role === 'electing' ? null : role;
  if (current && 'serve' in current) await current.serve.close();
  else if (current && 'forward' in current) await current.forward.close();
  role = null;
  while (jobs.length > 0) commit();
  const end = () => {
    db.close();
    port.close();
  };
  if (!checkpointerRunning) return end();
  noteClosing(committed);
  checkpointer.once('exit', end);
}
