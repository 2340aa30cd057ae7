// Live activity: the newest records first with paging and filters, and the
// event stream that sends each new record as the gateway appends it.
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, it, mock } from 'node:test';
import { openAuditLog } from '@corral/audit';
import { startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

type StreamedRecord = { id: number; event: { seq: number; action: string; actor: { id: string; name?: string }; resource: { id: string } } };

/** Reads an event stream until `until` records arrived, or `until` says one is the last wanted (or `waitMs` passed); returns them with their ids. */
async function readRecords(response: Response, until: number | ((record: StreamedRecord) => boolean), waitMs = 10_000): Promise<StreamedRecord[]> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const out: StreamedRecord[] = [];
  let buffer = '';
  let enough = until === 0;
  const deadline = setTimeout(() => void reader.cancel(), waitMs);
  try {
    while (!enough) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while (!enough && (end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
        if (fields.event !== 'record') continue;
        const record: StreamedRecord = { id: Number(fields.id), event: JSON.parse(fields.data!) };
        out.push(record);
        enough = typeof until === 'number' ? out.length >= until : until(record);
      }
    }
  } finally {
    clearTimeout(deadline);
    await reader.cancel().catch(() => {});
  }
  return out;
}

describe('live activity', () => {
  let t: TestGateway;
  let admin: ApiClient;
  let viewer: ApiClient;
  before(async () => {
    t = await startTestGateway();
    admin = await t.as('root', ['admin']);
    viewer = await t.as('vera', ['viewer']);
    t.gw.identity.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'owner@example.com' });
  });
  after(() => t.close());

  const stream = (query = '', headers: Record<string, string> = {}) => fetch(`${t.gw.httpUrl}/api/activity/stream${query}`, { headers: { cookie: viewer.cookie!, 'x-corral-csrf': viewer.csrf!, ...headers } });

  it('refuses the session cookie alone (any web server on another port of the host is sent it), and takes the session key from ?csrf= (an EventSource sends no headers) on this route only', async () => {
    const bare = await fetch(`${t.gw.httpUrl}/api/activity/stream`, { headers: { cookie: viewer.cookie! } });
    assert.equal(bare.status, 403);
    const keyed = await fetch(`${t.gw.httpUrl}/api/activity/stream?csrf=${viewer.csrf}`, { headers: { cookie: viewer.cookie! } });
    assert.equal(keyed.status, 200);
    await keyed.body!.cancel();
    const elsewhere = await fetch(`${t.gw.httpUrl}/api/activity?csrf=${viewer.csrf}`, { headers: { cookie: viewer.cookie! } });
    assert.equal(elsewhere.status, 403);
  });

  it('streams a record to a signed-in viewer as soon as the gateway appends it, with its sequence number as the event id', async () => {
    const response = await stream();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/event-stream/);
    const received = readRecords(response, 1);
    const suspended = await admin.post('/api/agents/invoice-bot/suspend', { reason: 'testing the stream' });
    assert.equal(suspended.status, 200);
    const [first] = await received;
    assert.equal(first!.event.action, 'agent.suspend');
    assert.equal(first!.event.actor.id, 'root');
    assert.equal(first!.id, first!.event.seq);
  });

  it('sends only what matches the filter', async () => {
    const filtered = readRecords(await stream('?agent=nobody-at-all'), 1, 1000);
    const unfiltered = readRecords(await stream(), 1);
    await admin.post('/api/agents/invoice-bot/resume');
    assert.equal((await unfiltered)[0]?.event.action, 'agent.resume');
    assert.deepEqual(await filtered, []);
  });

  it('resumes after Last-Event-ID with the records it missed', async () => {
    const list = await viewer.get('/api/activity?limit=500');
    const oldest = list.body.events.at(-1).seq as number;
    const response = await stream('', { 'last-event-id': String(oldest) });
    const missed = await readRecords(response, list.body.events.length - 1);
    assert.deepEqual(missed.map((r) => r.id), list.body.events.slice(0, -1).map((e: { seq: number }) => e.seq).reverse());
  });

  it('sends new records to a stream resumed with a Last-Event-ID this log never gave (another gateway\'s), instead of holding them back until the log reaches it', async () => {
    const received = readRecords(await stream('', { 'last-event-id': '999999999' }), 1, 5000);
    await admin.post('/api/agents/invoice-bot/suspend', { reason: 'a record past a foreign id' });
    assert.equal((await received)[0]?.event.action, 'agent.suspend');
    await admin.post('/api/agents/invoice-bot/resume');
  });

  it('answers a HEAD of the stream with its headers and ends it at once, holding nothing open', async () => {
    const ended = await new Promise<{ status: number | undefined; type: string | undefined }>((resolve, reject) => {
      const url = new URL(`${t.gw.httpUrl}/api/activity/stream?csrf=${viewer.csrf}`);
      const req = request(url, { method: 'HEAD', headers: { cookie: viewer.cookie! } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'] }));
      });
      req.setTimeout(3000, () => req.destroy(new Error('the HEAD response did not end')));
      req.on('error', reject);
      req.end();
    });
    assert.equal(ended.status, 200);
    assert.match(ended.type!, /^text\/event-stream/);
  });

  it('streams a record another process appends to the same log (the CLI) within about a second', async () => {
    const received = readRecords(await stream(), 1, 5000);
    const other = await openAuditLog({ stateDir: t.state });
    try {
      await other.append({ actor: { kind: 'human', id: 'cli-user' }, action: 'agent.create', resource: { kind: 'agent', id: 'from-the-cli' } });
    } finally {
      await other.close();
    }
    const [record] = await received;
    assert.deepEqual([record?.event.action, record?.event.actor.id], ['agent.create', 'cli-user']);
  });

  it('lists the newest first and pages with nextBefore', async () => {
    const all = (await viewer.get('/api/activity?limit=500')).body.events as Array<{ seq: number }>;
    assert.ok(all.length >= 4);
    assert.deepEqual(all.map((e) => e.seq), [...all.map((e) => e.seq)].sort((a, b) => b - a));
    const page = await viewer.get('/api/activity?limit=2');
    assert.deepEqual(page.body.events.map((e: { seq: number }) => e.seq), all.slice(0, 2).map((e) => e.seq));
    const next = await viewer.get(`/api/activity?limit=2&before=${page.body.nextBefore}`);
    assert.deepEqual(next.body.events.map((e: { seq: number }) => e.seq), all.slice(2, 4).map((e) => e.seq));
  });

  it('filters by agent (its name or id) and refuses an unknown effect and a bad limit', async () => {
    const agent = t.gw.identity.agents.get('invoice-bot');
    const byName = await viewer.get('/api/activity?agent=invoice-bot');
    const byId = await viewer.get(`/api/activity?agent=${agent.id}`);
    assert.deepEqual(byName.body, byId.body);
    assert.equal((await viewer.get('/api/activity?effect=maybe')).status, 400);
    assert.equal((await viewer.get('/api/activity?limit=100000')).status, 400);
    assert.equal((await viewer.get('/api/activity/stream?effect=maybe')).status, 400);
  });
});

describe('a live stream left open', () => {
  it('does not keep its session alive: the session idles out an hour after its last request, and the stream is closed then', async () => {
    let clock = Date.now();
    const t = await startTestGateway({ now: () => clock });
    try {
      const viewer = await t.as('vera', ['viewer']);
      mock.timers.enable({ apis: ['setInterval'] });
      const response = await fetch(`${t.gw.httpUrl}/api/activity/stream?csrf=${viewer.csrf}`, { headers: { cookie: viewer.cookie! } });
      assert.equal(response.status, 200);
      clock += 50 * 60_000;
      mock.timers.tick(15_000); // the stream's keepalive, while the session is still live
      clock += 20 * 60_000;
      assert.equal((await viewer.get('/api/session')).status, 401, 'seventy minutes without a request');
      mock.timers.tick(15_000);
      assert.match(await response.text(), /^: corral activity\n\n: keepalive\n\n$/, 'the stream ended within a second');
    } finally {
      mock.timers.reset();
      await t.close();
    }
  });

  it('sends no record appended after its session ended, not even in the second before its next check (regression: one appended then reached a login whose password had just been set)', async () => {
    const t = await startTestGateway();
    try {
      const viewer = await t.as('vera', ['viewer']);
      const admin = await t.as('root', ['admin']);
      t.gw.identity.agents.create({ name: 'payroll-bot', process: 'payroll', owner: 'owner@example.com' });
      // The stream's check never comes on its own: only what the stream does as a record arrives counts.
      mock.timers.enable({ apis: ['setInterval'] });
      const response = await fetch(`${t.gw.httpUrl}/api/activity/stream?csrf=${viewer.csrf}`, { headers: { cookie: viewer.cookie! } });
      assert.equal(response.status, 200);
      await t.gw.identity.localUsers.setPassword('vera', 'another password for tests');
      assert.equal((await admin.post('/api/agents/payroll-bot/suspend', { reason: 'payroll stopped' })).status, 200);
      mock.timers.tick(1000);
      assert.equal(await response.text(), ': corral activity\n\n');
    } finally {
      mock.timers.reset();
      await t.close();
    }
  });

  it('is closed within about a second of signing out, and a stream of another session stays open', async () => {
    const t = await startTestGateway();
    try {
      const leaving = await t.as('vera', ['viewer']);
      const staying = await t.as('root', ['admin']);
      const open = (c: ApiClient) => fetch(`${t.gw.httpUrl}/api/activity/stream?csrf=${c.csrf}`, { headers: { cookie: c.cookie! } });
      const [ends, stays] = [await open(leaving), await open(staying)];
      assert.equal((await leaving.call('DELETE', '/api/session')).status, 204);
      const signedOutAt = performance.now();
      assert.equal(await ends.text(), ': corral activity\n\n');
      assert.ok(performance.now() - signedOutAt < 3000, 'closed within the next check, not at a keepalive 15 s later');
      const reader = stays.body!.getReader();
      const first = await reader.read();
      const other = await Promise.race([reader.read().then(() => 'ended'), new Promise((resolve) => setTimeout(resolve, 1500, 'open'))]);
      assert.equal(new TextDecoder().decode(first.value), ': corral activity\n\n');
      assert.equal(other, 'open', "another session's stream is not touched");
      await reader.cancel();
    } finally {
      await t.close();
    }
  });

  it('is reset when its reader stops reading, instead of holding every record since in the gateway’s memory or the kernel’s (its EventSource then resumes from the last id it got)', async () => {
    const t = await startTestGateway();
    try {
      const viewer = await t.as('vera', ['viewer']);
      const url = new URL(t.gw.httpUrl);
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        request({ host: url.hostname, port: url.port, path: `/api/activity/stream?csrf=${viewer.csrf}`, headers: { cookie: viewer.cookie! } }, resolve).on('error', reject).end();
      });
      assert.equal(response.statusCode, 200);
      response.on('error', () => {});
      const closed = new Promise<'closed'>((resolve) => response.on('close', () => resolve('closed')));
      // Reset, or closed with what the kernel holds to send ahead of the end.
      let socketEnded = 'neither';
      response.socket.on('error', (error: NodeJS.ErrnoException) => (socketEnded = String(error.code))).on('end', () => (socketEnded = 'end'));
      response.pause();
      // A second stream, of one node's records: once it has the record appended after the flood, the gateway has offered the
      // whole flood to the first (records go to every stream in order).
      const watcher = await fetch(`${t.gw.httpUrl}/api/activity/stream?csrf=${viewer.csrf}&node=marker`, { headers: { cookie: viewer.cookie! } });
      // About 20 MB of events (each names a long resource) while the reader reads nothing.
      const other = await openAuditLog({ stateDir: t.state });
      try {
        await Promise.all(Array.from({ length: 15_000 }, (_, i) => other.append({ actor: { kind: 'service', id: 'flood' }, action: 'test.flood', resource: { kind: 'record', id: `${i}-${'x'.repeat(500)}` } })));
        await other.append({ actor: { kind: 'service', id: 'flood' }, action: 'test.marker', resource: { kind: 'record', id: 'after the flood' }, node: 'marker' });
      } finally {
        await other.close();
      }
      assert.equal((await readRecords(watcher, 1, 90_000))[0]?.event.action, 'test.marker');
      // The reader reads again: a stream the gateway still held would now give it the whole flood and stay open.
      // (A reader whose socket is paused cannot see its stream end; it sees it once it reads.)
      let delivered = 0;
      let rest = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        const blocks = (rest + chunk).split('\n\n');
        rest = blocks.pop()!;
        delivered += blocks.filter((b) => b.startsWith('event: record')).length;
      });
      response.resume();
      const outcome = await Promise.race([closed, new Promise<'open'>((resolve) => setTimeout(resolve, 30_000, 'open'))]);
      response.destroy();
      assert.equal(outcome, 'closed', `the gateway kept the stream open, holding what its reader did not read (${delivered} records read)`);
      assert.ok(delivered < 15_000, `the reader got all ${delivered} records: nothing was held back`);
      assert.equal(socketEnded, 'ECONNRESET');
      const again = await fetch(`${t.gw.httpUrl}/api/activity/stream?csrf=${viewer.csrf}`, { headers: { cookie: viewer.cookie!, 'last-event-id': '0' } });
      assert.equal((await readRecords(again, 1))[0]?.event.action, 'test.flood', 'the reader resumes');
    } finally {
      await t.close();
    }
  });

});
