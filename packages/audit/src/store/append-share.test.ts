// Several writers on one SQLite log: the first commits for all of them, the
// others hand their appends over; a closing appender hands over to the next;
// one that dies leaves its appends unknown, never half-written, and the next
// takes over.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { AuditError } from '../errors.ts';
import { openAuditLog, type AuditLog } from '../log/audit-log.ts';
import { readRecord, verifyStore } from '../log/reader.ts';
import { checkedEvent } from '../record/event.ts';
import { sampleEvent } from '../../test/fixtures.ts';
import { FRAME, FrameReader, frame, jsonFrame, requestFrame } from './append-share-frames.ts';
import { MAX_TRANSACTION } from './batch.ts';
import { shareSocketPath } from './append-share.ts';
import type { SqliteStore } from './sqlite.ts';
import { until } from '../../../../scripts/testing/until.ts';

const dirs: string[] = [];
const groups: number[] = [];
after(() => {
  groups.forEach((g) => signal(g, 'SIGKILL'));
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'corral-audit-share-'));
  dirs.push(d);
  return d;
}

const roleOf = (log: AuditLog) => (log.store as SqliteStore).appendRole;
const socketOf = (stateDir: string) => shareSocketPath(join(stateDir, 'audit.db')) as string;

/** Sends `sig` to every process of the group `group`, if any is left. */
function signal(group: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-group, sig);
  } catch {
    // All gone.
  }
}

/**
 * A process that opens the log at `stateDir` (its appender, being the
 * first), run under the command `under` if given, and holds it open until
 * killed; returns its process group (a tracer's tracee outlives the tracer).
 */
async function appenderProcess(stateDir: string, under: string[] = []): Promise<number> {
  const command = [...under, process.execPath, join(import.meta.dirname, '..', '..', 'test', 'hold-child.ts'), stateDir];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  groups.push(child.pid!);
  const role = await new Promise<string>((resolve) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('close', () => resolve('ended'));
  });
  assert.equal(role, 'appender');
  return child.pid!;
}

/** Rejects when `work` takes longer than `ms`. */
async function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`${what} took over ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How many sockets this process has open (a connection that nothing keeps the event loop running for is still one). */
function socketsOpen(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

async function verifies(stateDir: string, size: number): Promise<void> {
  const log = await openAuditLog({ stateDir });
  try {
    assert.equal((await log.store.head()).size, size);
    const report = await verifyStore(log.store, log.publicKey);
    assert.equal(report.ok, true, JSON.stringify(report.damage));
  } finally {
    await log.close();
  }
}

describe('several writers on one SQLite log', () => {
  it("commits a second writer's appends through the first, which listens beside the log for this user only", async () => {
    const stateDir = tempDir();
    const first = await openAuditLog({ stateDir });
    const second = await openAuditLog({ stateDir });
    try {
      assert.equal(roleOf(first), 'appender');
      assert.equal(roleOf(second), 'forwarding');
      assert.equal(statSync(socketOf(stateDir)).mode & 0o777, 0o600);
      const results = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 ? first : second).append(sampleEvent(i))));
      assert.deepEqual(
        results.map((r) => r.seq).sort((a, b) => a - b),
        Array.from({ length: 400 }, (_, i) => i),
      );
      for (const r of results) assert.equal((await readRecord(first.store, r.seq)).hash, r.hash);
    } finally {
      await second.close();
      await first.close();
    }
    assert.equal(existsSync(socketOf(stateDir)), false, 'the socket goes with its appender');
    await verifies(stateDir, 400);
  });

  it('hands the appender over when it closes: appends made meanwhile all commit, and the next writer becomes the appender', async () => {
    const stateDir = tempDir();
    const first = await openAuditLog({ stateDir });
    const second = await openAuditLog({ stateDir });
    let stop = false;
    let acknowledged = 0;
    const lanes = Array.from({ length: 32 }, async (_, lane) => {
      for (let i = 0; !stop; i++) {
        await second.append(sampleEvent(lane * 100_000 + i));
        acknowledged++;
      }
    });
    try {
      await until('the second writer has appended through the first', () => acknowledged >= 200);
      await first.close();
      const atClose = acknowledged;
      await until('the second writer has appended after the handover', () => acknowledged >= atClose + 200);
      assert.equal(roleOf(second), 'appender');
    } finally {
      stop = true;
      await Promise.all(lanes); // an append that failed would reject here
      await second.close();
    }
    await verifies(stateDir, acknowledged);
  });

  it("hands a forwarding process's appends to the appender over a connection of its own, in the order they were made, and back to its writer thread through a handover", async () => {
    const stateDir = tempDir();
    const first = await openAuditLog({ stateDir });
    const second = await openAuditLog({ stateDir });
    const seqs: number[] = [];
    let stop = false;
    let sawDirect = false;
    // One caller making appends one after another, up to 2,000 unanswered: each must land after the one made before it.
    // It lets the event loop turn every 100 appends, as a process whose appends
    // come from its I/O does: one that makes the next append as each answer
    // comes kept it turning through the writer thread's answers (Node takes at
    // least 1,000 of a thread's messages per turn) for over 10 s on a loaded
    // host, and the connection of its own, which waits for a timer and a
    // socket, never opened.
    const caller = (async () => {
      const inFlight: Promise<unknown>[] = [];
      for (let i = 0; !stop; i++) {
        inFlight.push(second.append(sampleEvent(i)).then((r) => (seqs[i] = r.seq)));
        if ((second.store as SqliteStore).appendLane === 'direct') sawDirect = true;
        if (inFlight.length >= 2000) await inFlight.shift();
        if (i % 100 === 99) await new Promise((turned) => setImmediate(turned));
      }
      await Promise.all(inFlight);
    })();
    try {
      await until('the second writer appends over its own connection', () => sawDirect && seqs.length >= 500);
      await first.close();
      const atClose = seqs.length;
      await until('the second writer has appended after the handover', () => seqs.length >= atClose + 500);
      assert.equal(roleOf(second), 'appender');
      assert.equal((second.store as SqliteStore).appendLane, 'thread');
    } finally {
      stop = true;
      await caller; // an append that failed would reject here
      await second.close();
    }
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `append ${i} landed at ${seqs[i]}, before append ${i - 1} at ${seqs[i - 1]}`);
    await verifies(stateDir, seqs.length);
  });

  it('keeps a forwarding process that nothing else keeps alive running until the appender has answered what it handed over itself, and it exits 0', async () => {
    const stateDir = tempDir();
    await appenderProcess(stateDir);
    const child = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'test', 'rounds-child.ts'), stateDir, '200'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { appended: 4000, lanes: ['direct', 'thread'] });
    await verifies(stateDir, 4000);
  });

  it('replaces a socket left by a process that ended without closing', async () => {
    const stateDir = tempDir();
    const socket = socketOf(stateDir);
    // A listener killed with SIGKILL leaves its socket file behind.
    const dead = spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(dead.signal, 'SIGKILL');
    assert.ok(statSync(socket).isSocket());
    const log = await openAuditLog({ stateDir });
    try {
      assert.equal(roleOf(log), 'appender');
      await log.append(sampleEvent(0));
    } finally {
      await log.close();
    }
    await verifies(stateDir, 1);
  });

  it('leaves the socket of the appender that replaced it when one whose socket was removed by hand closes', async () => {
    const stateDir = tempDir();
    const first = await openAuditLog({ stateDir });
    unlinkSync(socketOf(stateDir));
    const second = await openAuditLog({ stateDir });
    let third: AuditLog | undefined;
    try {
      assert.equal(roleOf(second), 'appender');
      await first.close();
      assert.equal(existsSync(socketOf(stateDir)), true, "the second appender's socket is still there");
      third = await openAuditLog({ stateDir });
      assert.equal(roleOf(third), 'forwarding');
      await Promise.all(Array.from({ length: 100 }, (_, i) => third!.append(sampleEvent(i))));
    } finally {
      await third?.close();
      await second.close();
      await first.close();
    }
    await verifies(stateDir, 100);
  });

  it('becomes the appender when the one it finds closes before welcoming it (an appender closing while another process elects)', async () => {
    const stateDir = tempDir();
    const socket = socketOf(stateDir);
    // An appender that ends as this process's hello reaches it, as a closing appender drops those it has not welcomed.
    const closing = createServer((peer) => {
      peer.destroy();
      closing.close();
    });
    await new Promise<void>((listening) => closing.listen(socket, listening));
    const log = await openAuditLog({ stateDir });
    try {
      assert.equal(roleOf(log), 'appender');
    } finally {
      await log.close();
    }
  });

  it('drops a peer that sends what no writer sends (a huge length, a request before hello, a hello for another log, a frame cut short) and keeps serving the others', async () => {
    const stateDir = tempDir();
    const first = await openAuditLog({ stateDir });
    const second = await openAuditLog({ stateDir });
    try {
      assert.equal(roleOf(second), 'forwarding');
      const hostile = [
        Buffer.from([0xff, 0xff, 0xff, 0xff, 3]),
        frame(FRAME.request, Buffer.alloc(9)),
        jsonFrame(FRAME.hello, { dev: '1', ino: '2', keyId: 'another' }),
        jsonFrame(FRAME.hello, { dev: '1' }).subarray(0, 7),
      ];
      const ended = hostile.map(
        (bytes) =>
          new Promise<void>((done) => {
            const peer = createConnection(socketOf(stateDir), () => peer.end(bytes));
            peer.on('error', () => {});
            peer.resume().once('close', () => done());
          }),
      );
      await within('the appender dropping each hostile peer', 5000, Promise.all(ended));
      await Promise.all(Array.from({ length: 100 }, (_, i) => second.append(sampleEvent(i))));
      assert.equal(roleOf(first), 'appender');
      assert.equal(roleOf(second), 'forwarding');
    } finally {
      await second.close();
      await first.close();
    }
    await verifies(stateDir, 100);
  });

  it('reads a process that hands over appends faster than they commit only as fast as they commit (its backlog stays with it)', async () => {
    const stateDir = tempDir();
    const log = await openAuditLog({ stateDir });
    const st = statSync(join(stateDir, 'audit.db'), { bigint: true });
    const peer = createConnection(socketOf(stateDir));
    try {
      const reader = new FrameReader();
      let answered = 0;
      let welcomed: () => void;
      const welcome = new Promise<void>((done) => (welcomed = done));
      peer.on('data', (chunk: Buffer) =>
        reader.push(chunk, (type, payload) => {
          if (type === FRAME.welcome) welcomed();
          if (type === FRAME.replies) for (const r of JSON.parse(payload.toString()) as { result: { hashes: string[] } }[]) answered += r.result.hashes.length;
        }),
      );
      peer.write(jsonFrame(FRAME.hello, { dev: String(st.dev), ino: String(st.ino), keyId: log.keyId }));
      await welcome;
      const requests = 400;
      const bodies = Array.from({ length: 256 }, (_, i) => JSON.stringify(sampleEvent(i)));
      for (let id = 0; id < requests; id++) peer.write(requestFrame(id, { bodies, timesMs: bodies.map(() => 0), seal: 'due' })!);
      // Its writes drain once the appender has read them all: by then, all but what it may hold unanswered have committed.
      await new Promise((drained) => peer.once('drain', drained));
      assert.ok(requests * bodies.length - answered <= 2 * MAX_TRANSACTION + 4 * bodies.length, `${requests * bodies.length - answered} records read and waiting to commit`);
      await until('every request is answered', () => answered === requests * bodies.length, 60_000);
    } finally {
      peer.destroy();
      await log.close();
    }
  });

  it('commits alone, touching nothing, when something that is not a socket sits where the socket goes', async () => {
    const stateDir = tempDir();
    writeFileSync(socketOf(stateDir), 'not a socket');
    const first = await openAuditLog({ stateDir });
    const second = await openAuditLog({ stateDir });
    try {
      assert.equal(roleOf(first), 'alone');
      assert.equal(roleOf(second), 'alone');
      await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? first : second).append(sampleEvent(i))));
    } finally {
      await second.close();
      await first.close();
    }
    assert.equal(readFileSync(socketOf(stateDir), 'utf8'), 'not a socket');
    await verifies(stateDir, 100);
  });

  it('answers AUDIT_COMMIT_UNKNOWN for what a killed appender held, keeps every acknowledged record, and takes over', async () => {
    const stateDir = tempDir();
    // The appender: a process appending until it is killed.
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'test', 'append-child.ts'), JSON.stringify({ stateDir, count: 1e9, inflight: 8, tag: 'appender' })], { stdio: ['ignore', 'pipe', 'inherit'] });
    const childAcked = new Map<number, string>();
    let rest = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) childAcked.set(Number(line.split(' ')[0]), line.split(' ')[1] as string);
    });
    const exited = new Promise((resolve) => child.on('close', resolve));
    await until('the child appends', () => childAcked.size > 0);
    const log = await openAuditLog({ stateDir });
    const acked = new Map<number, string>();
    const outcomes = new Map<string, number>();
    let stop = false;
    const lanes = Array.from({ length: 64 }, async (_, lane) => {
      for (let i = 0; !stop; i++) {
        try {
          const r = await log.append(sampleEvent(lane * 100_000 + i));
          acked.set(r.seq, r.hash);
          outcomes.set('acknowledged', (outcomes.get('acknowledged') ?? 0) + 1);
        } catch (error) {
          const code = error instanceof AuditError ? error.code : String(error);
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
        }
      }
    });
    try {
      assert.equal(roleOf(log), 'forwarding');
      await until('appends go through the child', () => acked.size >= 2000);
      child.kill('SIGKILL');
      await exited;
      const atKill = acked.size;
      await until('appends commit again', () => acked.size >= atKill + 2000);
      assert.equal(roleOf(log), 'appender');
    } finally {
      stop = true;
      await Promise.all(lanes);
      await log.close();
    }
    assert.deepEqual([...outcomes.keys()].sort(), (outcomes.has('AUDIT_COMMIT_UNKNOWN') ? ['AUDIT_COMMIT_UNKNOWN', 'acknowledged'] : ['acknowledged']), JSON.stringify([...outcomes]));
    const check = await openAuditLog({ stateDir });
    try {
      const report = await verifyStore(check.store, check.publicKey);
      assert.equal(report.ok, true, JSON.stringify(report.damage));
      for (const [seq, hash] of [...childAcked, ...acked]) assert.equal((await readRecord(check.store, seq)).hash, hash, `acknowledged record ${seq}`);
    } finally {
      await check.close();
    }
  });
  it("fails a forwarded append whose commit fails in the appender (every fsync EIO) with the appender's coded error (whether it is in the log is not known), and leaves none of it visible once every process closes the log", async () => {
    const stateDir = tempDir();
    // As in durability.test.ts: a record in the write-ahead log and a reader's snapshot of it keep the log from starting over, so a failed commit's fsync is its own.
    const open = await openAuditLog({ stateDir, oneShot: true });
    await open.append(sampleEvent(0));
    const reader = new DatabaseSync(join(stateDir, 'audit.db'), { readOnly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT size FROM audit_head').get();
    const appender = await appenderProcess(stateDir, ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=fsync,fdatasync', '-e', 'inject=fsync,fdatasync:error=EIO']);
    const log = await openAuditLog({ stateDir });
    try {
      assert.equal(roleOf(log), 'forwarding');
      const outcomes = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => log.append(sampleEvent(1 + i))));
      assert.deepEqual(new Set(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as AuditError).code : o.status))), new Set(['AUDIT_COMMIT_UNKNOWN']));
    } finally {
      signal(appender, 'SIGKILL');
      reader.close();
      await log.close();
      await open.close();
    }
    await verifies(stateDir, 1);
  });

  describe('when the appender is stopped (SIGSTOP)', () => {
    it('fails a request handed to it with AUDIT_COMMIT_UNKNOWN once it has been silent 40 s, then commits alone', async () => {
      const stateDir = tempDir();
      const appender = await appenderProcess(stateDir);
      const log = await openAuditLog({ stateDir });
      try {
        assert.equal(roleOf(log), 'forwarding');
        await log.append(sampleEvent(0));
        signal(appender, 'SIGSTOP');
        // Many at once: one request, too large to commit on the calling thread, goes to the appender.
        const outcomes = await within('the stopped appender\'s silence', 50_000, Promise.allSettled(Array.from({ length: 100 }, (_, i) => log.append(sampleEvent(1 + i)))));
        assert.deepEqual(new Set(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as AuditError).code : o.status))), new Set(['AUDIT_COMMIT_UNKNOWN']));
        await until('the writer has given the stopped appender up', () => roleOf(log) === 'alone');
        await log.append(sampleEvent(101));
      } finally {
        signal(appender, 'SIGKILL');
        await log.close();
      }
    });

    /**
     * Appends one after another, up to 200 unanswered, until the writer's role
     * is `role` and 500 more have landed; checks each landed after the one
     * before it, and that the log verifies with all of them.
     */
    async function appendInOrderUntil(log: AuditLog, stateDir: string, role: string): Promise<void> {
      const seqs: number[] = [];
      let changed = -1;
      const inFlight: Promise<unknown>[] = [];
      const end = Date.now() + 40_000;
      for (let i = 0; changed < 0 || seqs.length < changed + 500; i++) {
        inFlight.push(log.append(sampleEvent(i)).then((r) => (seqs[i] = r.seq)));
        if (changed < 0 && roleOf(log) === role) changed = i;
        if (inFlight.length >= 200) await within('an append', 10_000, inFlight.shift()!);
        if (i % 50 === 49) await new Promise((turned) => setTimeout(turned, 1));
        if (Date.now() > end) assert.fail(`the writer was not ${role} 40 s on, or its appends stopped landing (${seqs.length} of ${i} landed)`);
      }
      await Promise.all(inFlight);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `append ${i} landed at ${seqs[i]}, before append ${i - 1} at ${seqs[i - 1]}`);
      await log.close();
      await verifies(stateDir, seqs.length);
    }

    for (const [name, then, role] of [
      ['looks again for the appender while it commits alone, and hands its appends over, in order, once the appender answers (it committed alone until closed)', 'SIGCONT', 'forwarding'],
      // Killed, the appender leaves its socket behind, with nothing listening.
      ['becomes the appender itself, appends in order, once the appender it could not reach has ended', 'SIGKILL', 'appender'],
    ] as const) {
      it(name, async () => {
        const stateDir = tempDir();
        const appender = await appenderProcess(stateDir);
        signal(appender, 'SIGSTOP');
        // The stopped appender's socket takes the connection but never welcomes it: after 2 s this writer commits alone.
        const log = await openAuditLog({ stateDir });
        try {
          assert.equal(roleOf(log), 'alone');
          signal(appender, then);
          await appendInOrderUntil(log, stateDir, role);
        } finally {
          await log.close();
          signal(appender, 'SIGKILL');
        }
      });
    }

    it("closes the connection of its own to the appender that it was still opening when its store closed (it stayed open, the appender keeping an idle peer)", async () => {
      const stateDir = tempDir();
      const appender = await appenderProcess(stateDir);
      const before = socketsOpen();
      const log = await openAuditLog({ stateDir });
      try {
        assert.equal(roleOf(log), 'forwarding');
        signal(appender, 'SIGSTOP');
        // One request too large to commit on the calling thread: the writer thread hands it over, and the store starts opening a connection of its own.
        const bodies = Array.from({ length: 40 }, (_, i) => checkedEvent(sampleEvent(i), () => new Date()).body);
        const committed = log.store.append({ bodies, timesMs: bodies.map(() => Date.now()), seal: 'due' });
        const closed = log.store.close();
        await new Promise((r) => setTimeout(r, 100));
        // The appender welcomes the new connection before it answers the request, and the store's close waits for the answer.
        signal(appender, 'SIGCONT');
        await committed;
        await closed;
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(socketsOpen(), before);
      } finally {
        signal(appender, 'SIGKILL');
        await log.close().catch(() => {});
      }
    });

    it('closes a forwarding store with nothing in flight at once', async () => {
      const stateDir = tempDir();
      const appender = await appenderProcess(stateDir);
      const log = await openAuditLog({ stateDir });
      try {
        assert.equal(roleOf(log), 'forwarding');
        await log.checkpoint();
        signal(appender, 'SIGSTOP');
        await within('closing the store', 5000, log.store.close());
      } finally {
        signal(appender, 'SIGKILL');
      }
    });
  });
});
