// Builds the C syscall probe the seccomp tests run inside the sandbox.
//
// The binary is cached under node_modules/.cache/corral-probes/ by a hash of
// its source, compiler and flags, so it is rebuilt only when one of them
// changes. Statically linked when the host has a static libc (the probe then
// does not depend on what the sandbox mounts), dynamically otherwise.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContainError } from '../../src/errors.ts';

const SOURCE = fileURLToPath(new URL('./syscall-probe.c', import.meta.url));
const CACHE_DIR = fileURLToPath(new URL('../../../../node_modules/.cache/corral-probes/', import.meta.url));
const COMPILERS = ['cc', 'gcc', 'clang'];
const FLAGS = ['-O2', '-Wall', '-Wextra', '-Werror'];

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

/**
 * Returns the path of a built syscall probe (see syscall-probe.c), compiling
 * it first when the cache has no binary for the current source.
 *
 * @throws ContainError `CONTAIN_BACKEND_UNAVAILABLE` when no C compiler is on
 *   PATH or the probe does not compile (the message carries the compiler's output).
 */
export function buildSyscallProbe(): string {
  const compiler = COMPILERS.map(onPath).find((p) => p !== undefined);
  if (compiler === undefined) {
    throw new ContainError(
      'CONTAIN_BACKEND_UNAVAILABLE',
      `the seccomp tests need a C compiler to build ${SOURCE}, and none of ${COMPILERS.join(', ')} is on PATH (Debian/Ubuntu: apt-get install gcc)`,
    );
  }
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).update(`\0${compiler}\0${FLAGS.join(' ')}\0${process.arch}`).digest('hex').slice(0, 16);
  const binary = join(CACHE_DIR, `syscall-probe-${hash}`);
  if (existsSync(binary)) return binary;

  mkdirSync(CACHE_DIR, { recursive: true });
  // Build under a private name and rename, so concurrent test files never run a half-written binary.
  const partial = `${binary}.${process.pid}.tmp`;
  const failures: string[] = [];
  for (const link of [['-static'], []]) {
    const r = spawnSync(compiler, [...FLAGS, ...link, '-o', partial, SOURCE], { encoding: 'utf8', timeout: 120_000 });
    if (r.status === 0) {
      renameSync(partial, binary);
      return binary;
    }
    failures.push(`${compiler} ${[...FLAGS, ...link].join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  }
  rmSync(partial, { force: true });
  throw new ContainError('CONTAIN_BACKEND_UNAVAILABLE', `could not compile the syscall probe ${SOURCE}:\n${failures.join('\n')}`);
}
