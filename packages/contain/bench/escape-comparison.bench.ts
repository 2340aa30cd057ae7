// The escape battery (packages/contain/test/escape/cases.ts) run against Corral's
// Runner and against Microsoft MXC's bubblewrap backend, side by side, each case
// translated to the closest MXC request (lib/mxc-request.ts). Both are judged by
// the rule the battery uses: no ESCAPED on stdout, no trace on the host; Corral
// also by the limit or refusal it must record, MXC by the bounded cases' own
// ESCAPED print and by what the harness cage (below) had to stop.
//
// Safety: MXC sets no process or memory limit on Linux. Every MXC case runs in a
// worker process the benchmark first moves into a pids cgroup (200) and a memory
// cgroup (1 GiB) it makes itself, so an attack MXC lets run (the unbounded fork
// bomb) stops there instead of exhausting this shared machine. Without such a
// cage the unbounded `fork-bomb` case is not run against MXC.
//
// Writes bench/results/escape-comparison.json and docs/escape-comparison.md.
//
//   node bench/run.ts escape-comparison       CORRAL_ESCAPE_ONLY=id,id to run some cases
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getPlatformSupport } from '@microsoft/mxc-sdk/v1';
import { hostFacts, report } from '../../../bench/lib/stats.ts';
import { validatePolicy } from '../src/policy/load.ts';
import { planSandbox, type SandboxPlan } from '../src/policy/plan.ts';
import { EgressProxy, type ConnectionRecord } from '../src/net/proxy.ts';
import { Runner } from '../src/runner.ts';
import { ESCAPE_CASES, type EscapeCase } from '../test/escape/cases.ts';
import { buildWorld, type LiveWorld } from '../test/escape/world.ts';
import { HarnessCage } from './lib/harness-cgroup.ts';
import { mxcRequestFor } from './lib/mxc-request.ts';
import type { MxcOutcome } from './lib/mxc-worker.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const WORKER = join(here, 'lib', 'mxc-worker.ts');
const CAGE = { maxProcesses: 200, memoryBytes: 1024 * 1024 * 1024 };
// The proxy port the battery's scripts dial inside Corral's sandbox; under MXC they dial its proxy instead.
const CORRAL_PROXY_DIAL = "host:'127.0.0.1',port:3128";
const MXC_PROXY_DIAL = 'host:new URL(process.env.HTTP_PROXY).hostname,port:Number(new URL(process.env.HTTP_PROXY).port)';

// Names the attacks ask the proxy to resolve (as in escape.test.ts); anything else fails to resolve.
const TEST_NAMES: Record<string, string> = {
  'metadata.example.com': '169.254.169.254',
  'rebind.example.com': '127.0.0.1',
  'api.example.com': '192.0.2.10',
};
async function testLookup(hostname: string): Promise<{ address: string; family: 4 | 6 }[]> {
  const address = TEST_NAMES[hostname.toLowerCase()];
  if (!address) throw Object.assign(new Error(`test resolver: no name ${hostname}`), { code: 'ENOTFOUND' });
  return [{ address, family: 4 }];
}

type Verdict = 'contained' | 'escaped' | 'not run' | 'error';

interface EngineResult {
  verdict: Verdict;
  /** Why, in a few words: the evidence for the verdict. */
  evidence: string;
  stdoutHead: string;
  durationMs: number;
}

interface CaseRow {
  id: string;
  category: EscapeCase['category'];
  title: string;
  corral: EngineResult;
  /** The same case in a sandbox Corral started ahead and kept warm for the case's plan (Runner.keepWarm). */
  corralWarm: EngineResult;
  mxc: EngineResult;
  /** How the MXC side was set up when it differs from Corral's policy. */
  mxcSetup: string;
  notes: string[];
}

// The protection each case exercises, for the summary of what differs.
const PROTECTION: Record<string, string> = {
  'read-etc-shadow': "a synthetic /etc (the host's is never bound)",
  'read-etc-passwd-users': "a synthetic /etc (the host's is never bound)",
  'symlink-to-secret': "a synthetic /etc (the host's is never bound)",
  'proc-self-root': "a synthetic /etc (the host's is never bound)",
  'proc-1-environ': "starting bubblewrap itself with no environment, the command's reaching it through a pipe (the sandbox's PID 1 is bubblewrap, and its /proc/1/environ is readable inside)",
  'sysfs-and-devices': 'no /sys and a minimal /dev',
  'cgroupfs-write': 'no /sys and a minimal /dev',
  'fork-bomb': 'process limits (pids cgroup)',
  'fork-count': 'process limits (pids cgroup)',
  'memory-bomb': 'memory limits (memory cgroup)',
  'output-flood': 'an output limit',
  'cpu-spin': 'the wall-clock timeout',
  'orphan-survives': 'killing the whole process tree',
  'unshare-user': 'the seccomp filter (no nested namespaces)',
  'unshare-cli': 'the seccomp filter (no nested namespaces)',
  'clone-newuser': 'the seccomp filter (no nested namespaces)',
  setns: 'the seccomp filter (no nested namespaces)',
  'mount-syscall': 'the seccomp filter (mount)',
  'bind-mount': 'the seccomp filter (mount)',
  ptrace: 'the seccomp filter (ptrace)',
  keyctl: 'the seccomp filter (keyrings, BPF, perf, modules, handles, userfaultfd, personality, io_uring)',
  bpf: 'the seccomp filter (keyrings, BPF, perf, modules, handles, userfaultfd, personality, io_uring)',
  'perf-event-open': 'the seccomp filter (keyrings, BPF, perf, modules, handles, userfaultfd, personality, io_uring)',
  'kexec-and-modules': 'the seccomp filter (keyrings, BPF, perf, modules, handles, userfaultfd, personality, io_uring)',
  'open-by-handle-at': 'the seccomp filter (keyrings, BPF, perf, modules, handles, userfaultfd, personality, io_uring)',
  userfaultfd: 'the seccomp filter (keyrings, BPF, perf, modules, handles, userfaultfd, personality, io_uring)',
  personality: 'the seccomp filter (keyrings, BPF, perf, modules, handles, userfaultfd, personality, io_uring)',
  'io-uring': 'the seccomp filter (keyrings, BPF, perf, modules, handles, userfaultfd, personality, io_uring)',
  'raw-socket': 'the seccomp filter (socket families)',
  'netlink-socket': 'the seccomp filter (socket families)',
  'packet-socket': 'the seccomp filter (socket families)',
  tiocsti: 'a new session (no terminal injection)',
  'setuid-binary': 'dropping every capability',
  chroot: 'dropping every capability',
  'setuid-file-on-host': 'the seccomp filter (no setuid or setgid modes)',
  'create-denied-not-yet-there': 'a mask on a denied path that does not exist yet (made before the sandbox starts)',
  'hardlink-at-denied-path': 'a mask on a denied path that does not exist yet (made before the sandbox starts)',
  'hardlink-denied-out': 'denied paths inside a grant',
  'proc-host-kernel': "masks over what /proc tells of the host kernel (symbols, timers, keyrings, memory map, hardware)",
};

const support = getPlatformSupport();
if (!support.isSupported || !support.availableMethods.includes('bubblewrap')) {
  process.stderr.write(`escape comparison: MXC's bubblewrap backend is not available here: ${support.reason ?? JSON.stringify(support.unavailableReasons)}\n`);
  process.exit(1);
}
const mxcProxyWorks = support.bubblewrapNetwork?.proxyEnforcement === 'supported';
// Cases this comparison adds to the battery: they test the comparison's own claims.
const connectDirect = (targets: [string, number][]) =>
  `const net=require('net');let left=${targets.length};const done=()=>{if(--left===0)process.exit(0)};for(const [h,p] of ${JSON.stringify(targets)}){const s=net.connect({host:h,port:p,timeout:2000});s.on('data',d=>{if(String(d).includes('HELLO'))console.log('ESCAPED',h,p);s.destroy();done()});s.on('timeout',()=>{console.log('timeout',h,p);s.destroy();done()});s.on('error',e=>{console.log(e.code,h,p);done()})}`;
const EXTRA_CASES: EscapeCase[] = [
  {
    id: 'bypass-proxy-direct',
    category: 'network',
    title: "go around the proxy: connect straight to the host's loopback service while egress is granted",
    policy: () => ({ runtime: ['node', 'shell'], network: { egress: { allow: ['api.example.com:443'] } } }),
    // 10.0.2.2 is where slirp4netns (MXC's proxy route) forwards to the host's loopback.
    argv: (w) => [w.node, '-e', connectDirect([['127.0.0.1', w.tcpPort], ['10.0.2.2', w.tcpPort], ['192.0.2.10', 443]])],
  },
];
const EXTRA_IDS = new Set(EXTRA_CASES.map((c) => c.id));
const only = process.env.CORRAL_ESCAPE_ONLY?.split(',').filter(Boolean);
const cases = [...ESCAPE_CASES, ...EXTRA_CASES].filter((c) => !only || only.includes(c.id));

const cage = HarnessCage.create(`corral-escape-mxc-${process.pid}`, CAGE);
if (!cage) process.stderr.write('escape comparison: no pids and memory cgroup can be made here; the unbounded fork bomb is not run against MXC\n');
const runner = new Runner({ proxy: { lookup: testLookup } });
const mxcProxy = new EgressProxy({ lookup: testLookup });
const started = performance.now();
const loadBefore = hostFacts().loadavg;
const rows: CaseRow[] = [];

try {
  for (const attack of cases) {
    process.stderr.write(`  ${attack.id} …`);
    const corral = await onCorral(attack, false);
    const corralWarm = await onCorral(attack, true);
    const { result: mxc, setup, notes } = await onMxc(attack);
    if (EXTRA_IDS.has(attack.id)) notes.unshift('Added by this comparison, not in the battery');
    rows.push({ id: attack.id, category: attack.category, title: attack.title, corral, corralWarm, mxc, mxcSetup: setup, notes });
    process.stderr.write(` Corral ${corral.verdict}, Corral warm ${corralWarm.verdict}, MXC ${mxc.verdict}\n`);
  }
} finally {
  await runner.close();
  await mxcProxy.close();
  if (cage) {
    await cage.empty();
    cage.remove();
  }
}

// ── Corral: exactly the battery's rule, in a sandbox started for the run and in a warm one ──
async function onCorral(attack: EscapeCase, warm: boolean): Promise<EngineResult> {
  const world = await buildWorld();
  let t0 = performance.now();
  try {
    const plan = planFor(attack, world);
    if (warm) {
      await runner.keepWarm(plan, 1);
      t0 = performance.now();
    }
    const result = await runner.run(plan, attack.argv(world));
    const durationMs = performance.now() - t0;
    if (warm) await runner.keepWarm(plan, 0);
    if (result.warm !== warm) return { verdict: 'error', evidence: `expected a ${warm ? 'warm' : 'cold'} sandbox`, stdoutHead: '', durationMs };
    const stdoutHead = head(result.stdout);
    if (result.stdout.includes('ESCAPED')) return { verdict: 'escaped', evidence: 'printed ESCAPED', stdoutHead, durationMs };
    if (attack.hostEffect && (await attack.hostEffect(world))) return { verdict: 'escaped', evidence: 'left a trace on the host', stdoutHead, durationMs };
    if (world.tcpAccepted() > 0 || world.udpReceived.length > 0) return { verdict: 'escaped', evidence: 'reached a host loopback listener', stdoutHead, durationMs };
    switch (attack.expect) {
      case undefined:
        return { verdict: 'contained', evidence: 'no ESCAPED, no trace on the host', stdoutHead, durationMs };
      case 'network-refused': {
        const ok = result.connections.some((c) => !c.allowed) && result.connections.every((c) => !c.allowed);
        return ok
          ? { verdict: 'contained', evidence: `proxy refused: ${refusals(result.connections)}`, stdoutHead, durationMs }
          : { verdict: 'escaped', evidence: `no refusal recorded: ${JSON.stringify(result.connections.map((c) => [c.host, c.port, c.allowed]))}`, stdoutHead, durationMs };
      }
      default:
        return result.limitsHit.includes(attack.expect)
          ? { verdict: 'contained', evidence: `stopped by ${attack.expect} limit (${result.refused.find((r) => r.kind === 'limit')?.detail ?? ''})`, stdoutHead, durationMs }
          : { verdict: 'escaped', evidence: `no ${attack.expect} limit recorded (limits hit: ${JSON.stringify(result.limitsHit)})`, stdoutHead, durationMs };
    }
  } catch (error) {
    return { verdict: 'error', evidence: `${(error as Error).message}`.slice(0, 300), stdoutHead: '', durationMs: performance.now() - t0 };
  } finally {
    await world.close();
  }
}

// ── MXC: the same case, the closest request, in the harness cage ───────────
async function onMxc(attack: EscapeCase): Promise<{ result: EngineResult; setup: string; notes: string[] }> {
  const notes: string[] = [];
  if (attack.id === 'fork-bomb' && !cage) {
    return { result: { verdict: 'not run', evidence: 'not run: would exhaust the host (MXC sets no process limit and no cgroup cage could be made)', stdoutHead: '', durationMs: 0 }, setup: '', notes };
  }
  const world = await buildWorld();
  let bridge: Server | undefined;
  let channel: Awaited<ReturnType<EgressProxy['openChannel']>> | undefined;
  const t0 = performance.now();
  try {
    const plan = planFor(attack, world);
    let argv = attack.argv(world);
    let proxyUrl: string | undefined;
    let setup = 'egress denied';
    if (plan.egress) {
      if (!mxcProxyWorks) {
        // No slirp4netns/iptables here: MXC cannot route through a proxy, and has no domain policy of its own.
        setup = 'egress denied (MXC cannot run a proxy here)';
        notes.push('not comparable: MXC has no domain policy');
      } else {
        channel = await mxcProxy.openChannel(plan.egress);
        bridge = await tcpBridge(channel.socketPath);
        proxyUrl = `http://127.0.0.1:${(bridge.address() as { port: number }).port}`;
        argv = argv.map((a) => a.replaceAll(CORRAL_PROXY_DIAL, MXC_PROXY_DIAL));
        setup = `egress denied but for networkProxy ${proxyUrl} (slirp4netns), a Corral egress proxy with the case's allowlist: MXC has no domain policy of its own`;
        notes.push("MXC's networkProxy is a Corral egress proxy with the case's allowlist");
      }
    }
    const request = mxcRequestFor(plan, argv, proxyUrl);
    const guardMs = request.timeoutMs! + 30_000;
    const outcome = await runMxcWorker(JSON.stringify(request), guardMs);
    const events = cage?.events();
    const durationMs = performance.now() - t0;
    const stdoutHead = head(outcome.stdout);
    const hostTrace = attack.hostEffect ? await attack.hostEffect(world) : false;
    const left = cage ? await cage.empty() : 0;
    if (left > 0) notes.push(`${left} process(es) were still running in the harness cage after MXC returned; the harness killed them`);
    if (events && events.pidsLimitHits > 0) notes.push(`The harness cage refused ${events.pidsLimitHits} fork(s) at its ${CAGE.maxProcesses}-process limit`);
    if (events && events.oomKills > 0) notes.push(`The harness cage's 1 GiB memory limit OOM-killed ${events.oomKills} process(es)`);
    if (outcome.timedOut) notes.push('MXC reported timedOut');
    if (outcome.warnings.length > 0) notes.push(`MXC warnings: ${outcome.warnings.join('; ')}`);
    const connections = channel?.connections() ?? [];
    if (channel) notes.push(connections.length > 0 ? `The proxy saw ${refusals(connections)}` : 'The proxy saw no connection');

    const r = (verdict: Verdict, evidence: string): { result: EngineResult; setup: string; notes: string[] } => ({ result: { verdict, evidence, stdoutHead, durationMs }, setup, notes });
    if (outcome.error) return r('error', `MXC failed: ${outcome.error}`.slice(0, 300));
    if (outcome.stdout.includes('ESCAPED')) return r('escaped', 'printed ESCAPED');
    if (hostTrace) return r('escaped', 'left a trace on the host');
    if (world.tcpAccepted() > 0 || world.udpReceived.length > 0) return r('escaped', 'reached a host loopback listener');
    if (attack.expect === 'processes' && events && events.pidsLimitHits > 0) return r('escaped', `MXC set no process limit: only the harness cage (${CAGE.maxProcesses} processes) stopped it`);
    if (attack.expect === 'memory' && events && events.oomKills > 0) return r('escaped', 'MXC set no memory limit: only the harness cage (1 GiB) stopped it');
    if (attack.expect === 'output') {
      const total = outcome.stdoutBytes + outcome.stderrBytes;
      const max = plan.limits.maxOutputBytes.value;
      if (total > max) return r('escaped', `MXC set no output limit: ${mb(total)} of output passed (policy maxOutputBytes ${max})`);
    }
    if (attack.expect === 'network-refused' && channel && connections.some((c) => c.allowed)) return r('escaped', 'the proxy let a connection through');
    return r('contained', attack.expect === 'timeout' ? "no ESCAPED: MXC's timeout stopped it" : 'no ESCAPED, no trace on the host');
  } catch (error) {
    return { result: { verdict: 'error', evidence: `${(error as Error).message}`.slice(0, 300), stdoutHead: '', durationMs: performance.now() - t0 }, setup: '', notes };
  } finally {
    bridge?.close();
    await channel?.close();
    await world.close();
  }
}

/** Starts the MXC worker, cages it before it reads its request, and returns what it printed. */
function runMxcWorker(request: string, guardMs: number): Promise<MxcOutcome> {
  return new Promise((resolve, reject) => {
    const worker = spawn(process.execPath, [WORKER], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    worker.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    worker.stderr.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-4000)));
    const guard = setTimeout(() => {
      worker.kill('SIGKILL');
      void cage?.empty();
    }, guardMs);
    worker.once('error', reject);
    worker.once('close', (code, signal) => {
      clearTimeout(guard);
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as MxcOutcome);
      } catch {
        resolve({ exitCode: null, timedOut: false, warnings: [], stdout: '', stderr: err, stdoutBytes: 0, stderrBytes: 0, durationMs: 0, error: `the MXC worker ended (${code ?? signal}) without a result: ${err.trim().slice(-300)}` });
      }
    });
    try {
      cage?.admit(worker.pid!);
    } catch (error) {
      worker.kill('SIGKILL');
      reject(error);
      return;
    }
    worker.stdin.end(request);
  });
}

/** A host-loopback TCP port piping each connection into a proxy channel's unix socket (MXC dials TCP, the channel listens on a unix socket). */
function tcpBridge(socketPath: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((client) => {
      const upstream = connect(socketPath);
      client.pipe(upstream).pipe(client);
      const end = () => (client.destroy(), upstream.destroy());
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    server.once('error', reject).listen(0, '127.0.0.1', () => resolve(server));
  });
}

function planFor(attack: EscapeCase, world: LiveWorld): SandboxPlan {
  return planSandbox({ policy: validatePolicy(attack.policy(world)), source: `escape:${attack.id}`, baseDir: world.dir });
}

function refusals(records: ConnectionRecord[]): string {
  return records.map((c) => `${c.host}:${c.port} ${c.allowed ? 'allowed' : `refused (${c.reason})`}`).join(', ');
}

/** A short excerpt of what the command printed, without lines of the host's account files. */
function head(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^[^:\s]+:[^:\s]*:\d+:/.test(line))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 160);
}

function mb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(0)} MiB` : `${bytes} bytes`;
}

// ── Results ──────────────────────────────────────────────────────────────────
const count = (engine: 'corral' | 'corralWarm' | 'mxc', verdict: Verdict) => rows.filter((r) => r[engine].verdict === verdict).length;
const comparable = rows.filter((r) => !r.notes.includes('not comparable: MXC has no domain policy'));
const corralFailsMxcContains = rows.filter((r) => r.corral.verdict !== 'contained' && r.mxc.verdict === 'contained');
const mxcOnlyFails = rows.filter((r) => r.corral.verdict === 'contained' && r.mxc.verdict === 'escaped');
const differing = new Map<string, string[]>();
for (const r of mxcOnlyFails) {
  const what = PROTECTION[r.id] ?? `${r.category}: ${r.title}`;
  differing.set(what, [...(differing.get(what) ?? []), r.id]);
}

// The cases behind the summary's sentence on what both sandboxes hold.
const BOTH_CONTAIN = ['read-ungranted-folder', 'read-denied-inside-grant', 'write-readonly', 'see-host-processes', 'leaked-env', 'host-loopback-service'];
const summary = [
  `Of ${rows.length} cases (${rows.filter((r) => !EXTRA_IDS.has(r.id)).length} of the battery, ${rows.filter((r) => EXTRA_IDS.has(r.id)).length} added here), Corral contained ${count('corral', 'contained')}; MXC's bubblewrap backend contained ${count('mxc', 'contained')}`,
  `(${count('mxc', 'escaped')} escaped${count('mxc', 'not run') ? `, ${count('mxc', 'not run')} not run` : ''}${count('mxc', 'error') ? `, ${count('mxc', 'error')} errors` : ''}${count('corral', 'error') ? `; Corral errors: ${count('corral', 'error')}` : ''}).`,
  `Run again in sandboxes Corral started ahead and kept warm for each case's plan (Runner.keepWarm: set up, inside their cgroups, waiting for the command), Corral contained ${count('corralWarm', 'contained')}${count('corralWarm', 'contained') === rows.length ? ', every case' : `; **${rows.length - count('corralWarm', 'contained')} not contained in a warm sandbox: a bug to fix**`}.`,
  corralFailsMxcContains.length > 0
    ? `**Corral failed ${corralFailsMxcContains.length} case(s) that MXC contained: ${corralFailsMxcContains.map((r) => `\`${r.id}\``).join(', ')} — a bug to fix.**`
    : 'Every case MXC contained, Corral contained too.',
  differing.size > 0
    ? `The cases MXC let through come down to protections its Linux backend does not have: ${[...differing].map(([what, ids]) => `${what} (${ids.map((i) => `\`${i}\``).join(', ')})`).join('; ')}.`
    : 'MXC let no case through.',
  BOTH_CONTAIN.every((id) => rows.find((r) => r.id === id && r.corral.verdict === 'contained' && r.mxc.verdict === 'contained'))
    ? "Both hide ungranted folders and the host's processes, honour read-only grants and denied paths inside a grant, scrub the command's own environment, and give the sandbox no network unless asked."
    : '',
  mxcProxyWorks
    ? "For the cases that grant egress, MXC was pointed (runtimeConfig.networkProxy, through slirp4netns) at a Corral egress proxy holding the case's allowlist, since MXC has no domain policy of its own: in those rows the allow/refuse decisions are the proxy's, and MXC's part is carrying the attack's connection to it (the battery's scripts dial the proxy; `bypass-proxy-direct` tries to go around it)."
    : 'MXC could not route through a proxy on this host (no slirp4netns/iptables): the cases that grant egress ran with egress denied and are marked not comparable.',
]
  .filter(Boolean)
  .join(' ');

const mark = (e: EngineResult) => (e.verdict === 'contained' ? 'yes' : e.verdict === 'escaped' ? '**NO**' : e.verdict);
const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');
const host = hostFacts();
const md = [
  '# Escape battery: Corral beside Microsoft MXC',
  '',
  `Generated by \`packages/contain/bench/escape-comparison.bench.ts\` (run it with \`npm run bench -- escape-comparison\`) on ${String(host.at).slice(0, 10)}:`,
  `every case of Corral's escape battery (\`packages/contain/test/escape/cases.ts\`, ${rows.filter((r) => !EXTRA_IDS.has(r.id)).length} cases, plus ${rows.filter((r) => EXTRA_IDS.has(r.id)).length} this comparison adds), run once against Corral's \`Runner\` and once against`,
  "`@microsoft/mxc-sdk` 1.0.1's bubblewrap backend with the closest MXC request: the case policy's read-write, read-only and denied paths (runtime-preset",
  "paths MXC already binds left out), egress denied, no ingress, UI disabled, the same exact environment, working directory and timeout. Both are judged by",
  'the battery\'s rule: the attack prints ESCAPED when it works, and must leave no trace on the host. Corral must also record the limit or refusal',
  'the case expects. For MXC, the bounded bomb cases (`fork-count`, `memory-bomb`) decide by their own ESCAPED print, and `output-flood` by how much output',
  'MXC let through against the policy\'s `maxOutputBytes`.',
  '',
  `MXC sets no process or memory limit on Linux, so every MXC case ran in a worker process the benchmark first moved into a pids cgroup (${CAGE.maxProcesses}) and a`,
  "memory cgroup (1 GiB) of its own. An attack that only that cage stopped counts as not contained by MXC.",
  '',
  '## Summary',
  '',
  summary,
  '',
  '## Cases',
  '',
  '| case | category | Corral contained? | Corral, warm sandbox? | MXC contained? | notes |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => {
    const shown = (e: EngineResult) => e.stdoutHead && (e.verdict === 'escaped' || EXTRA_IDS.has(r.id)) ? ` (stdout: \`${e.stdoutHead.slice(0, 100)}\`)` : '';
    const notes = [`Corral: ${r.corral.evidence}${shown(r.corral)}.`, `MXC: ${r.mxc.evidence}${shown(r.mxc)}.`, ...r.notes.map((n) => `${n}.`)];
    return `| \`${r.id}\` | ${r.category} | ${mark(r.corral)} | ${mark(r.corralWarm)} | ${mark(r.mxc)} | ${cell(notes.join(' '))} |`;
  }),
  '',
  `Host: ${host.cpus} CPUs (${host.cpuModel}), Node ${host.node}, load average ${(host.loadavg as number[]).map((l) => l.toFixed(2)).join(' ')}.`,
  '',
].join('\n');
writeFileSync(join(root, 'docs', 'escape-comparison.md'), md);

report(
  'escape-comparison',
  {
    cases: rows.length,
    loadavgBefore: loadBefore,
    wallSeconds: (performance.now() - started) / 1000,
    mxc: { sdk: '@microsoft/mxc-sdk 1.0.1', backend: 'bubblewrap', proxyEnforcement: support.bubblewrapNetwork?.proxyEnforcement ?? 'unknown' },
    harnessCage: cage ? { ...CAGE, cgroupVersion: cage.dirs.version } : null,
    totals: {
      corral: { contained: count('corral', 'contained'), escaped: count('corral', 'escaped'), error: count('corral', 'error') },
      corralWarm: { contained: count('corralWarm', 'contained'), escaped: count('corralWarm', 'escaped'), error: count('corralWarm', 'error') },
      mxc: { contained: count('mxc', 'contained'), escaped: count('mxc', 'escaped'), notRun: count('mxc', 'not run'), error: count('mxc', 'error') },
      comparable: comparable.length,
    },
    corralFailsWhereMxcContains: corralFailsMxcContains.map((r) => r.id),
    mxcFailsWhereCorralContains: mxcOnlyFails.map((r) => r.id),
    protectionsThatDiffer: Object.fromEntries(differing),
    summary,
    rows,
  },
  [
    `${rows.length} cases; Corral contained ${count('corral', 'contained')} (in warm sandboxes ${count('corralWarm', 'contained')}), MXC contained ${count('mxc', 'contained')} (escaped ${count('mxc', 'escaped')}, not run ${count('mxc', 'not run')}, errors ${count('mxc', 'error')})`,
    corralFailsMxcContains.length > 0 ? `CORRAL FAILED WHERE MXC CONTAINED: ${corralFailsMxcContains.map((r) => r.id).join(', ')}` : 'every case MXC contained, Corral contained',
    ...rows.filter((r) => r.corral.verdict !== 'contained').map((r) => `Corral ${r.corral.verdict}: ${r.id}: ${r.corral.evidence}`),
    ...rows.filter((r) => r.corralWarm.verdict !== 'contained').map((r) => `Corral (warm) ${r.corralWarm.verdict}: ${r.id}: ${r.corralWarm.evidence}`),
    ...[...differing].map(([what, ids]) => `MXC lacks ${what}: ${ids.join(', ')}`),
    '(table written to docs/escape-comparison.md)',
  ],
);
if (rows.some((r) => r.corral.verdict !== 'contained' || r.corralWarm.verdict !== 'contained')) process.exitCode = 1;
