// `corral up` to ready: from spawning the process to the moment it prints the
// console's URL, which it does only once the console (or the HTTP API, when
// the console is not built) answers and this machine's node is connected.
// Two cases: a first start on a fresh state directory (keys, admin password
// hash, example process, node pairing) and a start on a state directory that
// already has all that; beside `node -e 0`, the Node start-up every case pays.
// Sampled interleaved; each run is stopped with SIGINT and must exit 0.
//
// Where the time goes (CPU profile of a start with a warm compile cache):
// about 3.5 s of CPU on these machines, nearly all loading code — some 1,170
// ES modules, 665 of them typebox's (through @openclaw/gateway-protocol and
// the gateway's frame validators), cedar-wasm's first calls (parsing Corral's
// schema, validating the policies: their functions are compiled on first
// use), zod and yaml for container policies. The parts start side by side
// where they can (gateway, audit log, sandbox runner; admin password hashing
// while the node connects). A worker thread for the node was tried and
// dropped: it loads the gateway's modules a second time.
//
//   node bench/run.ts up            (CORRAL_BENCH_RUNS=N to choose the count; default 20)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { distribution, hostFacts, ms, report, sampleInterleaved, type Distribution } from '../../../bench/lib/stats.ts';
import { freePort } from '../../../scripts/testing/free-port.ts';
import { startUp } from '../test/corral-up.ts';

const RUNS = Number(process.env.CORRAL_BENCH_RUNS ?? 20);
const WARMUP = 2;
const TARGET_MS = 3_000;
const URL_LINE = /^http:\/\/127\.0\.0\.1:\d+\/$/m;

const dir = mkdtempSync(join(tmpdir(), 'corral-up-bench-'));
const reused = join(dir, 'reused');
let fresh = 0;
const failures: Record<string, number> = {};
const stopMs: number[] = [];

/** One `corral up` until ready, then SIGINT; resolves with spawn → URL printed, in ms. */
async function upOnce(name: string, state: string): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const up = startUp(state, ['--port', String(port)]);
  try {
    await up.waitFor(URL_LINE, 60_000);
  } catch (error) {
    fail(name, (error as Error).message);
  }
  const readyAt = performance.now() - t0;
  const s0 = performance.now();
  const code = await up.stop('SIGINT');
  stopMs.push(performance.now() - s0);
  if (code !== 0) fail(name, `exit ${code}: ${up.stderr().slice(-500)}`);
  return readyAt;
}

/** Ready times; the interleaved sampler's own figures for these subjects include the stop. */
const readyTimes: Record<string, number[]> = { first: [], reused: [] };

function fail(name: string, detail: string): void {
  failures[name] = (failures[name] ?? 0) + 1;
  if (failures[name] === 1) process.stderr.write(`up bench: ${name}: ${detail}\n`);
}

function exitOf(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', () => resolve());
  });
}

const subjects = {
  first: async () => {
    const state = join(dir, `fresh-${fresh++}`);
    readyTimes.first!.push(await upOnce('first', state));
    rmSync(state, { recursive: true, force: true });
  },
  reused: async () => {
    readyTimes.reused!.push(await upOnce('reused', reused));
  },
  node: () => exitOf([process.execPath, '-e', '0']),
};

const before = hostFacts();
const started = performance.now();
let samples: Record<string, number[]>;
try {
  samples = await sampleInterleaved(subjects, RUNS, WARMUP);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const wallSeconds = (performance.now() - started) / 1000;
// The warm-up rounds' ready times are dropped with them.
const ready = { first: readyTimes.first!.slice(WARMUP), reused: readyTimes.reused!.slice(WARMUP) };
const d = { first: distribution(ready.first), reused: distribution(ready.reused), node: distribution(samples.node!), stop: distribution(stopMs.slice(2 * WARMUP)) } satisfies Record<string, Distribution>;
const met = (x: Distribution) => (x.p50 <= TARGET_MS && x.p99 <= TARGET_MS ? 'met' : x.p50 <= TARGET_MS ? 'met at p50, NOT at p99' : 'NOT met');
const lines = [
  `${RUNS} runs each after ${WARMUP} warm-up rounds, interleaved; load average before ${fmtLoad(before.loadavg)}, after ${fmtLoad(hostFacts().loadavg)}; ${wallSeconds.toFixed(0)} s`,
  `corral up, first start (fresh state)    p50 ${ms(d.first.p50).padStart(11)}  p99 ${ms(d.first.p99).padStart(11)}  — target ≤ ${TARGET_MS / 1000} s: ${met(d.first)}`,
  `corral up, state reused                 p50 ${ms(d.reused.p50).padStart(11)}  p99 ${ms(d.reused.p99).padStart(11)}  — target ≤ ${TARGET_MS / 1000} s: ${met(d.reused)}`,
  `node -e 0 (Node start-up, for scale)    p50 ${ms(d.node.p50).padStart(11)}  p99 ${ms(d.node.p99).padStart(11)}`,
  `SIGINT to exit (checkpoint sealed)      p50 ${ms(d.stop.p50).padStart(11)}  p99 ${ms(d.stop.p99).padStart(11)}`,
  ...Object.entries(failures).map(([n, c]) => `FAILED runs of ${n}: ${c}`),
];
report(
  'up',
  {
    runs: RUNS,
    warmup: WARMUP,
    unit: 'ms',
    loadavgBefore: before.loadavg,
    wallSeconds,
    ready: 'spawn of `corral up --port P` until it prints the URL line (console or HTTP API answers, node connected)',
    target: { ms: TARGET_MS, met: { first: met(d.first), reused: met(d.reused) } },
    distributions: d,
    failures,
    samples: { ...ready, node: samples.node, stop: stopMs },
  },
  lines,
);
if (Object.keys(failures).length > 0) process.exitCode = 1;

function fmtLoad(load: unknown): string {
  return (load as number[]).map((l) => l.toFixed(2)).join(' ');
}
