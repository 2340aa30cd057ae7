// A writer process for the shared-appender tests: opens the log in the
// state directory given, prints how it appends (appender, forwarding, alone),
// and holds the log open until it is killed.
import { openAuditLog } from '../src/log/audit-log.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';

const log = await openAuditLog({ stateDir: process.argv[2] as string });
process.stdout.write(`${(log.store as SqliteStore).appendRole}\n`);
setInterval(() => {}, 1 << 30);
