// Corral's few helper programs written in C, built from source on first use.
//
// Each binary is cached by a hash of its source, compiler, flags and
// architecture, so it is rebuilt only when one of them changes. It is linked
// statically when the host has a static libc (then it needs nothing mounted in
// a sandbox), dynamically otherwise.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContainError } from '../errors.ts';
import { SYSTEM_FOLDERS, which } from './host.ts';
import { processAlive } from './process-alive.ts';

const COMPILERS = ['cc', 'gcc', 'clang'];
const FLAGS = ['-O2', '-Wall', '-Wextra', '-Werror'];
/**
 * The compiler's whole environment. It runs the assembler and linker it finds on PATH (and reads
 * COMPILER_PATH, GCC_EXEC_PREFIX, CPATH, LD_PRELOAD…): the caller's PATH may begin with a folder a
 * sandbox wrote (a project's node_modules/.bin), where a planted `as` would run as the host user.
 * (Made when called: host.ts, which holds the system folders, imports this module too.)
 */
function compilerEnv(): NodeJS.ProcessEnv {
  return { PATH: SYSTEM_FOLDERS.join(':'), LC_ALL: 'C' };
}

export interface NativeBinary {
  path: string;
  /** True when linked statically: it runs in a sandbox that mounts no libraries. */
  static: boolean;
}

/** Where built helpers are kept: the install's node_modules/.cache, else a per-user temp folder. */
function cacheDir(): string {
  const inInstall = fileURLToPath(new URL('../../../../node_modules/.cache/corral-native/', import.meta.url));
  try {
    mkdirSync(inInstall, { recursive: true });
    return inInstall;
  } catch {
    return privateFolder(join(tmpdir(), `corral-native-${process.getuid?.() ?? 'user'}`));
  }
}

/**
 * Makes `dir` owner-only, or checks that the one already there is: a folder (not a symlink)
 * owned by this user that nobody else may write. In a shared temp folder anyone may have made
 * it first, with a program of their own under the name a build would take, run in every sandbox.
 *
 * @throws ContainError `CONTAIN_BACKEND_UNAVAILABLE` when it is not.
 */
export function privateFolder(dir: string): string {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new ContainError('CONTAIN_BACKEND_UNAVAILABLE', `cannot make ${dir} for Corral's helper programs: ${(error as Error).message}`, { cause: error });
  }
  const found = lstatSync(dir);
  const uid = process.getuid?.();
  if (!found.isDirectory() || (uid !== undefined && found.uid !== uid) || (found.mode & 0o022) !== 0) {
    throw new ContainError('CONTAIN_BACKEND_UNAVAILABLE', `${dir} is not a folder of this user's that only it may write, so the helper programs built there cannot be trusted; remove it (Corral makes it again)`);
  }
  return dir;
}

/**
 * Returns the built program for a C source file, compiling it first when the
 * cache has none for the current source. The compiler runs with an
 * environment of its own (the system folders as PATH), not the caller's.
 *
 * @param options.cacheDir where built programs are kept (default: the install's
 *   node_modules/.cache, else a per-user temp folder); it must exist.
 * @throws ContainError `CONTAIN_BACKEND_UNAVAILABLE` when no C compiler is on
 *   PATH or the source does not compile (the message carries the compiler's output).
 */
export function buildNative(source: string, options: { cacheDir?: string } = {}): NativeBinary {
  const name = basename(source, '.c');
  const compiler = COMPILERS.map((c) => which(c)).find((p) => p !== undefined);
  const text = readFileSync(source);
  const hash = createHash('sha256').update(text).update(`\0${compiler ?? ''}\0${FLAGS.join(' ')}\0${process.arch}`).digest('hex').slice(0, 16);
  const dir = options.cacheDir ?? cacheDir();
  for (const linkage of ['static', 'dynamic'] as const) {
    const built = join(dir, `${name}-${hash}-${linkage}`);
    if (existsSync(built)) return { path: built, static: linkage === 'static' };
  }
  if (compiler === undefined) {
    throw new ContainError('CONTAIN_BACKEND_UNAVAILABLE', `building ${name} needs a C compiler, and none of ${COMPILERS.join(', ')} is on PATH (Debian: apt-get install gcc libc6-dev)`);
  }
  const failures: string[] = [];
  for (const linkage of ['static', 'dynamic'] as const) {
    const built = join(dir, `${name}-${hash}-${linkage}`);
    // Build under a private name and rename, so a concurrent process never runs a half-written binary.
    const partial = `${built}.${process.pid}.tmp`;
    const flags = [...FLAGS, ...(linkage === 'static' ? ['-static'] : [])];
    const r = spawnSync(compiler, [...flags, '-o', partial, source], { encoding: 'utf8', timeout: 120_000, env: compilerEnv() });
    if (r.status === 0) {
      renameSync(partial, built);
      removeAbandonedBuilds(dir, name);
      return { path: built, static: linkage === 'static' };
    }
    rmSync(partial, { force: true });
    failures.push(`${compiler} ${flags.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  }
  throw new ContainError('CONTAIN_BACKEND_UNAVAILABLE', `could not compile ${source}:\n${failures.join('\n')}`);
}

/**
 * Removes the partial builds of `name` that processes which have ended left
 * in `dir` (killed while compiling: a Corral killed during its first run after
 * an upgrade), each as large as a built program.
 */
function removeAbandonedBuilds(dir: string, name: string): void {
  for (const file of readdirSync(dir)) {
    const pid = /^(.+)-[0-9a-f]{16}-(?:static|dynamic)\.(\d+)\.tmp$/.exec(file);
    if (pid?.[1] !== name || processAlive(Number(pid[2]))) continue;
    rmSync(join(dir, file), { force: true });
  }
}

/** The host-side parent of a sandbox's bubblewrap (native/corral-reaper.c): ends the sandbox whole with Corral. */
export function reaperBinary(): NativeBinary {
  return buildNative(fileURLToPath(new URL('../../native/corral-reaper.c', import.meta.url)));
}

/** The in-sandbox forwarder (native/corral-forward.c): the first program of a run with network grants. */
export function forwarderBinary(): NativeBinary {
  return buildNative(fileURLToPath(new URL('../../native/corral-forward.c', import.meta.url)));
}
