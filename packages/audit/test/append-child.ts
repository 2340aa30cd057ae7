// A writer process for durability and concurrency tests: appends `count`
// events (or until killed) keeping `inflight` appends outstanding, and prints
// "seq hash" for every acknowledged record — only after the ack.
import { openAuditLog } from '../src/log/audit-log.ts';
import { sampleEvent } from './fixtures.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as { stateDir: string; postgresUrl?: string; oneShot?: boolean; count: number; inflight: number; tag: string };
const log = await openAuditLog({ stateDir: config.stateDir, ...(config.postgresUrl ? { postgresUrl: config.postgresUrl } : {}), oneShot: config.oneShot === true, checkpointEvery: 500 });
let issued = 0;
let out = '';
const flush = () => {
  if (out) process.stdout.write(out);
  out = '';
};
const timer = setInterval(flush, 5);
async function lane(): Promise<void> {
  while (issued < config.count) {
    const i = issued++;
    const event = sampleEvent(i);
    event.details = { writer: config.tag, i };
    const r = await log.append(event);
    out += `${r.seq} ${r.hash}\n`;
  }
}
await Promise.all(Array.from({ length: config.inflight }, lane));
await log.close();
clearInterval(timer);
flush();
