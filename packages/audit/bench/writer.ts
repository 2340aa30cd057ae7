// A benchmark writer process: opens the log, says "ready", waits for "go" on
// stdin, appends for `durationMs` keeping `inflight` appends outstanding, then
// prints {"acked": n, "ms": elapsed}.
import { openAuditLog } from '../src/log/audit-log.ts';
import { sampleEvent } from '../test/fixtures.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as { stateDir: string; postgresUrl?: string; durationMs: number; inflight: number };
const log = await openAuditLog({ stateDir: config.stateDir, ...(config.postgresUrl ? { postgresUrl: config.postgresUrl } : {}) });
const events = Array.from({ length: 64 }, (_, i) => sampleEvent(i));
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
const t0 = performance.now();
const end = t0 + config.durationMs;
let acked = 0;
let i = 0;
async function lane(): Promise<void> {
  while (performance.now() < end) {
    await log.append(events[i++ % 64]!);
    acked++;
  }
}
await Promise.all(Array.from({ length: config.inflight }, lane));
const ms = performance.now() - t0;
await log.close();
process.stdout.write(`${JSON.stringify({ acked, ms })}\n`);
process.exit(0);
