// A governed `system.run` of `true` end to end (operator → gateway → policy →
// node → contain → audit → result) beside the contained run alone, sampled
// interleaved in the same process on loopback. The difference is what
// governance adds.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planSandbox, Runner, validatePolicy } from '@corral/contain';
import { DEFAULT_CONTAINER_POLICY, NodeHost } from '@corral/node';
import { distribution, ms, report, sampleInterleaved } from '../../../bench/lib/stats.ts';
import { Gateway, GatewayClient } from '../src/index.ts';

const token = randomBytes(24).toString('base64url');
const state = mkdtempSync(join(tmpdir(), 'corral-bench-gov-'));
const nodeState = mkdtempSync(join(tmpdir(), 'corral-bench-gov-node-'));
mkdirSync(join(state, 'policies'));
writeFileSync(join(state, 'policies', 'run.cedar'), '@id("true") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"true");\n');
const runner = new Runner();
const gw = await Gateway.start({ stateDir: state, token, port: 0, audit: process.env.BENCH_NO_AUDIT ? false : true });
const host = new NodeHost({ gateway: gw.url, token, stateDir: nodeState, name: 'bench', runner, maxBackoffMs: 100 });
try {
  const connected = host.start();
  while (!gw.identity.nodes.find(host.device.deviceId)) await new Promise((r) => setTimeout(r, 10));
  gw.identity.nodes.pair(host.device.deviceId, 'bench');
  await connected;
  const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  const plan = planSandbox({ policy: validatePolicy(DEFAULT_CONTAINER_POLICY), source: '<bench>', baseDir: nodeState });
  const runs = Number(process.env.BENCH_RUNS ?? 200);
  const samples = await sampleInterleaved(
    {
      governed: async () => {
        const r = (await operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['true'] }, idempotencyKey: randomUUID() })) as { payload: { exitCode: number } };
        if (r.payload.exitCode !== 0) throw new Error('true failed');
      },
      contained: async () => {
        const r = await runner.run(plan, ['true']);
        if (r.exitCode !== 0) throw new Error('true failed');
      },
    },
    runs,
    10,
  );
  const governed = distribution(samples.governed!);
  const contained = distribution(samples.contained!);
  report(
    'gateway-governed-run',
    { governed_ms: governed, contained_ms: contained, added_p50_ms: governed.p50 - contained.p50, added_p99_ms: governed.p99 - contained.p99 },
    [
      `governed system.run of true: p50 ${ms(governed.p50)} p99 ${ms(governed.p99)} (${runs} runs)`,
      `contained run alone:         p50 ${ms(contained.p50)} p99 ${ms(contained.p99)}`,
      `governance adds:             p50 ${ms(governed.p50 - contained.p50)} p99 ${ms(governed.p99 - contained.p99)} (target ≤ 3 ms at p50)`,
    ],
  );
  await operator.close();
} finally {
  await host.close();
  await gw.close();
  await runner.close();
  rmSync(state, { recursive: true, force: true });
  rmSync(nodeState, { recursive: true, force: true });
}
