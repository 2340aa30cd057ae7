// Run under `strace -e inject=fsync,fdatasync:error=EIO` by
// durability.test.ts: every fsync fails, as on a disk that cannot write back.
// Appends a batch (committed by the writer thread) and a lone record (on
// this thread), then closes, and prints how each ended.
import { openAuditLog } from '../src/log/audit-log.ts';
import { sampleEvent } from './fixtures.ts';

const stateDir = process.argv[2] as string;
const outcome = (p: Promise<unknown>) => p.then(() => 'acknowledged', (error: { code?: string }) => String(error.code));
const log = await openAuditLog({ stateDir });
const batch = await Promise.all(Array.from({ length: 40 }, (_, i) => outcome(log.append(sampleEvent(i)))));
const lone = await outcome(log.append(sampleEvent(40)));
const close = await outcome(log.close());
process.stdout.write(`${JSON.stringify({ lone, batch: [...new Set(batch)], close })}\n`);
