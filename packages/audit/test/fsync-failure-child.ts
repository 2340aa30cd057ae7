// Run under `strace -e inject=fsync,fdatasync:error=EIO` by
// durability.test.ts: every fsync fails, as on a disk that cannot write back.
// Appends a batch (committed by the writer thread) and a lone record (on
// this thread), then closes — or, given `crash`, kills itself instead — and
// prints how each ended.
import { writeSync } from 'node:fs';
import { openAuditLog } from '../src/log/audit-log.ts';
import { sampleEvent } from './fixtures.ts';

const [stateDir, ending] = process.argv.slice(2) as [string, 'close' | 'crash' | undefined];
const outcome = (p: Promise<unknown>) => p.then(() => 'acknowledged', (error: { code?: string }) => String(error.code));
const log = await openAuditLog({ stateDir });
const batch = await Promise.all(Array.from({ length: 40 }, (_, i) => outcome(log.append(sampleEvent(i)))));
const lone = await outcome(log.append(sampleEvent(40)));
if (ending === 'crash') {
  writeSync(1, `${JSON.stringify({ lone, batch: [...new Set(batch)] })}\n`);
  process.kill(process.pid, 'SIGKILL');
}
const close = await outcome(log.close());
process.stdout.write(`${JSON.stringify({ lone, batch: [...new Set(batch)], close })}\n`);
