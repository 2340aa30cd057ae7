// The console's HTTP API on a log of 20,000 records: the calls a page makes
// (status, the activity page, one audit record with its inclusion proof, a
// search), sampled interleaved, beside a sign-in (one scrypt hash) and a
// whole-log verify, and how long a new record takes to reach an open activity stream.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAuditLog } from '@corral/audit';
import { distribution, ms, report, sample, sampleInterleaved } from '../../../bench/lib/stats.ts';
import { Gateway } from '../src/index.ts';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 20_000);
const runs = Number(process.env.BENCH_RUNS ?? 200);
const state = mkdtempSync(join(tmpdir(), 'corral-bench-http-'));
const token = randomBytes(24).toString('base64url');
const password = 'a password for the bench';

const log = await openAuditLog({ stateDir: state });
const appends: Promise<unknown>[] = [];
for (let i = 0; i < RECORDS; i++) {
  appends.push(log.append({ actor: { kind: 'agent', id: `agent-${i % 7}` }, action: 'node.invoke.decide', resource: { kind: 'command', id: i % 3 === 0 ? 'pay' : 'ls' }, node: 'bench-node', decision: { effect: i % 5 === 0 ? 'deny' : 'allow', policies: ['p'], reason: 'bench' }, details: { argv: ['ls', String(i)], commands: [['ls', String(i)]] } }));
}
await Promise.all(appends);
await log.close();

const gw = await Gateway.start({ stateDir: state, token, port: 0 });
try {
  await gw.identity.localUsers.create('admin', password, ['admin']);
  gw.identity.agents.create({ name: 'bench-bot', process: 'bench', owner: 'owner@example.com' });
  const base = gw.httpUrl;
  const signIn = async () => {
    const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    if (res.status !== 200) throw new Error(`sign-in answered ${res.status}`);
    return { cookie: res.headers.getSetCookie()[0]!.split(';')[0]!, csrf: ((await res.json()) as { csrf: string }).csrf };
  };
  const session = await signIn();
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`, { headers: { cookie: session.cookie, 'x-corral-csrf': session.csrf } });
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
    return res.json();
  };
  const post = (path: string) => fetch(`${base}${path}`, { method: 'POST', headers: { cookie: session.cookie, 'x-corral-csrf': session.csrf, 'content-type': 'application/json' }, body: '{}' });
  let seq = 0;
  const samples = await sampleInterleaved(
    {
      status: () => get('/api/status'),
      activity: () => get('/api/activity?limit=100'),
      record: () => get(`/api/audit/${(seq = (seq + 7919) % RECORDS)}`),
      search: () => get('/api/audit?q=pay&effect=deny&limit=50'),
    },
    runs,
  );
  const signIns = await sample(signIn, 20, 2);
  const verifies = await sample(() => get('/api/audit/verify'), 5, 1);

  // Stream delivery: the time from a suspend or resume answered to its record arriving on the stream.
  const stream = await fetch(`${base}/api/activity/stream`, { headers: { cookie: session.cookie, 'x-corral-csrf': session.csrf } });
  const reader = stream.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const nextRecord = async () => {
    while (!buffer.includes('event: record')) buffer += decoder.decode((await reader.read()).value, { stream: true });
    const end = buffer.indexOf('\n\n', buffer.indexOf('event: record'));
    if (end < 0) buffer += decoder.decode((await reader.read()).value, { stream: true });
    buffer = buffer.slice(buffer.indexOf('\n\n', buffer.indexOf('event: record')) + 2);
  };
  let suspended = false;
  const delivery = await sample(async () => {
    const arrived = nextRecord();
    await post(`/api/agents/bench-bot/${suspended ? 'resume' : 'suspend'}`);
    suspended = !suspended;
    await arrived;
  }, 100, 5);
  await reader.cancel();

  const d = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, distribution(v)]));
  const signIn_ = distribution(signIns);
  const verify = distribution(verifies);
  const stream_ = distribution(delivery);
  report(
    'http-api',
    { records: RECORDS, status_ms: d.status, activity_ms: d.activity, record_with_proof_ms: d.record, search_ms: d.search, sign_in_ms: signIn_, verify_ms: verify, stream_round_trip_ms: stream_ },
    [
      `on a log of ${RECORDS} records, ${runs} runs each, interleaved:`,
      `GET /api/status:               p50 ${ms(d.status!.p50)} p99 ${ms(d.status!.p99)}`,
      `GET /api/activity (100):       p50 ${ms(d.activity!.p50)} p99 ${ms(d.activity!.p99)}`,
      `GET /api/audit/:seq + proof:   p50 ${ms(d.record!.p50)} p99 ${ms(d.record!.p99)}`,
      `GET /api/audit search (50):    p50 ${ms(d.search!.p50)} p99 ${ms(d.search!.p99)}`,
      `POST /api/session (scrypt):    p50 ${ms(signIn_.p50)} p99 ${ms(signIn_.p99)} (${signIn_.runs} runs)`,
      `GET /api/audit/verify:         p50 ${ms(verify.p50)} (${verify.runs} runs)`,
      `suspend → record on stream:    p50 ${ms(stream_.p50)} p99 ${ms(stream_.p99)} (request and delivery)`,
    ],
  );
} finally {
  await gw.close();
  rmSync(state, { recursive: true, force: true });
}
