// A built console for the gateway to serve: `corral up` and the tests call
// buildConsole(), which runs Vite only when dist/ is missing or older than the
// sources. Several processes may ask at once (parallel test files), so a
// build happens under a lock file, into a fresh folder that is then swapped in.
import { execFile } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConsoleError } from './errors.ts';

const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * What a build is made from. The workspace's lock file stands for the installed
 * React and Vite: `npm update` changes it, and an upgrade (a security fix) must
 * reach the console served. Outside this workspace it may not exist. This file
 * is one too: how Vite is run (its NODE_ENV) shapes what it builds.
 */
const SOURCES = [join(PACKAGE_DIR, 'ui'), join(PACKAGE_DIR, 'vite.config.ts'), join(PACKAGE_DIR, 'package.json'), fileURLToPath(import.meta.url), join(PACKAGE_DIR, '..', '..', 'package-lock.json')];
const LOCK = join(PACKAGE_DIR, '.build.lock');
/** Longer than any build on these machines; a lock older than this was left by a process that died. */
const STALE_LOCK_MS = 120_000;

/** The folder the built console lives in (`index.html` and `assets/`); it may not be built yet. */
export function consoleDir(): string {
  return join(PACKAGE_DIR, 'dist');
}

function newestMtime(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** True when dist/ holds a build at least as new as every source file. */
export function consoleIsFresh(): boolean {
  const index = join(consoleDir(), 'index.html');
  if (!existsSync(index)) return false;
  return statSync(index).mtimeMs >= Math.max(...SOURCES.map(newestMtime));
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + STALE_LOCK_MS;
  for (;;) {
    try {
      closeSync(openSync(LOCK, 'wx'));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConsoleError('CONSOLE_BUILD_FAILED', `cannot create the build lock ${LOCK}`, { cause: error });
      const age = Date.now() - (statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > STALE_LOCK_MS) rmSync(LOCK, { force: true });
      else if (Date.now() > deadline) throw new ConsoleError('CONSOLE_BUILD_LOCKED', `another process has held ${LOCK} too long`);
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { force: true });
  }
}

/**
 * Vite's build, run in a process of its own. Vite and React read NODE_ENV from
 * the process they run in: a gateway started with NODE_ENV=development would
 * serve React's development build (its warnings and debugging hooks), and Vite
 * sets NODE_ENV in that process when it is unset. Run apart with NODE_ENV=production,
 * the build is the same whatever the caller's environment, and leaves it alone.
 */
const BUILD_SCRIPT = `const [vite, configFile, outDir] = process.argv.slice(1);
const { build } = await import(vite);
await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });`;

/** Builds the console into `outDir` (emptied first). Throws CONSOLE_BUILD_FAILED, its cause naming what Vite wrote on standard error. */
export function buildInto(outDir: string): Promise<void> {
  let vite: string;
  try {
    vite = import.meta.resolve('vite');
  } catch (error) {
    return Promise.reject(new ConsoleError('CONSOLE_BUILD_FAILED', 'vite is not installed beside the console', { cause: error }));
  }
  const args = ['--input-type=module', '-e', BUILD_SCRIPT, vite, join(PACKAGE_DIR, 'vite.config.ts'), outDir];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: PACKAGE_DIR, env: { ...process.env, NODE_ENV: 'production' }, maxBuffer: 16 * 1024 * 1024 }, (error) => {
      if (error) reject(new ConsoleError('CONSOLE_BUILD_FAILED', 'vite could not build the console', { cause: error }));
      else resolve();
    });
  });
}

async function viteBuild(): Promise<void> {
  const staging = join(PACKAGE_DIR, `dist.${process.pid}.${Date.now()}`);
  try {
    await buildInto(staging);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  const old = `${staging}.old`;
  try {
    if (existsSync(consoleDir())) renameSync(consoleDir(), old);
    renameSync(staging, consoleDir());
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw new ConsoleError('CONSOLE_BUILD_FAILED', `cannot put the new build in ${consoleDir()}`, { cause: error });
  }
  rmSync(old, { recursive: true, force: true });
}

let pending: Promise<string> | undefined;

/**
 * Builds the console unless dist/ is already fresh, and returns consoleDir().
 * Concurrent callers in one process share one build; across processes a lock
 * file serialises them. Throws CONSOLE_BUILD_FAILED (Vite failed, or the
 * package folder is not writable), CONSOLE_BUILD_LOCKED.
 */
export function buildConsole(): Promise<string> {
  pending ??= (async () => {
    if (consoleIsFresh()) return consoleDir();
    await withLock(async () => {
      if (!consoleIsFresh()) await viteBuild();
    });
    return consoleDir();
  })().finally(() => {
    pending = undefined;
  });
  return pending;
}
