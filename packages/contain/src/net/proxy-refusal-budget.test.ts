import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { validatePolicy } from '../policy/load.ts';
import { planSandbox } from '../policy/plan.ts';
import { Runner } from '../runner.ts';
import { parseEgressRule, type EgressRule } from './egress-rule.ts';
import { EgressProxy, type EgressChannel } from './proxy.ts';

// A contained command makes a refused request as fast as it can write one, and each costs the
// proxy's thread (which every sandbox's channel and the rest of the Corral process share) its
// parse, decision, record and answer: one keep-alive connection got some 9000 refusals a second,
// and filled the run's 100000 records in about ten seconds. A channel decides refused requests at
// its refusal rate once its burst is spent; these tests use a small budget to see it in a second.

const BURST = 10;
const PER_SECOND = 20;
const FLOOD_MS = 1000;
/** What a channel may refuse in `ms`: its burst, its rate, and one in the making. */
const mostIn = (ms: number): number => BURST + Math.floor((PER_SECOND * ms) / 1000) + 1;
/** What a channel may refuse in FLOOD_MS. */
const MOST = mostIn(FLOOD_MS);

function rules(...texts: string[]): EgressRule[] {
  return texts.map((t) => {
    const rule = parseEgressRule(t);
    if (typeof rule === 'string') throw new TypeError(rule);
    return rule;
  });
}

const REFUSED = 'GET http://refused.example/ HTTP/1.1\r\n\r\n';

/** Sends one refused request after another on one keep-alive connection for `ms`; resolves with the 403s it got. */
function keepAliveFlood(channel: EgressChannel, ms: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(channel.socketPath);
    socket.on('error', () => undefined);
    let answered = 0;
    let tail = '';
    socket.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      const got = text.split('403 Forbidden').length - 1;
      answered += got;
      tail = text.slice(-12);
      for (let i = 0; i < got; i++) socket.write(REFUSED);
    });
    socket.write(REFUSED);
    setTimeout(() => {
      socket.destroy();
      resolve(answered);
    }, ms);
  });
}

/** Opens connections that each send `request` and leave at once, for `ms`; resolves with how many. */
async function reconnectFlood(channel: EgressChannel, request: string, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let made = 0;
  const lane = async () => {
    while (Date.now() < end) {
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => {
        socket.once('connect', () => socket.end(request));
        socket.once('close', () => resolve());
        setTimeout(() => socket.destroy(), 20);
      });
      made++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  return made;
}

describe('EgressProxy refusal budget', () => {
  let proxy: EgressProxy;
  before(() => {
    proxy = new EgressProxy({ refusalBurst: BURST, refusalsPerSecond: PER_SECOND, lookup: async () => [{ address: '127.0.0.1', family: 4 }] });
  });
  after(() => proxy.close());

  describe('when a contained command floods one keep-alive connection with refused requests', () => {
    it(`answers no more than its burst and its rate (${MOST} in a second), each answered one recorded refused`, async (t) => {
      const channel = await proxy.openChannel(rules('api.test:*'));
      t.after(() => channel.close());
      const answered = await keepAliveFlood(channel, FLOOD_MS);
      const records = channel.connections();
      assert.ok(answered >= BURST, `only ${answered} refusals answered`);
      assert.ok(answered <= MOST, `${answered} refusals answered in ${FLOOD_MS} ms`);
      assert.ok(records.length >= answered && records.length <= answered + 1, `${records.length} records for ${answered} answers`);
      assert.deepEqual(new Set(records.map((r) => `${r.allowed} ${r.reason}`)), new Set(['false not-allowed']));
    });

    it('answers another channel’s refused request at once meanwhile', async (t) => {
      const flooded = await proxy.openChannel(rules('api.test:*'));
      const other = await proxy.openChannel(rules('api.test:*'));
      t.after(() => Promise.all([flooded.close(), other.close()]));
      const flood = keepAliveFlood(flooded, FLOOD_MS);
      await new Promise((r) => setTimeout(r, FLOOD_MS / 2));
      const socket = net.connect(other.socketPath);
      socket.on('error', () => undefined);
      const started = performance.now();
      socket.write(REFUSED);
      await new Promise<void>((resolve) => socket.on('data', (chunk: Buffer) => chunk.includes('403 Forbidden') && resolve()));
      const ms = performance.now() - started;
      socket.destroy();
      await flood;
      assert.ok(ms < 100, `answered after ${ms.toFixed(0)} ms`);
    });
  });

  describe('when a contained command opens connection after connection, each sending a refused request and leaving', () => {
    // A CONNECT's connection is half-open once its client has sent its end (the tunnel would carry
    // it on): Node tells of no close, and its refusal waits its turn to be answered.
    for (const [what, request, left] of [
      ['plain HTTP', REFUSED, true],
      ['CONNECT', 'CONNECT refused.example:443 HTTP/1.1\r\n\r\n', false],
      ['an unreadable request', 'GARBAGE\r\n\r\n', true],
    ] as const) {
      it(`decides no more of ${what} than its burst and its rate (${MOST} in a second)${left ? ', and counts the ones left undecided as dropped' : ''}`, async (t) => {
        const opened = performance.now();
        const channel = await proxy.openChannel(rules('api.test:*'));
        t.after(() => channel.close());
        const made = await reconnectFlood(channel, request, FLOOD_MS);
        const records = channel.connections().length;
        // Held to the time the channel was open, not FLOOD_MS: a loaded host finishes the flood's last connections late.
        const elapsed = performance.now() - opened;
        assert.ok(records <= mostIn(elapsed), `${records} refusals recorded in ${elapsed.toFixed(0)} ms (at most ${mostIn(elapsed)}; of ${made} attempts)`);
        await new Promise((r) => setTimeout(r, 100));
        // Every attempt is recorded or counted, never both; one whose bytes Node never read is neither.
        assert.ok(channel.connections().length + channel.droppedRecords <= made);
        if (left) assert.ok(channel.droppedRecords > 0, `${made} attempts, ${records} recorded, none counted as dropped`);
      });
    }
  });

  describe('when an unreadable request waits its turn and its client sends more bad bytes', () => {
    it('records and answers it once, and counts nothing as dropped', async (t) => {
      const slow = new EgressProxy({ refusalBurst: 1, refusalsPerSecond: 5 });
      t.after(() => slow.close());
      const channel = await slow.openChannel(rules('api.test:*'));
      // The one refusal of the burst: the next waits some 200 ms.
      const first = net.connect(channel.socketPath);
      first.on('error', () => undefined);
      first.end(REFUSED);
      first.resume();
      await new Promise((r) => first.once('close', r));
      const socket = net.connect(channel.socketPath);
      socket.on('error', () => undefined);
      const closed = new Promise((r) => socket.once('close', r));
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.write('GARBAGE\r\n\r\n');
      await new Promise((r) => setTimeout(r, 10));
      socket.write('MORE GARBAGE\r\n\r\n');
      await closed;
      assert.deepEqual(channel.connections().map((r) => r.reason), ['not-allowed', 'bad-request']);
      assert.equal(answer.split('400 Bad Request').length - 1, 1);
      assert.equal(channel.droppedRecords, 0);
    });
  });
});

// The same flood from inside a real sandbox, through the in-sandbox forwarder, with the default budget.
describe('a contained command flooding one keep-alive connection with refused requests for 2 seconds', () => {
  let runner: Runner;
  before(() => {
    runner = new Runner();
  });
  after(() => runner.close());

  it('gets no more than the default burst and rate (100, then 20 a second), and its run records every one it got', { timeout: 60_000 }, async () => {
    const flood = `
      const proxy = new URL(process.env.HTTP_PROXY);
      const socket = require('net').connect(Number(proxy.port), proxy.hostname);
      const request = 'GET http://refused.example/ HTTP/1.1\\r\\n\\r\\n';
      let answered = 0, tail = '';
      socket.on('data', (chunk) => {
        const text = tail + chunk.toString('latin1');
        const got = text.split('403 Forbidden').length - 1;
        answered += got;
        tail = text.slice(-12);
        for (let i = 0; i < got; i++) socket.write(request);
      });
      socket.write(request);
      setTimeout(() => { console.log(answered); process.exit(0); }, 2000);
    `;
    const plan = planSandbox({ policy: validatePolicy({ runtime: ['node'], network: { egress: { allow: ['api.test.example:443'] } } }), source: 'test', baseDir: '/tmp' });
    const r = await runner.run(plan, [realpathSync(process.execPath), '-e', flood]);
    assert.equal(r.exitCode, 0, r.stderr);
    const answered = Number(r.stdout.trim());
    assert.ok(answered >= 100, `only ${answered} refusals answered`);
    assert.ok(answered <= 100 + 20 * 3, `${answered} refusals answered in 2 seconds`);
    assert.ok(r.connections.length >= answered && r.connections.length <= answered + 1, `${r.connections.length} records for ${answered} answers`);
    assert.ok(r.connections.every((c) => !c.allowed && c.reason === 'not-allowed' && c.host === 'refused.example'));
    assert.equal(r.refused.length, r.connections.length);
  });
});
