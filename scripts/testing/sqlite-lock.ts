// Another process holding a SQLite file's write lock for a while: what a test
// of a synchronous open needs, since nothing in the test's own process could
// let a lock go while that open blocks it.
import { spawn } from 'node:child_process';

const HOLDER = `const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(process.argv[1]);
db.exec('BEGIN IMMEDIATE');
process.stdout.write('held\\n');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.argv[2]));
db.exec('COMMIT');`;

/**
 * Starts a process that opens (creating) the SQLite file at `path`, takes its
 * write lock (BEGIN IMMEDIATE) and lets it go `ms` later; resolves once the
 * lock is held, with a promise of that process's end.
 */
export async function holdWriteLock(path: string, ms: number): Promise<{ ended: Promise<number | null> }> {
  const child = spawn(process.execPath, ['-e', HOLDER, path, String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ended = new Promise<number | null>((resolve) => child.once('close', resolve));
  const held = await new Promise<boolean>((resolve) => {
    child.stdout.once('data', () => resolve(true));
    void ended.then(() => resolve(false));
  });
  if (!held) throw new Error(`the process meant to hold ${path}'s write lock ended first`);
  return { ended };
}
