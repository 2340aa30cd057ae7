// Start-up cost of a contained `/bin/true`, side by side in one run:
//   - Corral's Runner through the library API (one long-lived runner, policy `runtime: [shell]`),
//     cold (a sandbox started for the run) and warm (one started ahead by keepWarm for the
//     plan; the refill after each run is awaited outside the timing, so it never lands on
//     another subject's clock),
//   - the same with egress granted (the proxy already running from the warm-up), cold and warm,
//   - a bare spawn of /bin/true,
//   - a raw `bwrap --unshare-all` of it with only the mounts `true` needs,
//   - Microsoft's MXC SDK (v1 `run()`, bubblewrap backend) with an equivalent request,
//     and, for scale beside Corral with egress, MXC with its `networkProxy` (slirp4netns),
//     where this host can run it.
// Sampled interleaved (one of each, then again) so a noisy moment lands on all alike.
//
//   node bench/run.ts spawn            CORRAL_BENCH_RUNS=500 for more runs
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { getPlatformSupport, run as mxcRun } from '@microsoft/mxc-sdk/v1';
import { distribution, hostFacts, ms, report, sampleInterleaved, type Distribution, type Subject } from '../../../bench/lib/stats.ts';
import { validatePolicy } from '../src/policy/load.ts';
import { planSandbox, type SandboxPlan } from '../src/policy/plan.ts';
import { hostCapabilities } from '../src/linux/host.ts';
import { Runner } from '../src/runner.ts';
import { mxcRequestFor } from './lib/mxc-request.ts';
import { rawBwrapTrueArgv } from './lib/raw-bwrap.ts';
import { longestGap } from '../../../scripts/testing/event-loop.ts';

const RUNS = Number(process.env.CORRAL_BENCH_RUNS ?? 200);
const WARMUP = 10;

const caps = hostCapabilities();
if (!caps.bwrap.available || !caps.userNamespaces.available) {
  process.stderr.write(`spawn bench: cannot run here: ${caps.bwrap.available ? caps.userNamespaces.detail : caps.bwrap.detail}\n`);
  process.exit(1);
}
const mxcSupport = getPlatformSupport();
if (!mxcSupport.isSupported || !mxcSupport.availableMethods.includes('bubblewrap')) {
  process.stderr.write(`spawn bench: MXC's bubblewrap backend is not available here: ${mxcSupport.reason ?? JSON.stringify(mxcSupport.unavailableReasons)}\n`);
  process.exit(1);
}

const plan = planFor({ runtime: ['shell'] });
const egressPlan = planFor({ runtime: ['shell'], network: { egress: { allow: ['api.example.com:443'] } } });
const rawArgv = rawBwrapTrueArgv(caps.bwrap.path!);

// MXC's equivalent of `runtime: [shell]`: its bubblewrap backend binds the system folders
// (/usr/bin, /usr/lib, /etc, …) itself, so no extra paths; no network; the same
// environment, working directory and timeout Corral's plan gives the command.
const mxcRequest = mxcRequestFor(plan, ['/bin/true']);
// MXC has no domain policy: with egress it routes through a proxy it is given. /bin/true never
// connects, so a listener that refuses everything stands in for the proxy.
const mxcProxyWorks = mxcSupport.bubblewrapNetwork?.proxyEnforcement === 'supported';
const refuser = createServer((s) => s.end('HTTP/1.1 403 Forbidden\r\n\r\n'));
await new Promise<void>((r) => refuser.listen(0, '127.0.0.1', r));
const mxcProxyRequest = mxcRequestFor(egressPlan, ['/bin/true'], `http://127.0.0.1:${(refuser.address() as { port: number }).port}`);

const runner = new Runner();
const failures: Record<string, number> = {};
const fail = (name: string, detail: string) => {
  failures[name] = (failures[name] ?? 0) + 1;
  if (failures[name] === 1) process.stderr.write(`spawn bench: ${name} did not run /bin/true cleanly: ${detail}\n`);
};

// The warm subjects use their own runner, so the cold ones never find a warm sandbox.
const warmRunner = new Runner();
const checked = (name: string, warm: boolean) => (r: { exitCode: number | null; stderr: string; warm: boolean }) =>
  (r.exitCode === 0 && r.warm === warm) || fail(name, `exit ${r.exitCode}, warm ${r.warm} ${r.stderr}`);
const subjects: Record<string, Subject> = {
  bare: () => exitOf('/bin/true', []).then((code) => code === 0 || fail('bare', `exit ${code}`)),
  rawBwrap: () => exitOf(rawArgv[0]!, rawArgv.slice(1)).then((code) => code === 0 || fail('rawBwrap', `exit ${code}`)),
  corral: () => runner.run(plan, ['/bin/true']).then(checked('corral', false)),
  corralWarm: { run: () => warmRunner.run(plan, ['/bin/true']).then(checked('corralWarm', true)), settle: () => warmRunner.keepWarm(plan, 1) },
  corralEgress: () => runner.run(egressPlan, ['/bin/true']).then(checked('corralEgress', false)),
  corralEgressWarm: { run: () => warmRunner.run(egressPlan, ['/bin/true']).then(checked('corralEgressWarm', true)), settle: () => warmRunner.keepWarm(egressPlan, 1) },
  mxc: () => mxcRun(mxcRequest).then((r) => r.exitCode === 0 || fail('mxc', `exit ${r.exitCode} ${r.stderr} ${r.warnings.join('; ')}`)),
};
if (mxcProxyWorks) {
  subjects.mxcProxy = () => mxcRun(mxcProxyRequest).then((r) => r.exitCode === 0 || fail('mxcProxy', `exit ${r.exitCode} ${r.stderr} ${r.warnings.join('; ')}`));
}

const before = hostFacts();
const started = performance.now();
let samples: Record<string, number[]>;
const held = { bare: [] as number[], corral: [] as number[] };
try {
  await warmRunner.keepWarm(plan, 1);
  await warmRunner.keepWarm(egressPlan, 1);
  samples = await sampleInterleaved(subjects, RUNS, WARMUP);
  // How long the event loop is held while a run starts (a timer's longest gap over one run), a cold
  // contained run beside a bare spawn, interleaved: forking the process is the floor both pay.
  for (let i = -WARMUP; i < RUNS; i++) {
    const bare = await longestHold(subjects.bare as () => Promise<unknown>);
    const cold = await longestHold(subjects.corral as () => Promise<unknown>);
    if (i < 0) continue;
    held.bare.push(bare);
    held.corral.push(cold);
  }
} finally {
  await runner.close();
  await warmRunner.close();
  refuser.close();
}
const wallSeconds = (performance.now() - started) / 1000;
const d = Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, distribution(s)])) as Record<string, Distribution>;
const heldD = { bare: distribution(held.bare), corral: distribution(held.corral) };

interface Ratio {
  of: string;
  to: string;
  p50: number;
  p99: number;
  target: number;
  met: { p50: boolean; p99: boolean };
}
const ratio = (of: string, to: string, target: number): Ratio => {
  const p50 = d[of]!.p50 / d[to]!.p50;
  const p99 = d[of]!.p99 / d[to]!.p99;
  return { of, to, p50, p99, target, met: { p50: p50 <= target, p99: p99 <= target } };
};
// The MXC target is met by a warm start (the library keeps sandboxes of a plan started ahead);
// the cold ratio to MXC is printed beside it, since a first run of a plan pays the cold start.
const ratios = [
  ratio('corral', 'rawBwrap', 1.3),
  ratio('corralWarm', 'mxc', 0.5),
  ratio('corralEgress', 'rawBwrap', 1.5),
  ratio('corral', 'mxc', 0.5),
  ratio('corralWarm', 'rawBwrap', 1.3),
  ratio('corralEgressWarm', 'rawBwrap', 1.5),
];

const label: Record<string, string> = {
  bare: 'bare spawn of /bin/true',
  rawBwrap: 'raw bwrap --unshare-all /bin/true',
  corral: 'Corral runner.run, cold (runtime: [shell])',
  corralWarm: 'Corral runner.run, warm (keepWarm)',
  corralEgress: 'Corral runner.run with egress, cold',
  corralEgressWarm: 'Corral runner.run with egress, warm',
  mxc: 'MXC run() (bubblewrap backend)',
  mxcProxy: 'MXC run() with networkProxy (slirp4netns)',
};
const lines = [
  `${RUNS} runs each after ${WARMUP} warm-up rounds, interleaved; load average before ${fmtLoad(before.loadavg)}, after ${fmtLoad(hostFacts().loadavg)}; ${wallSeconds.toFixed(0)} s`,
  ...Object.keys(subjects).map((n) => `${label[n]!.padEnd(42)} p50 ${ms(d[n]!.p50).padStart(9)}  p99 ${ms(d[n]!.p99).padStart(9)}`),
  ...ratios.map(
    (r) =>
      `${r.of} / ${r.to}: p50 ${r.p50.toFixed(2)}×, p99 ${r.p99.toFixed(2)}× — target ≤ ${r.target}×: p50 ${r.met.p50 ? 'met' : 'NOT met'}, p99 ${r.met.p99 ? 'met' : 'NOT met'}`,
  ),
  `Corral's own work over raw bubblewrap: p50 ${ms(d.corral!.p50 - d.rawBwrap!.p50)}, with egress ${ms(d.corralEgress!.p50 - d.rawBwrap!.p50)}; a warm run over a bare spawn: p50 ${ms(d.corralWarm!.p50 - d.bare!.p50)}`,
  `event loop held while a run starts (longest stall in one run): Corral cold p50 ${ms(heldD.corral.p50)} p99 ${ms(heldD.corral.p99)}; bare spawn p50 ${ms(heldD.bare.p50)} p99 ${ms(heldD.bare.p99)}`,
  ...(d.mxcProxy ? [`for scale, no target: Corral with egress / MXC with networkProxy: p50 ${(d.corralEgress!.p50 / d.mxcProxy.p50).toFixed(2)}×, p99 ${(d.corralEgress!.p99 / d.mxcProxy.p99).toFixed(2)}×`] : []),
  ...Object.entries(failures).map(([n, c]) => `FAILED runs of ${n}: ${c}`),
];

report(
  'spawn',
  {
    runs: RUNS,
    warmup: WARMUP,
    unit: 'ms',
    loadavgBefore: before.loadavg,
    wallSeconds,
    subjects: {
      bare: { what: label.bare, argv: ['/bin/true'], stdio: 'stdout and stderr piped, as Corral and MXC collect them' },
      rawBwrap: { what: label.rawBwrap, argv: rawArgv },
      corral: { what: label.corral, policy: plan.policy, note: 'one long-lived Runner; seccomp filter, cgroup limits (memory, pids, cpu) and the info/block-fd handshake on every run' },
      corralWarm: { what: label.corralWarm, policy: plan.policy, note: "a second Runner keeping one sandbox of the plan started ahead (keepWarm): set up, inside its cgroups, waiting in corral-forward -s; a run hands it the command, then waits for the exit. The refill is awaited after each run, outside the timing" },
      corralEgress: { what: label.corralEgress, policy: egressPlan.policy, note: 'egress proxy started during the warm-up; each run opens a proxy channel and starts the corral-forward relay inside the sandbox' },
      corralEgressWarm: { what: label.corralEgressWarm, policy: egressPlan.policy, note: 'as corralWarm, the proxy channel and the relay opened ahead with the sandbox' },
      mxc: { what: label.mxc, sdk: '@microsoft/mxc-sdk 1.0.1', request: mxcRequest },
      ...(mxcProxyWorks ? { mxcProxy: { what: label.mxcProxy, sdk: '@microsoft/mxc-sdk 1.0.1', request: mxcProxyRequest, note: 'for scale beside corralEgress; no target' } } : {}),
    },
    distributions: d,
    loopHeldMs: { what: "the longest the runner's event loop went unserved during one run (a 1 ms timer's longest gap, less 1 ms), a cold contained run and a bare spawn interleaved", ...heldD },
    ratios,
    failures,
    samples,
  },
  lines,
);
if (Object.keys(failures).length > 0) process.exitCode = 1;

function planFor(policy: unknown): SandboxPlan {
  return planSandbox({ policy: validatePolicy(policy), source: 'spawn.bench', baseDir: process.cwd() });
}

function exitOf(file: string, args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
}

/** The longest stretch `run` kept the event loop from serving a 1 ms timer, ms. */
async function longestHold(run: () => Promise<unknown>): Promise<number> {
  return Math.max(0, (await longestGap(run, 1)).gap - 1);
}

function fmtLoad(load: unknown): string {
  return (load as number[]).map((l) => l.toFixed(2)).join(' ');
}
