// A benchmark writer process: opens the log, says "ready", waits for "go" on
// stdin, appends for `warmMs` then `durationMs` more keeping `inflight`
// appends outstanding, then prints the two windows' counts (window.ts).
import { openAuditLog } from '../src/log/audit-log.ts';
import { sampleEvent } from '../test/fixtures.ts';
import { Windows } from './window.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as { stateDir: string; postgresUrl?: string; warmMs: number; durationMs: number; inflight: number };
const log = await openAuditLog({ stateDir: config.stateDir, ...(config.postgresUrl ? { postgresUrl: config.postgresUrl } : {}) });
const events = Array.from({ length: 64 }, (_, i) => sampleEvent(i));
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
const windows = new Windows(config.warmMs, config.durationMs);
let i = 0;
async function lane(): Promise<void> {
  while (windows.open()) {
    await log.append(events[i++ % 64]!);
    windows.count(1);
  }
}
await Promise.all(Array.from({ length: config.inflight }, lane));
const counts = windows.result();
await log.close();
process.stdout.write(`${JSON.stringify(counts)}\n`);
process.exit(0);
