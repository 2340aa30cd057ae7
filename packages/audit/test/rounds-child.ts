// A writer process that nothing but its appends keeps alive: it appends
// `rounds` rounds of 20 events (each round one request), waiting for each,
// then closes the log and prints how its appends went and where they went.
import { openAuditLog } from '../src/log/audit-log.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';
import { sampleEvent } from './fixtures.ts';

const [stateDir, rounds] = [process.argv[2] as string, Number(process.argv[3])];
const log = await openAuditLog({ stateDir });
const lanes = new Set<string>();
for (let round = 0; round < rounds; round++) {
  await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(sampleEvent(round * 20 + i))));
  lanes.add(String((log.store as SqliteStore).appendLane));
}
await log.close();
process.stdout.write(`${JSON.stringify({ appended: rounds * 20, lanes: [...lanes].sort() })}\n`);
