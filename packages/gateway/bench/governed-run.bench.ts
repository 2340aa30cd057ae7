// A governed `system.run` of `true` end to end (operator → gateway → policy →
// node → contain → audit → result) beside the contained run alone, sampled
// interleaved in the same run on loopback. The difference is what governance
// adds. As deployed, the node host runs in its own process (a child here): the
// gateway process never forks sandboxes, and the contained run alone is timed
// inside the node process, around the same Runner the node host uses. The node
// keeps a sandbox warm for the agent's profile, so both take a warm sandbox
// (each sample starts once the pools are refilled); BENCH_COLD=1 measures both
// starting their sandbox cold instead. Beside them, the same governed run
// through a gateway that keeps no audit log shows what waiting for the log's
// two durable records (the decision before the run, the result before the
// answer) costs; and a `system.which` through that gateway — the same way
// (operator → gateway → node and back) with no decision, no sandbox and no
// record — shows what carrying a command there and back takes: the frames'
// handling at each end and the node's PATH lookup (a bare WebSocket round
// trip between two processes takes about 0.1 ms of it on a slow host).
import { fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planSandbox, Runner, validatePolicy } from '@corral/contain';
import { DEFAULT_CONTAINER_POLICY, NodeHost } from '@corral/node';
import { distribution, ms, report } from '../../../bench/lib/stats.ts';
import { Gateway, GatewayClient } from '../src/index.ts';

type Message = { type: string; [key: string]: unknown };

if (process.argv[2] === 'node') {
  // ---- the child: one node host, and the same sandbox run without the gateway ----
  const { url, token, stateDir } = JSON.parse(process.argv[3]!) as { url: string; token: string; stateDir: string };
  const runner = new Runner();
  const warm = process.env.BENCH_COLD ? 0 : 1;
  const host = new NodeHost({ gateway: url, token, stateDir, name: 'bench', runner, maxBackoffMs: 100, warmSandboxes: warm });
  const plan = planSandbox({ policy: validatePolicy(DEFAULT_CONTAINER_POLICY), source: '<bench>', baseDir: stateDir });
  const send = (m: Message) => process.send!(m);
  process.on('message', async (m: Message) => {
    if (m.type === 'settle') {
      await Promise.all([host.warmed(), runner.keepWarm(plan, warm)]);
      send({ type: 'settled' });
    } else if (m.type === 'contained') {
      const t0 = performance.now();
      const r = await runner.run(plan, ['true']);
      send({ type: 'contained', ms: performance.now() - t0, exitCode: r.exitCode, warm: r.warm });
    } else if (m.type === 'stop') {
      await host.close();
      await runner.close();
      process.exit(0);
    }
  });
  send({ type: 'device', deviceId: host.device.deviceId });
  await host.start();
  send({ type: 'ready' });
} else {
  const token = randomBytes(24).toString('base64url');
  const dirs: string[] = [];
  const temp = (prefix: string) => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  const started: Array<{ close: () => Promise<void> }> = [];
  /** A gateway (audited or not) with one node host in a child process, paired, and an operator connected to it. */
  const startPair = async (audit: boolean) => {
    const state = temp('corral-bench-gov-');
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'run.cedar'), '@id("true") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"true");\n');
    const gw = await Gateway.start({ stateDir: state, token, port: 0, audit });
    const child = fork(new URL(import.meta.url).pathname, ['node', JSON.stringify({ url: gw.url, token, stateDir: temp('corral-bench-gov-node-') })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const inbox: Message[] = [];
    const waiters: Array<{ resolve: (m: Message) => void; reject: (e: Error) => void }> = [];
    let ended: Error | undefined;
    child.on('message', (m: Message) => (waiters.length > 0 ? waiters.shift()!.resolve(m) : inbox.push(m)));
    // A node process that ends before it answers fails the bench instead of leaving it waiting.
    child.once('exit', (code, signal) => {
      ended = new Error(`the node process ended (${signal ?? `exit ${code}`})`);
      for (const w of waiters.splice(0)) w.reject(ended);
    });
    started.push({
      close: async () => {
        if (!ended) {
          child.send({ type: 'stop' });
          await new Promise((resolve) => child.once('exit', resolve));
        }
        await gw.close();
      },
    });
    const next = (): Promise<Message> =>
      inbox.length > 0 ? Promise.resolve(inbox.shift()!) : ended ? Promise.reject(ended) : new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    const { deviceId } = (await next()) as { type: 'device'; deviceId: string };
    while (!gw.identity.nodes.find(deviceId)) await new Promise((r) => setTimeout(r, 10));
    gw.identity.nodes.pair(deviceId, 'bench');
    await next(); // ready
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    started.push(operator);
    const settle = async (): Promise<void> => {
      child.send({ type: 'settle' });
      await next();
    };
    const governedRun = async (): Promise<number> => {
      const t0 = performance.now();
      const r = (await operator.request('node.invoke', { nodeId: deviceId, command: 'system.run', params: { command: ['true'] }, idempotencyKey: randomUUID() })) as { payload: { exitCode: number; contained: { warm: boolean } } };
      if (r.payload.exitCode !== 0 || r.payload.contained.warm === Boolean(process.env.BENCH_COLD)) throw new Error('true failed, or not in the sandbox asked for');
      return performance.now() - t0;
    };
    const containedRun = async (): Promise<number> => {
      child.send({ type: 'contained' });
      const r = (await next()) as unknown as { ms: number; exitCode: number; warm: boolean };
      if (r.exitCode !== 0 || r.warm === Boolean(process.env.BENCH_COLD)) throw new Error('true failed, or not in the sandbox asked for');
      return r.ms;
    };
    /** The same way without governance: system.which, which the gateway sends on undecided and the node answers from its PATH. */
    const whichRun = async (): Promise<number> => {
      const t0 = performance.now();
      const r = (await operator.request('node.invoke', { nodeId: deviceId, command: 'system.which', params: { bins: ['true'] }, idempotencyKey: randomUUID() })) as { payload: { bins: Record<string, string> } };
      if (typeof r.payload.bins.true !== 'string') throw new Error('system.which did not find true');
      return performance.now() - t0;
    };
    return { governedRun, containedRun, whichRun, settle };
  };
  try {
    const audited = await startPair(true);
    const bareGateway = await startPair(false);
    const runs = Number(process.env.BENCH_RUNS ?? 200);
    const samples = { governed: [] as number[], unaudited: [] as number[], contained: [] as number[], which: [] as number[] };
    // Before each run both node processes have replaced the warm sandbox their last run took: a replacement
    // still starting in the other process took the CPU from the run measured (9 ms on a slow host).
    const quiet = () => Promise.all([audited.settle(), bareGateway.settle()]);
    for (let i = -10; i < runs; i++) {
      await quiet();
      const governed = await audited.governedRun();
      await quiet();
      const bare = await bareGateway.governedRun();
      await quiet();
      const contained = await audited.containedRun();
      await quiet();
      const which = await bareGateway.whichRun();
      if (i < 0) continue; // warm-up
      samples.governed.push(governed);
      samples.unaudited.push(bare);
      samples.contained.push(contained);
      samples.which.push(which);
    }
    const governed = distribution(samples.governed);
    const unaudited = distribution(samples.unaudited);
    const contained = distribution(samples.contained);
    const which = distribution(samples.which);
    const kind = process.env.BENCH_COLD ? 'cold' : 'warm';
    report(
      'gateway-governed-run',
      {
        sandboxes: kind,
        governed_ms: governed,
        contained_ms: contained,
        without_audit_ms: unaudited,
        added_p50_ms: governed.p50 - contained.p50,
        added_p99_ms: governed.p99 - contained.p99,
        added_without_audit_p50_ms: unaudited.p50 - contained.p50,
        audit_wait_p50_ms: governed.p50 - unaudited.p50,
        which_round_trip_ms: which,
        added_beyond_which_p50_ms: governed.p50 - contained.p50 - which.p50,
      },
      [
        `governed system.run of true: p50 ${ms(governed.p50)} p99 ${ms(governed.p99)} (${runs} runs, ${kind} sandboxes)`,
        `contained run alone:         p50 ${ms(contained.p50)} p99 ${ms(contained.p99)}`,
        `governance adds:             p50 ${ms(governed.p50 - contained.p50)} p99 ${ms(governed.p99 - contained.p99)} (target ≤ 3 ms at p50)`,
        `  of which waiting for the audit log's two durable records: p50 ${ms(governed.p50 - unaudited.p50)} (the same gateway without a log adds ${ms(unaudited.p50 - contained.p50)})`,
        `  the same way there and back carrying system.which (no decision, sandbox or log): p50 ${ms(which.p50)} p99 ${ms(which.p99)}; governance beyond that: p50 ${ms(governed.p50 - contained.p50 - which.p50)}`,
      ],
    );
  } finally {
    for (const part of started.reverse()) await part.close().catch(() => undefined);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}
