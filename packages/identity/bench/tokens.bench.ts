// Agent token issue and verify throughput (per second, sequential, one core)
// and latency, through Corral's identity API on a real identity.db. Verify
// includes the kill-switch check (the agent's live status in SQLite).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distribution, ms, report, sampleInterleaved } from '../../../bench/lib/stats.ts';
import { Identity } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-bench-tokens-'));
const identity = Identity.open(dir);
try {
  identity.agents.create({ name: 'bench-bot', process: 'bench', owner: 'bench@example.com', scopes: ['records:read', 'payments:create'] });
  const pool: string[] = [];
  for (let i = 0; i < 500; i++) pool.push((await identity.issueToken('bench-bot')).token);

  const runs = 5000;
  let k = 0;
  const samples = await sampleInterleaved(
    {
      issue: () => identity.issueToken('bench-bot'),
      verify: () => identity.verifyToken(pool[k++ % pool.length]),
    },
    runs,
    300,
  );

  // Throughput: back-to-back calls for a fixed count, no per-call timer.
  const throughput = async (fn: () => Promise<unknown>, n: number) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn();
    return n / ((performance.now() - t0) / 1000);
  };
  let v = 0;
  const issuePerSecond = await throughput(() => identity.issueToken('bench-bot'), 5000);
  const verifyPerSecond = await throughput(() => identity.verifyToken(pool[v++ % pool.length]), 5000);
  const singleUse = await Promise.all(Array.from({ length: 2000 }, () => identity.issueToken('bench-bot')));
  let s = 0;
  const singleUsePerSecond = await throughput(() => identity.verifyToken(singleUse[s++]!.token, { singleUse: true }), 2000);

  const issue = distribution(samples.issue!);
  const verify = distribution(samples.verify!);
  report(
    'identity-tokens',
    { issue_ms: issue, verify_ms: verify, issue_per_second: issuePerSecond, verify_per_second: verifyPerSecond, verify_single_use_per_second: singleUsePerSecond },
    [
      `issue:  ${issuePerSecond.toFixed(0)}/s, p50 ${ms(issue.p50)} p99 ${ms(issue.p99)}`,
      `verify: ${verifyPerSecond.toFixed(0)}/s, p50 ${ms(verify.p50)} p99 ${ms(verify.p99)} (signature, claims and the agent's live status)`,
      `verify single-use (records the token id in SQLite): ${singleUsePerSecond.toFixed(0)}/s`,
    ],
  );
} finally {
  identity.close();
  rmSync(dir, { recursive: true, force: true });
}
