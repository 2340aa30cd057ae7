// Builds the C syscall probe the seccomp tests run inside the sandbox, with
// the same builder (and cache) as Corral's own helper programs.
import { fileURLToPath } from 'node:url';
import { buildNative } from '../../src/linux/native.ts';

/**
 * Returns the path of a built syscall probe (see syscall-probe.c), compiling
 * it first when the cache has no binary for the current source.
 *
 * @throws ContainError `CONTAIN_BACKEND_UNAVAILABLE` when no C compiler is on
 *   PATH or the probe does not compile (the message carries the compiler's output).
 */
export function buildSyscallProbe(): string {
  return buildNative(fileURLToPath(new URL('./syscall-probe.c', import.meta.url))).path;
}
