// Appending from several processes to one SQLite log. Each process's writer
// thread commits under SQLite's write lock, one process at a time; with eight
// processes each commit held only its own process's appends, and the lock's
// serial commits, each with its fsync, bounded the rate (93,000/s against
// 161,000/s from one process). So the first writer thread to open a log also
// listens on a socket beside it, and commits the appends that other
// processes' writer threads hand it there together with its own, one
// transaction for all; the others forward theirs. This only changes how many
// appends one commit holds: every commit still takes SQLite's write lock and
// reads the head under it, so a process that does not take part (`corral
// run`'s one-shot writer, a log whose path is too long for a socket) appends
// safely beside them.
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { AuditError } from '../errors.ts';
import { FRAME, FrameReader, jsonFrame, frame, readRequest, requestFrame, type Answer, type ShareReply } from './append-share-frames.ts';
import type { AppendRequest } from './batch.ts';

/** What makes two writer threads' logs the same log: the file, and the key its checkpoints are signed with. */
export interface ShareIdentity {
  dev: string;
  ino: string;
  keyId: string;
}

/** Where the appender commits a request handed over (with its own, in its next transaction), answering once it did. */
export type Take = (request: AppendRequest, answer: (a: Answer) => void) => void;

/** How long a process waits for the appender to welcome it before it appends on its own. */
const WELCOME_MS = 2000;
/** How long a closing appender waits for the processes it serves to say their last. */
const HANDOVER_MS = 5000;
/**
 * A forwarded request unanswered this long means the appender stopped
 * (SIGSTOP, a debugger): past its own wait for the write lock (30 s), so an
 * appender that is only waiting answers first.
 */
const SILENCE_MS = 40_000;

/** An appender listens on its socket's path with this many bytes added first (listen()). */
const OWN_NAME_BYTES = 9; // '.' and four random bytes in hex

/**
 * The socket beside the log at `dbPath` (audit.db: audit-appender.sock, so
 * that a copy of audit.db* takes no socket), or null when its path is too
 * long for one (108 bytes on Linux, with room for OWN_NAME_BYTES).
 */
export function shareSocketPath(dbPath: string): string | null {
  const path = join(dirname(resolve(dbPath)), `${basename(dbPath, '.db')}-appender.sock`);
  return Buffer.byteLength(path) + OWN_NAME_BYTES < 108 ? path : null;
}

/** A frame that the protocol does not allow at this point: the connection is dropped. */
function outOfTurn(type: number): AuditError {
  return new AuditError('AUDIT_STORE_UNAVAILABLE', `another appending process sent a frame of type ${type} out of turn`);
}

function sameLog(a: ShareIdentity, b: unknown): boolean {
  const o = b as Partial<ShareIdentity> | null;
  return o?.dev === a.dev && o.ino === a.ino && o.keyId === a.keyId;
}

/** One process handing its appends over. */
class Peer {
  readonly socket: Socket;
  readonly reader = new FrameReader();
  welcomed = false;
  /** It said its last (after the appender's "closing"): once all it sent is answered, its connection ends. */
  bye = false;
  outstanding = 0;
  replies: ShareReply[] = [];

  constructor(socket: Socket) {
    this.socket = socket;
  }

  flush(): void {
    if (this.replies.length > 0) {
      this.socket.write(jsonFrame(FRAME.replies, this.replies));
      this.replies = [];
    }
    if (this.bye && this.outstanding === 0) this.socket.end();
  }
}

/** The appender's side: takes other processes' appends and answers them. */
export class AppendServer {
  readonly #server: Server;
  readonly #path: string;
  /** The socket file's inode: what sits at #path is this appender's only while it matches. */
  readonly #ino: number;
  readonly #peers = new Set<Peer>();

  private constructor(server: Server, path: string, ino: number, identity: ShareIdentity, take: Take) {
    this.#server = server;
    this.#path = path;
    this.#ino = ino;
    server.on('connection', (socket) => {
      const peer = new Peer(socket);
      this.#peers.add(peer);
      socket.on('close', () => this.#peers.delete(peer));
      socket.on('error', () => socket.destroy());
      socket.on('data', (chunk: Buffer) => {
        try {
          peer.reader.push(chunk, (type, payload) => this.#onFrame(peer, type, payload, identity, take));
        } catch {
          // A peer that sends what this protocol does not hold is not one of Corral's writers: it is dropped.
          socket.destroy();
        }
      });
    });
  }

  #onFrame(peer: Peer, type: number, payload: Buffer, identity: ShareIdentity, take: Take): void {
    if (!peer.welcomed) {
      if (type !== FRAME.hello) throw outOfTurn(type);
      const ok = sameLog(identity, JSON.parse(payload.toString('utf8')));
      peer.socket.write(jsonFrame(FRAME.welcome, { ok }));
      if (!ok) peer.socket.end();
      peer.welcomed = ok;
      return;
    }
    if (type === FRAME.bye) {
      peer.bye = true;
      peer.flush();
      return;
    }
    if (type !== FRAME.request) throw outOfTurn(type);
    const { id, request } = readRequest(payload);
    peer.outstanding++;
    take(request, (answer) => {
      peer.outstanding--;
      peer.replies.push({ id, ...answer });
    });
  }

  /**
   * Listens at `path`, readable and writable by this user only, replacing
   * whatever socket is there (the caller knows nothing answers there).
   * @throws the listen, chmod or rename error.
   */
  static async listen(path: string, identity: ShareIdentity, take: Take): Promise<AppendServer> {
    // A name of its own first, moved onto `path` once this user's only: no
    // other user connects in between, and closing removes only that name,
    // never a socket another appender put at `path` meanwhile.
    const own = `${path}.${randomBytes(4).toString('hex')}`;
    const server = createServer({ pauseOnConnect: false });
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen(own, () => {
        server.off('error', fail);
        done();
      });
    });
    let ino: number;
    try {
      chmodSync(own, 0o600);
      ino = lstatSync(own).ino;
      renameSync(own, path);
    } catch (error) {
      server.close();
      throw error;
    }
    server.unref();
    return new AppendServer(server, path, ino, identity, take);
  }

  /** Sends the answers given since the last flush, one frame per process. */
  flush(): void {
    for (const peer of this.#peers) peer.flush();
  }

  /**
   * Stops taking new processes (the socket file goes), tells each one served
   * that this appender is closing, and resolves once each has said its last
   * and had everything it sent answered — or after HANDOVER_MS. Each then
   * elects the next appender among the processes still open.
   */
  async close(): Promise<void> {
    try {
      // Nothing else replaces it while this appender answers there; only a hand could have.
      if (lstatSync(this.#path).ino === this.#ino) unlinkSync(this.#path);
    } catch {
      // Gone already.
    }
    this.#server.close();
    const gone = [...this.#peers].map((peer) => new Promise((done) => peer.socket.once('close', done)));
    for (const peer of this.#peers) {
      if (peer.welcomed) peer.socket.write(frame(FRAME.closing));
      else peer.socket.destroy();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(gone), new Promise((done) => (timer = setTimeout(done, HANDOVER_MS)))]);
    clearTimeout(timer);
    for (const peer of this.#peers) peer.socket.destroy();
  }
}

/** A process's side: hands its appends to the appender and takes the answers. */
export class AppendForwarder {
  readonly #socket: Socket;
  readonly #reader = new FrameReader();
  readonly #inFlight = new Set<number>();
  #corked = false;
  #ended = false;
  /** The appender said it is closing. */
  #leaving = false;
  #silence: NodeJS.Timeout | undefined;
  /** Answers, as they arrive. */
  onReplies: (replies: ShareReply[]) => void = () => {};
  /** Called once, when the connection ends: the ids sent and never answered (none after a handover). */
  onEnd: (unanswered: number[]) => void = () => {};

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk, (type, payload) => this.#onFrame(type, payload));
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#end());
  }

  #onFrame(type: number, payload: Buffer): void {
    if (type === FRAME.closing) {
      // Everything sent before this is answered before the appender ends the connection; nothing more is sent.
      this.#leaving = true;
      this.#socket.write(frame(FRAME.bye));
      return;
    }
    if (type !== FRAME.replies) throw outOfTurn(type);
    const replies = JSON.parse(payload.toString('utf8')) as ShareReply[];
    for (const r of replies) this.#inFlight.delete(r.id);
    this.#watch();
    this.onReplies(replies);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#silence);
    const unanswered = [...this.#inFlight];
    this.#inFlight.clear();
    this.onEnd(unanswered);
  }

  /** Restarts the wait for the next answer while any is outstanding. */
  #watch(): void {
    clearTimeout(this.#silence);
    this.#silence = this.#inFlight.size > 0 ? setTimeout(() => this.#socket.destroy(), SILENCE_MS) : undefined;
  }

  /**
   * Connects to the appender at `path` and says which log this is.
   * @returns the forwarder; 'none' when no appender listens there (no socket,
   *   one left by a process that ended, or one that ended the connection
   *   without a word, as a closing appender does); 'refused' when one does but will
   *   not take this process (another log, another key), when the socket is
   *   another user's, or when it does not answer in time.
   */
  static async connect(path: string, identity: ShareIdentity): Promise<AppendForwarder | 'none' | 'refused'> {
    try {
      const st = lstatSync(path);
      if (!st.isSocket() || st.uid !== process.getuid?.()) return 'refused';
    } catch {
      return 'none';
    }
    const socket = createConnection(path);
    const opened = await new Promise<'open' | 'none' | 'refused'>((done) => {
      socket.once('connect', () => done('open'));
      socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'none' : 'refused'));
    });
    if (opened !== 'open') {
      socket.destroy();
      return opened;
    }
    socket.write(jsonFrame(FRAME.hello, identity));
    const reader = new FrameReader();
    let timer: NodeJS.Timeout | undefined;
    const welcome = await new Promise<'welcomed' | 'none' | 'refused'>((done) => {
      timer = setTimeout(() => done('refused'), WELCOME_MS);
      socket.on('data', (chunk: Buffer) => {
        try {
          reader.push(chunk, (type, payload) => done(type === FRAME.welcome && (JSON.parse(payload.toString('utf8')) as { ok?: unknown }).ok === true ? 'welcomed' : 'refused'));
        } catch {
          done('refused');
        }
      });
      // Ended without a word: an appender drops those it has not welcomed as it closes, and the election finds the next.
      socket.once('close', () => done('none'));
      socket.once('error', () => done('none'));
    }).finally(() => {
      clearTimeout(timer);
      socket.removeAllListeners();
    });
    if (welcome !== 'welcomed') {
      socket.destroy();
      return welcome;
    }
    socket.unref();
    return new AppendForwarder(socket);
  }

  /** Hands `request` over; false (nothing sent) when its frame would be too large or the appender is closing or gone, for the caller to commit it another way. */
  send(id: number, request: AppendRequest): boolean {
    const bytes = this.#ended || this.#leaving ? null : requestFrame(id, request);
    if (!bytes) return false;
    this.#inFlight.add(id);
    if (this.#inFlight.size === 1) this.#watch();
    // Writes made in one turn of the event loop go out as one.
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      setImmediate(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(bytes);
    return true;
  }

  get #idle(): boolean {
    return this.#inFlight.size === 0;
  }

  /** False once the appender has said it is closing, or the connection has ended: send() then refuses. */
  get usable(): boolean {
    return !this.#ended && !this.#leaving;
  }

  /** Ends the connection once every request sent is answered (or the appender is gone, or silent for SILENCE_MS). */
  async close(): Promise<void> {
    if (this.#ended) return;
    const ended = new Promise<void>((done) => {
      const prior = this.onEnd;
      this.onEnd = (unanswered) => {
        prior(unanswered);
        done();
      };
    });
    // Closed once written out, not once the appender ends its side too: a stopped appender never would.
    const end = () => this.#socket.end(() => this.#socket.destroy());
    if (this.#idle) end();
    else {
      const prior = this.onReplies;
      this.onReplies = (replies) => {
        prior(replies);
        if (this.#idle) end();
      };
    }
    await ended;
  }
}

/** How a writer thread appends: it is the appender, it forwards to one, or it commits on its own. */
export type Role = { serve: AppendServer } | { forward: AppendForwarder } | null;

/**
 * Finds this log's appender, or becomes it. `lock` takes SQLite's write lock
 * and returns its release: the appender's socket is replaced only under it,
 * once nothing answers there, so of processes electing at once one listens
 * and the others connect to it.
 */
export async function electAppender(path: string, identity: ShareIdentity, lock: () => () => void, take: Take): Promise<Role> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await AppendForwarder.connect(path, identity);
    if (found === 'refused') return null;
    if (found !== 'none') return { forward: found };
    const release = lock();
    try {
      // Under the lock, a listener can appear only by another election that
      // already released it: a socket that accepts now is that appender's.
      if ((await probe(path)) === 'live') continue;
      return { serve: await AppendServer.listen(path, identity, take) };
    } catch {
      return null;
    } finally {
      release();
    }
  }
  return null;
}

/** Whether something accepts connections at `path` (a live appender), without speaking to it. */
async function probe(path: string): Promise<'live' | 'none'> {
  const socket = createConnection(path);
  const result = await new Promise<'live' | 'none'>((done) => {
    socket.once('connect', () => done('live'));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') done('none');
      else done('live');
    });
  });
  socket.destroy();
  return result;
}

/** The error a request gets when the appender it was handed to ended before answering. */
export function unknownCommit(where: string): AuditError {
  return new AuditError(
    'AUDIT_COMMIT_UNKNOWN',
    `the process committing appends to ${where} for this one ended before answering: these records may or may not be in the log (corral audit tail shows the latest)`,
  );
}
