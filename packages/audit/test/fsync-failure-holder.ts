// Keeps a SQLite audit log open, with a record in its write-ahead log and a
// reader's snapshot of it, while fsync-failure-child.ts appends to it with
// every fsync failing and kills itself; then prints the child's outcomes and
// kills itself too: every process using the log ends without closing it.
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openAuditLog } from '../src/log/audit-log.ts';
import { sampleEvent } from './fixtures.ts';

const stateDir = process.argv[2] as string;
const open = await openAuditLog({ stateDir, oneShot: true });
await open.append(sampleEvent(0));
const reader = new DatabaseSync(join(stateDir, 'audit.db'), { readOnly: true });
reader.exec('BEGIN');
reader.prepare('SELECT size FROM audit_head').get();
const failing = join(import.meta.dirname, 'fsync-failure-child.ts');
const run = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=fsync,fdatasync', '-e', 'inject=fsync,fdatasync:error=EIO', process.execPath, failing, stateDir, 'crash'], { encoding: 'utf8', timeout: 60_000 });
writeSync(1, run.signal === 'SIGKILL' ? run.stdout : `the failing child ended ${run.signal ?? run.status}: ${run.stderr}\n`);
process.kill(process.pid, 'SIGKILL');
