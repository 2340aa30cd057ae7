// Run under `strace -e inject=fdatasync:error=EIO` by sqlite-wal-sync.test.ts:
// every write-back of the write-ahead log fails. Appends through the writer
// thread, then a lone one, then reads the head, and prints how each ended.
import { openAuditLog } from '../src/log/audit-log.ts';
import { sampleEvent } from './fixtures.ts';

const stateDir = process.argv[2] as string;
const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`);
const log = await openAuditLog({ stateDir });
// More than a lone append: these go to the writer thread.
const batch = await Promise.all(Array.from({ length: 40 }, (_, i) => outcome(log.append(sampleEvent(i)))));
const lone = await outcome(log.append(sampleEvent(40)));
const head = await outcome(log.store.head());
const close = await outcome(log.close());
process.stdout.write(`${JSON.stringify({ batch: [...new Set(batch)], lone, head, close })}\n`);
