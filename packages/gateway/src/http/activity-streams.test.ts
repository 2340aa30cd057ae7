// How many live activity streams the gateway holds open, and for whom: each
// one holds a socket, a listener on every record and up to 4 MiB unsent, so
// no signed-in human may hold them without limit, nor leave one behind.
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { openAuditLog } from '@corral/audit';
import { AuditFeed } from './feed.ts';
import { MAX_STREAMS, MAX_STREAMS_PER_HUMAN } from './activity.ts';
import { startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

/** Opens a stream as `client` over its own socket; resolves once its headers arrived. */
function open(t: TestGateway, client: ApiClient): Promise<{ response: IncomingMessage; ended: Promise<'ended'> }> {
  const url = new URL(`${t.gw.httpUrl}/api/activity/stream?csrf=${client.csrf}`);
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { cookie: client.cookie! }, agent: false }, (response) => {
      response.on('error', () => {});
      response.resume();
      const ended = new Promise<'ended'>((done) => response.on('close', () => done('ended')));
      resolve({ response, ended });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Whether `ended` settles within `ms` (a stream the gateway closed ends at once; one it keeps never does). */
const endsWithin = (ended: Promise<'ended'>, ms: number) => Promise.race([ended, new Promise<'open'>((resolve) => setTimeout(resolve, ms, 'open'))]);

describe('live activity streams one human holds', () => {
  it(`ends a viewer's oldest stream when they open a stream past ${MAX_STREAMS_PER_HUMAN}, and leaves another human's alone (regression: a viewer could hold any number, each with up to 4 MiB unsent)`, async () => {
    const t = await startTestGateway();
    const opened: IncomingMessage[] = [];
    try {
      const viewer = await t.as('vera', ['viewer']);
      const admin = await t.as('root', ['admin']);
      const kept = await open(t, admin);
      opened.push(kept.response);
      const streams = [];
      for (let i = 0; i < MAX_STREAMS_PER_HUMAN; i++) streams.push(await open(t, viewer));
      opened.push(...streams.map((s) => s.response));
      const extra = await open(t, viewer);
      opened.push(extra.response);
      assert.equal(extra.response.statusCode, 200, 'the newest stream is served');
      assert.equal(await endsWithin(streams[0]!.ended, 5000), 'ended', 'the oldest was closed to make room');
      assert.equal(await endsWithin(streams[1]!.ended, 300), 'open', 'the others stay open');
      assert.equal(await endsWithin(kept.ended, 300), 'open', "another human's stream stays open");
    } finally {
      for (const response of opened) response.destroy();
      await t.close();
    }
  });

  it(`holds at most ${MAX_STREAMS} streams in all: a newcomer ends the oldest stream of whoever holds the most, never one of someone holding fewer`, async () => {
    const t = await startTestGateway();
    const opened: IncomingMessage[] = [];
    try {
      const holders = [];
      for (let i = 0; i * MAX_STREAMS_PER_HUMAN < MAX_STREAMS; i++) holders.push(await t.as(`viewer-${i}`, ['viewer']));
      const first: Array<Promise<'ended'>> = [];
      for (const holder of holders) {
        for (let i = 0; i < MAX_STREAMS_PER_HUMAN; i++) {
          const stream = await open(t, holder);
          opened.push(stream.response);
          if (i === 0) first.push(stream.ended);
        }
      }
      const newcomer = await t.as('newcomer', ['viewer']);
      const mine = await open(t, newcomer);
      opened.push(mine.response);
      assert.equal(mine.response.statusCode, 200, 'the newcomer is served');
      assert.equal(await endsWithin(Promise.race(first), 5000), 'ended', "one holder's oldest stream was closed");
      const again = await open(t, newcomer);
      opened.push(again.response);
      assert.equal(await endsWithin(mine.ended, 300), 'open', 'a second stream of the newcomer, who holds fewer than the others, ends none of theirs');
    } finally {
      for (const response of opened) response.destroy();
      await t.close();
    }
  });
});

describe('a live activity stream whose client leaves before it starts', () => {
  it("is released: it no longer listens for records once the log's head is read (regression: a client gone while the gateway read the head left a listener and a timer behind for good)", async () => {
    const state = mkdtempSync(join(tmpdir(), 'corral-streams-'));
    const log = await openAuditLog({ stateDir: state });
    const t = await startTestGateway({ stateDir: state, audit: log });
    let serverResponse: ServerResponse | undefined;
    const onRequest = (message: unknown) => {
      const { request: req, response } = message as { request: IncomingMessage; response: ServerResponse };
      if (req.url?.startsWith('/api/activity/stream')) serverResponse = response;
    };
    subscribe('http.server.request.start', onRequest);
    try {
      const viewer = await t.as('vera', ['viewer']);
      // Listeners the feed holds from now on.
      let listening = 0;
      const subscribeOriginal = AuditFeed.prototype.subscribe;
      mock.method(AuditFeed.prototype, 'subscribe', function (this: AuditFeed, listener: Parameters<AuditFeed['subscribe']>[0]) {
        listening++;
        const off = subscribeOriginal.call(this, listener);
        return () => {
          listening--;
          off();
        };
      });
      // The stream's read of the log's head waits until the client has gone. Only the stream's:
      // the gateway's feed reads the head on a timer too, and on a busy host its read came first.
      let entered!: () => void;
      const reading = new Promise<void>((resolve) => (entered = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const headOriginal = log.store.head.bind(log.store);
      let armed = true;
      mock.method(log.store, 'head', async () => {
        if (armed && new Error().stack?.includes('/http/activity.ts')) {
          armed = false;
          entered();
          await gate;
        }
        return headOriginal();
      });
      const url = new URL(`${t.gw.httpUrl}/api/activity/stream?csrf=${viewer.csrf}`);
      const req = request(url, { headers: { cookie: viewer.cookie! }, agent: false });
      req.on('error', () => {});
      req.end();
      await reading;
      const gone = new Promise<void>((resolve) => serverResponse!.once('close', () => resolve()));
      req.destroy();
      await gone;
      release();
      // Let go of as soon as the head is read; a busy host may take a while to get there, but what
      // the regression left behind it kept for good, so 5 s tells the two apart.
      for (const deadline = Date.now() + 5_000; listening > 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(listening, 0, 'the stream of a client that left still listens for records');
    } finally {
      unsubscribe('http.server.request.start', onRequest);
      mock.restoreAll();
      await t.close();
      await log.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
