// The upstream OpenClaw gateway's time to ready, inside a Corral container
// (as `startOpenClaw` runs it: home read-write, install read-only, egress
// proxy, published port) beside the same gateway started directly on the
// host, same configuration and environment. From spawning to its "ready" log
// line. Sampled interleaved, each subject with its own home reused across
// runs (so both have a warm compile cache after the warm-up run). Slow: the
// gateway takes about ten seconds to start on its own here.
//
//   node bench/run.ts openclaw      (CORRAL_BENCH_RUNS=N to choose the count; default 3)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distribution, ms, report, sampleInterleaved } from '../../../bench/lib/stats.ts';
import { ensureOpenclaw, OPENCLAW_CACHE } from '../../gateway/test/openclaw.ts';
import { INSIDE_PORT, openclawConfig, openclawEntry, startContainedGateway } from '../src/up/openclaw.ts';
import { freePort } from '../../../scripts/testing/free-port.ts';

const RUNS = Number(process.env.CORRAL_BENCH_RUNS ?? 3);
const READY = /\[gateway\]\S* \S*ready/;
const TOKEN = 'bench-token-0123456789abcdef';

const missing = ensureOpenclaw();
if (missing) {
  process.stderr.write(`openclaw bench: skipped: ${missing}\n`);
  process.exit(0);
}
const { entry, modules } = openclawEntry(OPENCLAW_CACHE);
const dir = mkdtempSync(join(tmpdir(), 'corral-openclaw-bench-'));

function home(name: string, port: number): string {
  const h = join(dir, name);
  mkdirSync(join(h, '.openclaw'), { recursive: true });
  writeFileSync(join(h, '.openclaw', 'openclaw.json'), JSON.stringify(openclawConfig({ port, token: TOKEN, nodeName: 'corral-node' })));
  return h;
}

const containedHome = home('contained', INSIDE_PORT);
const directPort = await freePort();
const directHome = home('direct', directPort);

/** Spawn → ready, per subject (the warm-up run first); the sampler's own times would include stopping it. */
const ready: Record<'contained' | 'direct', number[]> = { contained: [], direct: [] };

async function contained(): Promise<void> {
  const gateway = await startContainedGateway({ home: containedHome, modules, entry, config: openclawConfig({ port: INSIDE_PORT, token: TOKEN, nodeName: 'corral-node' }) });
  ready.contained.push(gateway.readyMs);
  await gateway.close();
}

/** The same gateway, same environment as its container sets, straight on the host. */
function direct(): Promise<void> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, 'gateway', 'run', '--bind', 'loopback', '--port', String(directPort), '--auth', 'token'], {
      cwd: directHome,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: directHome, OPENCLAW_HOME: directHome, OPENCLAW_NO_AUTO_UPDATE: '1', NODE_COMPILE_CACHE: join(directHome, '.compile-cache') },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let log = '';
    const timer = setTimeout(() => finish(new Error(`not ready in 120 s:\n${log.slice(-1000)}`)), 120_000);
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      child.stdout.removeAllListeners('data');
      child.stderr.removeAllListeners('data');
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      child.once('close', () => (error ? reject(error) : resolve()));
      if (child.exitCode !== null || child.signalCode !== null) error ? reject(error) : resolve();
    };
    const onData = (c: Buffer): void => {
      log += c.toString();
      if (!READY.test(log)) return;
      ready.direct.push(performance.now() - t0);
      finish();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
}

try {
  await sampleInterleaved({ contained, direct }, RUNS, 1);
  const c = distribution(ready.contained.slice(1));
  const d = distribution(ready.direct.slice(1));
  report(
    'openclaw',
    { runs: RUNS, unit: 'ms', contained: c, uncontained: d, ratioP50: c.p50 / d.p50 },
    [
      `OpenClaw gateway to ready, contained:   p50 ${ms(c.p50)}  max ${ms(c.max)}  (${RUNS} runs)`,
      `OpenClaw gateway to ready, uncontained: p50 ${ms(d.p50)}  max ${ms(d.max)}`,
      `contained / uncontained at p50: ${(c.p50 / d.p50).toFixed(2)}x`,
    ],
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
